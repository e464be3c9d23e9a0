// The run loop: start or resume, steps, ticks, recovery, and the run folder's upkeep.
namespace ProGan.Training.Loop

open System
open System.Diagnostics
open System.IO
open System.Threading
open TorchSharp
open ProGan.Keras.Backend
open ProGan.Keras.Serving
open ProGan.Training.Basics
open ProGan.Training.Config
open ProGan.Training.Progress
open ProGan.Training.Data
open ProGan.Training.Distributed
open ProGan.Training.Paper
open ProGan.Training.Metrics
open ProGan.Training.Runs

/// How to run.
type RunOptions =
    { Config: TrainingConfig
      /// The run folder: for a new run, one that does not exist yet or is empty; for `Resume`, one a run wrote.
      Folder: string
      /// Continue the run in `Folder` from its newest good checkpoint (`Config` is then the run's own, from
      /// config.json, possibly with a moved data folder or other threads).
      Resume: bool
      /// Stop (with a checkpoint) once this many images have been shown, before the schedule ends.
      StopAfterImages: int64 option
      Report: TrainingEvent -> unit
      /// Called after every successful step (Keras-style callback: inspect or adjust the trainer).
      OnStep: Trainer -> unit
      Cancel: CancellationToken }

/// Training cannot go on; the message says what happened, what was kept, and how to continue.
exception TrainingFailedException of string
    with override this.Message = this.Data0

/// What a run holds while it trains: its folder, lock, data and trainer.
type private Session =
    { Options: RunOptions
      Config: TrainingConfig
      Folder: RunFolder
      Data: TrainingImages
      Trainer: Trainer
      /// The fixed latents of every sample grid.
      GridLatents: torch.Tensor
      StopAt: int64
      Total: int64
      Clock: Stopwatch
      /// Wall time of the run before this process (from log.csv), so that a resumed run's clock continues.
      WallOffset: float
      /// The TensorBoard event files, unless the configuration turns them off.
      TensorBoard: TensorBoardLog option
      Lock: IDisposable
      /// The processes training together; rank 0 alone writes the run folder.
      World: World }
    interface IDisposable with
        member this.Dispose() =
            this.GridLatents.Dispose()
            (this.Trainer :> IDisposable).Dispose()
            (this.Data :> IDisposable).Dispose()
            this.Lock.Dispose()

/// The loop's state from one step to the next.
type private Progress =
    { /// log.csv's rows so far, newest first (for the loss chart).
      Rows: LogRow list
      /// Step results since the last row.
      Pending: StepResult list
      /// Images and start time of the current throughput interval.
      IntervalImages: int
      IntervalStart: float
      /// Non-finite retries used.
      Retries: int
      /// The checkpoint a native fault last rolled back to: a second fault before the run gets past it stops the run.
      NativeRetryFrom: string option }

