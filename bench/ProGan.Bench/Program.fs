/// The training-throughput benchmark: images per second of one full iteration (D step with gradient penalty, G step,
/// EMA update) per resolution, phase and discriminator order (FusedScale), achieved GFLOP/s against this machine's
/// matrix-product ceiling, memory over many iterations, generation speed, and — where Python's torch is installed —
/// the same step in PyTorch.
module ProGan.Bench.Program

open System
open System.Diagnostics
open System.Globalization
open System.IO
open System.Runtime.InteropServices
open Microsoft.ML.OnnxRuntime
open TorchSharp
open ProGan.Keras.Backend
open ProGan.Keras.Models
open ProGan.Training.Config
open ProGan.Training.Data
open ProGan.Training.Loop
open ProGan.Training.Commands

type Row =
    { Shape: string; Resolution: int; Phase: string
      /// ProGanConfig.FusedScale: D's official fused conv2d_downscale2d order, or the paper's Table 2 order.
      FusedScale: bool
      Batch: int; ImagesPerSecond: float
      /// The model's FLOPs per image (the paper's network, as any implementation of it computes them).
      GflopPerImage: float
      /// FLOPs per image this implementation executes (fewer where upsampling is fused into the convolution).
      ExecutedGflopPerImage: float
      /// Executed GFLOP/s, and its share of the matrix-product ceiling.
      Gflops: float; CeilingShare: float
      /// The reference's img/s (median over rounds), and the median, lowest and highest of the per-round ratios
      /// ours / reference, each round timing both back to back; NaN where not compared.
      PyTorchImagesPerSecond: float; Ratio: float; RatioLowest: float; RatioHighest: float
      /// Seconds of our step (median; with the floor, of the steps timed between its rounds), and its floor: every
      /// operation of the step timed alone, summed (`Floor`);
      /// NaN where the floor was not measured.
      StepSeconds: float; FloorSeconds: float
      /// The five operations that cost most alone, largest first ("name, pass ×calls: ms").
      Costliest: string list }

let private median (xs: float list) = let s = List.sort xs in s[s.Length / 2]

/// The discriminator order as the official code's comment names it (`fused_scale`: "True = use fused conv2d +
/// downscale2d, False = separate downscale2d layers").
let private order fusedScale = if fusedScale then "fused" else "separate"

/// The fixed comparison network: latent 128, 128 channels at 4²–32², 64 at 64², 32 at 128², batch 16, group 4.
let comparison resolution =
    { TrainingConfig.paper resolution with
        Architecture = ProGanConfig.Paper.With(latentSize = 128, resolution = resolution, fmapBase = 2048, fmapMax = 128)
        Minibatch = [| 16 |] }

let shapes resolution =
    [ "cpu preset", TrainingConfig.cpu resolution
      "paper channels", { TrainingConfig.paper resolution with Minibatch = [| 16 |] }
      "comparison", comparison resolution
      // The quality study's wide network (twice the preset's channels), the one that gains most from bfloat16.
      "wide preset", (let cpu = TrainingConfig.cpu resolution in { cpu with Architecture = cpu.Architecture.With(fmapBase = 1024, fmapMax = 128) }) ]

/// The shape called `name`, for a run to `resolution` (at least 8²: a run grows to 8² at least).
let shapeNamed (name: string) (resolution: int) = shapes (max 8 resolution) |> List.find (fst >> (=) name) |> snd

/// The full names of the shapes that the command line's comma-separated `names` start (cpu, paper, comparison,
/// wide), the first each matches (where `--shapes` keeps every match); one line naming the shapes where one matches none.
let shapeNames (names: string) =
    [ for prefix in names.Split(',') ->
        match shapes 8 |> List.map fst |> List.tryFind (fun n -> n.StartsWith prefix) with
        | Some name -> name
        | None ->
            eprintfn "no shape starts '%s'; the shapes: %s" prefix (shapes 8 |> List.map fst |> String.concat ", ")
            exit 2 ]

/// Matrix-product ceiling: best of several fp32 2048³ products through libtorch, in GFLOP/s.
let ceiling () =
    use a = torch.randn([| 2048L; 2048L |])
    use b = torch.randn([| 2048L; 2048L |])
    (torch.matmul(a, b)).Dispose()
    let times =
        [ for _ in 1..10 ->
            let sw = Stopwatch.StartNew()
            (torch.matmul(a, b)).Dispose()
            sw.Elapsed.TotalSeconds ]
    2.0 * 2048.0 ** 3.0 / List.min times / 1e9

