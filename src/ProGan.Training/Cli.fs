namespace ProGan.Training

open System
open System.Globalization
open System.IO
open System.Reflection
open System.Threading
open ProGan.Keras.Backend

/// Parsed command line of train.fsx.
type TrainArguments =
    { Config: TrainingConfig
      RunFolder: string
      Resume: bool
      StopAfterImages: int64 option }

/// Bad command-line input: the message is one line that names the argument.
exception UsageException of string
    with override this.Message = this.Data0

/// The command line of `dotnet fsi train.fsx -- [options]`.
module Cli =

    let version =
        let assembly = typeof<TrainingConfig>.Assembly
        match assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>() with
        | null -> string (assembly.GetName().Version)
        | a -> a.InformationalVersion.Split('+')[0]

    /// An exception message without .NET's " (Parameter 'x')" suffix, on one line.
    let private firstLine (message: string) =
        let line = message.Split('\n')[0]
        match line.IndexOf(" (Parameter") with
        | -1 -> line
        | i -> line.Substring(0, i)

    /// The arguments after the script's own name and the `--` that `dotnet fsi` passes through.
    let private scriptArguments (argv: string[]) = argv |> List.ofArray |> List.skipWhile (fun a -> a = "--" || a.EndsWith ".fsx")

    /// Bad input met while working (an argument, a folder, a checkpoint): its one-line message. Anything else is a bug.
    let private (|BadInput|_|) (e: exn) =
        match e with
        | :? ArgumentException as a -> Some(firstLine a.Message)
        | CheckpointException(_, _) | ArchitectureMismatchException(_, _) -> Some e.Message
        | _ -> None

    let private bad format = Printf.kprintf (UsageException >> raise) format

    let private int' (flag: string) (text: string) =
        match Int32.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture) with
        | true, v -> v
        | _ -> bad "%s expects a whole number; got '%s'." flag text

    let private float' (flag: string) (text: string) =
        match Double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture) with
        | true, v -> v
        | _ -> bad "%s expects a number; got '%s'." flag text

    /// Overrides: flag, value placeholder, meaning, and how it changes the configuration.
    let private overrides : (string * string * string * (string -> string -> TrainingConfig -> TrainingConfig)) list =
        let arch f = fun flag v (c: TrainingConfig) -> { c with Architecture = f flag v c.Architecture }
        [ "--seed", "N", "seed of every random choice", (fun f v c -> { c with Seed = int' f v })
          "--stabilise-images", "N", "real images per stabilise phase", (fun f v c -> { c with StabiliseImages = int' f v })
          "--fade-images", "N", "real images per fade-in phase", (fun f v c -> { c with FadeImages = int' f v })
          "--total-images", "N", "images over the whole run (0: stop once grown and stabilised)", (fun f v c -> { c with TotalImages = int64 (int' f v) })
          "--minibatch", "N[,N…]", "minibatch per level 4², 8², … (last repeats)",
            (fun f v c -> { c with Minibatch = v.Split(',') |> Array.map (int' f) })
          "--lr", "X", "Adam learning rate (both networks)", (fun f v c -> { c with LearningRate = float' f v })
          "--beta1", "X", "Adam β1", (fun f v c -> { c with Beta1 = float' f v })
          "--beta2", "X", "Adam β2", (fun f v c -> { c with Beta2 = float' f v })
          "--gp-weight", "X", "λ of the gradient penalty", (fun f v c -> { c with GradientPenaltyWeight = float' f v })
          "--drift", "X", "ε_drift", (fun f v c -> { c with DriftWeight = float' f v })
          "--ema-beta", "X", "β of the EMA generator", (fun f v c -> { c with EmaBeta = float' f v })
          "--latent-size", "N", "latent vector length", arch (fun f v a -> a.With(latentSize = int' f v))
          "--fmap-base", "N", "fmap_base", arch (fun f v a -> a.With(fmapBase = int' f v))
          "--fmap-max", "N", "fmap_max", arch (fun f v a -> a.With(fmapMax = int' f v))
          "--fmap-decay", "X", "fmap_decay", arch (fun f v a -> a.With(fmapDecay = float' f v))
          "--group-size", "N", "minibatch-stddev group size", arch (fun f v a -> a.With(minibatchGroupSize = int' f v))
          "--tick-images", "N", "images between sample grids and checkpoints", (fun f v c -> { c with TickImages = int' f v })
          "--log-images", "N", "images between log.csv rows", (fun f v c -> { c with LogImages = int' f v })
          "--keep-checkpoints", "N", "checkpoints kept", (fun f v c -> { c with KeepCheckpoints = int' f v })
          "--threads", "N", "CPU threads (0 = all cores)", (fun f v c -> { c with Threads = int' f v })
          "--procedural-images", "N", "size of the embedded data set", (fun f v c -> { c with ProceduralImages = int' f v })
          "--metrics", "NAME", "metrics at every phase end, logged to log.csv: swd", (fun _ v c -> { c with Metrics = v })
          "--metric-images", "N", "images per set for the metrics (default 256)", (fun f v c -> { c with MetricImages = int' f v })
          "--nan-retries", "N", "after a NaN/Inf, roll back and retry at half the learning rate N times",
            (fun f v c -> { c with NonFiniteRetries = int' f v }) ]

    let usage () =
        let lines =
            [ yield sprintf "ProGan.Keras %s: progressive growing of GANs (Karras et al. 2018) on TorchSharp." version
              yield ""
              yield "usage: dotnet fsi train.fsx -- [--data FOLDER] [--out FOLDER] [--resolution N] [--preset cpu|paper] [options]"
              yield "       dotnet fsi train.fsx -- --resume RUN_FOLDER"
              yield ""
              yield "  --data FOLDER            images to learn (png, jpg, bmp, gif, tga; recursive); default: embedded shapes"
              yield "  --out FOLDER             run folder (default: runs/<date-time>)"
              yield "  --resolution N           final resolution, a power of two ≥ 8 (default 32)"
              yield "  --preset NAME            cpu (default: small, ~10 min to 32² on 2 cores) or paper (the reference's numbers)"
              yield "  --resume FOLDER          continue a run from its newest good checkpoint"
              yield "  --stop-after N           stop (with a checkpoint) after N images"
              yield "  --mirror                 mirror real images left–right at random"
              yield "  --no-optimizer-reset     keep Adam's moments across levels of detail"
              yield "  --device NAME            cpu, cuda or cuda:N (default: CUDA when available)"
              for (flag, value, meaning, _) in overrides do
                  yield sprintf "  %-24s %s" (flag + " " + value) meaning
              yield "  --help                   this text" ]
        String.Join(Environment.NewLine, lines)

    /// Parses the arguments after `--`. Raises UsageException with a one-line message on bad input.
    let parse (argv: string list) : TrainArguments =
        let rec pairs acc args =
            match args with
            | [] -> List.rev acc
            | ("--mirror" | "--no-optimizer-reset" | "--help" | "-h" as flag) :: rest -> pairs ((flag, "") :: acc) rest
            | flag :: value :: rest when flag.StartsWith "--" && not (value.StartsWith "--") -> pairs ((flag, value) :: acc) rest
            | flag :: _ when flag.StartsWith "--" -> bad "%s needs a value." flag
            | other :: _ -> bad "Unexpected argument '%s' (options start with --)." other
        let given = pairs [] argv
        let known = set ([ "--data"; "--out"; "--resolution"; "--preset"; "--resume"; "--stop-after"; "--mirror"; "--no-optimizer-reset"; "--device"; "--help"; "-h" ] @ (overrides |> List.map (fun (f, _, _, _) -> f)))
        for (flag, _) in given do
            if not (known.Contains flag) then bad "Unknown option %s." flag
        let value flag = given |> List.tryFindBack (fst >> (=) flag) |> Option.map snd
        let stopAfter = value "--stop-after" |> Option.map (fun v -> int64 (int' "--stop-after" v))
        value "--device" |> Option.iter (fun d ->
            try TorchBackend.Device <- TorchSharp.torch.device d
            with _ -> bad "--device expects cpu, cuda or cuda:N; got '%s'." d)
        match value "--resume" with
        | Some folder ->
            if not (Directory.Exists folder) then bad "--resume: the run folder '%s' does not exist." folder
            let extra = given |> List.map fst |> List.filter (fun f -> not (List.contains f [ "--resume"; "--stop-after"; "--device"; "--threads" ]))
            if not extra.IsEmpty then bad "--resume continues a run with its own config.json; %s cannot be combined with it." extra.Head
            let config =
                try RunFolder.readConfig folder with :? ArgumentException as e -> bad "%s" e.Message
            let config = match value "--threads" with Some t -> { config with Threads = int' "--threads" t } | None -> config
            { Config = config; RunFolder = folder; Resume = true; StopAfterImages = stopAfter }
        | None ->
            let resolution = value "--resolution" |> Option.map (int' "--resolution") |> Option.defaultValue 32
            if resolution < 8 || (resolution &&& (resolution - 1)) <> 0 then
                bad "--resolution must be a power of two ≥ 8 (8, 16, 32, 64, …); got %d." resolution
            let presetName = value "--preset" |> Option.defaultValue "cpu"
            let preset =
                match TrainingConfig.presets |> List.tryFind (fst >> (=) presetName) with
                | Some(_, make) -> make resolution
                | None -> bad "--preset must be one of %s; got '%s'." (String.Join(", ", TrainingConfig.presets |> List.map fst)) presetName
            let data = value "--data" |> Option.defaultValue ""
            if data <> "" && not (Directory.Exists data) then bad "--data: the folder '%s' does not exist." data
            let config =
                given
                |> List.fold (fun (c: TrainingConfig) (flag, v) ->
                    match overrides |> List.tryFind (fun (f, _, _, _) -> f = flag) with
                    | Some(_, _, _, apply) -> apply flag v c
                    | None ->
                        match flag with
                        | "--mirror" -> { c with Mirror = true }
                        | "--no-optimizer-reset" -> { c with ResetOptimizerEachLevel = false }
                        | _ -> c) { preset with DataFolder = (if data = "" then "" else Path.GetFullPath data) }
            let config =
                try TrainingConfig.validate config
                with :? ArgumentException as e -> bad "%s" (firstLine e.Message)
            let out =
                value "--out" |> Option.defaultWith (fun () -> Path.Combine("runs", DateTime.Now.ToString("yyyyMMdd-HHmmss")))
            if Directory.Exists out && Directory.EnumerateFiles(out, "checkpoint-*.ckpt").GetEnumerator().MoveNext() then
                bad "--out: '%s' already holds a run; use --resume %s to continue it, or choose another folder." out out
            { Config = config; RunFolder = out; Resume = false; StopAfterImages = stopAfter }

    /// Parses `--flag value` pairs of a script with the given flags (all taking a value).
    let private options (argv: string[]) (flags: string list) =
        let rec pairs acc args =
            match args with
            | [] -> Map.ofList acc
            | flag :: value :: rest when List.contains flag flags && not (value.StartsWith "--") -> pairs ((flag, value) :: acc) rest
            | flag :: _ when List.contains flag flags -> bad "%s needs a value." flag
            | other :: _ -> bad "Unknown option %s; expected %s." other (String.Join(", ", flags))
        pairs [] (scriptArguments argv)

    /// Runs a script body, turning bad input into a one-line error and exit code 2.
    let private script (usageText: string) (argv: string[]) (body: unit -> unit) =
        ensureTorch ()
        if Array.contains "--help" argv || Array.contains "-h" argv then
            printfn "%s" usageText
            0
        else
            try
                body ()
                0
            with
            | UsageException message ->
                eprintfn "error: %s" message
                eprintfn "%s" usageText
                2
            | BadInput message ->
                eprintfn "error: %s" message
                2

    let private generateUsage =
        sprintf "ProGan.Keras %s — samples and latent interpolation from a trained run's EMA generator.\n\nusage: dotnet fsi generate.fsx -- --run FOLDER [--count 64] [--seed 7] [--checkpoint FILE] [--interpolate SEED_A,SEED_B] [--steps 10] [--out FOLDER]" version

    /// generate.fsx: a grid and single PNGs of `--count` samples, and optionally an interpolation strip with frames.
    let generate (argv: string[]) : int =
        script generateUsage argv (fun () ->
            let o = options argv [ "--run"; "--count"; "--seed"; "--checkpoint"; "--interpolate"; "--steps"; "--out" ]
            let run = match o.TryFind "--run" with Some r -> r | None -> bad "--run FOLDER is required."
            let count = o.TryFind "--count" |> Option.map (int' "--count") |> Option.defaultValue 64
            let seed = o.TryFind "--seed" |> Option.map (int' "--seed") |> Option.defaultValue 7
            let steps = o.TryFind "--steps" |> Option.map (int' "--steps") |> Option.defaultValue 10
            if count < 1 then bad "--count must be ≥ 1; got %d." count
            if steps < 2 then bad "--steps must be ≥ 2; got %d." steps
            use loaded = Generation.load run (o.TryFind "--checkpoint")
            let out = o.TryFind "--out" |> Option.defaultValue (Path.Combine(run, "generated"))
            let p = loaded.Position
            printfn "%s: %d² (%O) after %d images" (Path.GetFileName loaded.Checkpoint) p.Resolution p.Phase p.ImagesShown
            let files = Generation.writeSamples loaded out count seed
            printfn "wrote %s and %d single images" files.Head (files.Length - 1)
            match o.TryFind "--interpolate" with
            | Some pair ->
                match pair.Split(',') with
                | [| a; b |] ->
                    let strip = Generation.writeInterpolation loaded out (int' "--interpolate" a) (int' "--interpolate" b) steps
                    printfn "wrote %s and %d frames" strip.Head (strip.Length - 1)
                | _ -> bad "--interpolate expects two seeds, SEED_A,SEED_B; got '%s'." pair
            | None -> ())

    let private evaluateUsage =
        sprintf "ProGan.Keras %s — sliced Wasserstein distance (×10³) of a run against real images, beside the real-vs-real floor.\n\nusage: dotnet fsi evaluate.fsx -- --run FOLDER [--data FOLDER] [--images 1024] [--seed 1] [--checkpoint FILE]" version

    /// evaluate.fsx: SWD of the EMA generator against the run's data (or `--data`), and the real-vs-real floor.
    let evaluate (argv: string[]) : int =
        script evaluateUsage argv (fun () ->
            let o = options argv [ "--run"; "--data"; "--images"; "--seed"; "--checkpoint" ]
            let run = match o.TryFind "--run" with Some r -> r | None -> bad "--run FOLDER is required."
            let images = o.TryFind "--images" |> Option.map (int' "--images") |> Option.defaultValue 1024
            let seed = o.TryFind "--seed" |> Option.map (int' "--seed") |> Option.defaultValue 1
            use loaded = Generation.load run (o.TryFind "--checkpoint")
            let source =
                match o.TryFind "--data" with
                | Some folder -> (if not (Directory.Exists folder) then bad "--data: the folder '%s' does not exist." folder); Folder folder
                | None -> Training.sourceOf loaded.Config
            use data = Training.loadDataFor loaded.Config source Display.plain
            let result = Evaluation.evaluate loaded data images seed
            Evaluation.save run result
            printfn "%s" (Evaluation.format result)
            printfn "written to %s" (Path.Combine(run, "swd.json")))

    /// Runs training from command-line arguments; returns the process exit code.
    let main (argv: string[]) : int =
        ensureTorch ()
        let argv = scriptArguments argv
        if List.contains "--help" argv || List.contains "-h" argv then
            printfn "%s" (usage ())
            0
        else
            match (try Ok(parse argv) with UsageException message -> Error message) with
            | Error message ->
                eprintfn "error: %s" message
                eprintfn ""
                eprintfn "%s" (usage ())
                2
            | Ok args ->
                use cancel = new CancellationTokenSource()
                let onCancel =
                    ConsoleCancelEventHandler(fun _ e ->
                        if not cancel.IsCancellationRequested then
                            e.Cancel <- true // finish the step, checkpoint, exit cleanly; a second Ctrl+C kills
                            cancel.Cancel())
                Console.CancelKeyPress.AddHandler onCancel
                try
                    try
                        let run report =
                            Training.run
                                { Config = args.Config; RunFolder = args.RunFolder
                                  Data = Training.sourceOf args.Config
                                  Resume = args.Resume; StopAfterImages = args.StopAfterImages; Report = report
                                  OnStep = ignore; Cancel = cancel.Token }
                        printfn "ProGan.Keras %s │ run folder %s │ device %O │ %s" version (Path.GetFullPath args.RunFolder) TorchBackend.Device
                            (if String.IsNullOrEmpty args.Config.DataFolder then "embedded procedural data" else args.Config.DataFolder)
                        let final = if Display.isInteractive () then Display.live run else run Display.plain
                        printfn "Samples, log.csv, loss.png and checkpoints are in %s" (Path.GetFullPath args.RunFolder)
                        if cancel.IsCancellationRequested then 130 else 0
                    with
                    | BadInput message ->
                        eprintfn "error: %s" message
                        2
                    | RunLockedException(_, _) as e ->
                        eprintfn "error: %s" e.Message
                        3
                    | CheckpointWriteException(_, _) as e ->
                        let previous = Checkpoint.list args.RunFolder |> List.tryHead |> Option.map Path.GetFileName
                        eprintfn "error: %s. %s Free some space, then continue with --resume %s."
                            e.Message
                            (match previous with Some p -> sprintf "The previous checkpoint %s is intact." p | None -> "No earlier checkpoint exists.")
                            args.RunFolder
                        4
                    | TrainingFailedException message ->
                        eprintfn "error: %s" message
                        5
                finally
                    Console.CancelKeyPress.RemoveHandler onCancel
