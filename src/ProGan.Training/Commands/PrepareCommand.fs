// `prepare.fsx`: a data set prepared on disk, checked, or described.
namespace ProGan.Training.Commands

open System
open System.IO
open ProGan.Keras.IO
open ProGan.Training.Basics
open ProGan.Training.Config
open ProGan.Training.Progress
open ProGan.Training.Data

/// What `prepare.fsx` was asked.
type PrepareArguments =
    { Data: string option
      Procedural: int option
      Seed: int
      Resolution: int
      Channels: int
      Labels: bool
      Out: string option
      Info: string option
      Check: string option }

/// `dotnet fsi prepare.fsx -- --data FOLDER --resolution N --out DATASET` (reference `dataset_tool.py
/// create_from_images`): prepares a data set once — every level of detail in its own file — for training to read
/// a minibatch at a time; `--info` and `--check` look at one.
module PrepareCommand =

    let private bad format = Printf.kprintf (UsageException >> raise) format
    let private flag = CommandLine.flag

    let command : Command<PrepareArguments> =
        { Usage = [ "dotnet fsi prepare.fsx -- --data FOLDER --resolution N --out DATASET"
                    "dotnet fsi prepare.fsx -- --procedural N [--seed 1] --resolution N --out DATASET"
                    "dotnet fsi prepare.fsx -- --info DATASET | --check DATASET" ]
          Summary = "prepares a multi-resolution data set on disk, which training reads a minibatch at a time (reference dataset_tool.py)."
          Flags =
            [ flag "--data" "FOLDER" "images to prepare (png, jpg, bmp, gif, tga, tiff, webp, pbm; recursive)" false
                (fun v a -> { a with Data = Some(CommandLine.path "--data" "a folder of images" v) })
              flag "--procedural" "N" "prepare N of the embedded procedural shapes instead" false
                (fun v a -> { a with Procedural = Some(CommandLine.intIn 1 100_000_000 "--procedural" v) })
              flag "--seed" "N" "seed of the procedural shapes (default 1)" false (fun v a -> { a with Seed = CommandLine.int' "--seed" v })
              flag "--resolution" "N" "final resolution, a power of two ≥ 8 (default 32)" false
                (fun v a -> { a with Resolution = CommandLine.resolution "--resolution" v })
              flag "--channels" "1|3|4" "grayscale, RGB (default) or RGBA" false
                (fun v a -> { a with Channels = CommandLine.channels "--channels" v })
              flag "--labels" "folders|shapes" "label the images: by class subfolder of --data, or by shape for --procedural" false
                (fun v a ->
                    match LabelSource.tryParse v with
                    | Some labels when labels <> Unlabelled -> { a with Labels = true }
                    | _ -> bad "--labels takes folders or shapes; got '%s'." v)
              flag "--out" "DATASET" "the data set folder to write (must not exist yet)" false
                (fun v a -> { a with Out = Some(CommandLine.path "--out" "a folder name" v) })
              flag "--info" "DATASET" "print what a data set holds" false (fun v a -> { a with Info = Some(CommandLine.path "--info" "a data set" v) })
              flag "--check" "DATASET" "verify every level file against its SHA-256" false
                (fun v a -> { a with Check = Some(CommandLine.path "--check" "a data set" v) }) ]
          Defaults = { Data = None; Procedural = None; Seed = 1; Resolution = 32; Channels = 3; Labels = false; Out = None; Info = None; Check = None }
          ResumeFlag = None }

    /// Prepares as the arguments ask, with a progress display on a terminal; returns the exit code.
    let run (argv: string[]) =
        CommandLine.run command argv (fun args ->
            match args.Info, args.Check with
            | Some path, _ ->
                printfn "%s" (PreparedDataset.describe path (PreparedDataset.readIndex path))
                0
            | None, Some path ->
                let index = PreparedDataset.readIndex path
                match PreparedDataset.problems path index true with
                | [] ->
                    printfn "%s: %d levels, every file matches its SHA-256." path index.Levels.Length
                    0
                | problems ->
                    for p in problems do eprintfn "error: %s" p
                    2
            | None, None ->
                let out = match args.Out with Some o -> o | None -> bad "--out DATASET is required."
                match FileKind.at out with
                | Missing -> OutputTargets.CheckFolderTarget(out, "--out", "prepare.fsx", (fun _ -> false), false, null) |> ignore
                | Folder when not (Directory.EnumerateFileSystemEntries(out).GetEnumerator().MoveNext()) ->
                    OutputTargets.CheckFolderTarget(out, "--out", "prepare.fsx", (fun _ -> false), false, null) |> ignore
                    Directory.Delete out
                | _ -> bad "--out: '%s' already exists; prepare into a new folder." out
                use stop = new StopSignals()
                let prepare report =
                    match args.Data, args.Procedural with
                    | Some folder, None -> ImageFolder.prepareInto folder args.Resolution args.Channels args.Labels 1 out report stop.Token
                    | None, Some count ->
                        use writer = new DatasetWriter(out, args.Resolution, args.Channels)
                        let source = Procedural.prepareInto count args.Resolution args.Channels args.Seed args.Labels writer report stop.Token
                        writer.Finish(source, [||], [||])
                    | Some _, Some _ -> bad "--data and --procedural are exclusive: prepare one source."
                    | None, None -> bad "--data FOLDER (or --procedural N) is required."
                // Stopped between chunks: the staging folder is removed with its writer, and nothing ever had the final name.
                match (try Some(if Display.isInteractive () then Display.live prepare else prepare Display.plain)
                       with :? OperationCanceledException when stop.Token.IsCancellationRequested -> None) with
                | None ->
                    eprintfn "stopped by %s: nothing was written under '%s' (a data set appears there only when complete)." stop.Name out
                    stop.ExitCode
                | Some index ->
                    printfn "%s" (PreparedDataset.describe out index)
                    printfn "train on it with: dotnet fsi train.fsx -- --data %s --resolution %d" out index.Resolution
                    0)
