// metrics.csv and metrics.png: the metrics of every kept checkpoint.
namespace ProGan.Training.Runs

open System
open System.Globalization
open System.IO
open ProGan.Keras.IO
open ProGan.Training.Basics
open ProGan.Training.Config
open ProGan.Training.Metrics

/// One row of metrics.csv: a kept checkpoint's metrics, each beside its real-vs-real reference (NaN: not measured, or
/// a file written before the metric existed).
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
      MsSsimReal: float
      /// FD-ResNet18 (not FID), KID, precision and recall in ResNet-18's features, each beside two sets of reals.
      FdResNet18: float
      FdResNet18RealVsReal: float
      Kid: float
      KidRealVsReal: float
      Precision: float
      PrecisionRealVsReal: float
      Recall: float
      RecallRealVsReal: float }

/// metrics.csv (`evaluate.fsx -- --all-checkpoints`): the metrics of every kept checkpoint, and their curves.
module MetricsLog =

    /// The columns; a file of the first eight (written before FD-ResNet18, KID and precision/recall) still reads,
    /// those figures as NaN.
    let header = "images_shown,resolution,phase,images,swd_x1e3,swd_real_x1e3,ms_ssim,ms_ssim_real,fd_resnet18,fd_resnet18_real,kid,kid_real,precision,precision_real,recall,recall_real"

    /// A checkpoint's row from its evaluation.
    let ofEvaluation (position: SchedulePosition) (r: EvaluationResult) =
        { ImagesShown = r.ImagesShown; Resolution = r.Resolution; Phase = string position.Phase; Images = r.Images
          Swd = r.FakeVsRealAverage; SwdRealVsReal = r.RealVsRealAverage; MsSsim = r.MsSsimGenerated; MsSsimReal = r.MsSsimReal
          FdResNet18 = r.FdResNet18; FdResNet18RealVsReal = r.FdResNet18RealVsReal; Kid = r.Kid; KidRealVsReal = r.KidRealVsReal
          Precision = r.Precision; PrecisionRealVsReal = r.PrecisionRealVsReal; Recall = r.Recall; RecallRealVsReal = r.RecallRealVsReal }

    let private number (x: float) = if Double.IsNaN x then "" else x.ToString("G6", CultureInfo.InvariantCulture)

    /// Writes metrics.csv (atomically), oldest checkpoint first.
    let write (folder: RunFolder) (rows: CheckpointMetrics list) =
        let line (r: CheckpointMetrics) =
            String.Join(",", [| string r.ImagesShown; string r.Resolution; r.Phase; string r.Images
                                number r.Swd; number r.SwdRealVsReal; number r.MsSsim; number r.MsSsimReal
                                number r.FdResNet18; number r.FdResNet18RealVsReal; number r.Kid; number r.KidRealVsReal
                                number r.Precision; number r.PrecisionRealVsReal; number r.Recall; number r.RecallRealVsReal |])
        let rows = rows |> List.sortBy (fun r -> r.ImagesShown)
        AtomicFile.WriteAllText(folder.Metrics, String.Join(Environment.NewLine, header :: List.map line rows) + Environment.NewLine)

    /// The rows of metrics.csv (none when it is missing); lines that are not rows are passed over.
    let read (folder: RunFolder) =
        // An empty field is a metric not measured (NaN); anything else that is not a number makes the line no row.
        let real (s: string) =
            if s = "" then Some nan
            else match Double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture) with | true, v -> Some v | _ -> None
        if not (FileKind.isRegular folder.Metrics) then []
        else
            File.ReadLines folder.Metrics
            |> Seq.choose (fun line ->
                let fields = line.Split(',')
                let fields = if fields.Length = 8 then Array.append fields (Array.create 8 "") else fields
                match fields with
                | [| shown; res; phase; images; _; _; _; _; _; _; _; _; _; _; _; _ |] ->
                    match Int64.TryParse shown, Int32.TryParse res, Int32.TryParse images, Array.map real fields[4..] with
                    | (true, shown), (true, res), (true, images), values when Array.forall Option.isSome values ->
                        let v = Array.map Option.get values
                        Some { ImagesShown = shown; Resolution = res; Phase = phase; Images = images
                               Swd = v[0]; SwdRealVsReal = v[1]; MsSsim = v[2]; MsSsimReal = v[3]
                               FdResNet18 = v[4]; FdResNet18RealVsReal = v[5]; Kid = v[6]; KidRealVsReal = v[7]
                               Precision = v[8]; PrecisionRealVsReal = v[9]; Recall = v[10]; RecallRealVsReal = v[11] }
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
