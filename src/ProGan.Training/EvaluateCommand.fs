namespace ProGan.Training

open System
open System.IO
open System.Threading
open ProGan.Keras.Backend

/// What `evaluate.fsx` was asked.
type EvaluateArguments =
    { Run: string option
      Data: string option
      Images: int
      Seed: int
      Checkpoint: string option
      Device: string option }

/// `dotnet fsi evaluate.fsx -- --run RUN`: the sliced Wasserstein distance of a run beside the real-vs-real floor.
module EvaluateCommand =

    let private bad format = Printf.kprintf (UsageException >> raise) format
    let private flag = CommandLine.flag

    let command : Command<EvaluateArguments> =
        { Usage = [ "dotnet fsi evaluate.fsx -- --run FOLDER [--data FOLDER] [--images 1024] [--seed 1] [--checkpoint FILE]" ]
          Summary = "sliced Wasserstein distance (×10³) of a run against real images, beside the real-vs-real floor."
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
              flag "--device" "NAME" "cpu, cuda or cuda:N (default: CUDA when available)" false (fun v a -> { a with Device = Some v }) ]
          Defaults = { Run = None; Data = None; Images = 1024; Seed = 1; Checkpoint = None; Device = None }
          ResumeFlag = None }

    let run (argv: string[]) =
        CommandLine.run command argv (fun args ->
            let runFolder = match args.Run with Some r -> r | None -> bad "--run FOLDER is required."
            args.Device |> Option.iter (fun d -> TorchBackend.Device <- TrainCommand.device d)
            use loaded = Generation.load runFolder args.Checkpoint
            let config = { loaded.Config with DataFolder = args.Data |> Option.map Path.GetFullPath |> Option.defaultValue loaded.Config.DataFolder }
            use data = TrainingData.load config Display.plain CancellationToken.None
            if data.Count < 2 * Evaluation.minimumImages then
                bad "The SWD and its floor need two sets of at least %d real images; %s has %d." Evaluation.minimumImages (TrainingData.describe config) data.Count
            let result = Evaluation.withFloor loaded.Ema loaded.Position data args.Images (RandomStreams.ofSeed args.Seed) TorchBackend.Device
            // Printed before it is saved: a run folder that cannot be written loses nothing that was computed.
            printfn "%s" (Evaluation.format result)
            let path = RunFolder(Path.GetFullPath runFolder).Swd
            try
                Evaluation.save path result
                printfn "written to %s" path
            with :? IOException as e -> eprintfn "warning: could not write %s (%s); the result is above." path (CommandLine.firstLine e.Message)
            0)
