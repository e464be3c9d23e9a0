// The run folder: every name in it, run.json, config.json, creating and opening one.
namespace ProGan.Training.Runs

open System
open System.IO
open System.Text.Json
open System.Text.RegularExpressions
open ProGan.Keras.IO
open ProGan.Keras.Serving
open ProGan.Training.Basics
open ProGan.Training.Config

/// What `run.json` says of its folder: that ProGan.Keras made it, in which format, and which images it trains on.
[<CLIMutable>]
type RunManifest =
    { /// Always `progan-keras-run`.
      Format: string
      /// The run-folder format; a folder of another version is refused, never misread.
      Version: int
      /// The library version that created the run.
      CreatedBy: string
      CreatedUtc: DateTime
      /// Images in the prepared training data (0 until the data is first prepared).
      DataImages: int
      /// SHA-256 of the prepared training images (`TrainingImages.ContentHash`); resuming on other images is refused.
      DataSha256: string
      /// A conditional run's class names in index order (`generate.fsx --class NAME`); empty otherwise.
      ClassNames: string[]
      /// The processes the run last trained in (data-parallel over MPI); 0 in a run.json from before it was recorded,
      /// which trained in one.
      Processes: int }

/// A folder given as a run folder cannot be one: the message is one line that names it and says what to do.
exception RunFolderException of string
    with override this.Message = this.Data0

/// What `generate.fsx -- --video` writes into its output folder.
type VideoFiles(folder: string) =
    let file (name: string) = Path.Combine(folder, name)
    /// The latent walk through the seeds, as an animated GIF and (where ffmpeg is installed) an MP4.
    member _.LoopGif = file "interpolation-loop.gif"
    member _.LoopMp4 = file "interpolation-loop.mp4"
    /// The time-lapse of the run's tick grids.
    member _.TrainingGif = file "training.gif"
    member _.TrainingMp4 = file "training.mp4"
    /// One latent at every resolution the run has.
    member _.LevelsOfDetail(seed: int) = file (sprintf "levels-of-detail-seed%d.png" seed)

/// The files of one training run. Every name a run writes is made here, and nowhere else.
type RunFolder(path: string) =
    let file (name: string) = Path.Combine(path, name)

    /// The folder.
    member _.Path = path
    /// `run.json`: marks the folder as a run of this library (see `RunManifest`).
    member _.Manifest = file RunFiles.Manifest
    /// `config.json`: the `TrainingConfig` the run trains with.
    member _.Config = file "config.json"
    /// `log.csv`: one row every `LogImages` (see `RunLog`).
    member _.Log = file "log.csv"
    /// `loss.png`: the loss curves, redrawn every tick.
    member _.LossChart = file "loss.png"
    /// `reals.png`: a grid of training images.
    member _.Reals = file "reals.png"
    /// The sample grid of the tick at `shown` images.
    member _.TickGrid(shown: int64) = file (sprintf "fakes-%09d.png" shown)
    /// The sample grid at the end of the phase that `position` was in.
    member _.PhaseGrid(position: SchedulePosition) =
        file (sprintf "phase-%03d-%dx%d-%O.png" position.PhaseIndex position.Resolution position.Resolution position.Phase)
    /// `final.png`: samples at the end of the schedule.
    member _.Final = file "final.png"
    /// The checkpoint after `shown` images (names sort by images shown).
    member _.Checkpoint(shown: int64) = file (RunFiles.CheckpointName shown)
    /// Where a damaged checkpoint is set aside.
    member _.SetAside(checkpoint: string) = checkpoint + ".bad"
    /// `run.lock`: held with an exclusive OS lock by the process training in the folder.
    member _.Lock = file "run.lock"
    /// Who holds the lock (the locked file itself cannot be read by others).
    member _.LockHolder = file "run.lock.holder"
    /// `swd.json`: the latest `evaluate.fsx` result.
    member _.Swd = file "swd.json"
    /// `generated/`: `generate.fsx`'s default output folder.
    member _.Generated = file "generated"
    /// `export.fsx`'s default output: the EMA generator at `resolution`² as an ONNX model.
    member _.Onnx(resolution: int) = file (sprintf "generator-%dx%d.onnx" resolution resolution)
    /// `export.fsx --format checkpoint`'s default: the EMA generator alone (not a checkpoint of the run: no G, D, Adam).
    member _.GeneratorCheckpoint(resolution: int) = file (sprintf "generator-%dx%d.ckpt" resolution resolution)
    /// `tensorboard/`: TensorBoard event files (TorchSharp's `SummaryWriter`; `tensorboard --logdir` reads them).
    member _.TensorBoard = file "tensorboard"
    /// `report.html`: the run report, one self-contained page, rewritten every tick.
    member _.Report = file "report.html"
    /// `interpolation.png`: the final generator's latent interpolation strip.
    member _.Interpolation = file "interpolation.png"
    /// `metrics.csv`: SWD and MS-SSIM of every kept checkpoint (`evaluate.fsx -- --all-checkpoints`).
    member _.Metrics = file "metrics.csv"
    /// `metrics.png`: those metrics as curves.
    member _.MetricsChart = file "metrics.png"

    /// The tick grids as (images shown, path), oldest first.
    member _.TickGrids() =
        if Directory.Exists path then
            Directory.GetFiles(path, "fakes-*.png")
            |> Array.choose (fun f ->
                let m = Regex.Match(Path.GetFileName f, @"^fakes-(\d{9})\.png$")
                if m.Success && FileKind.isRegular f then Some(int64 m.Groups[1].Value, f) else None)
            |> Array.sortBy fst |> List.ofArray
        else []

    /// The phase-end grids as (phase index, resolution, phase name, path), oldest first.
    member _.PhaseGrids() =
        if Directory.Exists path then
            Directory.GetFiles(path, "phase-*.png")
            |> Array.choose (fun f ->
                let m = Regex.Match(Path.GetFileName f, @"^phase-(\d{3})-(\d+)x\d+-(stabilise|fade-in)\.png$")
                if m.Success && FileKind.isRegular f then Some(int m.Groups[1].Value, int m.Groups[2].Value, m.Groups[3].Value, f) else None)
            |> Array.sortBy (fun (index, _, _, _) -> index) |> List.ofArray
        else []

    /// The checkpoints, newest first (regular files only: a FIFO under a checkpoint's name would block a reader).
    member _.Checkpoints() = RunFiles.Checkpoints path |> List.ofSeq
    /// What `Checkpoints` passes over, in words, if anything: entries named like checkpoints that are not files.
    member _.SkippedCheckpoints() =
        match RunFiles.NotCheckpoints path |> List.ofSeq with
        | [] -> None
        | skipped ->
            Some(sprintf "passed over %s: named like checkpoints, but %s"
                    (String.Join(", ", skipped |> List.map Path.GetFileName))
                    (String.Join(", ", skipped |> List.map (fun f -> match FileKind.at f with Special what -> what | Folder -> "a folder" | _ -> "gone") |> List.distinct)))

