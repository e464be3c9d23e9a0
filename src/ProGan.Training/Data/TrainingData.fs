// The images a configuration trains on: its folder, prepared set, or the procedural shapes.
namespace ProGan.Training.Data

open System
open System.Threading
open ProGan.Training.Config
open ProGan.Training.Progress

/// The images a configuration trains on, prepared at its final resolution: the folder it names, or the embedded
/// procedural shapes when it names none.
module TrainingData =

    /// What the data of `config` is, in words.
    let describe (config: TrainingConfig) =
        if config.DataFolder = "" then sprintf "embedded procedural shapes (%d images)" config.ProceduralImages
        else config.DataFolder

    /// Loads (or renders) the data of `config` — a prepared data set (prepare.fsx), a folder of images, or the
    /// procedural shapes; `cancel` stops a long preparation between chunks.
    let load (config: TrainingConfig) (report: TrainingEvent -> unit) (cancel: CancellationToken) : TrainingImages =
        let resolution = config.Architecture.Resolution
        if config.DataFolder = "" then
            report (Info(sprintf "Rendering %d procedural images at %d²" config.ProceduralImages resolution))
            Procedural.pyramidOf config.ProceduralImages resolution config.Architecture.ImageChannels config.Seed (config.Labels = ShapeClasses)
        elif PreparedDataset.isDataset config.DataFolder || PreparedDataset.hasLevelFiles config.DataFolder then
            // Every level file the run reads is checked against dataset.json (size and SHA-256, one streamed read),
            // so a changed file is refused here rather than trained on.
            let clock = Diagnostics.Stopwatch.StartNew()
            let data = PreparedDataset.openFor config.DataFolder resolution config.Architecture.ImageChannels true
            report (Info(sprintf "Verified the prepared data set against its SHA-256s: %.0f MB in %.1f s"
                             (float (PreparedDataset.levelBytes data.Index resolution) / 1e6) clock.Elapsed.TotalSeconds))
            if config.Labels <> Unlabelled && data.Labels.Length = 0 then
                (data :> IDisposable).Dispose()
                raise (DataException(sprintf "--labels: the data set '%s' has no labels; prepare it with --labels folders." config.DataFolder))
            report (Info(sprintf "Reading the prepared data set %s: %d images, read from disk a minibatch at a time" config.DataFolder data.Count))
            data
        else
            let minimum = config.Minibatch |> Array.max
            let load = ImageFolder.load config.DataFolder resolution config.Architecture.ImageChannels (config.Labels = FolderClasses) minimum report cancel
            report (Info(sprintf "%s %d images from %s" (if load.FromCache then "Loaded cached" else "Prepared") load.Images.Count config.DataFolder))
            ImageFolder.summarize load.Skipped |> Option.iter (Warning >> report)
            load.Images
