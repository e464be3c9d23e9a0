// `evaluate.fsx`: a run's SWD beside the real-vs-real floor, and MS-SSIM beside the real images'.
namespace ProGan.Training.Commands

open System.IO
open System.Threading
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
      /// Every kept checkpoint, into metrics.csv.
      AllCheckpoints: bool }

/// `dotnet fsi evaluate.fsx -- --run RUN`: the sliced Wasserstein distance of a run beside the real-vs-real floor, and
/// the MS-SSIM of pairs of its images beside that of pairs of real images.
module EvaluateCommand =

    let private bad format = Printf.kprintf (UsageException >> raise) format
    let private flag = CommandLine.flag

    let command : Command<EvaluateArguments> =
        { Usage = [ "dotnet fsi evaluate.fsx -- --run FOLDER [--data FOLDER] [--images 1024] [--seed 1] [--checkpoint FILE]"
                    "dotnet fsi evaluate.fsx -- --run FOLDER --all-checkpoints [--images 1024]" ]
          Summary = "sliced Wasserstein distance (×10³) of a run against real images beside the real-vs-real floor, and MS-SSIM of generated pairs beside real pairs."
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
              flag "--device" "NAME" "cpu, cuda or cuda:N (default: CUDA when available)" false (fun v a -> { a with Device = Some v })
              flag "--all-checkpoints" "" "every kept checkpoint, oldest first: writes metrics.csv and metrics.png, and adds the curves to report.html" false
                (fun _ a -> { a with AllCheckpoints = true }) ]
          Defaults = { Run = None; Data = None; Images = 1024; Seed = 1; Checkpoint = None; Device = None; AllCheckpoints = false }
          ResumeFlag = None }

    /// Writes with `write`; a run folder that cannot be written loses nothing that was computed and printed.
    let private keep (path: string) (write: unit -> unit) =
        try
            write ()
            printfn "written to %s" path
        with :? IOException as e -> eprintfn "warning: could not write %s (%s); the result is above." path (CommandLine.firstLine e.Message)

    /// SWD and MS-SSIM of every kept checkpoint, oldest first, printed as they come, then metrics.csv, metrics.png and
    /// the report page.
    let private allCheckpoints (runFolder: string) (data: TrainingImages) (config: TrainingConfig) (args: EvaluateArguments) =
        let folder = RunFolder(Path.GetFullPath runFolder)
        printfn "%12s %6s %-10s │ %9s %9s │ %8s %8s" "images" "res" "phase" "SWD ×10³" "real-real" "MS-SSIM" "real"
        let rows =
            [ for checkpoint in folder.Checkpoints() |> List.rev do
                // A run still training prunes old checkpoints: one gone since the listing is passed over, not fatal.
                match (try Some(Generation.load runFolder (Some checkpoint)) with :? ProGan.Keras.Serving.CheckpointException when not (File.Exists checkpoint) -> None) with
                | None -> eprintfn "warning: %s was removed (the run pruned it) before it was evaluated; passed over." (Path.GetFileName checkpoint)
                | Some loaded ->
                    use loaded = loaded
                    let result = Evaluation.withFloor loaded.Ema loaded.Position data args.Images (RandomStreams.ofSeed args.Seed) TorchBackend.Device
                    let row = MetricsLog.ofEvaluation loaded.Position result
                    printfn "%12d %5d² %-10s │ %9.2f %9.2f │ %8.4f %8.4f" row.ImagesShown row.Resolution row.Phase row.Swd row.SwdRealVsReal row.MsSsim row.MsSsimReal
                    yield row ]
        keep folder.Metrics (fun () -> MetricsLog.write folder rows)
        keep folder.MetricsChart (fun () -> MetricsLog.chart folder rows)
        keep folder.Report (fun () -> RunReport.write folder config)

    let run (argv: string[]) =
        CommandLine.run command argv (fun args ->
            let runFolder = match args.Run with Some r -> r | None -> bad "--run FOLDER is required."
            if args.AllCheckpoints && args.Checkpoint.IsSome then bad "--all-checkpoints evaluates every kept checkpoint; leave --checkpoint out."
            args.Device |> Option.iter (fun d -> TorchBackend.Device <- TrainCommand.device d)
            use loaded = Generation.load runFolder args.Checkpoint
            let config = { loaded.Config with DataFolder = args.Data |> Option.map Path.GetFullPath |> Option.defaultValue loaded.Config.DataFolder }
            use data = TrainingData.load config Display.plain CancellationToken.None
            if data.Count < 2 * Evaluation.minimumImages then
                bad "The SWD and its floor need two sets of at least %d real images; %s has %d." Evaluation.minimumImages (TrainingData.describe config) data.Count
            if args.AllCheckpoints then allCheckpoints runFolder data loaded.Config args
            else
                let result = Evaluation.withFloor loaded.Ema loaded.Position data args.Images (RandomStreams.ofSeed args.Seed) TorchBackend.Device
                printfn "%s" (Evaluation.format result)
                let path = RunFolder(Path.GetFullPath runFolder).Swd
                keep path (fun () -> Evaluation.save path result)
            0)
