// A trained run loaded for sampling: grids, numbered images, interpolations.
namespace ProGan.Training.Output

open System
open System.IO
open System.Threading
open TorchSharp
open ProGan.Keras.Backend
open ProGan.Keras.Models
open ProGan.Keras.Serving
open ProGan.Training.Basics
open ProGan.Training.Config
open ProGan.Training.Paper
open ProGan.Training.Runs

/// A trained run, loaded for sampling: its configuration, the EMA generator of one checkpoint (loaded by
/// ProGan.Keras.Serving), and where in the schedule that checkpoint was taken.
type LoadedRun =
    { Config: TrainingConfig
      Checkpoint: string
      /// The package's view of the checkpoint: the EMA generator, its header and position.
      Generator: TrainedGenerator
      Ema: ProgressiveGenerator
      Position: SchedulePosition
      /// A conditional run's class names (empty for an unconditional run).
      ClassNames: string[]
      /// The class every image is drawn from (`generate.fsx --class`); None: the classes in turn.
      Class: int option }
    interface IDisposable with
        member this.Dispose() = this.Generator.Dispose()

/// Sampling a trained generator: grids, single images and latent interpolation (as the TF-Hub ProGAN chapter does).
/// Latents, sampling and interpolation are ProGan.Keras.Serving's (`Latents`, `TrainedGenerator`), so these images
/// are exactly the ones the package draws for the same seed. Images are drawn and written a batch at a time, so that
/// any count fits in memory.
module Generation =

    /// Images drawn at once.
    let batchSize = Latents.BatchSize

    /// Images a grid shows at most (a grid of more is no longer a picture a person looks at).
    let maxGridImages = 256

    /// Loads the EMA generator of `checkpoint` (a path, or a file name in the run folder; default: the newest) of a
    /// run folder.
    let load (runFolder: string) (checkpoint: string option) =
        let folder =
            try RunFolder.openExisting runFolder
            with RunFolderException message -> raise (RunFolderException(message.Replace("--resume", "--run")))
        let config = RunFolder.readConfig folder
        let path =
            match checkpoint with
            | Some c ->
                let p = if Path.IsPathRooted c || File.Exists c then c else Path.Combine(folder.Path, c)
                match FileKind.at p with
                | Missing -> raise (CheckpointException(p, sprintf "does not exist; the run's checkpoints are %s." (String.Join(", ", folder.Checkpoints() |> List.map Path.GetFileName))))
                | _ -> p
            | None ->
                match folder.Checkpoints() with
                | newest :: _ -> newest
                | [] -> raise (RunFolderException(sprintf "--run: the run folder '%s' has no checkpoint yet; train longer (a checkpoint is written every tick)." runFolder))
        if checkpoint.IsNone then folder.SkippedCheckpoints() |> Option.iter (eprintfn "warning: %s.")
        let generator =
            try TrainedGenerator.FromCheckpoint(path, TorchBackend.Device)
            with :? CheckpointException as e when checkpoint.IsNone ->
                // The newest is damaged: name the newest good one, which --checkpoint takes.
                let good = folder.Checkpoints() |> List.tryFind (fun c -> c <> path && (try Checkpoint.readHeader c |> ignore; true with :? CheckpointException -> false))
                match good with
                | Some g ->
                    raise (CheckpointException(path, sprintf "%s The newest good checkpoint is %s: pass --checkpoint %s." e.Problem (Path.GetFileName g) (Path.GetFileName g)))
                | None -> reraise ()
        match Checkpoint.differences config.Architecture generator.Architecture with
        | [] -> ()
        | diff ->
            generator.Dispose()
            raise (ArchitectureMismatchException(path, String.Join("; ", diff)))
        let classNames = match (RunFolder.readManifest folder).ClassNames with null -> [||] | names -> names
        { Config = config; Checkpoint = path; Generator = generator; Ema = generator.Network
          Position = Schedule.at config generator.Header.ImagesShown; ClassNames = classNames; Class = None }

    /// The run drawing only class `name` (a class name, or its index).
    let withClass (run: LoadedRun) (name: string) =
        if run.Generator.Classes = 0 then
            raise (RunFolderException(sprintf "--class %s: the run is not conditional (it was trained without --labels)." name))
        let index =
            match Array.tryFindIndex ((=) name) run.ClassNames, Int32.TryParse name with
            | Some i, _ -> i
            | None, (true, i) when i >= 0 && i < run.Generator.Classes -> i
            | _ -> raise (RunFolderException(sprintf "--class %s: the run's classes are %s." name (String.Join(", ", run.ClassNames))))
        { run with Class = Some index }

    /// `count` latents drawn from N(0, I) with `seed` (`Latents.FromSeed`).
    let latents (latentSize: int) (seed: int) (count: int) = Latents.FromSeed(latentSize, seed, count)

    /// Images in [−1, 1] from the EMA generator at the run's position, on the CPU.
    let sample (run: LoadedRun) (z: torch.Tensor) =
        run.Generator.Generate(z, Sampling.generatorPosition run.Position, Option.toNullable run.Class)

    /// Spherical interpolation between two latents on the normalised latent sphere (`Latents.Slerp`: the generator's
    /// first layer normalises latents to unit RMS, so interpolating on that sphere keeps every point a typical latent).
    let slerp (a: torch.Tensor) (b: torch.Tensor) (t: float) = Latents.Slerp(a, b, t)

    /// Draws the images of latents `first` … `first + count − 1` (made by `latentsOf`) a batch at a time, handing each
    /// batch and its first index to `write` and the images done to `progress`; `cancel` stops it between batches.
    /// Returns the images written.
    let private inBatches (run: LoadedRun) (count: int) (cancel: CancellationToken) (progress: int -> unit) (latentsOf: int -> int -> torch.Tensor) (write: int -> torch.Tensor -> unit) =
        let mutable written = 0
        for first in 0 .. batchSize .. count - 1 do
            if not cancel.IsCancellationRequested then
                use z = latentsOf first (min batchSize (count - first))
                use images = sample run z
                write first images
                written <- first + int images.shape[0]
                progress written
        written

    /// Writes each image of a batch to its own PNG, named by `pathOf` its index.
    let private saveEach (first: int) (images: torch.Tensor) (pathOf: int -> string) =
        for i in 0 .. int images.shape[0] - 1 do
            use image = images[int64 i]
            ImageGrid.SaveOne(pathOf (first + i), image)

    /// The file of the grid's latents that `writeSamples` writes beside the grid (NumPy .npy, float32 [n, latent]).
    let private latentsFile (folder: string) (seed: int) = Path.Combine(folder, sprintf "latents-seed%d.npy" seed)

    /// Writes `count` samples from `seed` as single PNGs, the first `maxGridImages` of them as a grid, and the grid's
    /// latents as `latents-seed<seed>.npy` (so that any runtime of an exported model can draw the same grid), stopped
    /// between batches by `cancel` (the images written are kept, and the grid shows those of them it would have
    /// shown); `progress` hears the images done. Returns the grid's path and the number of single images written.
    let writeSamplesUntil (run: LoadedRun) (folder: string) (count: int) (seed: int) (cancel: CancellationToken) (progress: int -> unit) =
        Directory.CreateDirectory folder |> ignore
        let grid = Path.Combine(folder, sprintf "samples-seed%d.png" seed)
        let gridImages = ResizeArray<torch.Tensor>()
        let gridLatents = ResizeArray<torch.Tensor>()
        use batches = (Latents.Batches(run.Config.Architecture.LatentSize, seed, count)).GetEnumerator()
        let written =
          inBatches run count cancel progress (fun _ _ -> batches.MoveNext() |> ignore; batches.Current) (fun first images ->
            saveEach first images (fun i -> Path.Combine(folder, sprintf "sample-seed%d-%03d.png" seed i))
            if first < maxGridImages then
                let shown = int64 (min (int images.shape[0]) (maxGridImages - first))
                gridImages.Add(images.narrow(0L, 0L, shown).clone())
                gridLatents.Add(batches.Current.narrow(0L, 0L, shown).clone()))
        if gridImages.Count > 0 then
            use all = torch.cat(gridImages.ToArray(), 0L)
            use allLatents = torch.cat(gridLatents.ToArray(), 0L)
            for t in Seq.append gridImages gridLatents do t.Dispose()
            ImageGrid.Save(grid, all)
            Npy.Write(latentsFile folder seed, allLatents)
        grid, written

    /// `writeSamplesUntil` to the end: all `count` samples.
    let writeSamples (run: LoadedRun) (folder: string) (count: int) (seed: int) =
        writeSamplesUntil run folder count seed CancellationToken.None ignore

    /// Frames a strip shows at most; longer interpolations show evenly spaced frames.
    let maxStripFrames = 64

    /// Writes the interpolation from seed A to seed B as numbered frames and one strip (of at most `maxStripFrames`
    /// evenly spaced frames); returns the strip's path and the number of frames.
    let writeInterpolation (run: LoadedRun) (folder: string) (seedA: int) (seedB: int) (steps: int) =
        Directory.CreateDirectory folder |> ignore
        let latentSize = run.Config.Architecture.LatentSize
        inBatches run steps CancellationToken.None ignore (fun first n -> Sampling.interpolation latentSize seedA seedB steps [ first .. first + n - 1 ]) (fun first images ->
            saveEach first images (fun i -> Path.Combine(folder, sprintf "interpolation-%d-%d-frame%03d.png" seedA seedB i))) |> ignore
        let shown = min steps maxStripFrames
        let picks = [ for k in 0 .. shown - 1 -> int (round (float k * float (steps - 1) / float (max 1 (shown - 1)))) ]
        use z = Sampling.interpolation latentSize seedA seedB steps picks
        use images = sample run z
        let strip = Path.Combine(folder, sprintf "interpolation-%d-%d.png" seedA seedB)
        use grid = ImageGrid.Compose(images, shown, ImageGrid.MinCell)
        ImageGrid.WritePng(strip, grid)
        strip, steps