module RunFolder =

    /// The `Format` of every manifest.
    let format = "progan-keras-run"

    /// The run-folder format this version writes and reads.
    let version = 1

    /// Names of the files a run writes (so its sweep of stray temporary files touches nothing else).
    let private ownName =
        Regex(@"^(run\.json|config\.json|log\.csv|loss\.png|reals\.png|final\.png|swd\.json|run\.lock\.holder|fakes-\d{9}\.png|phase-\d{3}-\d+x\d+-(stabilise|fade-in)\.png|checkpoint-\d{12}\.ckpt|report\.html|interpolation\.png|metrics\.csv|metrics\.png)$")

    /// Names of TensorBoard event files (TorchSharp's `SummaryWriter`: `events.out.tfevents.<ticks>.<host>.<pid>.<n>`),
    /// in `tensorboard/` and its folders.
    let private eventName = Regex(@"^events\.out\.tfevents\.\d+\.[^/]+$")

    /// Whether `name` is a TensorBoard event file's name.
    let private isEventFileName (name: string) = eventName.IsMatch name

    /// The event files of a run, oldest first in each folder (the writer's names start with its clock's ticks).
    let eventFiles (folder: RunFolder) =
        if Directory.Exists folder.TensorBoard then
            Directory.GetFiles(folder.TensorBoard, "events.out.tfevents.*", SearchOption.AllDirectories)
            |> Array.filter (fun f -> isEventFileName (Path.GetFileName f) && FileKind.isRegular f)
            |> Array.sortBy (fun f -> Path.GetDirectoryName f, Path.GetFileName f)
            |> List.ofArray
        else []

    /// Whether `name` is a file name a run writes.
    let private isOwnName (name: string) = ownName.IsMatch name

    /// Names of the files `generate.fsx` writes into its output folder (`Generation`, `VideoFiles`), and their
    /// temporary files: what it may write among without `--force`.
    let private generatedName =
        Regex(@"^(samples-seed-?\d+\.png|sample-seed-?\d+-\d{3,}\.png|latents-seed-?\d+\.npy|interpolation--?\d+--?\d+(-frame\d{3,})?\.png|interpolation-loop\.(gif|mp4)|training\.(gif|mp4)|levels-of-detail-seed-?\d+\.png)(\.tmp)?$")

    /// Whether `name` is a file name `generate.fsx` writes.
    let private isGeneratedName (name: string) = generatedName.IsMatch name

    /// The output folder of `generate.fsx` (`--out`), created when missing: a folder that holds anything generate
    /// did not write is refused unless `force` (`OutputTargets.CheckFolderTarget`, the rule of every command that writes).
    let generatedFolder (path: string) (force: bool) =
        let full = OutputTargets.CheckFolderTarget(path, "--out", "generate.fsx", (fun entry -> isGeneratedName (Path.GetFileName entry) && FileKind.isRegular entry), force)
        Directory.CreateDirectory full |> ignore
        full

    let private json = JsonSerializerOptions(WriteIndented = true)

    let private fail format = Printf.kprintf (RunFolderException >> raise) format

    /// Reads `run.json`; a foreign or other-version manifest is refused with the reason.
    let readManifest (folder: RunFolder) =
        let manifest =
            try JsonSerializer.Deserialize<RunManifest>(File.ReadAllText folder.Manifest)
            with :? JsonException | :? IOException | :? UnauthorizedAccessException as e ->
                fail "'%s' is not readable (%s); it marks '%s' as a run folder." folder.Manifest (e.Message.Split('\n')[0]) folder.Path
        if isNull (box manifest) || manifest.Format <> format then
            fail "'%s' is not a ProGan.Keras run manifest; '%s' is not a run folder of this library." folder.Manifest folder.Path
        if manifest.Version <> version then
            fail "'%s' is a run of format %d (%s); this version (%s) reads format %d only. Use the version that made it, or start a new run."
                folder.Path manifest.Version manifest.CreatedBy About.version version
        manifest

    /// Writes `run.json` (atomically).
    let writeManifest (folder: RunFolder) (manifest: RunManifest) =
        AtomicFile.WriteAllText(folder.Manifest, JsonSerializer.Serialize(manifest, json))

    /// A fresh run folder at `path`, which must not exist or be an empty folder: training never writes into a folder
    /// that holds anything else, so nothing of a user's is overwritten or swept. Returns the folder and whether it was
    /// created here (so a start that fails can remove it again).
    let create (path: string) =
        if String.IsNullOrWhiteSpace path then fail "--out needs a folder name."
        let full = Path.GetFullPath path
        match FileKind.at full with
        | Regular _ | Special _ -> fail "--out: '%s' is a file, not a folder; pass a new or empty folder." path
        | Folder when RunFiles.IsRunFolder full ->
            fail "--out: '%s' already holds a run; continue it with --resume %s, or choose another folder." path path
        | Folder when Directory.EnumerateFileSystemEntries(full).GetEnumerator().MoveNext() ->
            fail "--out: '%s' is not empty and is not a run folder; training writes only into a new or empty folder, so that nothing in it is overwritten. Choose another folder." path
        | Folder -> RunFolder(full), false
        | Missing ->
            try
                Directory.CreateDirectory full |> ignore
                RunFolder(full), true
            with :? IOException | :? UnauthorizedAccessException as e ->
                fail "--out: cannot create the folder '%s': %s" path (e.Message.Split('\n')[0])

    /// An existing run folder at `path`, checked to be one of this version's.
    let openExisting (path: string) =
        if String.IsNullOrWhiteSpace path then fail "--resume needs a run folder."
        let full = Path.GetFullPath path
        match FileKind.at full with
        | Missing -> fail "--resume: the run folder '%s' does not exist." path
        | Regular _ | Special _ -> fail "--resume: '%s' is a file; pass the run folder that training wrote (--out)." path
        | Folder when not (RunFiles.IsRunFolder full) ->
            fail "--resume: '%s' is not a run folder (it has no run.json); pass the folder that training wrote (--out)." path
        | Folder ->
            let folder = RunFolder(full)
            readManifest folder |> ignore
            folder

    /// Removes the temporary files a process killed mid-write left behind: only `*.tmp` of names a run writes (and of
    /// event files, which a resume rewrites).
    let sweep (folder: RunFolder) =
        let stray (directory: string) (own: string -> bool) =
            for stale in Directory.GetFiles(directory, "*" + AtomicFile.TemporarySuffix) do
                let name = Path.GetFileName stale
                if own (name.Substring(0, name.Length - AtomicFile.TemporarySuffix.Length)) && FileKind.isRegular stale then
                    try File.Delete stale with :? IOException | :? UnauthorizedAccessException -> ()
        stray folder.Path isOwnName
        if FileKind.at folder.TensorBoard = Folder then
            for directory in Array.append [| folder.TensorBoard |] (Directory.GetDirectories(folder.TensorBoard, "*", SearchOption.AllDirectories)) do
                stray directory isEventFileName

    /// Undoes a start that failed before training began: removes the files a run writes, then the folder if it was
    /// created for the run and is now empty.
    let abandon (folder: RunFolder) (created: bool) =
        for file in Directory.GetFiles folder.Path do
            let name = Path.GetFileName file
            if isOwnName name || name = Path.GetFileName folder.Lock then
                try File.Delete file with :? IOException | :? UnauthorizedAccessException -> ()
        for events in eventFiles folder do
            try File.Delete events with :? IOException | :? UnauthorizedAccessException -> ()
        if FileKind.at folder.TensorBoard = Folder then
            // Deepest first, the folder itself last.
            let folders = Array.append (Directory.GetDirectories(folder.TensorBoard, "*", SearchOption.AllDirectories) |> Array.sortDescending) [| folder.TensorBoard |]
            for directory in folders do
                if not (Directory.EnumerateFileSystemEntries(directory).GetEnumerator().MoveNext()) then
                    try Directory.Delete directory with :? IOException | :? UnauthorizedAccessException -> ()
        if created && not (Directory.EnumerateFileSystemEntries(folder.Path).GetEnumerator().MoveNext()) then
            try Directory.Delete folder.Path with :? IOException | :? UnauthorizedAccessException -> ()

    /// Writes config.json (atomically), unless it says exactly this already: a resume that continues as configured
    /// leaves the file alone.
    let writeConfig (folder: RunFolder) (config: TrainingConfig) =
        let text = JsonSerializer.Serialize(config, json)
        let current = try Some(File.ReadAllText folder.Config) with :? IOException | :? UnauthorizedAccessException -> None
        if current <> Some text then AtomicFile.WriteAllText(folder.Config, text)

    /// The properties a JSON object must have to be read as `t` with nothing left to a default: every field of an F#
    /// record, every settable property of a C# record, recursively.
    let rec private missing (t: Type) (element: JsonElement) (prefix: string) =
        [ for p in t.GetProperties() do
            if p.CanWrite || Reflection.FSharpType.IsRecord t then
                match element.TryGetProperty p.Name with
                | true, value when value.ValueKind = JsonValueKind.Object && (Reflection.FSharpType.IsRecord p.PropertyType || p.PropertyType.Namespace = "ProGan.Keras.Models") ->
                    yield! missing p.PropertyType value (prefix + p.Name + ".")
                | true, _ -> ()
                | false, _ -> yield prefix + p.Name ]

    /// Fields added to `TrainingConfig` after runs were first saved, each with the value every run before it trained
    /// with: a config.json without one says what the run did, not that a setting is missing.
    let private addedLater : (string * (unit -> Nodes.JsonNode)) list =
        [ "Precision", (fun () -> Nodes.JsonValue.Create "float32")
          "ChannelsLastFrom", (fun () -> Nodes.JsonValue.Create 0) ]

    /// Reads config.json: every field must be present (or be one `addedLater`, from a run before it) and valid; a
    /// hand-edited or foreign file is refused with one line naming what is wrong, never read with defaults.
    let readConfig (folder: RunFolder) =
        let path = folder.Config
        let problem what = fail "'%s' %s; restore it from a copy, or start a new run." path what
        let text =
            match FileKind.at path with
            | Regular _ -> (try File.ReadAllText path with :? IOException | :? UnauthorizedAccessException as e -> problem (sprintf "cannot be read (%s)" e.Message))
            | _ -> problem "is missing"
        let text =
            try
                match Nodes.JsonNode.Parse text with
                | :? Nodes.JsonObject as o when o.ContainsKey "Architecture" -> // a training configuration at all
                    let absent = addedLater |> List.filter (fun (name, _) -> not (o.ContainsKey name))
                    for name, value in absent do o[name] <- value ()
                    if absent.IsEmpty then text else o.ToJsonString()
                | _ -> text
            with :? JsonException -> text // reported below
        let document =
            try JsonDocument.Parse text
            with :? JsonException as e -> problem (sprintf "is not valid JSON (%s)" (e.Message.Split('\n')[0]))
        use document = document
        if document.RootElement.ValueKind <> JsonValueKind.Object then problem "is not a training configuration (not a JSON object)"
        match missing typeof<TrainingConfig> document.RootElement "" with
        | [] -> ()
        | names -> problem (sprintf "lacks %s" (String.Join(", ", names)))
        let config =
            try JsonSerializer.Deserialize<TrainingConfig>(text)
            with :? JsonException as e -> problem (sprintf "has a value of the wrong type (%s)" (e.Message.Split('\n')[0]))
        try TrainingConfig.validate config
        with :? ArgumentException as e ->
            let line = e.Message.Split('\n')[0]
            problem (sprintf "has an invalid setting: %s" (line.Split(" (Parameter")[0]))
