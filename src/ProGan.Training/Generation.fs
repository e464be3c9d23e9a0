namespace ProGan.Training

open System
open System.IO
open TorchSharp
open ProGan.Keras.Backend
open ProGan.Keras.Models

/// A trained run, loaded for sampling: its configuration, the EMA generator of one checkpoint, and where in the
/// schedule that checkpoint was taken.
type LoadedRun =
    { Config: TrainingConfig
      Checkpoint: string
      Ema: ProgressiveGenerator
      Position: SchedulePosition }
    interface IDisposable with
        member this.Dispose() = this.Ema.Dispose()

/// Sampling a trained generator: grids, single images and latent interpolation (as the TF-Hub ProGAN chapter does).
/// Images are drawn and written a batch at a time, so that any count fits in memory.
module Generation =

    /// Images drawn at once.
    let batchSize = 64

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
                | Regular _ -> p
                | Missing -> raise (CheckpointException(p, sprintf "does not exist; the run's checkpoints are %s." (String.Join(", ", folder.Checkpoints() |> List.map Path.GetFileName))))
                | Folder -> raise (CheckpointException(p, "is a folder, not a checkpoint file."))
                | Special what -> raise (CheckpointException(p, sprintf "is %s, not a checkpoint file." what))
            | None ->
                match folder.Checkpoints() with
                | newest :: _ -> newest
                | [] -> raise (RunFolderException(sprintf "--run: the run folder '%s' has no checkpoint yet; train longer (a checkpoint is written every tick)." runFolder))
        let ema = new ProgressiveGenerator(config.Architecture, TorchBackend.Device)
        try
            let header = Checkpoint.loadEma path ema
            { Config = config; Checkpoint = path; Ema = ema; Position = Schedule.at config header.ImagesShown }
        with _ ->
            ema.Dispose()
            reraise ()

    /// `count` latents drawn from N(0, I) with `seed`.
    let latents (latentSize: int) (seed: int) (count: int) = Sampling.latents latentSize (uint64 seed) count

    /// Images in [−1, 1] from the EMA generator at the run's position.
    let sample (run: LoadedRun) (z: torch.Tensor) =
        Sampling.at run.Ema run.Position z TorchBackend.Device

    /// Spherical interpolation between two latents on the normalised latent sphere (the generator's first layer
    /// normalises latents to unit RMS, so interpolating on that sphere keeps every point a typical latent).
    let slerp (a: torch.Tensor) (b: torch.Tensor) (t: float) =
        use scope = torch.NewDisposeScope()
        let d = float a.shape[a.shape.Length - 1]
        let unit (v: torch.Tensor) = v / v.square().sum().sqrt()
        let ua, ub = unit a, unit b
        let omega = Math.Acos(Math.Clamp((ua * ub).sum().item<float32>() |> float, -1.0, 1.0))
        let result =
            if omega < 1e-6 then torch.lerp(ua, ub, torch.tensor t)
            else ua * torch.tensor(Math.Sin((1.0 - t) * omega) / Math.Sin omega) + ub * torch.tensor(Math.Sin(t * omega) / Math.Sin omega)
        (result * torch.tensor(sqrt d)).MoveToOuterDisposeScope()

    /// Latents `indices` of the `steps` from seed A's to seed B's, evenly spaced in angle.
    let private interpolationAt (latentSize: int) (seedA: int) (seedB: int) (steps: int) (indices: int seq) =
        use a = latents latentSize seedA 1
        use b = latents latentSize seedB 1
        let points = [| for i in indices -> slerp a b (float i / float (max 1 (steps - 1))) |]
        let stacked = torch.cat(points, 0L)
        for p in points do p.Dispose()
        stacked

    /// `steps` latents from seed A's to seed B's, evenly spaced in angle.
    let interpolationLatents (latentSize: int) (seedA: int) (seedB: int) (steps: int) =
        interpolationAt latentSize seedA seedB steps [ 0 .. steps - 1 ]

    /// Draws the images of latents `first` … `first + count − 1` (made by `latentsOf`) a batch at a time, handing each
    /// batch and its first index to `write`.
    let private inBatches (run: LoadedRun) (count: int) (latentsOf: int -> int -> torch.Tensor) (write: int -> torch.Tensor -> unit) =
        for first in 0 .. batchSize .. count - 1 do
            use z = latentsOf first (min batchSize (count - first))
            use images = sample run z
            write first images

    /// Writes each image of a batch to its own PNG, named by `pathOf` its index.
    let private saveEach (first: int) (images: torch.Tensor) (pathOf: int -> string) =
        for i in 0 .. int images.shape[0] - 1 do
            use image = images[int64 i]
            ImageGrid.saveOne (pathOf (first + i)) image

    /// Writes `count` samples from `seed` as single PNGs, and the first `maxGridImages` of them as a grid; returns the
    /// grid's path and the number of single images.
    let writeSamples (run: LoadedRun) (folder: string) (count: int) (seed: int) =
        Directory.CreateDirectory folder |> ignore
        let latentSize = run.Config.Architecture.LatentSize
        // The latents come from one generator seeded with `seed`, drawn a batch at a time.
        use g = new torch.Generator(uint64 seed)
        let grid = Path.Combine(folder, sprintf "samples-seed%d.png" seed)
        let gridImages = ResizeArray<torch.Tensor>()
        inBatches run count (fun _ n -> torch.randn([| int64 n; int64 latentSize |], generator = g)) (fun first images ->
            saveEach first images (fun i -> Path.Combine(folder, sprintf "sample-seed%d-%03d.png" seed i))
            if first < maxGridImages then
                gridImages.Add(images.narrow(0L, 0L, int64 (min (int images.shape[0]) (maxGridImages - first))).clone()))
        use all = torch.cat(gridImages.ToArray(), 0L)
        for t in gridImages do t.Dispose()
        ImageGrid.save grid all
        grid, count

    /// Frames a strip shows at most; longer interpolations show evenly spaced frames.
    let maxStripFrames = 64

    /// Writes the interpolation from seed A to seed B as numbered frames and one strip (of at most `maxStripFrames`
    /// evenly spaced frames); returns the strip's path and the number of frames.
    let writeInterpolation (run: LoadedRun) (folder: string) (seedA: int) (seedB: int) (steps: int) =
        Directory.CreateDirectory folder |> ignore
        let latentSize = run.Config.Architecture.LatentSize
        inBatches run steps (fun first n -> interpolationAt latentSize seedA seedB steps [ first .. first + n - 1 ]) (fun first images ->
            saveEach first images (fun i -> Path.Combine(folder, sprintf "interpolation-%d-%d-frame%03d.png" seedA seedB i)))
        let shown = min steps maxStripFrames
        let picks = [ for k in 0 .. shown - 1 -> int (round (float k * float (steps - 1) / float (max 1 (shown - 1)))) ]
        use z = interpolationAt latentSize seedA seedB steps picks
        use images = sample run z
        let strip = Path.Combine(folder, sprintf "interpolation-%d-%d.png" seedA seedB)
        use grid = ImageGrid.compose images shown 64
        ImageGrid.writePng strip grid
        strip, steps
