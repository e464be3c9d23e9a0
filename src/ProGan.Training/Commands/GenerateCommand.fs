// `generate.fsx`: samples, interpolations and videos from a trained run.
namespace ProGan.Training.Commands

open System.IO
open ProGan.Keras.Backend
open ProGan.Training.Config
open ProGan.Training.Progress
open ProGan.Training.Runs
open ProGan.Training.Output

/// What `generate.fsx` was asked.
type GenerateArguments =
    { Run: string option
      Count: int
      Seed: int
      Checkpoint: string option
      Interpolate: (int * int) option
      Class: string option
      Steps: int
      Out: string option
      Device: string option
      /// Also the videos (`Videos.writeAll`).
      Video: bool
      /// The seeds the latent walk goes through.
      Seeds: int list
      /// Frames from one seed to the next.
      Frames: int
      /// Frames a second of the videos.
      Fps: int
      /// Write into an --out folder that holds files generate did not write.
      Force: bool }

/// `dotnet fsi generate.fsx -- --run RUN`: samples and latent interpolation from a trained run's EMA generator.
module GenerateCommand =

    let private bad format = Printf.kprintf (UsageException >> raise) format
    let private flag = CommandLine.flag

    let command : Command<GenerateArguments> =
        { Usage = [ "dotnet fsi generate.fsx -- --run FOLDER [--count 64] [--seed 7] [--checkpoint FILE] [--interpolate SEED_A,SEED_B] [--steps 10] [--out FOLDER]"
                    "dotnet fsi generate.fsx -- --run FOLDER --video [--seeds 1,2,3,4] [--frames 24] [--fps 24]" ]
          Summary = "samples and latent interpolation from a trained run's EMA generator."
          Flags =
            [ flag "--run" "FOLDER" "the run folder (required)" false (fun v a -> { a with Run = Some(CommandLine.path "--run" "a run folder" v) })
              flag "--count" "N" "samples to draw, written one PNG each and as a grid of the first 256 (default 64)" false
                (fun v a -> { a with Count = CommandLine.intIn 1 10_000_000 "--count" v })
              flag "--seed" "N" "seed of the samples' latents (default 7)" false (fun v a -> { a with Seed = CommandLine.int' "--seed" v })
              flag "--checkpoint" "FILE" "a checkpoint of the run (default: the newest)" false
                (fun v a -> { a with Checkpoint = Some(CommandLine.path "--checkpoint" "a checkpoint file" v) })
              flag "--interpolate" "A,B" "also a spherical interpolation between seeds A and B" false
                (fun v a ->
                    match v.Split(',') with
                    | [| x; y |] -> { a with Interpolate = Some(CommandLine.int' "--interpolate" x, CommandLine.int' "--interpolate" y) }
                    | _ -> bad "--interpolate expects two seeds, SEED_A,SEED_B; got '%s'." v)
              flag "--class" "NAME" "a conditional run's class to draw (name or index; default: the classes in turn)" false
                (fun v a -> { a with Class = Some(CommandLine.path "--class" "a class name" v) })
              flag "--steps" "N" "frames of the interpolation (default 10)" false (fun v a -> { a with Steps = CommandLine.intIn 2 1_000_000 "--steps" v })
              flag "--out" "FOLDER" "where to write (default: RUN/generated)" false (fun v a -> { a with Out = Some(CommandLine.path "--out" "a folder name" v) })
              flag "--device" "NAME" "cpu, cuda or cuda:N (default: CUDA when available)" false (fun v a -> { a with Device = Some v })
              flag "--video" "" "also a latent walk through --seeds, the run's training time-lapse (GIF; MP4 with ffmpeg) and one latent at every resolution" false
                (fun _ a -> { a with Video = true })
              flag "--seeds" "A,B,…" "seeds the latent walk goes through, at least two (default 1,2,3,4)" false
                (fun v a ->
                    let seeds = v.Split(',') |> Array.map (CommandLine.int' "--seeds") |> List.ofArray
                    if seeds.Length < 2 then bad "--seeds needs at least two seeds, A,B[,…]; got '%s'." v
                    { a with Seeds = seeds })
              flag "--frames" "N" "frames of the walk from one seed to the next (default 24)" false
                (fun v a -> { a with Frames = CommandLine.intIn 1 10_000 "--frames" v })
              flag "--fps" "N" "frames a second of the videos (default 24)" false (fun v a -> { a with Fps = CommandLine.intIn 1 100 "--fps" v })
              flag "--force" "" "write into an --out folder that holds other files (generate's own names are replaced)" false (fun _ a -> { a with Force = true }) ]
          Defaults =
            { Run = None; Count = 64; Seed = 7; Checkpoint = None; Interpolate = None; Class = None; Steps = 10; Out = None; Device = None
              Video = false; Seeds = [ 1; 2; 3; 4 ]; Frames = 24; Fps = 24; Force = false }
          ResumeFlag = None }

    let run (argv: string[]) =
        CommandLine.run command argv (fun args ->
            let runFolder = match args.Run with Some r -> r | None -> bad "--run FOLDER is required."
            args.Device |> Option.iter (fun d -> TorchBackend.Device <- TrainCommand.device d)
            use loaded = Generation.load runFolder args.Checkpoint
            let loaded = match args.Class with Some name -> Generation.withClass loaded name | None -> loaded
            let out = RunFolder.generatedFolder (args.Out |> Option.defaultWith (fun () -> RunFolder(Path.GetFullPath runFolder).Generated)) args.Force
            let p = loaded.Position
            printfn "%s: %d² (%O) after %d images" (Path.GetFileName loaded.Checkpoint) p.Resolution p.Phase p.ImagesShown
            if args.Video && args.Frames * args.Seeds.Length > Videos.maxLoopFrames then
                bad "--frames %d with %d seeds makes %d frames; a video holds at most %d (its frames are kept in memory to encode)."
                    args.Frames args.Seeds.Length (args.Frames * args.Seeds.Length) Videos.maxLoopFrames
            if args.Count > 10_000 then
                printfn "--count %d: writing %d PNG files into %s, %d at a time (SIGTERM or Ctrl+C stops between them and keeps what is written)" args.Count args.Count out Generation.batchSize
            // Signals are caught while the samples are drawn only (stopped between batches, what is written is kept);
            // during the interpolation and videos a signal ends the process as without a handler, and since every
            // file is written atomically none is left half-written.
            let grid, count, stopped =
                use stop = new StopSignals()
                let lines = ProgressLines("generating images", args.Count)
                let grid, count = Generation.writeSamplesUntil loaded out args.Count args.Seed stop.Token (fun d -> if args.Count > Generation.batchSize then lines.Report d)
                grid, count, (if stop.Token.IsCancellationRequested then Some(stop.Name, stop.ExitCode) else None)
            match stopped with
            | Some(signal, code) ->
                eprintfn "stopped by %s after %d of %d images; the %d written are kept in %s." signal count args.Count count out
                code
            | None ->
                printfn "wrote %s and %d single images" grid count
                match args.Interpolate with
                | Some(a, b) ->
                    let strip, frames = Generation.writeInterpolation loaded out a b args.Steps
                    printfn "wrote %s and %d frames" strip frames
                | None -> ()
                if args.Video then
                    let written = Videos.writeAll loaded (RunFolder(Path.GetFullPath runFolder)) out args.Seeds args.Frames args.Fps
                    for file in written.Files do printfn "wrote %s" file
                    written.Skipped |> Option.iter (printfn "no MP4: %s")
                    written.NoTimeLapse |> Option.iter (eprintfn "warning: %s.")
                0)