/// Median seconds of `iterations` steps after `warmup`, at `resolution` in `phase`, on `data`.
let timeStepsOn (data: TrainingImages) (config: TrainingConfig) (resolution: int) (fading: bool) (warmup: int) (iterations: int) =
    use trainer = Steps.trainerAt data config resolution fading warmup
    let times =
        [ for _ in 1..iterations ->
            let sw = Stopwatch.StartNew()
            trainer.Step() |> ignore
            sw.Elapsed.TotalSeconds ]
    median times

/// Median seconds of `iterations` steps after `warmup`, at `resolution` in `phase`, on 64 procedural images.
let timeSteps (config: TrainingConfig) (resolution: int) (fading: bool) (warmup: int) (iterations: int) =
    use data = Procedural.pyramid 64 config.Architecture.Resolution 3 1
    timeStepsOn data config resolution fading warmup iterations

/// Reading minibatches from a prepared data set on disk against holding the images in memory, at 64² (comparison
/// shape): median microseconds to gather one minibatch, and training img/s on each, in alternating rounds. The set is
/// freshly written, so it is in the page cache.
let dataSources (images: int) (rounds: int) (warmup: int) (iterations: int) =
    let config = comparison 64
    let folder = Path.Combine(Path.GetTempPath(), sprintf "progan-bench-data-%d" Environment.ProcessId)
    use inMemory = Procedural.pyramid images 64 3 1
    PreparedDataset.save folder "bench" inMemory |> ignore
    try
        use onDisk = PreparedDataset.openFor folder 64 3 false
        let level, batch = config.Architecture.LevelOf 64, TrainingConfig.minibatchAt config 4
        let gatherMicroseconds (data: TrainingImages) =
            median
                [ for k in 1..200 ->
                    let draw = Minibatch.draw 1UL (int64 k * 16L) level batch images true
                    let sw = Stopwatch.StartNew()
                    (Minibatch.gather data draw).Dispose()
                    sw.Elapsed.TotalMilliseconds * 1000.0 ]
        let pairs =
            [ for k in 1..rounds ->
                let time (data: TrainingImages) = float batch / timeStepsOn data config 64 false warmup iterations
                if k % 2 = 1 then let m = time inMemory in m, time onDisk else let d = time onDisk in time inMemory, d ]
        gatherMicroseconds inMemory, gatherMicroseconds onDisk, median (List.map fst pairs), median (List.map snd pairs)
    finally
        Directory.Delete(folder, true)

/// RSS and live TorchSharp tensors after warm-up and after `iterations` more steps.
let memory (config: TrainingConfig) (resolution: int) (iterations: int) =
    use data = Procedural.pyramid 64 resolution 3 1
    use trainer = new Trainer(config, data, TorchBackend.Device)
    let measure () =
        GC.Collect()
        GC.WaitForPendingFinalizers()
        use p = Process.GetCurrentProcess()
        p.Refresh()
        float p.WorkingSet64 / 1048576.0, torch.Tensor.TotalCount
    for _ in 1..50 do trainer.Step() |> ignore
    let before = measure ()
    for _ in 1..iterations do trainer.Step() |> ignore
    before, measure ()

/// Images per second of `draw` on a batch of `batch`: the median of `runs` after one warm-up.
let private imagesPerSecond (batch: int) (runs: int) (draw: unit -> unit) =
    draw ()
    let times = [ for _ in 1..runs -> let sw = Stopwatch.StartNew() in draw (); sw.Elapsed.TotalSeconds ]
    float batch / median times

/// Generation speed of the straight-through generator at `resolution` (weights do not change the time): TorchSharp's
/// forward pass in inference mode, and ONNX Runtime running the same generator exported by `OnnxExport` (CPU
/// execution provider, as many intra-op threads as TorchSharp). Returns (batch, TorchSharp img/s, ONNX Runtime img/s)
/// for batch 1 and 64.
let generation (config: TrainingConfig) (resolution: int) =
    use g = new ProgressiveGenerator(config.Architecture, TorchBackend.Device)
    let at = ProGan.Keras.Serving.GeneratorPosition.StraightThrough resolution
    use options = new SessionOptions(IntraOpNumThreads = Environment.ProcessorCount)
    use session = new InferenceSession(ProGan.Keras.Serving.Onnx.OnnxExport.ToBytes(g, at), options)
    use runOptions = new Microsoft.ML.OnnxRuntime.RunOptions() // (ProGan.Training has a RunOptions of its own)
    [ for batch in [ 1; 64 ] ->
        let runs = if batch = 1 then 20 else 3
        use z = torch.randn([| int64 batch; int64 config.Architecture.LatentSize |])
        let ours = imagesPerSecond batch runs (fun () -> (ProGan.Keras.Serving.TrainedGenerator.Sample(g, at, z)).Dispose())
        use input = OrtValue.CreateTensorValueFromMemory(z.data<float32>().ToArray(), [| int64 batch; int64 config.Architecture.LatentSize |])
        let onnx = imagesPerSecond batch runs (fun () -> (session.Run(runOptions, [| "latent" |], [| input |], [| "image" |])).Dispose())
        batch, ours, onnx ]