/// A whole progressive training run (reference `train.py train_progressive_gan`): one loop of steps, with the upkeep
/// `Cadence` decides after each — log rows, phase-end metrics and grids, and a tick (sample grid, loss chart,
/// checkpoint) every `TickImages` images and at every phase end.
module TrainingRun =

    /// The fixed latents every sample grid of a run is drawn from (their own random stream).
    let gridLatents (config: TrainingConfig) (count: int) =
        // A conditional run's grid shows one class per row (6 columns).
        Sampling.inputs config.Architecture (RandomStreams.ofSeed config.Seed).SampleGrid count (fun i -> i / 6)

    /// The seeds and frames of the final interpolation strip (the strip `generate.fsx -- --interpolate 1,2 --steps 10`
    /// draws from the last checkpoint).
    let interpolationSeeds, interpolationSteps = (1, 2), 10

    /// Restores the newest checkpoint that loads. A damaged one is reported and set aside as `*.bad` (so it is neither
    /// tried nor counted again), and the one before it is tried; the last one left is never set aside. A checkpoint of
    /// another architecture stops at once: the run, not the file, is wrong.
    let private restoreNewestGood (folder: RunFolder) (trainer: Trainer) (report: TrainingEvent -> unit) =
        let rec attempt candidates =
            match candidates with
            | [] -> None
            | path :: older ->
                try
                    trainer.Load path |> ignore
                    Some path
                with :? CheckpointException as e ->
                    match older with
                    | [] -> raise e
                    | _ ->
                        (try File.Move(path, folder.SetAside path, true) with :? IOException | :? UnauthorizedAccessException -> ())
                        report (Warning(sprintf "%s; set aside as %s, using the previous checkpoint." e.Message (Path.GetFileName(folder.SetAside path))))
                        attempt older
        attempt (folder.Checkpoints())

    /// The data of a run, checked against what its manifest recorded: a resumed run never trains on other images
    /// than it started with. A new run (or one that never got this far) records them.
    let private checkData (folder: RunFolder) (config: TrainingConfig) (data: TrainingImages) =
        let manifest = RunFolder.readManifest folder
        if String.IsNullOrEmpty manifest.DataSha256 then
            RunFolder.writeManifest folder { manifest with DataImages = data.Count; DataSha256 = data.ContentHash; ClassNames = data.ClassNames }
        // A prepared data set's level files were checked against their SHA-256s when it was opened
        // (`PreparedDataset.openFor`), so its recorded hash is that of the file on disk.
        elif manifest.DataSha256 <> data.ContentHash then
            raise (DataException(
                    sprintf "The data (%s: %d images, SHA-256 %s…) is not the data this run was trained on (%d images, SHA-256 %s…). Resume with the original images (--data FOLDER if they moved), or start a new run."
                        (TrainingData.describe config) data.Count (data.ContentHash.Substring(0, 12)) manifest.DataImages (manifest.DataSha256.Substring(0, 12))))

    /// Cuts log.csv and the TensorBoard events back to `images` shown, where a run resumes or rolls back to a
    /// checkpoint: the steps after it are trained again, so no step appears twice. Returns the log rows kept.
    let private dropLogsAfter (folder: RunFolder) (images: int64) =
        TensorBoardLog.truncate folder images
        RunLog.truncate folder images

    /// The processes a run trains in, recorded in run.json; a resume in another number is told that the steps stay the
    /// same (the global minibatch is kept and split anew) up to float rounding, not bit for bit.
    let private recordProcesses (options: RunOptions) (folder: RunFolder) (world: World) =
        let manifest = RunFolder.readManifest folder
        let before = max 1 manifest.Processes
        if options.Resume && before <> world.Size then
            options.Report(Warning(sprintf "The run trained in %d process%s and continues in %d: the minibatch of every step is kept and split anew, so training goes on as before up to float rounding, not bit for bit."
                                       before (if before = 1 then "" else "es") world.Size))
        if manifest.Processes <> world.Size then RunFolder.writeManifest folder { manifest with Processes = world.Size }

    /// A new run marks its folder: run.json (data not yet known) and config.json.
    let private markNewRun (folder: RunFolder) (config: TrainingConfig) =
        RunFolder.writeManifest folder
            { Format = RunFolder.format; Version = RunFolder.version; CreatedBy = About.product; CreatedUtc = DateTime.UtcNow
              DataImages = 0; DataSha256 = ""; ClassNames = [||]; Processes = 1 }
        RunFolder.writeConfig folder config

    /// The configuration fitted to its data: a conditional run's networks have as many classes as the data (a new run
    /// learns the count here and records it; a resumed one must find the same); config.json says what the run
    /// continues with (a moved data folder, other threads).
    let private fitToData (options: RunOptions) (folder: RunFolder) (config: TrainingConfig) (data: TrainingImages) =
        let config =
            if config.Labels = Unlabelled || config.Architecture.LabelSize = data.ClassNames.Length then config
            elif options.Resume then
                raise (DataException(sprintf "The run was trained on %d classes; the data has %d (%s)." config.Architecture.LabelSize data.ClassNames.Length (String.Join(", ", data.ClassNames))))
            else
                let conditional = { config with Architecture = config.Architecture.With(labelSize = data.ClassNames.Length) }
                RunFolder.writeConfig folder conditional
                options.Report(Info(sprintf "Conditional on %d classes: %s" data.ClassNames.Length (String.Join(", ", data.ClassNames))))
                conditional
        if options.Resume then RunFolder.writeConfig folder config
        config

    /// Fine-tuning (`--init-from`): G, D and the EMA generator from another run's newest checkpoint, or a given one.
    let private initializeFrom (options: RunOptions) (config: TrainingConfig) (trainer: Trainer) =
        let source =
            match FileKind.at config.InitFrom with
            | Folder ->
                match RunFolder(config.InitFrom).Checkpoints() with
                | newest :: _ -> newest
                | [] -> raise (RunFolderException(sprintf "--init-from: '%s' has no checkpoint to start from." config.InitFrom))
            | _ -> config.InitFrom
        let from =
            try trainer.InitializeFrom source
            with :? CheckpointException as e -> raise (RunFolderException("--init-from: " + e.Message.Split('\n')[0]))
        options.Report(Info(sprintf "Started from the weights of %s (levels up to %d²%s)" source from
                                (if from < config.Architecture.Resolution then sprintf "; %d² and above are new" (2 * from) else "")))

    /// A resumed run goes back to its newest good checkpoint (or 0 images without one) and drops what was logged
    /// after it; returns the log rows kept.
    let private resume (options: RunOptions) (folder: RunFolder) (trainer: Trainer) =
        folder.SkippedCheckpoints() |> Option.iter (fun text -> options.Report(Warning(text + "; resuming from the checkpoint files")))
        match restoreNewestGood folder trainer options.Report with
        | Some path -> options.Report(Info(sprintf "Resumed from %s at %d images" (Path.GetFileName path) trainer.ImagesShown))
        | None -> options.Report(Warning "No checkpoint to resume from; starting at 0 images.")
        dropLogsAfter folder trainer.ImagesShown

    /// The run's TensorBoard log (when on), opened with the configuration as text, or a note of the resume.
    let private openTensorBoard (options: RunOptions) (folder: RunFolder) (config: TrainingConfig) (shown: int64) =
        if config.TensorBoard then
            let log = TensorBoardLog(folder, TrainingConfig.lossWeights config)
            if options.Resume then log.Text("resumed", sprintf "Resumed at %d images." shown, shown)
            else log.Text("config", "    " + File.ReadAllText(folder.Config).Replace("\n", "\n    "), 0L)
            Some log
        else None

    /// Rank 0's whole training state — weights, optimisers, random states, position — copied into every other
    /// process, as a checkpoint's bytes broadcast over MPI (at the start, and after a resume or a roll-back), so that
    /// the processes never drift apart. The file is a temporary one outside the run folder, deleted at once.
    let private shareState (world: World) (trainer: Trainer) =
        if world.Size > 1 then
            let temp = Path.Combine(Path.GetTempPath(), sprintf "progan-state-%d-%s.ckpt" world.Rank (Guid.NewGuid().ToString "N"))
            try
                let length = Array.zeroCreate<byte> 8
                let bytes =
                    if world.IsRoot then
                        trainer.Save temp
                        let bytes = File.ReadAllBytes temp
                        BitConverter.TryWriteBytes(Span length, int64 bytes.LongLength) |> ignore
                        bytes
                    else [||]
                Mpi.broadcast length 8 0
                let count = BitConverter.ToInt64(length, 0)
                if count > int64 Int32.MaxValue then raise (MpiException(sprintf "The training state (%d bytes) is too large to broadcast in one call." count))
                let bytes = if world.IsRoot then bytes else Array.zeroCreate (int count)
                Mpi.broadcast bytes (int count) 0
                // The retry scale exactly as rank 0 holds it (the checkpoint stores the rate, whose quotient by the
                // configured rate can be an ulp off).
                let scale = BitConverter.GetBytes trainer.LearningRateScale
                Mpi.broadcast scale 8 0
                if not world.IsRoot then
                    File.WriteAllBytes(temp, bytes)
                    trainer.Load temp |> ignore
                    trainer.SetLearningRateScale(BitConverter.ToDouble(scale, 0))
            finally
                try File.Delete temp with _ -> ()

    /// Every process must train the same configuration on the same data and kind of device, or their collective calls
    /// would not match: rank 0's fingerprint of them is broadcast and a process that differs stops the job in one line.
    let private agreeOnInputs (world: World) (config: TrainingConfig) (data: TrainingImages) =
        if world.Size > 1 then
            let fingerprint =
                let text = sprintf "%s|%O|%s" (Text.Json.JsonSerializer.Serialize({ config with DataFolder = ""; Threads = 0 })) TorchBackend.Device.``type`` data.ContentHash
                Security.Cryptography.SHA256.HashData(Text.Encoding.UTF8.GetBytes text)
            let root = Array.copy fingerprint
            Mpi.broadcast root root.Length 0
            if root <> fingerprint then
                raise (TrainingFailedException(sprintf "Process %d of %d has another configuration, device or data than process 0 (data SHA-256 %s…); every process must see the same run, data and device kind." world.Rank world.Size (data.ContentHash.Substring(0, 12))))

    /// Claims the folder and prepares everything up to the first step: lock, configuration, data, trainer, and the
    /// checkpoint to resume from. With several processes rank 0 does all of it; the others load the same data and
    /// build the same trainer, touch nothing in the folder, and take rank 0's state (`shareState`).
    let private start (world: World) (options: RunOptions) (config: TrainingConfig) (folder: RunFolder) =
        let lock = if world.IsRoot then RunLock.acquire folder else { new IDisposable with member _.Dispose() = () }
        try
            if world.IsRoot then
                RunFolder.sweep folder
                if not options.Resume then markNewRun folder config
                recordProcesses options folder world
            MemoryEstimate.check config (TorchBackend.Device.``type`` = DeviceType.CPU)
            // Rank 0 reads the data first (an image folder's decoded cache is written once), the others after it.
            if world.Size > 1 && not world.IsRoot then Mpi.barrier ()
            // With several processes a stop is agreed, from the first step on: one process must not leave the others
            // waiting in the collective calls of the start.
            let cancel = if world.Size > 1 then CancellationToken.None else options.Cancel
            let data = TrainingData.load config options.Report cancel
            if world.Size > 1 && world.IsRoot then Mpi.barrier ()
            try
                if world.IsRoot then checkData folder config data
                let config =
                    if world.IsRoot then fitToData options folder config data
                    elif config.Labels = Unlabelled then config
                    else { config with Architecture = config.Architecture.With(labelSize = data.ClassNames.Length) }
                agreeOnInputs world config data
                cancel.ThrowIfCancellationRequested()
                let trainer = new Trainer(config, data, TorchBackend.Device, world)
                if world.IsRoot && not options.Resume && config.InitFrom <> "" then initializeFrom options config trainer
                let rows = if world.IsRoot && options.Resume then resume options folder trainer else []
                shareState world trainer
                let tensorBoard = if world.IsRoot then openTensorBoard options folder config trainer.ImagesShown else None
                let total = TrainingConfig.totalImages config
                { Options = options; Config = config; Folder = folder; Data = data; Trainer = trainer
                  GridLatents = gridLatents config 36; Total = total
                  StopAt = options.StopAfterImages |> Option.defaultValue total |> min total
                  Clock = Stopwatch.StartNew()
                  WallOffset = rows |> List.tryLast |> Option.map (fun r -> r.WallSeconds) |> Option.defaultValue 0.0
                  TensorBoard = tensorBoard
                  Lock = lock
                  World = world },
                { Rows = List.rev rows; Pending = []; IntervalImages = 0; IntervalStart = 0.0; Retries = 0; NativeRetryFrom = None }
            with _ ->
                (data :> IDisposable).Dispose()
                reraise ()
        with _ ->
            lock.Dispose()
            reraise ()

    /// Writes the sample grid at `position` to `path`, and to TensorBoard under `tag`.
    let private writeSamples (session: Session) (position: SchedulePosition) (path: string) (tag: string) =
        use images = session.Trainer.SampleAt(position, session.GridLatents)
        use grid = ImageGrid.Square(images)
        ImageGrid.WritePng(path, grid)
        session.TensorBoard |> Option.iter (fun log -> log.Image(tag, grid, session.Trainer.ImagesShown))

    /// Weight histograms of G and D (at phase ends).
    let private histograms (session: Session) =
        session.TensorBoard |> Option.iter (fun log ->
            log.Histograms("G", session.Trainer.State.Generator, session.Trainer.ImagesShown)
            log.Histograms("D", session.Trainer.State.Discriminator, session.Trainer.ImagesShown))

    /// Rewrites report.html; a page that cannot be written (another process rewriting it, say) costs a warning, never
    /// the run.
    let private writeReport (session: Session) =
        try RunReport.write session.Folder session.Config
        with :? IOException as e -> session.Options.Report(Warning(sprintf "Could not write %s (%s); the next tick tries again." session.Folder.Report (e.Message.Split('\n')[0])))

    /// A tick: the sample grid, the loss chart, a checkpoint (older ones pruned), and the report page.
    let private tick (session: Session) (progress: Progress) =
        let trainer = session.Trainer
        writeSamples session trainer.Position (session.Folder.TickGrid trainer.ImagesShown) "samples"
        LossChart.write session.Folder.LossChart (List.rev progress.Rows)
        let checkpoint = session.Folder.Checkpoint trainer.ImagesShown
        trainer.Save checkpoint
        Checkpoint.prune session.Folder session.Config.KeepCheckpoints
        writeReport session
        session.Options.Report(Ticked(trainer.ImagesShown, checkpoint))

    /// A non-finite loss or weight: roll back to the newest checkpoint, then retry at half the learning rate (when
    /// configured) or stop with a message that says what was kept.
    let private recover (session: Session) (progress: Progress) (e: exn) =
        let trainer = session.Trainer
        // Loading the checkpoint restores the scale it was saved with; every retry must go below the last one.
        let scaleBefore = trainer.LearningRateScale
        match restoreNewestGood session.Folder trainer session.Options.Report with
        | None -> raise (TrainingFailedException(sprintf "%s There is no checkpoint to roll back to: lower the learning rate (--lr) and start again." e.Message))
        | Some good ->
            let rows = dropLogsAfter session.Folder trainer.ImagesShown
            if progress.Retries < session.Config.NonFiniteRetries then
                trainer.SetLearningRateScale(min scaleBefore trainer.LearningRateScale / 2.0)
                session.Options.Report(Warning(sprintf "%s Rolled back to %s; retrying with learning rate %g (retry %d of %d)."
                                                   e.Message (Path.GetFileName good) trainer.LearningRate (progress.Retries + 1) session.Config.NonFiniteRetries))
                { progress with Rows = List.rev rows; Pending = []; Retries = progress.Retries + 1 }
            else
                raise (TrainingFailedException(
                    sprintf "%s Rolled back to %s (%d images); nothing non-finite was saved. Lower the learning rate or allow retries (--nan-retries N), then continue with --resume %s."
                        e.Message (Path.GetFileName good) trainer.ImagesShown session.Folder.Path))

    /// An unexpected error of the native engine (libtorch, through TorchSharp) in a step or its upkeep: the state in
    /// memory may be half-updated, so the run rolls back to its newest good checkpoint and retries from there once;
    /// a second fault from the same checkpoint stops it with one line that names the error, what is kept and the
    /// `--resume` command. Nothing after that checkpoint was saved, so nothing torn is ever resumed.
    let private recoverFromNativeFault (session: Session) (progress: Progress) (e: Runtime.InteropServices.ExternalException) =
        let trainer = session.Trainer
        let reached = trainer.ImagesShown
        let error = e.Message.Split('\n').[0].Trim()
        let resume = sprintf "dotnet fsi train.fsx -- --resume %s" session.Folder.Path
        match (try restoreNewestGood session.Folder trainer session.Options.Report with :? CheckpointException -> None) with
        | None ->
            raise (TrainingFailedException(sprintf "Training stopped at %d images by a native error (%s) before its first checkpoint; nothing was kept: start again." reached error))
        | Some good when progress.NativeRetryFrom = Some good ->
            raise (TrainingFailedException(
                sprintf "Training stopped at %d images by a native error (%s), again after a retry from %s; the run is kept at %s (%d images): continue with %s"
                    reached error (Path.GetFileName good) (Path.GetFileName good) trainer.ImagesShown resume))
        | Some good ->
            let rows = dropLogsAfter session.Folder trainer.ImagesShown
            session.Options.Report(Warning(sprintf "A native error at %d images (%s); rolled back to %s (%d images) and retrying once from there."
                                               reached error (Path.GetFileName good) trainer.ImagesShown))
            { progress with Rows = List.rev rows; Pending = []; NativeRetryFrom = Some good }

    /// Appends the row of the steps since the last one (to log.csv and TensorBoard).
    let private logRow (session: Session) (progress: Progress) (before: SchedulePosition) (metrics: PhaseEndMetrics) =
        let now = session.Clock.Elapsed.TotalSeconds
        let mean f = progress.Pending |> List.averageBy f
        let row =
            { ImagesShown = session.Trainer.ImagesShown; Resolution = before.Resolution; Phase = string before.Phase
              Alpha = before.Alpha; DLoss = mean (fun r -> r.DLoss); GLoss = mean (fun r -> r.GLoss)
              GradientPenalty = mean (fun r -> r.GradientPenalty)
              Adversarial = mean (fun r -> r.Adversarial)
              Drift = mean (fun r -> r.Drift)
              ClassAccuracy = mean (fun r -> r.ClassAccuracy)
              ImagesPerSecond = float progress.IntervalImages / max 1e-9 (now - progress.IntervalStart)
              WallSeconds = session.WallOffset + now
              Swd = metrics.Swd
              MsSsim = metrics.MsSsim
              FdResNet18 = metrics.FdResNet18
              Kid = metrics.Kid
              Precision = metrics.Precision
              Recall = metrics.Recall }
        RunLog.append session.Folder [ row ]
        session.TensorBoard |> Option.iter (fun log ->
            log.Row(row, session.Trainer.LearningRate, before.Lod))
        session.Options.Report(Logged(row, session.Trainer.Position, session.Total))
        { progress with Rows = row :: progress.Rows; Pending = []; IntervalImages = 0; IntervalStart = now }

    /// Everything but training that follows a step from `before`, as `Cadence` decides.
    let private upkeep (session: Session) (progress: Progress) (before: SchedulePosition) (result: StepResult) =
        let todo = Cadence.after session.Config session.StopAt before session.Trainer.Position
        let progress = { progress with Pending = result :: progress.Pending; IntervalImages = progress.IntervalImages + result.Images }
        let metrics =
            if todo.Metrics then
                Evaluation.phaseEnd (TrainingConfig.metricNames session.Config) session.Trainer.State.Ema before session.Data
                    session.Config.MetricImages session.Trainer.Streams session.Trainer.Device
            else Evaluation.notMeasured
        let progress = if todo.LogRow then logRow session progress before metrics else progress
        if todo.PhaseGrid then
            writeSamples session before (session.Folder.PhaseGrid before) "phase_end"
            histograms session
            // The diversity guard: a generator whose samples have collapsed is named at the phase end, not found later.
            let diversity = Diversity.ratio session.Trainer.State.Ema before session.Data session.Trainer.Streams session.Trainer.Device
            session.TensorBoard |> Option.iter (fun log -> log.Scalar("metrics/diversity", diversity, session.Trainer.ImagesShown))
            if diversity < Diversity.collapseRatio then
                session.Options.Report(Warning(
                    sprintf "At the end of %d² %O the samples vary %.2f× as much as the training images (pairwise distance): the generator may be collapsing onto a few images. Lower --lr, or try --augment, --loss or --r1." before.Resolution before.Phase diversity))
        if todo.Tick then
            tick session progress
            { progress with IntervalStart = session.Clock.Elapsed.TotalSeconds } // the tick's own time is not throughput
        else progress

    let rec private loop (session: Session) (progress: Progress) =
        if session.Trainer.ImagesShown >= session.StopAt || session.Options.Cancel.IsCancellationRequested then progress
        else
            let before = session.Trainer.Position
            let next =
                try
                    let result = session.Trainer.Step()
                    session.Options.OnStep session.Trainer
                    upkeep session progress before result
                with
                | NonFiniteException _ as e -> recover session progress e
                | :? Runtime.InteropServices.ExternalException as e -> recoverFromNativeFault session progress e
            loop session next

    /// Whether any process asks to stop (its signal, its time budget), agreed by all: every process then stops after
    /// the same step. One float all-reduced per step.
    let private anyProcessStops (world: World) (stop: bool) =
        let flag = [| (if stop then 1.0f else 0.0f) |]
        Mpi.allReduceSum flag 1
        flag[0] > 0.0f

    /// Rank 0's yes or no, told to every process.
    let private rootSays (world: World) (yes: bool) =
        let flag = [| (if yes then 1uy else 0uy) |]
        Mpi.broadcast flag 1 0
        flag[0] = 1uy

    /// The loop of several processes: each takes every step (the Trainer averages their gradients); rank 0 alone does
    /// the upkeep (log, grids, checkpoints, metrics) and the roll-backs, whose state it then shares. A stop is agreed,
    /// so that no process is left waiting in a collective call; a native fault, which one process cannot recover from
    /// alone, ends the job (the command aborts it).
    let rec private loopTogether (session: Session) (progress: Progress) =
        let trainer = session.Trainer
        let wanted = trainer.ImagesShown >= session.StopAt || session.Options.Cancel.IsCancellationRequested
        if anyProcessStops session.World wanted then progress
        else
            let before = trainer.Position
            let next, rolledBack =
                try
                    let result = trainer.Step()
                    session.Options.OnStep trainer
                    (if session.World.IsRoot then upkeep session progress before result else progress), false
                with NonFiniteException _ as e ->
                    // The losses are averaged before they are checked, so every process raises at the same step.
                    (if session.World.IsRoot then recover session progress e else progress), true
            if rootSays session.World (session.World.IsRoot && rolledBack) then shareState session.World trainer
            loopTogether session next

    /// The final generator's interpolation strip between two fixed seeds' latents.
    let private writeInterpolation (session: Session) =
        let a, b = interpolationSeeds
        let arch = session.Config.Architecture
        use latents = Sampling.interpolationLatents arch.LatentSize a b interpolationSteps
        // A conditional run's strip walks the latents of the first class.
        let input, first =
            Sampling.conditionalInput arch.LabelSize latents (fun () -> torch.zeros([| int64 interpolationSteps |], dtype = torch.ScalarType.Int64))
        use z = if first.IsSome then input else latents.alias()
        first |> Option.iter (fun l -> l.Dispose())
        use images = session.Trainer.SampleAt(session.Trainer.Position, z)
        use strip = ImageGrid.Compose(images, interpolationSteps, 64)
        ImageGrid.WritePng(session.Folder.Interpolation, strip)

    /// The end of the run, a stop signal or a requested stop: always leave a checkpoint of exactly where it stands,
    /// and the report page.
    let rec private finish (session: Session) (progress: Progress) =
        let trainer = session.Trainer
        if not session.World.IsRoot then trainer.Position else
        // Steps since the last row (a stop signal between rows): their row, so that the checkpoint's position has one.
        let progress =
            match progress.Pending with
            | last :: _ -> logRow session progress (Schedule.at session.Config (trainer.ImagesShown - int64 last.Images)) Evaluation.notMeasured
            | [] -> progress
        let retried =
            if session.Folder.Checkpoints() |> List.tryHead <> Some(session.Folder.Checkpoint trainer.ImagesShown) then
                try tick session progress; None
                with NonFiniteException _ as e when session.World.Size = 1 -> Some(recover session progress e) // rolled back: train again from there
            else None
        match retried with
        | Some progress -> finish session (loop session progress)
        | None ->
            if trainer.IsDone then
                writeSamples session trainer.Position session.Folder.Final "final"
                histograms session
                writeInterpolation session
            writeReport session
            session.Options.Report(Finished(trainer.Position, session.Options.Cancel.IsCancellationRequested || not trainer.IsDone))
            trainer.Position

    /// Runs (or resumes) training in the processes of `world` (`World.single`: this process alone); returns the
    /// final schedule position. Every process of the world calls it with the same options.
    let runIn (world: World) (options: RunOptions) =
        let config = TrainingConfig.validate options.Config
        let folder, created =
            if not world.IsRoot then RunFolder(Path.GetFullPath options.Folder), false
            elif options.Resume then RunFolder.openExisting options.Folder, false
            else RunFolder.create options.Folder
        if config.DataFolder <> "" then
            let data = Path.TrimEndingDirectorySeparator(Path.GetFullPath config.DataFolder) + string Path.DirectorySeparatorChar
            if (folder.Path + string Path.DirectorySeparatorChar).StartsWith(data, StringComparison.Ordinal) then
                if created then RunFolder.abandon folder created
                raise (RunFolderException(sprintf "--out: '%s' is inside the data folder '%s'; the run's samples would become training images. Choose a folder outside it." options.Folder config.DataFolder))
        let session, progress =
            try start world options config folder
            with
            | RunLockedException _ -> reraise () // the folder is another process's now: leave its files alone
            | _ when not options.Resume && world.IsRoot ->
                RunFolder.abandon folder created
                reraise ()
        use session = session
        if world.IsRoot && not (File.Exists folder.Reals) then
            let top = session.Data.LevelCount - 1
            use reals = Minibatch.gather session.Data (Minibatch.draw (uint64 config.Seed) 0L top 36 session.Data.Count false)
            use grid = ImageGrid.Square(reals)
            ImageGrid.WritePng(folder.Reals, grid)
            session.TensorBoard |> Option.iter (fun log -> log.Image("reals", grid, session.Trainer.ImagesShown))
        options.Report(Started(session.Trainer.Position, session.Total))
        let progress = { progress with IntervalStart = session.Clock.Elapsed.TotalSeconds }
        try finish session (if world.Size > 1 then loopTogether session progress else loop session progress)
        with
        | :? IOException as e ->
            let kept =
                match folder.Checkpoints() with
                | newest :: _ -> sprintf "the newest checkpoint, %s, is intact" (Path.GetFileName newest)
                | [] -> "no checkpoint was written yet"
            raise (TrainingFailedException(
                    sprintf "%s Training stopped; %s. Fix the cause (disk space, permissions), then continue with --resume %s."
                        (e.Message.Split('\n')[0]) kept options.Folder))

    /// Runs (or resumes) training in this process alone; returns the final schedule position.
    let run (options: RunOptions) = runIn World.single options
