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

    /// The columns of log.csv. Logs written before `ms_ssim` (10 columns), before `d_adversarial,d_drift` (11) or
    /// before `fd_resnet18,kid,precision,recall` (13) are still read, the missing figures as NaN.
    let header = "images_shown,resolution,phase,alpha,d_loss,g_loss,gradient_penalty,images_per_s,wall_s,swd_x1e3,ms_ssim,d_adversarial,d_drift,fd_resnet18,kid,precision,recall"

    let private number (format: string) (x: float) = if Double.IsNaN x then "" else x.ToString(format, CultureInfo.InvariantCulture)

    let private format (r: LogRow) =
        String.Join(",",
            [| string r.ImagesShown; string r.Resolution; r.Phase; number "0.####" r.Alpha; number "G6" r.DLoss; number "G6" r.GLoss
               number "G6" r.GradientPenalty; number "0.##" r.ImagesPerSecond; number "0.##" r.WallSeconds; number "0.###" r.Swd; number "0.#####" r.MsSsim
               number "G6" r.Adversarial; number "G6" r.Drift; number "G6" r.FdResNet18; number "G6" r.Kid; number "0.####" r.Precision
               number "0.####" r.Recall |])

    /// One line of log.csv, or None when it is not a row (the header, a line cut short by a crash, garbage).
    let private parse (line: string) =
        let real (s: string) =
            if s = "" then Some nan
            else match Double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture) with | true, v -> Some v | _ -> None
        let fields = line.Split(',')
        let fields = if fields.Length = 10 || fields.Length = 11 || fields.Length = 13 then Array.append fields (Array.create (17 - fields.Length) "") else fields
        match fields with
        | [| shown; res; phase; alpha; d; g; gp; ips; wall; swd; msSsim; adversarial; drift; fd; kid; precision; recall |] ->
            match Int64.TryParse shown, Int32.TryParse res, real alpha, real d, real g, real gp, real ips, real wall, real swd, real msSsim, real adversarial, real drift with
            | (true, shown), (true, res), Some alpha, Some d, Some g, Some gp, Some ips, Some wall, Some swd, Some msSsim, Some adversarial, Some drift
                when phase = "stabilise" || phase = "fade-in" ->
                match real fd, real kid, real precision, real recall with
                | Some fd, Some kid, Some precision, Some recall ->
                    Some { ImagesShown = shown; Resolution = res; Phase = phase; Alpha = alpha; DLoss = d; GLoss = g
                           GradientPenalty = gp; Adversarial = adversarial; Drift = drift; ImagesPerSecond = ips; WallSeconds = wall
                           Swd = swd; MsSsim = msSsim; FdResNet18 = fd; Kid = kid; Precision = precision; Recall = recall }
                | _ -> None
            | _ -> None
        | _ -> None

    /// Appends rows to log.csv, writing the header first into a new file.
    let append (folder: RunFolder) (rows: LogRow list) =
        let fresh = not (File.Exists folder.Log)
        use w = new StreamWriter(folder.Log, append = true)
        if fresh then w.WriteLine header
        for r in rows do w.WriteLine(format r)

    /// The rows of log.csv up to `upTo` images; lines that are not rows are passed over.
    let read (folder: RunFolder) (upTo: int64) =
        if not (FileKind.isRegular folder.Log) then []
        else
            File.ReadLines folder.Log |> Seq.choose parse |> Seq.filter (fun r -> r.ImagesShown <= upTo) |> List.ofSeq

    /// Cuts log.csv back to the rows up to `upTo` images — those a resumed run does not repeat: rows logged after the
    /// checkpoint it goes back to (or all of them, with no checkpoint) would otherwise appear twice. Returns the rows kept.
    let truncate (folder: RunFolder) (upTo: int64) =
        let rows = read folder upTo
        AtomicFile.WriteAllText(folder.Log, String.Join(Environment.NewLine, header :: List.map format rows) + Environment.NewLine)
        rows
