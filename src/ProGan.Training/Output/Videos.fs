// Videos of a run: latent walks and the training time-lapse (GIF, MP4 with ffmpeg).
namespace ProGan.Training.Output

open System
open System.Diagnostics
open System.IO
open ImageMagick
open TorchSharp
open ProGan.Keras.IO
open ProGan.Keras.Serving
open ProGan.Training.Basics
open ProGan.Training.Runs

/// Frames of an animation: 8-bit RGB pictures of one size, row by row.
type Frames =
    { Width: int
      Height: int
      Rgb: byte[] list }

/// Animations of a trained run, as the reference's `util_scripts.py` makes them: a smooth latent walk through several
/// seeds (`generate_interpolation_video`), the time-lapse of a run's tick grids (`generate_training_video`), and one
/// latent drawn at every level of detail the run has. Written as animated GIFs (ImageMagick) and, where ffmpeg is
/// installed, as H.264 MP4s.
module Videos =

    /// Smallest side of a latent walk's frames: images are enlarged by nearest neighbour up to it.
    let minFrameSize = 128

    /// Frames a latent walk holds at most (they are kept in memory to encode).
    let maxLoopFrames = 3000

    /// Frames a time-lapse holds at most (evenly spaced tick grids, the last among them).
    let maxTimeLapseFrames = 300

    /// Latents of a closed walk through the seeds' latents: `framesPerSeed` frames from each seed towards the next
    /// (from the last back to the first), spherical (`Generation.slerp`) and eased — the speed falls to zero at every
    /// seed, so the walk has no kinks and rests a moment on each seed's image — then the first seed's latent again,
    /// which closes the loop: seeds·framesPerSeed + 1 latents, frame k·framesPerSeed being seed k's.
    let loopLatents (latentSize: int) (seeds: int list) (framesPerSeed: int) =
        if List.length seeds < 2 then invalidArg "seeds" "A latent walk needs at least two seeds."
        if framesPerSeed < 1 then invalidArg "framesPerSeed" (sprintf "framesPerSeed must be ≥ 1; got %d." framesPerSeed)
        let points = seeds |> List.map (fun seed -> Generation.latents latentSize seed 1) |> Array.ofList
        let n = points.Length
        let ease (t: float) = (1.0 - cos (Math.PI * t)) / 2.0
        let steps =
            [| for k in 0 .. n - 1 do
                 for i in 0 .. framesPerSeed - 1 do
                     yield Generation.slerp points[k] points[(k + 1) % n] (ease (float i / float framesPerSeed))
               yield Generation.slerp points[0] points[1] 0.0 |]
        let stacked = torch.cat(steps, 0L)
        for t in Array.append steps points do t.Dispose()
        stacked

    /// Images in [−1, 1] as frames, each enlarged `scale` times by nearest neighbour.
    let private framesOf (images: torch.Tensor) (scale: int) =
        use bytes = ImageGrid.Pixels(images, scale)
        use hwc = bytes.permute(0L, 2L, 3L, 1L).contiguous()
        [ for i in 0L .. hwc.shape[0] - 1L -> hwc[i].data<byte>().ToArray() ]

    /// The run's images of `z`, drawn a batch at a time, as frames at least `minFrameSize` pixels wide.
    let render (run: LoadedRun) (z: torch.Tensor) =
        let resolution = run.Position.Resolution
        let scale = ImageGrid.ScaleFor(resolution, minFrameSize)
        let rgb =
            [ for first in 0L .. int64 Generation.batchSize .. z.shape[0] - 1L do
                use batch = z.narrow(0L, first, min (int64 Generation.batchSize) (z.shape[0] - first))
                use images = Generation.sample run batch
                yield! framesOf images scale ]
        { Width = resolution * scale; Height = resolution * scale; Rgb = rgb }

    /// Writes frames as an animated GIF that loops forever, `fps` frames a second (GIF delays are in hundredths of a
    /// second), atomically. GIF has 256 colours a frame: `sharedPalette` gives all frames one palette (no flicker
    /// between similar frames, as in a latent walk); otherwise each frame gets its own (frames that differ, as ticks do).
    let writeGif (path: string) (frames: Frames) (fps: int) (sharedPalette: bool) =
        use collection = new MagickImageCollection()
        let delay = uint (max 1.0 (round (100.0 / float fps)))
        for rgb in frames.Rgb do
            let image = new MagickImage(ReadOnlySpan rgb, PixelReadSettings(uint frames.Width, uint frames.Height, StorageType.Char, PixelMapping.RGB))
            image.AnimationDelay <- delay
            collection.Add image
        collection[0].AnimationIterations <- 0u
        if sharedPalette then collection.Quantize(QuantizeSettings(Colors = 256u, DitherMethod = DitherMethod.No)) |> ignore
        else for image in collection do image.Quantize(QuantizeSettings(Colors = 256u, DitherMethod = DitherMethod.No)) |> ignore
        AtomicFile.Write(path, fun stream -> collection.Write(stream, MagickFormat.Gif))

    /// The `ffmpeg` executable on the PATH, if any.
    let ffmpeg () =
        (Environment.GetEnvironmentVariable "PATH" |> Option.ofObj |> Option.defaultValue "").Split(Path.PathSeparator)
        |> Array.filter (fun folder -> folder <> "")
        |> Array.collect (fun folder -> [| Path.Combine(folder, "ffmpeg"); Path.Combine(folder, "ffmpeg.exe") |])
        |> Array.tryFind FileKind.isRegular

    /// Writes frames as an H.264 MP4 (yuv420p, padded to even sides, as players need) with the ffmpeg at `executable`:
    /// the raw frames go to its standard input, its output to a temporary file that is then copied in atomically.
    let writeMp4 (executable: string) (path: string) (frames: Frames) (fps: int) =
        let temporary = Path.Combine(Path.GetTempPath(), sprintf "progan-%s.mp4" (Guid.NewGuid().ToString("N")))
        try
            let info =
                ProcessStartInfo(executable,
                    [ "-y"; "-loglevel"; "error"; "-f"; "rawvideo"; "-pix_fmt"; "rgb24"; "-s"; sprintf "%dx%d" frames.Width frames.Height
                      "-r"; string fps; "-i"; "pipe:0"; "-vf"; "pad=ceil(iw/2)*2:ceil(ih/2)*2"; "-c:v"; "libx264"; "-pix_fmt"; "yuv420p"
                      "-movflags"; "+faststart"; "-f"; "mp4"; temporary ],
                    RedirectStandardInput = true, RedirectStandardError = true, UseShellExecute = false)
            use p = Process.Start info
            let errors = p.StandardError.ReadToEndAsync()
            try
                for rgb in frames.Rgb do p.StandardInput.BaseStream.Write(rgb, 0, rgb.Length)
                p.StandardInput.Close()
            with :? IOException -> () // ffmpeg stopped reading; its exit code and message say why
            p.WaitForExit()
            if p.ExitCode <> 0 then
                raise (IOException(sprintf "ffmpeg could not write %s (exit code %d): %s" path p.ExitCode (errors.Result.Trim())))
            AtomicFile.Write(path, fun stream -> use mp4 = File.OpenRead temporary in mp4.CopyTo stream)
        finally
            try File.Delete temporary with :? IOException | :? UnauthorizedAccessException -> ()

    /// The tick grids of a run as a time-lapse (at most `maxTimeLapseFrames`, evenly spaced), each enlarged or shrunk
    /// by nearest neighbour to the size of the last grid; None when the run has no tick grid yet.
    let timeLapse (folder: RunFolder) =
        match RunReport.evenlySpaced maxTimeLapseFrames (folder.TickGrids()) with
        | [] -> None
        | ticks ->
            use last = new MagickImage(snd (List.last ticks))
            let size = MagickGeometry(last.Width, last.Height, IgnoreAspectRatio = true)
            let rgb =
                [ for _, path in ticks ->
                    use image = new MagickImage(path)
                    if image.Width <> last.Width || image.Height <> last.Height then image.Resize(size, FilterType.Point)
                    image.GetPixels().ToByteArray(PixelMapping.RGB) ]
            Some { Width = int last.Width; Height = int last.Height; Rgb = rgb }

    /// One latent (from `seed`) drawn at every level of detail the run has, 4² up to its current resolution, by the
    /// straight-through model of each level (the EMA generator holds them all): images [L, 3, R, R] in [−1, 1], the
    /// lower levels enlarged by nearest neighbour to R.
    let levelsOfDetail (run: LoadedRun) (seed: int) =
        use scope = torch.NewDisposeScope()
        let z = Generation.latents run.Config.Architecture.LatentSize seed 1
        let final = run.Position.Resolution
        let levels =
            [| for level in 0 .. run.Position.Level ->
                let image = run.Generator.Generate(z, run.Generator.At(4 <<< level), Option.toNullable run.Class)
                let scale = int64 (final / int image.shape[2])
                image.repeat_interleave(scale, 2L).repeat_interleave(scale, 3L) |]
        torch.cat(levels, 0L).MoveToOuterDisposeScope()

    /// What `writeAll` wrote.
    type Written =
        { /// Paths written, in order.
          Files: string list
          /// Why an MP4 was not written (no ffmpeg), if so.
          Skipped: string option
          /// Why the training time-lapse was not written (no tick grids in the run folder), if so.
          NoTimeLapse: string option }

    /// The latent walk through `seeds` (GIF, and MP4 with ffmpeg), the run's time-lapse (the same), and the levels of
    /// detail of the first seed (PNG), into `out` (a `VideoFiles` folder).
    let writeAll (run: LoadedRun) (runFolder: RunFolder) (out: string) (seeds: int list) (framesPerSeed: int) (fps: int) =
        Directory.CreateDirectory out |> ignore
        let files = VideoFiles out
        let encoder = ffmpeg ()
        let written = ResizeArray<string>()
        let write (gif: string) (mp4: string) (sharedPalette: bool) (frames: Frames) =
            writeGif gif frames fps sharedPalette
            written.Add gif
            encoder |> Option.iter (fun exe -> writeMp4 exe mp4 frames fps; written.Add mp4)
        use z = loopLatents run.Config.Architecture.LatentSize seeds framesPerSeed
        write files.LoopGif files.LoopMp4 true (render run z)
        let lapse = timeLapse runFolder
        lapse |> Option.iter (write files.TrainingGif files.TrainingMp4 false)
        use levels = levelsOfDetail run (List.head seeds)
        use strip = ImageGrid.Compose(levels, (int levels.shape[0]), 64)
        ImageGrid.WritePng(files.LevelsOfDetail(List.head seeds), strip)
        written.Add(files.LevelsOfDetail(List.head seeds))
        { Files = List.ofSeq written
          Skipped = if encoder.IsNone then Some "no ffmpeg on the PATH (apt-get install ffmpeg): GIFs only" else None
          NoTimeLapse =
            if lapse.IsSome then None
            else Some(sprintf "'%s' has no sample grids (fakes-*.png; training writes one every tick, --tick-images), so there is no training time-lapse" runFolder.Path) }
