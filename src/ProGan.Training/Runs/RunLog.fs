// log.csv: appended as training goes, cut back to the checkpoint a run resumes from.
namespace ProGan.Training.Runs

open System
open System.Globalization
open System.IO
open ProGan.Keras.IO
open ProGan.Training.Basics
open ProGan.Training.Progress

/// log.csv of a run folder: appended as training goes, cut back to the checkpoint a run resumes from.
module RunLog =

    let private number (format: string) (x: float) = if Double.IsNaN x then "" else x.ToString(format, CultureInfo.InvariantCulture)

    /// The figures of a row by name, in log.csv's order: each column's name and how a row's figure is written. A
    /// log is read by its header's names, so a log written before a column existed reads that figure as NaN.
    let private columns : (string * (LogRow -> string)) list =
        [ "images_shown", (fun r -> string r.ImagesShown)
          "resolution", (fun r -> string r.Resolution)
          "phase", (fun r -> r.Phase)
          "alpha", (fun r -> number "0.####" r.Alpha)
          "d_loss", (fun r -> number "G6" r.DLoss)
          "g_loss", (fun r -> number "G6" r.GLoss)
          "gradient_penalty", (fun r -> number "G6" r.GradientPenalty)
          "images_per_s", (fun r -> number "0.##" r.ImagesPerSecond)
          "wall_s", (fun r -> number "0.##" r.WallSeconds)
          "swd_x1e3", (fun r -> number "0.###" r.Swd)
          "ms_ssim", (fun r -> number "0.#####" r.MsSsim)
          "d_adversarial", (fun r -> number "G6" r.Adversarial)
          "d_drift", (fun r -> number "G6" r.Drift)
          "fd_resnet18", (fun r -> number "G6" r.FdResNet18)
          "kid", (fun r -> number "G6" r.Kid)
          "precision", (fun r -> number "0.####" r.Precision)
          "recall", (fun r -> number "0.####" r.Recall)
          "d_class_accuracy", (fun r -> number "0.####" r.ClassAccuracy) ]

    /// The columns of log.csv.
    let header = columns |> List.map fst |> String.concat ","

    let private format (r: LogRow) = columns |> List.map (fun (_, write) -> write r) |> String.concat ","

    /// One line of log.csv under a header of `headerNames`, or None when it is not a row (a line cut short by a crash,
    /// garbage). A column the header lacks reads as NaN. A line of another length than the header is one an earlier
    /// version appended under an older header: columns have only ever been added at the end, so its N fields are the
    /// first N of today's columns, where N is a width log.csv has had.
    let private parse (headerNames: string[]) (line: string) =
        let fields = line.Split(',')
        let today = columns |> List.map fst |> Array.ofList
        let names =
            if fields.Length = headerNames.Length then Some headerNames
            // The widths log.csv has had (before ms_ssim, d_adversarial/d_drift, the feature metrics, d_class_accuracy):
            // a line cut short by a crash has another and is passed over.
            elif List.contains fields.Length [ 10; 11; 13; 17; today.Length ] then Some today[.. fields.Length - 1]
            else None
        match names with
        | None -> None
        | Some names ->
            let field name = match Array.tryFindIndex ((=) name) names with Some i -> fields[i] | None -> ""
            let real name =
                match field name with
                | "" -> Some nan
                | s -> match Double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture) with | true, v -> Some v | _ -> None
            // Every column but the three that are not real numbers, from the one table above.
            let figures = columns |> List.map fst |> List.except [ "images_shown"; "resolution"; "phase" ] |> List.map (fun name -> name, real name)
            match Int64.TryParse(field "images_shown"), Int32.TryParse(field "resolution"), field "phase" with
            | (true, shown), (true, res), phase when (phase = "stabilise" || phase = "fade-in") && List.forall (snd >> Option.isSome) figures ->
                let v name = figures |> List.find (fst >> (=) name) |> snd |> Option.get
                Some { ImagesShown = shown; Resolution = res; Phase = phase; Alpha = v "alpha"; DLoss = v "d_loss"; GLoss = v "g_loss"
                       GradientPenalty = v "gradient_penalty"; Adversarial = v "d_adversarial"; Drift = v "d_drift"
                       ImagesPerSecond = v "images_per_s"; WallSeconds = v "wall_s"; Swd = v "swd_x1e3"; MsSsim = v "ms_ssim"
                       FdResNet18 = v "fd_resnet18"; Kid = v "kid"; Precision = v "precision"; Recall = v "recall"
                       ClassAccuracy = v "d_class_accuracy" }
            | _ -> None

    /// The rows of log.csv up to `upTo` images; lines that are not rows are passed over.
    let read (folder: RunFolder) (upTo: int64) =
        if not (FileKind.isRegular folder.Log) then []
        else
            let lines = File.ReadLines folder.Log |> Seq.filter (fun l -> l <> "") |> List.ofSeq
            let names, body =
                match lines with
                | first :: rest when first.Split(',') |> Array.contains "images_shown" -> first.Split(','), rest
                | _ -> [||], lines // no header: the lines are read by today's columns
            body |> List.choose (parse names) |> List.filter (fun r -> r.ImagesShown <= upTo)

    /// Appends rows to log.csv, writing the header first into a new file. A log of older columns is first rewritten
    /// under today's header (its rows keep their figures, NaN for the columns they lack), so every line of a log
    /// has the header's columns.
    let append (folder: RunFolder) (rows: LogRow list) =
        let fresh = not (File.Exists folder.Log)
        if not fresh && File.ReadLines(folder.Log) |> Seq.tryHead <> Some header then
            let kept = read folder Int64.MaxValue
            AtomicFile.WriteAllText(folder.Log, String.Join(Environment.NewLine, header :: List.map format kept) + Environment.NewLine)
        use w = new StreamWriter(folder.Log, append = true)
        if fresh then w.WriteLine header
        for r in rows do w.WriteLine(format r)

    /// Cuts log.csv back to the rows up to `upTo` images — those a resumed run does not repeat: rows logged after the
    /// checkpoint it goes back to (or all of them, with no checkpoint) would otherwise appear twice. Returns the rows kept.
    let truncate (folder: RunFolder) (upTo: int64) =
        let rows = read folder upTo
        AtomicFile.WriteAllText(folder.Log, String.Join(Environment.NewLine, header :: List.map format rows) + Environment.NewLine)
        rows