/// bench/reference_step.py kept running (`--serve`) under the first Python that imports torch, so that its timings
/// can alternate with ours in one run: this VM's speed drifts by 10–30 % over minutes, and a ratio of two timings taken
/// minutes apart measures the drift as much as the code.
type PyTorchReference private (p: Process) =
    /// Starts the reference, or None where no Python here imports torch.
    static member TryStart() =
        let script = Path.Combine(AppContext.BaseDirectory, "reference_step.py")
        let start (python: string) =
            try
                let info = ProcessStartInfo(python, [ script; "--serve"; "--threads"; string Environment.ProcessorCount ],
                                            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
                                            UseShellExecute = false)
                let p = Process.Start info
                p.ErrorDataReceived.Add ignore // drained, so that warnings cannot fill the pipe and stall it
                p.BeginErrorReadLine()
                if p.StandardOutput.ReadLine() = "ready" then Some(new PyTorchReference(p))
                else p.Dispose(); None
            with _ -> None
        [ "/usr/bin/python3"; "python3" ] |> List.tryPick start

    /// Images per second of the reference step at `resolution` with the discriminator order `fusedScale`, fading in
    /// or not (median of `iterations` after `warmup`), or None if the reference failed.
    member _.Time(resolution: int, fusedScale: bool, fading: bool, warmup: int, iterations: int) =
        try
            p.StandardInput.WriteLine(sprintf "%d %d %d %d %d" resolution warmup iterations (Convert.ToInt32 fusedScale) (Convert.ToInt32 fading))
            p.StandardInput.Flush()
            match p.StandardOutput.ReadLine() with
            | null -> None
            | line ->
                match line.Split(',') with
                | [| r; ips |] when int r = resolution -> Some(Double.Parse(ips, CultureInfo.InvariantCulture))
                | _ -> None
        with :? IOException -> None

    interface IDisposable with
        member _.Dispose() =
            try p.StandardInput.Close(); p.WaitForExit 10000 |> ignore with _ -> ()
            p.Dispose()

/// The comparison shape's rows as docs/benchmark.md's table (markdown): a column per resolution, one group of lines per
/// phase and discriminator order.
let readmeTable (rows: Row list) (rounds: int) =
    let rows = rows |> List.filter (fun r -> r.Shape = "comparison")
    let resolutions = rows |> List.map (fun r -> r.Resolution) |> List.distinct |> List.sort
    let number (x: float) = if Double.IsNaN x then "–" elif x >= 100.0 then sprintf "%.0f" x elif x >= 10.0 then sprintf "%.1f" x else sprintf "%.2f" x
    [ yield "| comparison shape | " + String.Join(" | ", resolutions |> List.map (sprintf "%d²")) + " |"
      yield "|---" + String.replicate resolutions.Length "|---" + "|"
      for phase in [ "stabilise"; "fade-in" ] do
          for fusedScale in [ true; false ] do
              let group = rows |> List.filter (fun r -> r.Phase = phase && r.FusedScale = fusedScale)
              if not group.IsEmpty then
                  let line (name: string) (cell: Row -> string) =
                      let cells = resolutions |> List.map (fun r -> group |> List.tryFind (fun x -> x.Resolution = r) |> Option.map cell |> Option.defaultValue "–")
                      sprintf "| %s, %s: %s | %s |" phase (order fusedScale) name (String.Join(" | ", cells))
                  yield line "ProGan.Keras img/s" (fun r -> number r.ImagesPerSecond)
                  yield line "PyTorch img/s (same rounds)" (fun r -> number r.PyTorchImagesPerSecond)
                  yield line (sprintf "ratio, median of %d rounds (lowest–highest)" rounds) (fun r ->
                      if Double.IsNaN r.Ratio then "–" else sprintf "×%.2f (%.2f–%.2f)" r.Ratio r.RatioLowest r.RatioHighest)
                  yield line "step ÷ floor (each operation alone, summed)" (fun r -> if Double.IsNaN r.FloorSeconds then "–" else sprintf "×%.2f" (r.StepSeconds / r.FloorSeconds))
                  yield line "GFLOP/image, model (executed)" (fun r -> sprintf "%.3f (%.3f)" r.GflopPerImage r.ExecutedGflopPerImage)
                  yield line "executed GFLOP/s (share of ceiling)" (fun r -> sprintf "%.1f (%.0f %%)" r.Gflops (100.0 * r.CeilingShare)) ]
    |> String.concat "\n"

