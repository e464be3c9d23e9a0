/// `generate.fsx -- --video`: the latent walk, the training time-lapse and the levels of detail, read back from the
/// files written.
module ProGan.Training.Tests.Output.VideoTests

open System.Diagnostics
open System.IO
open ImageMagick
open Xunit
open ProGan.Keras.Serving
open ProGan.Training.Runs
open ProGan.Training.Output
open ProGan.Training.Commands
open ProGan.Training.Tests.Fixtures

/// An image drawn by the run from one seed's latent, as the 8-bit RGB bytes of a frame enlarged `scale` times.
let private seedFrame (loaded: LoadedRun) (seed: int) (scale: int) =
    use z = Generation.latents loaded.Config.Architecture.LatentSize seed 1
    use image = Generation.sample loaded z
    use bytes = ImageGrid.Pixels(image, scale)
    use hwc = bytes[0L].permute(1L, 2L, 0L).contiguous()
    hwc.data<byte>().ToArray()

/// The largest difference between two frames' bytes.
let private largestDifference (a: byte[]) (b: byte[]) =
    Assert.Equal(a.Length, b.Length)
    Array.map2 (fun (x: byte) (y: byte) -> abs (int x - int y)) a b |> Array.max

/// The mean difference between two frames' bytes.
let private meanDifference (a: byte[]) (b: byte[]) = Array.map2 (fun (x: byte) (y: byte) -> abs (float x - float y)) a b |> Array.average

[<Fact>]
let ``the latent walk passes through every seed and closes the loop, in GIF frames of the right count and size`` () =
    let run = finishedRun.Force()
    use loaded = Generation.load run None
    use out = new TempFolder()
    let seeds, perSeed = [ 3; 5; 8 ], 4
    let code = GenerateCommand.run [| "--run"; run; "--out"; out.Path; "--count"; "1"; "--video"; "--seeds"; "3,5,8"; "--frames"; "4"; "--fps"; "10" |]
    Assert.Equal(0, code)
    // The frames themselves: seeds·frames + 1, seed k's image at frame k·frames, the first seed's again at the end.
    use z = Videos.loopLatents loaded.Config.Architecture.LatentSize seeds perSeed
    let frames = Videos.render loaded z
    let size = 8 * ImageGrid.ScaleFor(8, Videos.minFrameSize)
    Assert.Equal((size, size, seeds.Length * perSeed + 1), (frames.Width, frames.Height, frames.Rgb.Length))
    for k, seed in List.indexed seeds do
        Assert.True(largestDifference (seedFrame loaded seed (size / 8)) frames.Rgb[k * perSeed] <= 1, sprintf "frame %d is not seed %d's image" (k * perSeed) seed)
    Assert.True(largestDifference (seedFrame loaded 3 (size / 8)) (List.last frames.Rgb) <= 1, "the last frame is not the first seed's image")
    Assert.True(largestDifference frames.Rgb[0] frames.Rgb[1] > 0, "the walk does not move")
    // The GIF: as many frames, of that size, looping forever, each the frame drawn (within the 256-colour palette).
    let files = VideoFiles out.Path
    use gif = new MagickImageCollection(files.LoopGif)
    Assert.Equal(frames.Rgb.Length, gif.Count)
    Assert.Equal(0u, gif[0].AnimationIterations)
    Assert.Equal(10u, gif[0].AnimationDelay)
    for i in [ 0; gif.Count - 1 ] do
        Assert.Equal((uint size, uint size), (gif[i].Width, gif[i].Height))
        let pixels = gif[i].GetPixels().ToByteArray(PixelMapping.RGB)
        Assert.True(meanDifference pixels frames.Rgb[i] < 4.0, sprintf "GIF frame %d differs from the frame drawn by %.1f on average" i (meanDifference pixels frames.Rgb[i]))
    // The time-lapse: one frame per tick grid, at the size of the last grid.
    let ticks = RunFolder(run).TickGrids()
    use lapse = new MagickImageCollection(files.TrainingGif)
    use last = new MagickImage(snd (List.last ticks))
    Assert.Equal(ticks.Length, lapse.Count)
    for frame in lapse do Assert.Equal((last.Width, last.Height), (frame.Width, frame.Height))
    let lastFrame = meanDifference (lapse[lapse.Count - 1].GetPixels().ToByteArray(PixelMapping.RGB)) (last.GetPixels().ToByteArray(PixelMapping.RGB))
    // 256 colours for a grid of 36 noisy 8² samples (thousands of colours): a few levels off on average.
    Assert.True(lastFrame < 10.0, sprintf "the last frame differs from the last tick grid by %.1f on average" lastFrame)
    // Levels of detail: one latent at 4² and 8², side by side in 64-pixel cells.
    use strip = new MagickImage(files.LevelsOfDetail 3)
    Assert.Equal((2u * 65u + 1u, 66u), (strip.Width, strip.Height))
    use levels = Videos.levelsOfDetail loaded 3
    Assert.Equal<int64[]>([| 2L; 3L; 8L; 8L |], levels.shape)
    use final = Generation.sample loaded (Generation.latents loaded.Config.Architecture.LatentSize 3 1)
    Assert.True((levels[1L] - final[0L]).abs().max().item<float32>() < 1e-5f, "the last level is not the run's own image")
    Assert.True((levels[0L] - levels[1L]).abs().max().item<float32>() > 1e-3f, "4² and 8² draw the same image")

[<SkippableFact>]
let ``with ffmpeg on the PATH the videos are MP4s too, with every frame`` () =
    Skip.If(Videos.ffmpeg().IsNone, "ffmpeg is not on the PATH (apt-get install ffmpeg); the videos are GIFs only")
    let run = finishedRun.Force()
    use out = new TempFolder()
    Assert.Equal(0, GenerateCommand.run [| "--run"; run; "--out"; out.Path; "--count"; "1"; "--video"; "--seeds"; "1,2"; "--frames"; "5" |])
    let probe (path: string) =
        let ffprobe = Path.Combine(Path.GetDirectoryName(Videos.ffmpeg().Value), "ffprobe")
        Skip.IfNot(File.Exists ffprobe, "ffprobe is not beside ffmpeg")
        let info = ProcessStartInfo(ffprobe, [ "-v"; "error"; "-count_frames"; "-select_streams"; "v:0"; "-show_entries"; "stream=width,height,nb_read_frames,codec_name"; "-of"; "csv=p=0"; path ],
                                    RedirectStandardOutput = true, UseShellExecute = false)
        use p = Process.Start info
        let line = p.StandardOutput.ReadToEnd().Trim()
        p.WaitForExit()
        line
    let files = VideoFiles out.Path
    Assert.Equal("h264,128,128,11", probe files.LoopMp4)
    Assert.StartsWith("h264,", probe files.TrainingMp4)
    Assert.EndsWith(sprintf ",%d" (RunFolder(run).TickGrids().Length), probe files.TrainingMp4)
