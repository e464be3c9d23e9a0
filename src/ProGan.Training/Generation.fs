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
module Generation =

    /// Loads the EMA generator of `checkpoint` (default: the newest) of a run folder.
    let load (runFolder: string) (checkpoint: string option) =
        ensureTorch ()
        if not (Directory.Exists runFolder) then
            invalidArg "run" (sprintf "The run folder '%s' does not exist; pass a folder that train.fsx wrote (--out)." runFolder)
        let config = RunFolder.readConfig runFolder
        let path =
            match checkpoint with
            | Some c ->
                let p = if File.Exists c then c else Path.Combine(runFolder, c)
                if not (File.Exists p) then invalidArg "checkpoint" (sprintf "The checkpoint '%s' does not exist in '%s'." c runFolder)
                p
            | None ->
                match Checkpoint.list runFolder with
                | newest :: _ -> newest
                | [] -> invalidArg "run" (sprintf "The run folder '%s' has no checkpoint yet; train longer (a checkpoint is written every tick)." runFolder)
        let ema = new ProgressiveGenerator(config.Architecture, TorchBackend.Device)
        let header = Checkpoint.loadEma path ema
        { Config = config; Checkpoint = path; Ema = ema; Position = Schedule.at config header.ImagesShown }

    /// `count` latents drawn from N(0, I) with `seed`.
    let latents (latentSize: int) (seed: int) (count: int) =
        ensureTorch ()
        use g = new torch.Generator(uint64 seed)
        torch.randn([| int64 count; int64 latentSize |], generator = g)

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

    /// `steps` latents from seed A's to seed B's, evenly spaced in angle.
    let interpolationLatents (latentSize: int) (seedA: int) (seedB: int) (steps: int) =
        use a = latents latentSize seedA 1
        use b = latents latentSize seedB 1
        let points = [| for i in 0 .. steps - 1 -> slerp a b (float i / float (max 1 (steps - 1))) |]
        let stacked = torch.cat(points, 0L)
        for p in points do p.Dispose()
        stacked

    /// Writes each image of `images` to its own PNG, named by `pathOf` its index; returns the paths.
    let private saveEach (images: torch.Tensor) (pathOf: int -> string) =
        [ for i in 0 .. int images.shape[0] - 1 do
            let path = pathOf i
            use image = images[int64 i]
            ImageGrid.saveOne path image
            yield path ]

    /// Writes a grid, and each image on its own, of `count` samples from `seed`; returns the files written.
    let writeSamples (run: LoadedRun) (folder: string) (count: int) (seed: int) =
        Directory.CreateDirectory folder |> ignore
        use z = latents run.Config.Architecture.LatentSize seed count
        use images = sample run z
        let grid = Path.Combine(folder, sprintf "samples-seed%d.png" seed)
        ImageGrid.save grid images
        grid :: saveEach images (fun i -> Path.Combine(folder, sprintf "sample-seed%d-%03d.png" seed i))

    /// Writes the interpolation from seed A to seed B as one strip and as numbered frames; returns the files.
    let writeInterpolation (run: LoadedRun) (folder: string) (seedA: int) (seedB: int) (steps: int) =
        Directory.CreateDirectory folder |> ignore
        use z = interpolationLatents run.Config.Architecture.LatentSize seedA seedB steps
        use images = sample run z
        let strip = Path.Combine(folder, sprintf "interpolation-%d-%d.png" seedA seedB)
        use grid = ImageGrid.compose images steps 64
        ImageGrid.writePng strip grid
        strip :: saveEach images (fun i -> Path.Combine(folder, sprintf "interpolation-%d-%d-frame%03d.png" seedA seedB i))