/// What the benchmark was asked (see `command` for each flag's meaning and default).
type Arguments =
    { Quick: bool; Warmup: int option; Iterations: int option; Rounds: int option; MaxResolution: int option
      PaperMaxResolution: int option; MemoryIterations: int option; Resolutions: int list option; TrainingOnly: bool
      Phases: string list; FusedScales: bool list; NoPyTorch: bool; Shapes: string list option
      /// `TrainingConfig.Precision` of every shape: "float32" or "bfloat16" (mixed precision; no PyTorch comparison).
      Precision: string
      /// Resolutions of the generation timings (TorchSharp and ONNX Runtime).
      Generation: int list option
      /// Timed runs of each operation for the floor (the minimum counts); None: the floor is not measured.
      FloorRuns: int option }

/// Runs the benchmark.
let run (args: Arguments) =
    let quick = args.Quick
    let or' (value: int option) fallback = value |> Option.defaultValue fallback
    let warmup, iterations = or' args.Warmup (if quick then 1 else 2), or' args.Iterations (if quick then 2 else 5)
    let rounds = or' args.Rounds (if quick then 1 else 3)
    let maxResolution = or' args.MaxResolution (if quick then 16 else 64)
    let paperMax = or' args.PaperMaxResolution (if quick then 8 else 16)
    let memoryIterations = or' args.MemoryIterations (if quick then 100 else 1000)
    torch.set_num_threads Environment.ProcessorCount
    let resolutions = args.Resolutions |> Option.defaultValue ([ 4; 8; 16; 32; 64; 128 ] |> List.filter (fun r -> r <= maxResolution))
    let machine = sprintf "%s, %d cores, %s, TorchSharp %s, libtorch %s, device %O" (RuntimeInformation.OSDescription) Environment.ProcessorCount (RuntimeInformation.ProcessArchitecture.ToString()) (typeof<torch>.Assembly.GetName().Version.ToString()) torch.__version__ TorchBackend.Device
    printfn "ProGan.Keras benchmark — %s" machine
    ProGan.Keras.Backend.CpuConvolutions.Notice |> Option.ofObj |> Option.iter (printfn "note: %s")
    let peak = ceiling ()
    printfn "fp32 matrix-product ceiling (2048³): %.1f GFLOP/s; G and D compute in %s" peak args.Precision
    let trainingOnly, phases, fusedScales = args.TrainingOnly, args.Phases, args.FusedScales
    // The reference computes in float32: against a bfloat16 run it would not time the same function.
    let noPyTorch = args.NoPyTorch || args.Precision <> "float32"
    let reference = if noPyTorch then None else PyTorchReference.TryStart()
    use _ = { new IDisposable with member _.Dispose() = reference |> Option.iter (fun r -> (r :> IDisposable).Dispose()) }
    if reference.IsNone && not noPyTorch then printfn "PyTorch: not found (install Debian's python3-torch to compare)"
    let rows =
        let only = args.Shapes
        [ for (name, _) in shapes 8 |> List.filter (fun (n, _) -> only.IsNone || List.exists (fun (o: string) -> n.StartsWith o) only.Value) do
            for r in resolutions do
                if not (name = "paper channels" && r > paperMax) then
                    let shape = shapeNamed name r
                    for fading in (if r = 4 then [ false ] else [ true; false ]) |> List.filter (fun f -> List.contains (if f then "fade-in" else "stabilise") phases) do
                        for fusedScale in fusedScales do
                            let config = { shape with Architecture = shape.Architecture.With(fusedScale = fusedScale); Precision = (Precision.tryParse args.Precision).Value }
                            let arch = config.Architecture
                            let batch = TrainingConfig.minibatchAt config (arch.LevelOf r)
                            let ours () = float batch / timeSteps config r fading warmup iterations
                            // The comparison: `rounds` pairs of back-to-back timings, alternating which goes first; the
                            // reference computes the same function (same D order, same phase).
                            let ips, theirs, ratios =
                                match reference with
                                | Some reference when name = "comparison" && r >= 8 ->
                                    let theirs () = reference.Time(r, fusedScale, fading, warmup, iterations)
                                    let pairs =
                                        [ for k in 1..rounds ->
                                            if k % 2 = 1 then let t = theirs () in ours (), t
                                            else let o = ours () in o, theirs () ]
                                    let ourIps = pairs |> List.map fst |> median
                                    match pairs |> List.choose snd with
                                    | timed when timed.Length = pairs.Length ->
                                        ourIps, median timed, List.map2 (fun (o, _) t -> o / t) pairs timed
                                    | _ ->
                                        printfn "PyTorch reference failed at %d² %s %s (its stderr is not kept; run bench/reference_step.py by hand)" r (if fading then "fade-in" else "stabilise") (order fusedScale)
                                        ourIps, nan, []
                                | _ -> ours (), nan, []
                            let ratio summary = if ratios.IsEmpty then nan else summary ratios
                            let model, flops = Flops.iteration false config (arch.LevelOf r) fading, Flops.iteration true config (arch.LevelOf r) fading
                            let floor =
                                args.FloorRuns |> Option.map (fun runs ->
                                    use data = Procedural.pyramid 64 config.Architecture.Resolution 3 1
                                    Floor.measure data config r fading warmup runs)
                            // The step beside its floor: timed in the same rounds as the floor's operations.
                            let stepSeconds = floor |> Option.map (fun f -> f.StepSeconds) |> Option.defaultValue (float batch / ips)
                            let row =
                                { StepSeconds = stepSeconds
                                  FloorSeconds = floor |> Option.map (fun f -> f.Seconds) |> Option.defaultValue nan
                                  Costliest = floor |> Option.map (fun f -> f.Costliest 5 |> List.map Floor.describe) |> Option.defaultValue []
                                  Shape = name; Resolution = r; Phase = (if fading then "fade-in" else "stabilise"); FusedScale = fusedScale; Batch = batch
                                  ImagesPerSecond = ips; GflopPerImage = model / 1e9; ExecutedGflopPerImage = flops / 1e9
                                  Gflops = flops * ips / 1e9; CeilingShare = flops * ips / 1e9 / peak
                                  PyTorchImagesPerSecond = theirs
                                  Ratio = ratio median; RatioLowest = ratio List.min; RatioHighest = ratio List.max }
                            printfn "%-15s %4d² %-9s %-8s batch %2d  %8.2f img/s  %7.3f GFLOP/img (%7.3f executed)  %6.1f GFLOP/s  %5.1f%% of ceiling%s"
                                row.Shape r row.Phase (order fusedScale) batch ips row.GflopPerImage row.ExecutedGflopPerImage row.Gflops (100.0 * row.CeilingShare)
                                (if Double.IsNaN row.Ratio then ""
                                 else sprintf "  PyTorch %.2f img/s → ×%.2f (rounds ×%.2f–×%.2f)" row.PyTorchImagesPerSecond row.Ratio row.RatioLowest row.RatioHighest)
                            floor |> Option.iter (fun f ->
                                printfn "    step %.1f ms (timed between the floor's rounds), floor %.1f ms (operations alone %.1f, optimisers and EMA %.1f): step ÷ floor %.2f; costliest alone:"
                                    (1000.0 * stepSeconds) (1000.0 * f.Seconds) (1000.0 * (f.Seconds - f.OptimisersAndEma)) (1000.0 * f.OptimisersAndEma) (stepSeconds / f.Seconds)
                                for line in row.Costliest do printfn "      %s" line)
                            yield row ]
    // This VM's speed drifts; a ceiling measured once can be low. Measure again after the table and say so.
    let peakAfter = ceiling ()
    if peakAfter > 1.05 * peak then
        printfn "ceiling re-measured after the table: %.1f GFLOP/s (%.0f %% above the start; the shares above used the start figure)" peakAfter (100.0 * (peakAfter / peak - 1.0))
    printfn "\n%s\n" (readmeTable rows rounds)
    let f (x: float) = if Double.IsNaN x then "" else x.ToString("0.####", CultureInfo.InvariantCulture)
    // Memory, data sources and generation: skipped with --training-only (a before/after run of one change).
    let extras, generationRows =
        if trainingOnly then "", []
        else
            let (rssBefore, tensorsBefore), (rssAfter, tensorsAfter) = memory (comparison 8) 8 memoryIterations
            printfn "memory over %d iterations (comparison shape, 8²): RSS %.1f → %.1f MiB (%+.2f%%), live tensors %d → %d"
                memoryIterations rssBefore rssAfter (100.0 * (rssAfter - rssBefore) / rssBefore) tensorsBefore tensorsAfter
            let gatherMemory, gatherDisk, ipsMemory, ipsDisk = dataSources 2048 rounds warmup iterations
            printfn "data at 64² (comparison shape, 2,048 images): gather %.0f µs in memory, %.0f µs from a prepared data set; training %.2f img/s in memory, %.2f from disk (%+.1f %%)"
                gatherMemory gatherDisk ipsMemory ipsDisk (100.0 * (ipsDisk / ipsMemory - 1.0))
            let generationResolutions = args.Generation |> Option.defaultValue (resolutions @ [ 32; 64 ] |> List.filter (fun r -> r >= 8) |> List.distinct |> List.sort)
            let generationRows =
                [ for r in generationResolutions do
                    for batch, ours, onnx in generation (comparison r) r -> r, batch, ours, onnx ]
            for (r, batch, ours, onnx) in generationRows do
                printfn "generation (comparison shape, straight-through) %4d², batch %2d: TorchSharp %8.1f img/s, ONNX Runtime %8.1f img/s (×%.2f)" r batch ours onnx (onnx / ours)
            sprintf "; memory %d iterations: RSS %s -> %s MiB, tensors %d -> %d; data at 64²: gather %s / %s us, %s / %s img/s (in memory / prepared on disk)"
                memoryIterations (f rssBefore) (f rssAfter) tensorsBefore tensorsAfter (f gatherMemory) (f gatherDisk) (f ipsMemory) (f ipsDisk),
            generationRows
    let folder = Path.Combine("bench", "results")
    Directory.CreateDirectory folder |> ignore
    let path = Path.Combine(folder, sprintf "training-%s.csv" (DateTime.UtcNow.ToString("yyyyMMdd-HHmmss")))
    File.WriteAllLines(path,
        [ yield sprintf "# %s; training table in %s; ceiling %s GFLOP/s (after the table %s)%s" machine args.Precision (f peak) (f peakAfter) extras
          yield "shape,resolution,phase,fused_scale,batch,images_per_s,model_gflop_per_image,executed_gflop_per_image,executed_gflops,ceiling_share,pytorch_images_per_s,ratio,ratio_lowest,ratio_highest,step_seconds,floor_seconds,step_over_floor,costliest"
          for r in rows do
              let costliest = "\"" + String.Join("; ", r.Costliest).Replace("\"", "'") + "\""
              yield String.Join(",", [ r.Shape; string r.Resolution; r.Phase; (if r.FusedScale then "true" else "false"); string r.Batch; f r.ImagesPerSecond; f r.GflopPerImage; f r.ExecutedGflopPerImage; f r.Gflops; f r.CeilingShare; f r.PyTorchImagesPerSecond; f r.Ratio; f r.RatioLowest; f r.RatioHighest; f r.StepSeconds; f r.FloorSeconds; f (r.StepSeconds / r.FloorSeconds); costliest ])
          for (r, batch, ours, onnx) in generationRows do
              yield sprintf "generation-torchsharp,%d,inference,,%d,%s,,,,,,,,,,,," r batch (f ours)
              yield sprintf "generation-onnxruntime,%d,inference,,%d,%s,,,,,,,,,,,," r batch (f onnx) ])
    printfn "written to %s" path
    0

