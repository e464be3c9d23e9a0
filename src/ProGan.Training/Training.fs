namespace ProGan.Training

open System
open System.Diagnostics
open System.IO
open System.Threading
open TorchSharp
open ProGan.Keras.Backend

/// Where the real images come from.
type DataSource =
    /// The embedded procedural shapes (no file, no network).
    | Procedural
    /// A folder of images, read recursively.
    | Folder of path: string

/// What a run tells whoever watches it.
type TrainingEvent =
    | Info of string
    | Warning of string
    | Preparing of done': int * total: int
    | Started of position: SchedulePosition * total: int64
    | Logged of row: LogRow * position: SchedulePosition * total: int64
    | Ticked of images: int64 * checkpoint: string
    | Finished of position: SchedulePosition * stoppedEarly: bool

/// How to run.
type RunOptions =
    { Config: TrainingConfig
      RunFolder: string
      Data: DataSource
      /// Continue from the newest good checkpoint in RunFolder.
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

/// A whole progressive training run (reference `train.py train_progressive_gan`): one loop of steps, with a tick of
/// maintenance — sample grid, loss plot, checkpoint — every `TickImages` images and at every phase end.
module Training =

    /// The fixed latents every sample grid is drawn from (seeded apart from training's own randomness).
    let sampleLatents (config: TrainingConfig) (count: int) =
        ensureTorch ()
        use g = new torch.Generator(uint64 config.Seed + 1000UL)
        torch.randn([| int64 count; int64 config.Architecture.LatentSize |], generator = g)

    /// Loads (or renders) the data of a configuration at its final resolution.
    let loadDataFor (config: TrainingConfig) (source: DataSource) (report: TrainingEvent -> unit) =
        ensureTorch ()
        let resolution = config.Architecture.Resolution
        let minimum = config.Minibatch |> Array.max
        match source with
        | Procedural ->
            report (Info(sprintf "Rendering %d procedural images at %d²" config.ProceduralImages resolution))
            Procedural.pyramid config.ProceduralImages resolution config.Seed
        | Folder path ->
            let load = ImageFolder.load path resolution (0.0f, 0.0f, 0.0f) minimum (fun d t -> report (Preparing(d, t)))
            report (Info(sprintf "%s %d images from %s" (if load.FromCache then "Loaded cached" else "Prepared") load.Pyramid.Count path))
            ImageFolder.summarize load.Skipped |> Option.iter (Warning >> report)
            load.Pyramid

    /// The data source a configuration names.
    let sourceOf (config: TrainingConfig) = if String.IsNullOrEmpty config.DataFolder then Procedural else Folder config.DataFolder

    /// Loads (or renders) the data of a run.
    let loadData (options: RunOptions) = loadDataFor options.Config options.Data options.Report

    /// Restores the newest checkpoint that loads. A damaged one is reported and set aside as `*.bad` (so it is neither
    /// tried nor counted again), and the one before it is tried; the last one left is never set aside. A checkpoint of
    /// another architecture stops at once: the run, not the file, is wrong.
    let private restoreNewestGood (folder: string) (trainer: Trainer) (report: TrainingEvent -> unit) =
        let rec attempt candidates =
            match candidates with
            | [] -> None
            | path :: older ->
                try
                    trainer.Load path |> ignore
                    Some path
                with CheckpointException(_, _) as e ->
                    match older with
                    | [] -> raise e
                    | _ ->
                        (try File.Move(path, path + ".bad", true) with :? IOException -> ())
                        report (Warning(sprintf "%s; set aside as %s.bad, using the previous checkpoint." e.Message (Path.GetFileName path)))
                        attempt older
        attempt (Checkpoint.list folder)

    /// Runs (or resumes) training; returns the final schedule position.
    let run (options: RunOptions) =
        ensureTorch ()
        let config = TrainingConfig.validate options.Config
        use _lock = RunLock.acquire options.RunFolder
        // A process killed while writing leaves only *.tmp files behind; they are never read, only removed.
        for stale in Directory.GetFiles(options.RunFolder, "*.tmp*") do
            try File.Delete stale with :? IOException -> ()
        if not options.Resume then RunFolder.writeConfig options.RunFolder config
        use data = loadData options
        let device = TorchBackend.Device
        use trainer = new Trainer(config, data, device)
        let mutable rows = []
        if options.Resume then
            match restoreNewestGood options.RunFolder trainer options.Report with
            | Some path ->
                rows <- RunFolder.truncateLog options.RunFolder trainer.ImagesShown
                options.Report(Info(sprintf "Resumed from %s at %d images" (Path.GetFileName path) trainer.ImagesShown))
            | None -> options.Report(Warning "No checkpoint to resume from; starting at 0 images.")
        let total = TrainingConfig.totalImages config
        let stopAt = options.StopAfterImages |> Option.defaultValue total |> min total
        use fixedLatents = sampleLatents config 36
        let realsPath = Path.Combine(options.RunFolder, "reals.png")
        if not (File.Exists realsPath) then
            use random = new torch.Generator(uint64 config.Seed)
            use reals = data.Sample(data.Levels.Length - 1, 36, random, false, torch.CPU)
            ImageGrid.save realsPath reals

        let writeSamples (position: SchedulePosition) (name: string) =
            use images = trainer.SampleAt(position, fixedLatents)
            ImageGrid.save (Path.Combine(options.RunFolder, name)) images

        let checkpoint () =
            let path = Path.Combine(options.RunFolder, Checkpoint.fileName trainer.ImagesShown)
            trainer.Save path
            Checkpoint.prune options.RunFolder config.KeepCheckpoints
            path

        let tick () =
            writeSamples trainer.Position (sprintf "fakes-%09d.png" trainer.ImagesShown)
            RunFolder.plot options.RunFolder rows
            options.Report(Ticked(trainer.ImagesShown, checkpoint ()))

        options.Report(Started(trainer.Position, total))
        let clock = Stopwatch.StartNew()
        let wallOffset = rows |> List.tryLast |> Option.map (fun r -> r.WallSeconds) |> Option.defaultValue 0.0
        let mutable pending = []
        let mutable intervalImages, intervalStart = 0, clock.Elapsed.TotalSeconds
        let mutable retries = 0

        /// A non-finite loss or weight: roll back to the newest checkpoint, then retry at half the learning rate
        /// (when configured) or stop with a message that says what was kept.
        let recover (e: exn) =
            match restoreNewestGood options.RunFolder trainer options.Report with
            | None -> raise (TrainingFailedException(sprintf "%s There is no checkpoint to roll back to: lower the learning rate (--lr) and start again." e.Message))
            | Some good ->
                rows <- RunFolder.truncateLog options.RunFolder trainer.ImagesShown
                pending <- []
                if retries < config.NonFiniteRetries then
                    retries <- retries + 1
                    trainer.HalveLearningRate()
                    options.Report(Warning(sprintf "%s Rolled back to %s; retrying with learning rate %g (retry %d of %d)."
                                               e.Message (Path.GetFileName good) trainer.LearningRate retries config.NonFiniteRetries))
                else
                    raise (TrainingFailedException(
                        sprintf "%s Rolled back to %s (%d images); nothing non-finite was saved. Lower the learning rate or allow retries (--nan-retries N), then continue with --resume %s."
                            e.Message (Path.GetFileName good) trainer.ImagesShown options.RunFolder))

        /// Bookkeeping after a successful step: a log row, phase-end samples, a tick.
        let afterStep (before: SchedulePosition) (result: StepResult) =
            options.OnStep trainer
            pending <- result :: pending
            intervalImages <- intervalImages + result.Images
            let after = trainer.Position
            let crossed (every: int) = trainer.ImagesShown / int64 every > before.ImagesShown / int64 every
            let phaseChanged = after.PhaseIndex <> before.PhaseIndex
            let phaseEnded = phaseChanged || Schedule.isDone config trainer.ImagesShown
            let swd = if config.Metrics = "swd" && phaseEnded then trainer.Swd(before, config.MetricImages) else nan
            if crossed config.LogImages || phaseEnded || trainer.ImagesShown >= stopAt then
                let now = clock.Elapsed.TotalSeconds
                let mean f = pending |> List.averageBy f
                let row =
                    { ImagesShown = trainer.ImagesShown; Resolution = before.Resolution; Phase = string before.Phase
                      Alpha = before.Alpha; DLoss = mean (fun r -> r.DLoss); GLoss = mean (fun r -> r.GLoss)
                      GradientPenalty = mean (fun r -> r.GradientPenalty)
                      ImagesPerSecond = float intervalImages / max 1e-9 (now - intervalStart)
                      WallSeconds = wallOffset + now
                      Swd = swd }
                rows <- rows @ [ row ]
                RunFolder.appendLog options.RunFolder [ row ]
                options.Report(Logged(row, after, total))
                pending <- []
                intervalImages <- 0
                intervalStart <- now
            if phaseChanged then
                writeSamples before (sprintf "phase-%03d-%dx%d-%O.png" before.PhaseIndex before.Resolution before.Resolution before.Phase)
            if crossed config.TickImages || phaseChanged then
                tick ()
                intervalStart <- clock.Elapsed.TotalSeconds // the tick's own time is not training throughput

        while trainer.ImagesShown < stopAt && not options.Cancel.IsCancellationRequested do
            let before = trainer.Position
            try afterStep before (trainer.Step())
            with NonFiniteException _ as e -> recover e
        // The end of the run, a Ctrl+C, or a requested stop: always leave a checkpoint of exactly where it stands.
        let last = Checkpoint.list options.RunFolder |> List.tryHead
        if last <> Some(Path.Combine(options.RunFolder, Checkpoint.fileName trainer.ImagesShown)) then
            try tick () with NonFiniteException _ as e -> recover e
        if trainer.IsDone then writeSamples trainer.Position "final.png"
        options.Report(Finished(trainer.Position, options.Cancel.IsCancellationRequested || not trainer.IsDone))
        trainer.Position
