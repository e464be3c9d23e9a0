namespace ProGan.Training

open System
open System.Globalization
open System.IO
open System.Text.Json

/// One row of log.csv.
type LogRow =
    { ImagesShown: int64
      Resolution: int
      Phase: string
      Alpha: float
      DLoss: float
      GLoss: float
      GradientPenalty: float
      ImagesPerSecond: float
      WallSeconds: float
      /// SWD ×10³ (average over levels) when metrics were computed at this row (a phase end), else NaN.
      Swd: float }

/// The files of one run folder: config.json, log.csv, loss.png, sample grids and checkpoints.
module RunFolder =

    let configFile folder = Path.Combine(folder, "config.json")
    let logFile folder = Path.Combine(folder, "log.csv")
    let plotFile folder = Path.Combine(folder, "loss.png")

    let private json = JsonSerializerOptions(WriteIndented = true)

    /// Writes config.json (atomically).
    let writeConfig (folder: string) (config: TrainingConfig) =
        Directory.CreateDirectory folder |> ignore
        let temp = configFile folder + ".tmp"
        File.WriteAllText(temp, JsonSerializer.Serialize(config, json))
        File.Move(temp, configFile folder, true)

    /// Reads config.json of an earlier run.
    let readConfig (folder: string) =
        let path = configFile folder
        if not (File.Exists path) then
            invalidArg "resume" (sprintf "'%s' is not a run folder: it has no config.json. Pass the folder a training run wrote (--out)." folder)
        try JsonSerializer.Deserialize<TrainingConfig>(File.ReadAllText path)
        with :? JsonException as e -> invalidArg "resume" (sprintf "'%s' is not readable: %s" path e.Message)

    let private header = "images_shown,resolution,phase,alpha,d_loss,g_loss,gradient_penalty,images_per_s,wall_s,swd_x1e3"

    let private format (r: LogRow) =
        String.Join(",",
            [| string r.ImagesShown; string r.Resolution; r.Phase
               r.Alpha.ToString("0.####", CultureInfo.InvariantCulture)
               r.DLoss.ToString("G6", CultureInfo.InvariantCulture)
               r.GLoss.ToString("G6", CultureInfo.InvariantCulture)
               r.GradientPenalty.ToString("G6", CultureInfo.InvariantCulture)
               r.ImagesPerSecond.ToString("0.##", CultureInfo.InvariantCulture)
               r.WallSeconds.ToString("0.##", CultureInfo.InvariantCulture)
               (if Double.IsNaN r.Swd then "" else r.Swd.ToString("0.###", CultureInfo.InvariantCulture)) |])

    /// Appends rows to log.csv, writing the header first into a new file.
    let appendLog (folder: string) (rows: LogRow list) =
        let path = logFile folder
        let fresh = not (File.Exists path)
        use w = new StreamWriter(path, append = true)
        if fresh then w.WriteLine header
        for r in rows do w.WriteLine(format r)

    /// Reads log.csv back (rows after `upTo` images are dropped: they were not checkpointed).
    let readLog (folder: string) (upTo: int64) =
        let path = logFile folder
        if not (File.Exists path) then []
        else
            File.ReadAllLines path
            |> Array.skip 1
            |> Array.choose (fun line ->
                match line.Split(',') with
                | [| shown; res; phase; alpha; d; g; gp; ips; wall; swd |] ->
                    let f (s: string) = if s = "" then nan else Double.Parse(s, CultureInfo.InvariantCulture)
                    Some { ImagesShown = int64 shown; Resolution = int res; Phase = phase; Alpha = f alpha; DLoss = f d
                           GLoss = f g; GradientPenalty = f gp; ImagesPerSecond = f ips; WallSeconds = f wall; Swd = f swd }
                | _ -> None)
            |> Array.filter (fun r -> r.ImagesShown <= upTo)
            |> List.ofArray

    /// Drops the rows of log.csv past `upTo` images (logged after the checkpoint a run goes back to) and returns the
    /// rows kept.
    let truncateLog (folder: string) (upTo: int64) =
        let rows = readLog folder upTo
        let path = logFile folder
        if File.Exists path then File.Delete path
        appendLog folder rows
        rows

    /// Draws the loss curves (ScottPlot) to loss.png, with dashed lines where the resolution changes.
    let plot (folder: string) (rows: LogRow list) =
        if not rows.IsEmpty then
            use plt = new ScottPlot.Plot()
            let xs = rows |> List.map (fun r -> float r.ImagesShown) |> Array.ofList
            let add (label: string) (ys: float[]) =
                let s = plt.Add.Scatter(xs, ys)
                s.LegendText <- label
                s.MarkerSize <- 0.0f
            add "D loss" (rows |> List.map (fun r -> r.DLoss) |> Array.ofList)
            add "G loss" (rows |> List.map (fun r -> r.GLoss) |> Array.ofList)
            add "gradient penalty" (rows |> List.map (fun r -> r.GradientPenalty) |> Array.ofList)
            for (a, b) in List.pairwise rows do
                if a.Resolution <> b.Resolution then
                    let line = plt.Add.VerticalLine(float b.ImagesShown)
                    line.LinePattern <- ScottPlot.LinePattern.Dashed
                    line.Text <- sprintf "%d²" b.Resolution
            plt.Title "ProGAN training losses"
            plt.XLabel "real images shown"
            plt.YLabel "loss"
            plt.ShowLegend() |> ignore
            let temp = plotFile folder + ".tmp.png"
            plt.SavePng(temp, 900, 500) |> ignore
            File.Move(temp, plotFile folder, true)