/// The benchmark's flags, parsed by the same table-driven parser as the training scripts.
let command : Command<Arguments> =
    let flag = CommandLine.flag
    let count name = CommandLine.intIn 1 1_000_000 name
    let list (v: string) = v.Split(',') |> List.ofArray
    { Usage = [ "dotnet run --project bench/ProGan.Bench -c Release -- [--quick] [options]"
                "dotnet run --project bench/ProGan.Bench -c Release -- --gc-stress SECONDS [RESOLUTION SEED]   (native-lifetime stress, GcStress.fs)"
                "[mpirun -np N] dotnet bench/ProGan.Bench/bin/Release/net10.0/ProGan.Bench.dll --data-parallel   (steps/s in N processes, DataParallel.fs)"
                "dotnet run --project bench/ProGan.Bench -c Release -- --layouts R,R…   (each convolution of a step alone, NCHW against channels-last, Floor.fs)"
                "dotnet run --project bench/ProGan.Bench -c Release -- --layout-steps R,R… ROUNDS [SHAPE,SHAPE… [bfloat16]]   (whole steps, NCHW against channels-last, alternating rounds; comparison shape, float32)"
                "dotnet run --project bench/ProGan.Bench -c Release -- --precision-ops R,R… [SHAPE]   (each operation of a bfloat16 step alone, float32 against bfloat16, Floor.fs; cpu preset)"
                "dotnet run --project bench/ProGan.Bench -c Release -- --precision-steps R,R… ROUNDS [SHAPE,SHAPE… [channels-last]]   (whole steps, float32 against bfloat16, alternating rounds)"
                "dotnet run --project bench/ProGan.Bench -c Release -- --features [IMAGES]   (FD-ResNet18/KID/precision-recall cost, FeatureMetrics.fs; 10000)" ]
      Summary = "training-step throughput per resolution, phase and discriminator order, against the matrix-product ceiling and PyTorch."
      Flags =
        [ flag "--quick" "" "about a minute: 1 warm-up, 2 iterations, 1 round, up to 16²" false (fun _ a -> { a with Quick = true })
          flag "--warmup" "N" "steps before timing (2)" false (fun v a -> { a with Warmup = Some(count "--warmup" v) })
          flag "--iterations" "N" "timed steps; the median counts (5)" false (fun v a -> { a with Iterations = Some(count "--iterations" v) })
          flag "--rounds" "N" "back-to-back pairs with PyTorch, alternating who goes first (3)" false (fun v a -> { a with Rounds = Some(count "--rounds" v) })
          flag "--max-resolution" "N" "largest resolution timed (64)" false (fun v a -> { a with MaxResolution = Some(count "--max-resolution" v) })
          flag "--paper-max-resolution" "N" "largest resolution of the paper-channel shape (16; 512 channels take minutes per step beyond)" false
            (fun v a -> { a with PaperMaxResolution = Some(count "--paper-max-resolution" v) })
          flag "--memory-iterations" "N" "iterations of the memory measurement (1000)" false (fun v a -> { a with MemoryIterations = Some(count "--memory-iterations" v) })
          flag "--resolutions" "R,R…" "exactly these resolutions" false
            (fun v a -> { a with Resolutions = Some(list v |> List.map (count "--resolutions")) })
          flag "--training-only" "" "only the training table (for before/after runs of one change)" false (fun _ a -> { a with TrainingOnly = true })
          flag "--phases" "P,P…" "stabilise, fade-in or both (both)" false
            (fun v a ->
                let phases = list v
                match phases |> List.tryFind (fun p -> p <> "stabilise" && p <> "fade-in") with
                | Some p -> raise (UsageException(sprintf "--phases takes stabilise and fade-in; got '%s'." p))
                | None -> { a with Phases = phases })
          flag "--fused-scale" "true|false" "one discriminator order only (both by default, the official fused one first)" false
            (fun v a ->
                match Boolean.TryParse v with
                | true, b -> { a with FusedScales = [ b ] }
                | _ -> raise (UsageException(sprintf "--fused-scale takes true or false; got '%s'." v)))
          flag "--no-pytorch" "" "skip the PyTorch reference" false (fun _ a -> { a with NoPyTorch = true })
          flag "--precision" "float32|bfloat16" "what G and D compute in (float32; bfloat16 skips the PyTorch reference)" false
            (fun v a ->
                if (Precision.tryParse v).IsNone then
                    raise (UsageException(sprintf "--precision takes float32 or bfloat16; got '%s'." v))
                { a with Precision = v })
          flag "--generation" "R,R…" "resolutions of the generation timings, TorchSharp beside ONNX Runtime (the timed ones ≥ 8², and 32, 64)" false
            (fun v a -> { a with Generation = Some(list v |> List.map (count "--generation")) })
          flag "--floor-runs" "N" "timed runs of each operation alone for the step's floor; the minimum counts (10)" false
            (fun v a -> { a with FloorRuns = Some(count "--floor-runs" v) })
          flag "--no-floor" "" "skip the step's floor (each operation of a step timed alone)" false (fun _ a -> { a with FloorRuns = None })
          flag "--shapes" "S,S…" "only the shapes whose names start so (cpu, paper, comparison, wide)" false (fun v a -> { a with Shapes = Some(list v) }) ]
      Defaults =
        { Quick = false; Warmup = None; Iterations = None; Rounds = None; MaxResolution = None; PaperMaxResolution = None
          MemoryIterations = None; Resolutions = None; TrainingOnly = false; Phases = [ "fade-in"; "stabilise" ]
          FusedScales = [ true; false ]; NoPyTorch = false; Shapes = None; Generation = None; Precision = "float32"; FloorRuns = Some 10 }
      ResumeFlag = None }

