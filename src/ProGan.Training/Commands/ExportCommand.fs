// `export.fsx`: the EMA generator as an ONNX model or a generator-only checkpoint.
namespace ProGan.Training.Commands

open System
open System.IO
open ProGan.Keras.IO
open ProGan.Keras.Serving
open ProGan.Keras.Serving.Onnx
open ProGan.Training.Runs
open ProGan.Training.Output

/// What `export.fsx` was asked.
type ExportArguments =
    { Run: string option
      Checkpoint: string option
      Resolution: int option
      /// "onnx" (default) or "checkpoint": the EMA generator alone in a checkpoint file.
      Format: string
      Out: string option
      /// Replace a file at --out that is not an export of this library.
      Force: bool }

/// `dotnet fsi export.fsx -- --run RUN`: the EMA generator as an ONNX model that ONNX Runtime runs anywhere, or
/// (`--format checkpoint`) alone in a small checkpoint file that `TrainedGenerator.Load` reads.
module ExportCommand =

    let private bad format = Printf.kprintf (UsageException >> raise) format
    let private flag = CommandLine.flag

    let command : Command<ExportArguments> =
        { Usage = [ "dotnet fsi export.fsx -- --run FOLDER [--checkpoint FILE] [--resolution N] [--out FILE] [--force]"
                    "dotnet fsi export.fsx -- --run FOLDER --format checkpoint [--checkpoint FILE] [--out FILE]" ]
          Summary = sprintf "the EMA generator of a trained run as an ONNX model (opset %d): latent [batch, latent size] → image [batch, channels, N, N] in [−1, 1]; or alone in a checkpoint file (a seventh of a training checkpoint) for sampling." OnnxExport.Opset
          Flags =
            [ flag "--run" "FOLDER" "the run folder (required)" false (fun v a -> { a with Run = Some(CommandLine.path "--run" "a run folder" v) })
              flag "--checkpoint" "FILE" "a checkpoint of the run (default: the newest)" false
                (fun v a -> { a with Checkpoint = Some(CommandLine.path "--checkpoint" "a checkpoint file" v) })
              flag "--resolution" "N" "export the straight-through model at N² (default: where the checkpoint stands, a fade-in with its α fixed)" false
                (fun v a -> { a with Resolution = Some(CommandLine.intIn 4 (1 <<< 20) "--resolution" v) })
              flag "--format" "onnx|checkpoint" "onnx (default), or checkpoint: the EMA generator alone, every level, for TrainedGenerator.Load and the notebooks" false
                (fun v a -> match v with
                            | "onnx" | "checkpoint" -> { a with Format = v }
                            | _ -> bad "--format %s: the formats are onnx and checkpoint." v)
              flag "--out" "FILE" "the file to write (default: RUN/generator-NxN.onnx, RUN/generator-NxN.ckpt)" false (fun v a -> { a with Out = Some(CommandLine.path "--out" "a file name" v) })
              flag "--force" "" "replace the file at --out even if it is not an export of this library" false (fun _ a -> { a with Force = true }) ]
          Defaults = { Run = None; Checkpoint = None; Resolution = None; Format = "onnx"; Out = None; Force = false }
          ResumeFlag = None }

    let run (argv: string[]) =
        CommandLine.run command argv (fun args ->
            let runFolder = match args.Run with Some r -> r | None -> bad "--run FOLDER is required."
            use loaded = Generation.load runFolder args.Checkpoint
            let trained = loaded.Generator
            let position =
                match args.Resolution with
                | None -> trained.Position
                | Some r when r = trained.Position.Resolution -> trained.Position
                | Some r ->
                    try trained.At r
                    with :? ArgumentException as e -> bad "--resolution %d: %s" r (CommandLine.firstLine e.Message)
            let folder = RunFolder(Path.GetFullPath runFolder)
            let checkpointFormat = args.Format = "checkpoint"
            if checkpointFormat && args.Resolution.IsSome then
                bad "--resolution: a checkpoint export holds every level; leave --resolution out, or export --format onnx."
            let out =
                args.Out |> Option.defaultWith (fun () ->
                    if checkpointFormat then folder.GeneratorCheckpoint position.Resolution else folder.Onnx position.Resolution)
            // Only an export of this library is replaced without --force: nothing else of the user's is overwritten.
            if checkpointFormat then OutputTargets.CheckTarget(out, "--out", "a generator checkpoint", (fun p -> CheckpointFile.IsCheckpointFile p), args.Force)
            else OutputTargets.CheckTarget(out, "--out", "an ONNX model", (fun p -> OnnxExport.IsExport p), args.Force)
            printfn "%s: %O after %d images" (Path.GetFileName loaded.Checkpoint) position trained.Header.ImagesShown
            // From here SIGTERM and Ctrl+C wait for the export to finish (seconds at most: the model is built in
            // memory, written to a temporary file and renamed over `out`), since a process ended in the middle of the
            // write leaves that temporary file beside `out`. While the checkpoint is read a signal ends the process at
            // once, as nothing is being written then.
            use stop = new StopSignals()
            if checkpointFormat then
                printfn "writing %s: the EMA generator alone, every level" out
                trained.SaveGeneratorOnly out
                printfn "wrote %s (%.1f MB): the EMA generator alone, every level; TrainedGenerator.Load reads it" out (float (FileInfo(out).Length) / 1e6)
            else
                let metadata =
                    [ "config", File.ReadAllText folder.Config; "checkpoint", Path.GetFileName loaded.Checkpoint
                      if loaded.ClassNames.Length > 0 then "class_names", String.Join(",", loaded.ClassNames) ]
                printfn "building the ONNX graph of the generator at %d² and writing %s" position.Resolution out
                trained.ExportOnnx(out, position, readOnlyDict metadata)
                let label =
                    if trained.Architecture.LabelSize = 0 then ""
                    else sprintf ", %s [batch, %d] (one-hot class: %s)" OnnxExport.LabelName trained.Architecture.LabelSize (String.Join(", ", loaded.ClassNames))
                printfn "wrote %s (ONNX opset %d): %s [batch, %d]%s → %s [batch, %d, %d, %d] in [−1, 1]"
                    out OnnxExport.Opset OnnxExport.InputName trained.LatentSize label OnnxExport.OutputName
                    trained.Architecture.ImageChannels position.Resolution position.Resolution
            if stop.Reason.IsSome then
                eprintfn "stopped by %s while %s was being written; the write was finished first, so it is complete." stop.Name out
                stop.ExitCode
            else 0)
