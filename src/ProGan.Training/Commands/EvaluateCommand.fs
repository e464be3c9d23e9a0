// `evaluate.fsx`: a run's SWD, FD-ResNet18, KID and precision/recall beside their real-vs-real floors, MS-SSIM beside the reals'.
namespace ProGan.Training.Commands

open System
open System.IO
open System.Threading
open TorchSharp
open ProGan.Keras.Backend
open ProGan.Training.Config
open ProGan.Training.Progress
open ProGan.Training.Data
open ProGan.Training.Metrics
open ProGan.Training.Runs
open ProGan.Training.Output

/// What `evaluate.fsx` was asked.
type EvaluateArguments =
    { Run: string option
      Data: string option
      Images: int
      Seed: int
      Checkpoint: string option
      Device: string option
      /// CPU threads of torch and of the feature network (0: torch's default, all cores).
      Threads: int
      /// The metrics to measure (`TrainingConfig.knownMetrics` names).
      Metrics: string list
      /// Every kept checkpoint, into metrics.csv.
      AllCheckpoints: bool }

/// `dotnet fsi evaluate.fsx -- --run RUN`: the sliced Wasserstein distance of a run beside the real-vs-real floor, the
/// MS-SSIM of pairs of its images beside that of pairs of real images, and FD-ResNet18, KID and precision/recall in
/// ResNet-18's feature space beside their real-vs-real floors.
module EvaluateCommand =

    let private bad format = Printf.kprintf (UsageException >> raise) format
    let private flag = CommandLine.flag

    /// The metrics measured unless --metrics says otherwise: all of them.
    let defaultMetrics = TrainingConfig.knownMetrics

    /// The --metrics list: known names, comma-separated, at least one.
    let private metricList (value: string) =
        let names = value.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries) |> List.ofArray |> List.distinct
        match names |> List.filter (fun n -> not (List.contains n TrainingConfig.knownMetrics)) with
        | [] when not names.IsEmpty -> names
        | [] -> bad "--metrics needs at least one of %s, separated by commas." (String.Join(", ", TrainingConfig.knownMetrics))
        | unknown -> bad "--metrics: unknown %s; the metrics are %s, separated by commas." (String.Join(", ", unknown)) (String.Join(", ", TrainingConfig.knownMetrics))

    let command : Command<EvaluateArguments> =
        { Usage = [ "dotnet fsi evaluate.fsx -- --run FOLDER [--data FOLDER] [--images 1024] [--seed 1] [--checkpoint FILE] [--metrics swd,ms-ssim,fd,kid,pr] [--threads N]"
                    "dotnet fsi evaluate.fsx -- --run FOLDER --all-checkpoints [--images 1024] [--metrics …]" ]
          Summary = "SWD (×10³), FD-ResNet18 (a Fréchet distance in ResNet-18's features, not FID), KID and precision/recall of a run against real images, each beside the real-vs-real floor, and MS-SSIM of generated pairs beside real pairs."
          Flags =
            [ flag "--run" "FOLDER" "the run folder (required)" false (fun v a -> { a with Run = Some(CommandLine.path "--run" "a run folder" v) })
              flag "--data" "FOLDER" "real images to compare with (default: the run's own data)" false
                (fun v a -> { a with Data = Some(CommandLine.path "--data" "a folder of images" v) })
              flag "--images" "N" (sprintf "images per set, at least %d (default 1024)" Evaluation.minimumImages) false
                (fun v a -> { a with Images = CommandLine.intIn Evaluation.minimumImages 1_000_000 "--images" v })
              flag "--seed" "N" "seed of the reals' order, the latents and the projections (default 1)" false
                (fun v a -> { a with Seed = CommandLine.int' "--seed" v })
              flag "--checkpoint" "FILE" "a checkpoint of the run (default: the newest)" false
                (fun v a -> { a with Checkpoint = Some(CommandLine.path "--checkpoint" "a checkpoint file" v) })
              flag "--metrics" "NAMES" "what to measure, comma-separated: swd, ms-ssim, fd (FD-ResNet18), kid, pr (precision and recall) (default: all)" false
                (fun v a -> { a with Metrics = metricList v })
              flag "--device" "NAME" "cpu, cuda or cuda:N (default: CUDA when available)" false (fun v a -> { a with Device = Some v })
              flag "--threads" "N" (sprintf "CPU threads, for torch and the feature network alike; 0 = all cores (this machine: %d)" Environment.ProcessorCount) false
                (fun v a -> { a with Threads = CommandLine.intIn 0 Environment.ProcessorCount "--threads" v })
              flag "--all-checkpoints" "" "every kept checkpoint, oldest first: writes metrics.csv and metrics.png, and adds the curves to report.html" false
                (fun _ a -> { a with AllCheckpoints = true }) ]
          Defaults = { Run = None; Data = None; Images = 1024; Seed = 1; Checkpoint = None; Device = None; Threads = 0; Metrics = defaultMetrics; AllCheckpoints = false }
          ResumeFlag = None }

    /// Gives torch `--threads` threads (none given: its default); the feature network follows torch's count
    /// (`ImageFeatures.SharedThreads`), so the evaluation's ONNX Runtime runs on as many.
    let useThreads (args: EvaluateArguments) =
        if args.Threads > 0 then torch.set_num_threads args.Threads

    /// Writes with `write`; a run folder that cannot be written loses nothing that was computed and printed.
    let private keep (path: string) (write: unit -> unit) =
        try
            write ()
            printfn "written to %s" path
        with :? IOException as e -> eprintfn "warning: could not write %s (%s); the result is above." path (CommandLine.firstLine e.Message)

    /// Plain progress lines for the steps of one evaluation: a line every two seconds for a step that lasts longer
    /// than that (images gathered, generated, SWD projections, MS-SSIM pairs: done of total, rate, time left).
    let private progress () =
        let mutable current : (string * ProgressLines) option = None
        fun (step: EvaluationStep) ->
            let what, done', total =
                match step with
                | RealsGathered(d, t) -> "gathering real images", d, t
                | FakesGenerated(d, t) -> "generating images", d, t
                | SwdProjections(d, t) -> "SWD projections", d, t
                | MsSsimPairs(d, t) -> "MS-SSIM pairs", d, t
                | FeaturesExtracted(d, t) -> "ResNet-18 features", d, t
                | KidSubsets(d, t) -> "KID subsets", d, t
            let lines =
                match current with
                | Some(w, lines) when w = what -> lines
                | _ ->
                    let lines = ProgressLines(what, total, quiet = true)
                    current <- Some(what, lines)
                    lines
            lines.Report done'

    /// Says that the command was stopped, in one line, and returns the exit code.
    let private stopped (stop: StopSignals) (what: string) =
        eprintfn "stopped by %s %s" stop.Name what
        stop.ExitCode

    /// The exit code once the results are written: 0, or for a signal that came after the last step (the writes
    /// take milliseconds, so they were finished first) the signal's, with a line saying so.
    let private finished (stop: StopSignals) (what: string) =
        if stop.Reason.IsSome then stopped stop what else 0

    /// The metrics of every kept checkpoint, oldest first, printed as they come, then metrics.csv, metrics.png and
    /// the report page. A stop between steps writes none of them: a partial table never replaces a complete one.
    let private allCheckpoints (runFolder: string) (data: TrainingImages) (config: TrainingConfig) (args: EvaluateArguments) (stop: StopSignals) =
        let folder = RunFolder(Path.GetFullPath runFolder)
        let checkpoints = folder.Checkpoints() |> List.rev
        printfn "%12s %6s %-10s │ %9s %9s │ %8s %8s │ %9s %9s │ %8s %8s │ %9s %9s │ %6s %6s" "images" "res" "phase" "SWD ×10³" "real-real" "MS-SSIM" "real" "FD-RN18" "real-real" "KID" "real" "precision" "real-real" "recall" "real"
        let lines = ProgressLines("checkpoints", checkpoints.Length, quiet = true)
        let rows = ResizeArray<CheckpointMetrics>()
        let mutable evaluated = 0
        try
            for checkpoint in checkpoints do
                stop.Token.ThrowIfCancellationRequested()
                // A run still training prunes old checkpoints: one gone since the listing is passed over, not fatal.
                match (try Some(Generation.load runFolder (Some checkpoint)) with :? ProGan.Keras.Serving.CheckpointException when not (File.Exists checkpoint) -> None) with
                | None -> eprintfn "warning: %s was removed (the run pruned it) before it was evaluated; passed over." (Path.GetFileName checkpoint)
                | Some loaded ->
                    use loaded = loaded
                    let result = Evaluation.measureUntil args.Metrics stop.Token (progress ()) loaded.Ema loaded.Position data args.Images (RandomStreams.ofSeed args.Seed) TorchBackend.Device
                    let row = MetricsLog.ofEvaluation loaded.Position result
                    printfn "%12d %5d² %-10s │ %9.2f %9.2f │ %8.4f %8.4f │ %9.3f %9.3f │ %8.4f %8.4f │ %9.3f %9.3f │ %6.3f %6.3f" row.ImagesShown row.Resolution row.Phase row.Swd row.SwdRealVsReal row.MsSsim row.MsSsimReal
                        row.FdResNet18 row.FdResNet18RealVsReal row.Kid row.KidRealVsReal row.Precision row.PrecisionRealVsReal row.Recall row.RecallRealVsReal
                    rows.Add row
                evaluated <- evaluated + 1
                lines.Report evaluated
            let rows = List.ofSeq rows
            keep folder.Metrics (fun () -> MetricsLog.write folder rows)
            keep folder.MetricsChart (fun () -> MetricsLog.chart folder rows)
            keep folder.Report (fun () -> RunReport.write folder config)
            finished stop "after every checkpoint was evaluated; metrics.csv, metrics.png and report.html were written first (the rows are above)."
        with :? OperationCanceledException when stop.Token.IsCancellationRequested ->
            let measured =
                match rows.Count with
                | 0 -> "no row was measured"
                | 1 -> "the row measured is above"
                | n -> sprintf "the %d rows measured are above" n
            stopped stop (sprintf "after %d of %d checkpoints; metrics.csv, metrics.png and report.html are left as they were (%s)." evaluated checkpoints.Length measured)

    let run (argv: string[]) =
        CommandLine.run command argv (fun args ->
            let runFolder = match args.Run with Some r -> r | None -> bad "--run FOLDER is required."
            if args.AllCheckpoints && args.Checkpoint.IsSome then bad "--all-checkpoints evaluates every kept checkpoint; leave --checkpoint out."
            args.Device |> Option.iter (fun d -> TorchBackend.Device <- TrainCommand.device d)
            useThreads args
            use loaded = Generation.load runFolder args.Checkpoint
            let config = { loaded.Config with DataFolder = args.Data |> Option.map Path.GetFullPath |> Option.defaultValue loaded.Config.DataFolder }
            // SIGTERM and Ctrl+C stop the work between steps (a batch of images, a projection, a checkpoint), within
            // seconds; what an interrupted evaluation would have written is left as it was.
            use stop = new StopSignals()
            let swd = RunFolder(Path.GetFullPath runFolder).Swd
            let notWritten () =
                if args.AllCheckpoints then
                    sprintf "after 0 of %d checkpoints; metrics.csv, metrics.png and report.html are left as they were (no row was measured)." (RunFolder(Path.GetFullPath runFolder).Checkpoints()).Length
                else sprintf "before the evaluation of %s was finished; %s is left as it was." (Path.GetFileName loaded.Checkpoint) (Path.GetFileName swd)
            try
                use data = TrainingData.load config Display.plain stop.Token
                stop.Token.ThrowIfCancellationRequested()
                if data.Count < 2 * Evaluation.minimumImages then
                    bad "The metrics and their floors need two sets of at least %d real images; %s has %d." Evaluation.minimumImages (TrainingData.describe config) data.Count
                if args.AllCheckpoints then allCheckpoints runFolder data loaded.Config args stop
                else
                    let result = Evaluation.measureUntil args.Metrics stop.Token (progress ()) loaded.Ema loaded.Position data args.Images (RandomStreams.ofSeed args.Seed) TorchBackend.Device
                    printfn "%s" (Evaluation.format result)
                    keep swd (fun () -> Evaluation.save swd result)
                    finished stop (sprintf "after the evaluation was complete; %s was written first (the result is above)." swd)
            with :? OperationCanceledException when stop.Token.IsCancellationRequested -> stopped stop (notWritten ()))
