// metrics.csv and metrics.png: the metrics of every kept checkpoint.
namespace ProGan.Training.Runs

open System
open System.Globalization
open System.IO
open ProGan.Keras.IO
open ProGan.Training.Basics
open ProGan.Training.Config
open ProGan.Training.Metrics

/// One row of metrics.csv: a kept checkpoint's SWD and MS-SSIM, each beside its real-vs-real reference.
type CheckpointMetrics =
    { ImagesShown: int64
      Resolution: int
      Phase: string
      /// Images per set.
      Images: int
      /// SWD ×10³ of generated against real images (average over levels), and of two sets of real images.
      Swd: float
      SwdRealVsReal: float
      /// Mean MS-SSIM of pairs of generated images, and of pairs of real images.
      MsSsim: float
      MsSsimReal: float }

/// metrics.csv (`evaluate.fsx -- --all-checkpoints`): the metrics of every kept checkpoint, and their curves.
module MetricsLog =

    let header = "images_shown,resolution,phase,images,swd_x1e3,swd_real_x1e3,ms_ssim,ms_ssim_real"

    /// A checkpoint's row from its evaluation.
    let ofEvaluation (position: SchedulePosition) (r: EvaluationResult) =
        { ImagesShown = r.ImagesShown; Resolution = r.Resolution; Phase = string position.Phase; Images = r.Images
          Swd = r.FakeVsRealAverage; SwdRealVsReal = r.RealVsRealAverage; MsSsim = r.MsSsimGenerated; MsSsimReal = r.MsSsimReal }

    let private number (x: float) = x.ToString("G6", CultureInfo.InvariantCulture)

    /// Writes metrics.csv (atomically), oldest checkpoint first.
    let write (folder: RunFolder) (rows: CheckpointMetrics list) =
        let line (r: CheckpointMetrics) =
            String.Join(",", [| string r.ImagesShown; string r.Resolution; r.Phase; string r.Images
                                number r.Swd; number r.SwdRealVsReal; number r.MsSsim; number r.MsSsimReal |])
        let rows = rows |> List.sortBy (fun r -> r.ImagesShown)
        AtomicFile.WriteAllText(folder.Metrics, String.Join(Environment.NewLine, header :: List.map line rows) + Environment.NewLine)

    /// The rows of metrics.csv (none when it is missing); lines that are not rows are passed over.
    let read (folder: RunFolder) =
        let real (s: string) = Double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture)
        if not (FileKind.isRegular folder.Metrics) then []
        else
            File.ReadLines folder.Metrics
            |> Seq.choose (fun line ->
                match line.Split(',') with
                | [| shown; res; phase; images; swd; swdReal; ms; msReal |] ->
                    match Int64.TryParse shown, Int32.TryParse res, Int32.TryParse images, real swd, real swdReal, real ms, real msReal with
                    | (true, shown), (true, res), (true, images), (true, swd), (true, swdReal), (true, ms), (true, msReal) ->
                        Some { ImagesShown = shown; Resolution = res; Phase = phase; Images = images
                               Swd = swd; SwdRealVsReal = swdReal; MsSsim = ms; MsSsimReal = msReal }
                    | _ -> None
                | _ -> None)
            |> List.ofSeq

    /// Draws the rows to metrics.png: SWD and its real-vs-real floor on the left axis, MS-SSIM and the real images'
    /// value on the right.
    let chart (folder: RunFolder) (rows: CheckpointMetrics list) =
        if not rows.IsEmpty then
            use plt = new ScottPlot.Plot()
            let xs = rows |> List.map (fun r -> float r.ImagesShown) |> Array.ofList
            let add (label: string) (value: CheckpointMetrics -> float) (right: bool) (dashed: bool) =
                let s = plt.Add.Scatter(xs, rows |> List.map value |> Array.ofList)
                s.LegendText <- label
                if dashed then s.LinePattern <- ScottPlot.LinePattern.Dashed
                if right then s.Axes.YAxis <- plt.Axes.Right
            add "SWD ×10³" (fun r -> r.Swd) false false
            add "SWD ×10³ real–real" (fun r -> r.SwdRealVsReal) false true
            add "MS-SSIM" (fun r -> r.MsSsim) true false
            add "MS-SSIM real" (fun r -> r.MsSsimReal) true true
            plt.Title "Metrics of the kept checkpoints"
            plt.XLabel "real images shown"
            plt.YLabel "SWD ×10³"
            plt.Axes.Right.Label.Text <- "MS-SSIM (lower: more varied)"
            plt.ShowLegend() |> ignore
            LossChart.savePng folder.MetricsChart plt 900 500
