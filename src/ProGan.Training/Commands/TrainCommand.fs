// `train.fsx`: flags and presets into a TrainingConfig, then the run.
namespace ProGan.Training.Commands

open System
open System.IO
open System.Threading
open TorchSharp
open ProGan.Keras.Backend
open ProGan.Training.Basics
open ProGan.Training.Config
open ProGan.Training.Distributed
open ProGan.Training.Progress
open ProGan.Training.Data
open ProGan.Training.Paper
open ProGan.Training.Runs
open ProGan.Training.Loop
open ProGan.Keras.Serving

/// What `train.fsx` was asked, as parsed: nothing is read or set until `TrainCommand.plan`.
type TrainArguments =
    { Preset: string
      Resolution: int
      Data: string option
      Out: string option
      Resume: string option
      StopAfterImages: int64 option
      StopAfterMinutes: float option
      Device: string option
      Threads: int option
      /// Settings over the preset, in the order given (flag, change).
      Overrides: (string * (TrainingConfig -> TrainingConfig)) list
      /// `--precision auto`: chosen for this machine once the rest of the configuration is known
      /// (`TrainingConfig.autoPrecision`).
      AutoPrecision: bool }

/// What a run will do: its configuration, folder, device and stop.
type TrainPlan =
    { Config: TrainingConfig
      Folder: string
      Resume: bool
      StopAfterImages: int64 option
      /// Stop (with a checkpoint) once this much time has passed in this process: a wall-clock budget.
      StopAfter: TimeSpan option
      Device: torch.Device
      /// What the plan chose for the user (`--precision auto`), printed under the run's first line.
      Notes: string list }