/// "A 12.3 ms, B 10.1 ms per step (median of N rounds of K, alternating): ×1.22 (rounds ×1.1–×1.3)" of `pairedSteps`' rows.
let pairedLine (first: string) (second: string) (rows: (float * float) list) (steps: int) =
    let a, b = rows |> List.map fst |> median, rows |> List.map snd |> median
    let ratios = rows |> List.map (fun (x, y) -> x / y)
    sprintf "%s %.1f ms, %s %.1f ms per step (median of %d rounds of %d, alternating): ×%.2f (rounds ×%.2f–×%.2f)"
        first (1000.0 * a) second (1000.0 * b) rows.Length steps (median ratios) (List.min ratios) (List.max ratios)

/// Whole steps in float32 against bfloat16 for the named shapes (`shapes`' names), both phases, in rounds of as many
/// steps as the shape's penalty interval (at least 4), so that every round holds its share of penalty steps; a table
/// of the speed-ups for docs/benchmark.md at the end.
let precisionSteps (resolutions: string) (rounds: int) (names: string list) (channelsLast: bool) =
    torch.set_num_threads Environment.ProcessorCount
    printfn "float32 against bfloat16 whole steps (G and D compute in it; weights and Adam float32), %s, the CPU's bfloat16 features: %s" (if channelsLast then "both channels-last" else "both NCHW") (match List.ofSeq (MixedPrecision.CpuBFloat16Features()) with [] -> "none" | f -> String.Join(", ", f))
    let rows =
        [ for name in names do
            for r in resolutions.Split(',') |> Array.map int do
                let config = shapeNamed name r
                let steps = max 4 config.PenaltyInterval
                for fading in (if r = 4 then [ false ] else [ false; true ]) do
                    use data = Procedural.pyramid 64 (max 8 r) 3 1
                    let paired = Floor.precisionSteps data config channelsLast r fading rounds steps
                    printfn "%s %d² %s: %s" name r (if fading then "fade-in" else "stabilise") (pairedLine "float32" "bfloat16" paired steps)
                    yield name, r, fading, paired |> List.map (fun (a, b) -> a / b) |> median ]
    printfn "\n| bfloat16 ÷ float32 speed, stabilise / fade-in | %s |" (String.Join(" | ", resolutions.Split(',') |> Array.map (sprintf "%s²")))
    printfn "|---|%s" (String.replicate (resolutions.Split(',').Length) "---|")
    for name in names do
        let cell r =
            let at fading = rows |> List.tryFind (fun (n, res, f, _) -> n = name && res = r && f = fading) |> Option.map (fun (_, _, _, x) -> sprintf "×%.2f" x)
            match at false, at true with
            | Some s, Some f -> s + " / " + f
            | Some s, None -> s
            | _ -> "–"
        printfn "| %s | %s |" name (String.Join(" | ", resolutions.Split(',') |> Array.map (int >> cell)))
    0

