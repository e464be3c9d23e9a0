module ProGan.Training.Tests.Data.ImageFolderTests

open System
open System.IO
open Xunit
open TorchSharp
open ProGan.Training.Basics
open ProGan.Training.Progress
open ProGan.Training.Data
open ProGan.Training.Tests.Fixtures

let private load (folder: string) (resolution: int) minimum =
    ImageFolder.load folder resolution 3 false minimum ignore Threading.CancellationToken.None

/// The mean RGB of image `index` at the top level, mapped to [−1, 1] as training sees it.
let private meanRgb (images: TrainingImages) (name: string) (index: int) =
    let top = levelBytes images (images.LevelCount - 1)
    let img = top[int64 index].to_type(torch.ScalarType.Float32).div(scalar 127.5).sub(scalar 1.0)
    let v = img.mean([| 1L; 2L |]).data<float32>().ToArray()
    v

[<Fact>]
let ``each kind of file gives the right pixels or the right skip`` () =
    use dir = new TempFolder()
    // Sorted names fix the order of the usable images: a, b, c, d, e.
    writePng (dir.File "a-rgba.png") 8 8 4 (solid 8 8 [| 255uy; 0uy; 0uy; 255uy |])
    writePng (dir.File "b-transparent.png") 8 8 4 (solid 8 8 [| 0uy; 255uy; 0uy; 0uy |])
    writePalettePng (dir.File "c-palette.png") 8 8 [ (0uy, 0uy, 255uy); (255uy, 255uy, 255uy) ] [ 255uy; 0uy ] (Array.create 64 0uy)
    writePng (dir.File "d-gray.png") 8 8 1 (solid 8 8 [| 255uy |])
    // Non-square JPEG: a white centre square between two red bands, which the centre crop removes.
    let wide = Array.init (16 * 8 * 3) (fun i -> let x = (i / 3) % 16 in if x < 4 || x >= 12 then (if i % 3 = 0 then 255uy else 0uy) else 255uy)
    writeJpg (dir.File "e-wide.jpg") 16 8 wide
    File.WriteAllBytes(dir.File "f-empty.png", [||])
    let good = File.ReadAllBytes(dir.File "a-rgba.png")
    File.WriteAllBytes(dir.File "g-truncated.png", good[.. good.Length / 2])
    File.WriteAllText(dir.File "h-text.png", "this is not an image")
    Directory.CreateDirectory(dir.File "i-folder.png") |> ignore
    File.WriteAllText(dir.File "notes.txt", "ignored: not an image extension")

    let result = load dir.Path 8 1
    Assert.Equal(5, result.Images.Count)
    Assert.Equal(8, result.Images.Resolution)
    Assert.Equal<int list>([ 4; 8 ], [ for level in 0 .. result.Images.LevelCount - 1 -> int (levelBytes result.Images level).shape[2] ])
    let close (expected: float32[]) (actual: float32[]) tolerance =
        Array.iter2 (fun (e: float32) (a: float32) -> Assert.InRange(a, e - tolerance, e + tolerance)) expected actual
    close [| 1.0f; -1.0f; -1.0f |] (meanRgb result.Images "rgba" 0) 0.01f          // opaque red
    close [| -1.0f; -1.0f; -1.0f |] (meanRgb result.Images "transparent" 1) 0.01f  // alpha 0 → the black background
    close [| -1.0f; -1.0f; 1.0f |] (meanRgb result.Images "palette" 2) 0.01f       // palette entry 0, opaque blue
    close [| 1.0f; 1.0f; 1.0f |] (meanRgb result.Images "gray" 3) 0.01f            // grey 255 → white RGB
    close [| 1.0f; 1.0f; 1.0f |] (meanRgb result.Images "wide" 4) 0.05f            // centre crop keeps only white
    let skipped = result.Skipped |> List.map (fun s -> Path.GetFileName s.Path) |> Set.ofList
    Assert.Equal<Set<string>>(set [ "f-empty.png"; "g-truncated.png"; "h-text.png" ], skipped)
    let summary = (ImageFolder.summarize result.Skipped).Value
    Assert.StartsWith("Skipped 3 unusable file(s)", summary)
    Assert.Contains("f-empty.png (empty file)", summary)

[<Fact>]
let ``the lower levels are 2×2 averages of the level above`` () =
    use dir = new TempFolder()
    let checker = Array.init (8 * 8 * 3) (fun i -> let p = i / 3 in if (p % 8 + p / 8) % 2 = 0 then 255uy else 0uy)
    writePng (dir.File "checker.png") 8 8 3 checker
    let result = load dir.Path 8 1
    let low = (levelBytes result.Images 0).to_type(torch.ScalarType.Float32)
    // A checkerboard of 0 and 255 averages to 127.5 in every 2×2 block, stored rounded.
    Assert.True(low.sub(scalar 127.5).abs().max().item<float32>() <= 0.5f)