/// `dotnet fsi train.fsx -- [options]`: progressive training from the command line.
module TrainCommand =

    let private bad format = Printf.kprintf (UsageException >> raise) format
    let private flag = CommandLine.flag
    let private int' = CommandLine.int'
    let private float' = CommandLine.float'

    /// A flag that changes one setting of the configuration.
    let private setting name value help (change: string -> string -> TrainingConfig -> TrainingConfig) =
        flag name value help false (fun v args -> { args with Overrides = args.Overrides @ [ name, change name v ] })

    let private arch (change: string -> string -> ProGan.Keras.Models.ProGanConfig -> ProGan.Keras.Models.ProGanConfig) =
        fun name v -> let f = change name v in fun (c: TrainingConfig) -> { c with Architecture = f c.Architecture }

    /// Parses a value now (so that a bad one fails at parse time) and returns the change it makes.
    let private parsed (read: string -> string -> 'T) (set: 'T -> TrainingConfig -> TrainingConfig) =
        fun name v -> let x = read name v in set x

    /// A setting of images, N for every level or R:N,… per resolution (the reference's `*_dict` form).
    let private imagesSetting name help (every: int -> TrainingConfig -> TrainingConfig) (perResolution: ResolutionImages[] -> TrainingConfig -> TrainingConfig) =
        setting name "N|R:N,…" help (fun name v ->
            if v.Contains ':' then perResolution (CommandLine.perResolution name v (fun r n -> { Resolution = r; Images = int' name n }))
            else every (int' name v))

    let flags : Flag<TrainArguments> list =
        [ flag "--data" "FOLDER" "images to learn (png, jpg, bmp, gif, tga, tiff, webp, pbm; recursive); default: embedded shapes" true
            (fun v a -> { a with Data = Some(CommandLine.path "--data" "a folder of images (leave --data out for the embedded shapes)" v) })
          flag "--out" "FOLDER" "run folder, new or empty (default: runs/<date-time>)" false
            (fun v a -> { a with Out = Some(CommandLine.path "--out" "a folder name" v) })
          flag "--resolution" "N" "final resolution, a power of two ≥ 8 (default 32)" false
            (fun v a -> { a with Resolution = CommandLine.resolution "--resolution" v })
          flag "--preset" "NAME" "cpu (default: small, 152k images to 32², ~10 min on 2 cores) or paper (the reference's numbers)" false
            (fun v a ->
                if not (TrainingConfig.presets |> List.exists (fst >> (=) v)) then
                    bad "--preset must be one of %s; got '%s'." (String.Join(", ", TrainingConfig.presets |> List.map fst)) v
                { a with Preset = v })
          flag "--resume" "FOLDER" "continue a run from its newest good checkpoint" true
            (fun v a -> { a with Resume = Some(CommandLine.path "--resume" "a run folder" v) })
          flag "--stop-after" "N" "stop (with a checkpoint) after N images" true
            (fun v a -> { a with StopAfterImages = Some(CommandLine.wholeIn 1L Int64.MaxValue "--stop-after" v) })
          flag "--stop-after-minutes" "M" "stop (with a checkpoint) after M minutes of this process: a time budget" true
            (fun v a ->
                let m = float' "--stop-after-minutes" v
                if not (m > 0.0 && m <= 1e6) then bad "--stop-after-minutes must be a number of minutes above 0; got '%s'." v
                { a with StopAfterMinutes = Some m })
          flag "--device" "NAME" "cpu, cuda or cuda:N (default: CUDA when available)" true (fun v a -> { a with Device = Some v })
          flag "--threads" "N" (sprintf "CPU threads, 0 = all cores (this machine: %d)" Environment.ProcessorCount) true
            (fun v a -> { a with Threads = Some(CommandLine.intIn 0 Environment.ProcessorCount "--threads" v) })
          setting "--mirror" "" "mirror real images left–right at random" (fun _ _ c -> { c with Mirror = true })
          setting "--no-optimizer-reset" "" "keep Adam's moments across levels of detail" (fun _ _ c -> { c with ResetOptimizerEachLevel = false })
          setting "--seed" "N" "seed of every random choice" (parsed int' (fun x c -> { c with Seed = x }))
          imagesSetting "--stabilise-images" "real images per stabilise phase (every level: clears the preset's per-resolution lengths), or per resolution (4:24000,16:24000)"
            (fun n c -> { c with StabiliseImages = n; StabiliseImagesAt = [||] }) (fun lengths c -> { c with StabiliseImagesAt = lengths })
          imagesSetting "--fade-images" "real images per fade-in phase (every level), or per resolution fading in (32:6000)"
            (fun n c -> { c with FadeImages = n; FadeImagesAt = [||] }) (fun lengths c -> { c with FadeImagesAt = lengths })
          setting "--total-images" "N" "images over the whole run (0: stop once grown and stabilised)"
            (parsed (CommandLine.wholeIn 0L Int64.MaxValue) (fun x c -> { c with TotalImages = x }))
          setting "--minibatch" "N[,N…]" "minibatch per level 4², 8², … (last repeats)"
            (fun name v -> let sizes = v.Split(',') |> Array.map (int' name) in fun c -> { c with Minibatch = sizes })
          setting "--lr" "X|R:X,…" "Adam learning rate (both networks), or per resolution as the reference's lrate_dict (4:0.001,64:0.0015)"
            (fun name v ->
                if v.Contains ':' then
                    let rates = CommandLine.perResolution name v (fun r x -> { Resolution = r; Rate = float' name x })
                    fun c -> { c with LearningRates = rates }
                else let x = float' name v in fun c -> { c with LearningRate = x })
          setting "--lr-decay" "F" "the learning rate falls linearly to 0 over the last F of the run's images (0.5: the second half)"
            (parsed float' (fun x c -> { c with LearningRateDecay = x }))
          flag "--precision" "TYPE" "float32; bfloat16: G and D compute in bfloat16, parameters and samples stay float32 (faster where the CPU has AVX512-BF16); or auto: bfloat16 where this machine's benchmark measured it faster, float32 elsewhere (the run says which, and why)" false
            (fun v a ->
                match v, Precision.tryParse v with
                | "auto", _ -> { a with AutoPrecision = true }
                | _, Some precision -> { a with AutoPrecision = false; Overrides = a.Overrides @ [ "--precision", fun c -> { c with Precision = precision } ] }
                | _, None -> bad "--precision takes float32, bfloat16 or auto; got '%s'." v)
          setting "--channels-last-from" "R" "the lowest resolution whose G and D lay activations out channels-last (NHWC), 0 for none; 32 by default (measured faster from there on the CPU)"
            (parsed int' (fun x c -> { c with ChannelsLastFrom = x }))
          setting "--loss" "NAME" "wgan-gp (the paper's), lsgan, logistic (non-saturating) or hinge"
            (fun name v ->
                match GanLoss.tryParse v with
                | Some loss -> fun c -> { c with Loss = loss }
                | None -> bad "%s must be one of %s; got '%s'." name (String.Join(", ", GanLoss.names |> List.map fst)) v)
          setting "--r1" "γ" "R1 penalty (γ/2)·‖∇D(real)‖² for the non-WGAN losses" (parsed float' (fun x c -> { c with R1Weight = x }))
          setting "--penalty-interval" "K" "lazy regularisation: the gradient penalty (WGAN-GP's or R1) on every K-th minibatch only, weighted K times (StyleGAN2)"
            (parsed int' (fun x c -> { c with PenaltyInterval = x }))
          setting "--d-repeats" "N" "D steps per G step (the reference's D_repeats)" (parsed int' (fun x c -> { c with DRepeats = x }))
          setting "--no-growing" "" "train the final resolution from the start (the paper's non-progressive baseline)" (fun _ _ c -> { c with Growing = false })
          setting "--init-from" "RUN|FILE" "start from another run's G, D and EMA weights (fine-tuning; new levels start fresh)"
            (fun name v -> let path = Path.GetFullPath(CommandLine.path name "a run folder or checkpoint" v) in fun c -> { c with InitFrom = path })
          setting "--beta1" "X" "Adam β1" (parsed float' (fun x c -> { c with Beta1 = x }))
          setting "--beta2" "X" "Adam β2" (parsed float' (fun x c -> { c with Beta2 = x }))
          setting "--gp-weight" "X" "λ of the gradient penalty" (parsed float' (fun x c -> { c with GradientPenaltyWeight = x }))
          setting "--drift" "X" "ε_drift" (parsed float' (fun x c -> { c with DriftWeight = x }))
          setting "--ema-beta" "X" "β of the EMA generator" (parsed float' (fun x c -> { c with EmaBeta = x }))
          setting "--ema-rampup" "X" "EMA warm-up: its half-life at most X·images shown since the level began (StyleGAN2's ema_rampup, e.g. 0.05)"
            (parsed float' (fun x c -> { c with EmaRampup = x }))
          setting "--augment" "POLICY" "DiffAugment of reals and fakes before D: any of color,translation,cutout"
            (fun name v ->
                match Augmentation.tryParsePolicy v with
                | Ok policy -> fun c -> { c with Augment = policy }
                | Error t -> bad "%s takes %s; got '%s'." name (String.Join(",", Augmentation.Names |> List.map fst)) t)
          setting "--latent-size" "N" "latent vector length" (arch (fun f v a -> a.With(latentSize = int' f v)))
          setting "--fmap-base" "N" "fmap_base" (arch (fun f v a -> a.With(fmapBase = int' f v)))
          setting "--fmap-max" "N" "fmap_max" (arch (fun f v a -> a.With(fmapMax = int' f v)))
          setting "--fmap-decay" "X" "fmap_decay" (arch (fun f v a -> a.With(fmapDecay = float' f v)))
          setting "--group-size" "N" "minibatch-stddev group size" (arch (fun f v a -> a.With(minibatchGroupSize = int' f v)))
          setting "--channels" "1|3|4" "image channels: grayscale, RGB (default) or RGBA (alpha learned as a fourth channel)"
            (arch (fun f v a -> a.With(imageChannels = CommandLine.channels f v)))
          setting "--labels" "folders|shapes" "conditional training (AC-GAN): each subfolder of --data a class, or the procedural set by shape"
            (fun name v ->
                match LabelSource.tryParse v with
                | Some labels when labels <> Unlabelled -> fun c -> { c with Labels = labels }
                | _ -> bad "%s takes folders (subfolders of --data are the classes) or shapes (the embedded set); got '%s'." name v)
          setting "--cond-weight" "X" "weight of the auxiliary classification terms (the reference's cond_weight, 1)"
            (parsed float' (fun x c -> { c with ConditionWeight = x }))
          setting "--no-fused-scale" "" "D pools before its bias and LeakyReLU (the paper's Table 2 order, official fused_scale=False)"
            (arch (fun _ _ a -> a.With(fusedScale = false)))
          imagesSetting "--tick-images" "images between sample grids and checkpoints, or per resolution (tick_kimg_dict: 4:16000,64:4000)"
            (fun n c -> { c with TickImages = n }) (fun ticks c -> { c with TickImagesAt = ticks })
          setting "--log-images" "N" "images between log.csv rows" (parsed int' (fun x c -> { c with LogImages = x }))
          setting "--keep-checkpoints" "N" "checkpoints kept" (parsed int' (fun x c -> { c with KeepCheckpoints = x }))
          setting "--procedural-images" "N" "size of the embedded data set" (parsed int' (fun x c -> { c with ProceduralImages = x }))
          setting "--metrics" "NAMES" "metrics at every phase end, logged to log.csv: some of swd, ms-ssim, fd (FD-ResNet18), kid, pr (precision/recall), comma-separated" (fun _ v c -> { c with Metrics = v })
          setting "--metric-images" "N" "images per set for the metrics (default 256)" (parsed int' (fun x c -> { c with MetricImages = x }))
          setting "--nan-retries" "N" "after a NaN/Inf, roll back and retry at half the learning rate N times"
            (parsed int' (fun x c -> { c with NonFiniteRetries = x }))
          setting "--no-tensorboard" "" "write no TensorBoard event files (tensorboard/ in the run folder)" (fun _ _ c -> { c with TensorBoard = false }) ]

    let command =
        { Usage = [ "dotnet fsi train.fsx -- [--data FOLDER] [--out FOLDER] [--resolution N] [--preset cpu|paper] [options]"
                    "dotnet fsi train.fsx -- --resume RUN_FOLDER [--stop-after N] [--stop-after-minutes M] [--data MOVED_FOLDER]" ]
          Summary = "progressive growing of GANs (Karras et al. 2018) on TorchSharp."
          Flags = flags
          Defaults =
            { Preset = "cpu"; Resolution = 32; Data = None; Out = None; Resume = None; StopAfterImages = None
              StopAfterMinutes = None; Device = None; Threads = None; Overrides = []; AutoPrecision = false }
          ResumeFlag = Some "--resume" }

    /// The device a name asks for, checked to exist.
    let device (name: string) =
        match Text.RegularExpressions.Regex.Match(name.Trim().ToLowerInvariant(), @"^(cpu|cuda)(?::(\d{1,3}))?$") with
        | m when not m.Success -> bad "--device expects cpu, cuda or cuda:N; got '%s'." name
        | m when m.Groups[1].Value = "cpu" -> torch.CPU
        | m ->
            if not (torch.cuda.is_available ()) then
                bad "--device %s: no CUDA device is available (no GPU is visible, or TorchSharp's CUDA backend package is not installed); use --device cpu." name
            let index = if m.Groups[2].Success then int m.Groups[2].Value else 0
            if index >= torch.cuda.device_count () then
                bad "--device %s: this machine has %d CUDA device(s)." name (torch.cuda.device_count ())
            torch.device(DeviceType.CUDA, index)

    /// The smallest fmap_base whose feature maps reach `resolution` (nf(log2 r − 1) ≥ 1).
    let private fmapBaseReaching (resolution: int) (decay: float) =
        int (ceil (2.0 ** ((Math.Log2(float resolution) - 1.0) * decay)))

    /// A configuration error as the user typed it: the setting `TrainingConfig.validate` names by its field
    /// (`DRepeats = 0 is invalid`) is named by the flag that set it (`--d-repeats 0 is invalid`), found as the given
    /// flag that changes that field of the preset.
    let private asTyped (args: TrainArguments) (preset: TrainingConfig) (e: ArgumentException) =
        let line = CommandLine.firstLine e.Message
        let field = e.ParamName
        let valueOf (c: TrainingConfig) =
            if isNull field then None
            else
                match typeof<TrainingConfig>.GetProperty field, typeof<ProGan.Keras.Models.ProGanConfig>.GetProperty field with
                | null, null -> None
                | null, p -> Some(Text.Json.JsonSerializer.Serialize(p.GetValue c.Architecture))
                | p, _ -> Some(Text.Json.JsonSerializer.Serialize(p.GetValue c))
        let setter =
            args.Overrides |> List.rev |> List.tryFind (fun (_, change) ->
                let before = valueOf preset
                before.IsSome && (try valueOf (change preset) <> before with _ -> false))
        match setter with
        | Some(flag, _) when line.StartsWith(field + " = ") -> flag + " " + line.Substring(field.Length + 3)
        | Some(flag, _) -> flag + ": " + line
        | None -> line

    /// The run the arguments ask for: the preset with the overrides for a new run, or the run's own config.json for
    /// `--resume`. Reads the run folder's configuration; creates nothing.
    let plan (args: TrainArguments) : TrainPlan =
        let device = args.Device |> Option.map device |> Option.defaultWith (fun () -> TorchBackend.Device)
        let stopAfter = args.StopAfterMinutes |> Option.map TimeSpan.FromMinutes
        let data = args.Data |> Option.map Path.GetFullPath
        match args.Data, data with
        | Some given, Some full ->
            match FileKind.at full with
            | Folder -> ()
            | Missing -> bad "--data: the folder '%s' does not exist." given
            | _ -> bad "--data: '%s' is a file, not a folder; pass the folder that holds the images." given
        | _ -> ()
        match args.Resume with
        | Some folder ->
            let config = RunFolder.readConfig (RunFolder.openExisting folder)
            let config = { config with Threads = args.Threads |> Option.defaultValue config.Threads
                                       DataFolder = data |> Option.defaultValue config.DataFolder }
            { Config = TrainingConfig.validate config; Folder = folder; Resume = true; StopAfterImages = args.StopAfterImages
              StopAfter = stopAfter; Device = device; Notes = [] }
        | None ->
            let make = TrainingConfig.presets |> List.find (fst >> (=) args.Preset) |> snd
            let preset = make args.Resolution
            let config =
                args.Overrides |> List.fold (fun c (_, change) -> change c)
                    { preset with DataFolder = data |> Option.defaultValue ""; Threads = args.Threads |> Option.defaultValue preset.Threads }
            let a = config.Architecture
            if a.FmapBase >= 1 && a.FmapMax >= 1 && a.ChannelsAt(a.LevelCount - 1) < 1 then
                let given = args.Overrides |> List.exists (fun (name, _) -> name = "--fmap-base")
                bad "--resolution %d: %s feature maps (fmap_base %d, halved at each level) run out before %d²; add --fmap-base %d or more%s."
                    args.Resolution (if given then "the" else sprintf "the %s preset's" args.Preset) a.FmapBase args.Resolution
                    (fmapBaseReaching args.Resolution a.FmapDecay) (if args.Preset = "paper" then "" else ", or use --preset paper")
            let config =
                try TrainingConfig.validate config
                with :? ArgumentException as e -> bad "%s" (asTyped args preset e)
            let config, notes =
                if not args.AutoPrecision then config, []
                else
                    let features = List.ofSeq (ProGan.Keras.Models.MixedPrecision.CpuBFloat16Features())
                    let precision, why = TrainingConfig.autoPrecision features device.``type`` config
                    { config with Precision = precision }, [ sprintf "--precision auto: %s — %s." (Precision.name precision) why ]
            match FileKind.at config.InitFrom with
            | _ when config.InitFrom = "" -> ()
            | Missing -> bad "--init-from: '%s' does not exist; pass a run folder or one of its checkpoint-*.ckpt files." config.InitFrom
            | Regular _ when not (ProGan.Keras.Serving.CheckpointFile.IsCheckpointFile config.InitFrom) ->
                bad "--init-from: '%s' is not a checkpoint; pass a run folder or one of its checkpoint-*.ckpt files." config.InitFrom
            | Special what -> bad "--init-from: '%s' is %s; pass a run folder or one of its checkpoint-*.ckpt files." config.InitFrom what
            | _ -> ()
            // The default folder is named by the time; runs started in the same second get -2, -3, … rather than share one.
            let out =
                args.Out |> Option.defaultWith (fun () ->
                    let stamp = Path.Combine("runs", DateTime.Now.ToString("yyyyMMdd-HHmmss"))
                    Seq.initInfinite (fun k -> if k = 0 then stamp else sprintf "%s-%d" stamp (k + 1))
                    |> Seq.find (fun candidate -> not (Directory.Exists candidate || File.Exists candidate)))
            { Config = config; Folder = out; Resume = false; StopAfterImages = args.StopAfterImages
              StopAfter = stopAfter; Device = device; Notes = notes }

    /// A `--resume` of a run folder that another process is training in, refused before anything is loaded (the
    /// native libraries take seconds to load on a busy machine): the exit code, or None to go on. Anything else is
    /// left to `run`, which parses the whole line. Touches nothing of ProGan.Keras, whose module initializer loads
    /// TorchSharp's native libraries (libtorch: about a second on a loaded machine) on first use — not `command`,
    /// whose flag table refers to its types, and not `FileKind.at` (`PathKinds`) — so the argument is picked out
    /// by hand.
    let refuseIfLocked (argv: string[]) =
        let rec resumed found (args: string list) = // the last one wins, as in `CommandLine.parse`
            match args with
            | "--resume" :: folder :: rest when not (folder.StartsWith "--") -> resumed (Some folder) rest
            | _ :: rest -> resumed found rest
            | [] -> found
        match resumed None (CommandLine.scriptArguments argv) |> Option.bind (fun f -> try Some(Path.GetFullPath f) with _ -> None) with
        // Under an MPI launcher rank 0 alone claims the folder; the others would find it locked by rank 0.
        | _ when World.launchedRank Environment.GetEnvironmentVariable > 0 -> None
        | Some folder when Directory.Exists folder && RunFiles.IsRunFolder folder ->
            try
                (RunLock.acquire (RunFolder folder)).Dispose()
                None
            with
            | RunLockedException(_, _) as e ->
                eprintfn "error: %s" e.Message
                Some 3
            | _ -> None
        | _ -> None

    /// Trains as the arguments ask in the processes of `world`, with a live display on rank 0's terminal; returns the
    /// exit code.
    let private runIn (world: World) (argv: string[]) =
        CommandLine.run command argv (fun args ->
            let plan = plan args
            // Several processes on a machine with GPUs: each trains on its own, by its rank on the machine.
            let plan =
                if world.Size > 1 && plan.Device.``type`` = DeviceType.CUDA then
                    { plan with Device = torch.device(DeviceType.CUDA, World.launchedLocalRank Environment.GetEnvironmentVariable % max 1 (torch.cuda.device_count ())) }
                else plan
            TorchBackend.Device <- plan.Device
            use stop = new StopSignals()
            // The time budget stops the run as a signal would (a checkpoint of where it stands), with exit code 0.
            use budget = CancellationTokenSource.CreateLinkedTokenSource(stop.Token)
            plan.StopAfter |> Option.iter budget.CancelAfter
            let train report =
                TrainingRun.runIn world
                    { Config = plan.Config; Folder = plan.Folder; Resume = plan.Resume; StopAfterImages = plan.StopAfterImages
                      Report = report; OnStep = ignore; Cancel = budget.Token }
            if world.IsRoot then
                printfn "%s │ run folder %s │ device %O │ %s%s" About.product (Path.GetFullPath plan.Folder) plan.Device (TrainingData.describe plan.Config)
                    (if world.Size > 1 then sprintf " │ %d processes (MPI)" world.Size else "")
                for note in plan.Notes do printfn "%s" note
                ProGan.Keras.Backend.CpuConvolutions.Notice |> Option.ofObj |> Option.iter (printfn "note: %s")
            try
                // Rank 0 shows the run; the others train quietly.
                (if not world.IsRoot then train ignore elif Display.isInteractive () then Display.live train else train Display.plain) |> ignore
                if world.IsRoot then
                    printfn "Samples, log.csv, loss.png, report.html%s and checkpoints are in %s"
                        (if plan.Config.TensorBoard then ", tensorboard/" else "") (Path.GetFullPath plan.Folder)
                stop.ExitCode
            with
            | CheckpointWriteException(_, _) as e ->
                let previous = RunFolder(Path.GetFullPath plan.Folder).Checkpoints() |> List.tryHead |> Option.map Path.GetFileName
                eprintfn "error: %s. %s Free some space, then continue with --resume %s." (CommandLine.firstLine e.Message)
                    (match previous with Some p -> sprintf "The previous checkpoint %s is intact." p | None -> "No earlier checkpoint exists.")
                    plan.Folder
                4
            | :? OperationCanceledException when stop.Reason.IsSome || budget.IsCancellationRequested ->
                eprintfn "Stopped before training began; nothing was trained."
                stop.ExitCode)

    /// Trains as the arguments ask, with a live display on a terminal; returns the exit code. Started by an MPI
    /// launcher (`mpirun -np N`, `srun`), as one of its N processes, data-parallel (docs/training.md#several-processes).
    let run (argv: string[]) =
        match World.launchedSize Environment.GetEnvironmentVariable with
        | None -> runIn World.single argv
        | Some launched ->
            let world =
                try Mpi.init ()
                with MpiException message ->
                    eprintfn "error: %s" message
                    exit 2
            // Open MPI's library under another MPI's launcher starts alone: N copies would each be rank 0.
            if world.Size <> launched then
                eprintfn "error: the launcher started %d processes but Open MPI sees %d; start them with Open MPI's mpirun, or srun --mpi=pmix with an Open MPI built for Slurm." launched world.Size
                exit 2
            let code =
                try runIn world argv
                with e ->
                    // Unforeseen: the whole exception, so that a defect can be found.
                    eprintfn "error (process %d of %d): %O" world.Rank world.Size e
                    1
            // A process that fails alone would leave the others waiting in a collective call: end the whole job. The
            // line names the process, as Open MPI 4.1's own MPI_ABORT notice does not always arrive (its show_help
            // message can be lost: "Data unpack would read past end of buffer", open-mpi/ompi#8356).
            if not (List.contains code [ 0; 129; 130; 143 ]) then
                eprintfn "error: process %d of %d failed (exit code %d, the error above); ending every process of the job (MPI_Abort)." world.Rank world.Size code
                Mpi.abort code
            Mpi.finalize ()
            code
