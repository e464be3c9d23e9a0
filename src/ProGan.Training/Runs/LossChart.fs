// loss.png: the loss curves of a run.
namespace ProGan.Training.Runs

open ProGan.Keras.IO
open ProGan.Training.Progress

/// The loss curves of a run as a picture (ScottPlot), with a dashed line where the resolution changes.
module LossChart =

    /// Writes a plot as a `width`×`height` PNG, atomically.
    let savePng (path: string) (plt: ScottPlot.Plot) (width: int) (height: int) =
        use image = plt.GetImage(width, height)
        let png = image.GetImageBytes(ScottPlot.ImageFormat.Png, 100)
        AtomicFile.Write(path, fun stream -> stream.Write(png, 0, png.Length))

    /// The loss curves of `rows` as a chart (a notebook displays it as it is; `write` saves it).
    let plot (rows: LogRow list) =
        let plt = new ScottPlot.Plot()
        let xs = rows |> List.map (fun r -> float r.ImagesShown) |> Array.ofList
        let add (label: string) (value: LogRow -> float) =
            let s = plt.Add.Scatter(xs, rows |> List.map value |> Array.ofList)
            s.LegendText <- label
            s.MarkerSize <- 0.0f
        add "D loss" (fun r -> r.DLoss)
        add "G loss" (fun r -> r.GLoss)
        add "gradient penalty" (fun r -> r.GradientPenalty)
        for (a, b) in List.pairwise rows do
            if a.Resolution <> b.Resolution then
                let line = plt.Add.VerticalLine(float b.ImagesShown)
                line.LinePattern <- ScottPlot.LinePattern.Dashed
                line.Text <- sprintf "%d²" b.Resolution
        plt.Title "ProGAN training losses"
        plt.XLabel "real images shown"
        plt.YLabel "loss"
        plt.ShowLegend() |> ignore
        plt

    /// Draws `rows` to `path` (a PNG, written atomically); nothing when there are no rows yet.
    let write (path: string) (rows: LogRow list) =
        if not rows.IsEmpty then
            use plt = plot rows
            savePng path plt 900 500