/// Whole steps in NCHW against channels-last for the named shapes, both phases, computing in `precision`, in rounds of
/// as many steps as the shape's penalty interval (at least 4).
let layoutSteps (resolutions: string) (rounds: int) (names: string list) (precision: Precision) =
    torch.set_num_threads Environment.ProcessorCount
    for name in names do
        for r in resolutions.Split(',') |> Array.map int do
            let config = { shapeNamed name r with Precision = precision }
            let steps = max 4 config.PenaltyInterval
            for fading in (if r = 4 then [ false ] else [ false; true ]) do
                use data = Procedural.pyramid 64 (max 8 r) 3 1
                let rows = Floor.layoutSteps data config r fading rounds steps
                printfn "%s %d² %s, %A: %s" name r (if fading then "fade-in" else "stabilise") precision (pairedLine "NCHW" "channels-last" rows steps)
    0

[<EntryPoint>]
let main argv =
    TorchBackend.Initialize() |> ignore
    CpuConvolutions.UseAlignedChannelsWhereRight() |> ignore // as the training command does
    match argv with
    | [| "--gc-stress"; seconds |] -> GcStress.run (int seconds) 16 1
    | [| "--gc-stress"; seconds; resolution; seed |] -> GcStress.run (int seconds) (int resolution) (int seed)
    | [| "--data-parallel" |] -> DataParallel.run [ 16; 32 ] 3 20; 0
    | [| "--layouts"; resolutions |] ->
        torch.set_num_threads Environment.ProcessorCount
        for r in resolutions.Split(',') |> Array.map int do
            use data = Procedural.pyramid 64 r 3 1
            Floor.layouts data (comparison r) r 2 10 |> ignore
        0
    | [| "--layout-steps"; resolutions; rounds |] -> layoutSteps resolutions (int rounds) [ "comparison" ] Float32
    | [| "--layout-steps"; resolutions; rounds; names |] -> layoutSteps resolutions (int rounds) (shapeNames names) Float32
    | [| "--layout-steps"; resolutions; rounds; names; "bfloat16" |] -> layoutSteps resolutions (int rounds) (shapeNames names) BFloat16
    | [| "--precision-steps"; resolutions; rounds |] -> precisionSteps resolutions (int rounds) [ "cpu preset"; "wide preset"; "comparison" ] false
    | [| "--precision-steps"; resolutions; rounds; names |] -> precisionSteps resolutions (int rounds) (shapeNames names) false
    | [| "--precision-steps"; resolutions; rounds; names; "channels-last" |] -> precisionSteps resolutions (int rounds) (shapeNames names) true
    | [| "--precision-ops"; resolutions |] | [| "--precision-ops"; resolutions; _ |] ->
        torch.set_num_threads Environment.ProcessorCount
        let name =
            match (if argv.Length > 2 then shapeNames argv[2] else [ "cpu preset" ]) with
            | [ one ] -> one
            | _ -> eprintfn "--precision-ops takes one shape; got '%s'" argv[2]; exit 2
        for r in resolutions.Split(',') |> Array.map int do
            for fading in (if r = 4 then [ false ] else [ false; true ]) do
                use data = Procedural.pyramid 64 (max 8 r) 3 1
                Floor.precisions data (shapeNamed name r) r fading 2 10 |> ignore
        0
    | [| "--features" |] -> FeatureMetrics.run 10000 |> ignore; 0
    | [| "--features"; images |] -> FeatureMetrics.run (int images) |> ignore; 0
    | _ -> CommandLine.run command argv run