[<Fact>]
let ``a second load reuses the cache and gives the same bytes`` () =
    use dir = new TempFolder()
    use cache = new TempFolder()
    Environment.SetEnvironmentVariable("PROGAN_KERAS_DATA_CACHE", cache.Path)
    try
        for i in 0..3 do
            writePng (dir.File(sprintf "%d.png" i)) 8 8 3 (solid 8 8 [| byte (i * 60); 0uy; 0uy |])
        let first = load dir.Path 8 1
        let second = load dir.Path 8 1
        Assert.False(first.FromCache)
        Assert.True(second.FromCache)
        for level in 0 .. first.Images.LevelCount - 1 do
            let a, b = levelBytes first.Images level, levelBytes second.Images level
            Assert.True(a.equal(b).all().item<bool>())
        // A changed file changes the key: no stale cache.
        writePng (dir.File "4.png") 8 8 3 (solid 8 8 [| 0uy; 0uy; 9uy |])
        let third = load dir.Path 8 1
        Assert.False(third.FromCache)
        Assert.Equal(5, third.Images.Count)
    finally
        Environment.SetEnvironmentVariable("PROGAN_KERAS_DATA_CACHE", null)

[<Fact>]
let ``a folder with too few usable images is an error that names it`` () =
    use dir = new TempFolder()
    File.WriteAllText(dir.File "broken.png", "no")
    let e = Assert.Throws<DataException>(fun () -> load dir.Path 8 4 |> ignore)
    Assert.Contains(dir.Path, e.Message)
    Assert.Contains("0 usable image(s)", e.Message)
    Assert.Contains("at least 4", e.Message)

[<Fact>]
let ``a missing folder is an error that names it`` () =
    let e = Assert.Throws<DataException>(fun () -> load "/no/such/folder" 8 1 |> ignore)
    Assert.Contains("/no/such/folder", e.Message)

[<Fact>]
let ``the procedural data is deterministic and varied`` () =
    use a = Procedural.render 8 16 3
    use b = Procedural.render 8 16 3
    use c = Procedural.render 8 16 4
    Assert.True(a.equal(b).all().item<bool>())
    Assert.False(a.equal(c).all().item<bool>())
    Assert.Equal<int64[]>([| 8L; 3L; 16L; 16L |], a.shape)
    // Structure: images differ from one another and each has more than one colour.
    Assert.True(a.std([| 0L |]).mean().item<float32>() > 10.0f)
    Assert.True(a.std([| 2L; 3L |]).mean().item<float32>() > 10.0f)

[<Fact>]
let ``odd names, a top-down BMP, unsupported formats and a cancelled preparation are each handled`` () =
    use dir = new TempFolder()
    use cache = new TempFolder()
    Environment.SetEnvironmentVariable("PROGAN_KERAS_DATA_CACHE", cache.Path)
    try
        for i in 0..3 do
            writePng (dir.File(sprintf "%d.png" i)) 8 8 3 (solid 8 8 [| 200uy; 0uy; byte (i * 9) |])
        File.WriteAllText(dir.File "bad\nname.png", "not an image")
        File.WriteAllText(dir.File "tab\tname.png", "not an image")
        File.WriteAllText(dir.File "photo.heic", "ftypheic") // WebP, once the example here, is read since ImageSharp
        // A 2×2 top-down BMP (negative height): top row red, bottom row blue.
        let header = Array.zeroCreate<byte> 54
        let put (o: int) (v: int) = for k in 0..3 do header[o + k] <- byte (v >>> (8 * k))
        let pixels = [| 0uy; 0uy; 255uy; 0uy; 0uy; 255uy; 0uy; 0uy; 255uy; 0uy; 0uy; 255uy; 0uy; 0uy; 0uy; 0uy |] // BGR rows, padded to 8
        header[0] <- byte 'B'; header[1] <- byte 'M'
        put 2 (54 + pixels.Length); put 10 54; put 14 40; put 18 2; put 22 -2; header[26] <- 1uy; header[28] <- 24uy; put 34 pixels.Length
        File.WriteAllBytes(dir.File "z-topdown.bmp", Array.append header pixels)
        let load () =
            let events = Collections.Generic.List<TrainingEvent>()
            ImageFolder.load dir.Path 8 3 false 1 events.Add Threading.CancellationToken.None, List.ofSeq events
        for fromCache in [ false; true ] do
            let result, events = load ()
            Assert.Equal(fromCache, result.FromCache)
            Assert.Equal(2, result.Skipped.Length) // the two odd names, counted right from the cache too
            Assert.Equal(5, result.Images.Count)
            Assert.Contains(events, fun e -> match e with Warning text -> text.Contains "1 .heic" | _ -> false)
            let bmp = (levelBytes result.Images 1).select(0L, 4L).to_type(torch.ScalarType.Float32) // [3, 8, 8], top-down
            Assert.True(bmp[0L, 0L, 0L].item<float32>() > 200.0f && bmp[2L, 0L, 0L].item<float32>() < 50.0f, "top row is not red")
            Assert.True(bmp[2L, 7L, 0L].item<float32>() > 200.0f && bmp[0L, 7L, 0L].item<float32>() < 50.0f, "bottom row is not blue")
        // A preparation asked to stop stops between chunks, before the whole folder is decoded.
        File.WriteAllText(dir.File "4.png", "changed, so the cache is not used")
        use cancelled = new Threading.CancellationTokenSource()
        cancelled.Cancel()
        Assert.Throws<OperationCanceledException>(fun () -> ImageFolder.load dir.Path 8 3 false 1 ignore cancelled.Token |> ignore) |> ignore
    finally
        Environment.SetEnvironmentVariable("PROGAN_KERAS_DATA_CACHE", null)
