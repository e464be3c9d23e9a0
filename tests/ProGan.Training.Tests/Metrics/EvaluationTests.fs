module ProGan.Training.Tests.Metrics.EvaluationTests

open System
open System.IO
open Xunit
open TorchSharp
open ProGan.Training.Basics
open ProGan.Training.Config
open ProGan.Training.Data
open ProGan.Training.Paper
open ProGan.Training.Metrics
open ProGan.Training.Runs
open ProGan.Training.Loop
open ProGan.Training.Output
open ProGan.Training.Commands
open ProGan.Training.Tests.Fixtures

let private images seed = Procedural.render 48 32 seed |> fun x -> x.div(scalar 127.5).sub(scalar 1.0)

/// A 3×3 box blur applied `times` times.
let private blur (x: torch.Tensor) (times: int) =
    let kernel = torch.ones([| 3L; 1L; 3L; 3L |]).div(scalar 9.0)
    let mutable y = x
    for _ in 1..times do
        y <- torch.nn.functional.conv2d(torch.nn.functional.pad(y, [| 1L; 1L; 1L; 1L |], mode = PaddingModes.Replicate), kernel, groups = 3L)
    y

[<Fact>]
let ``identical sets give zero, and the distance is symmetric and seeded`` () =
    let a, b = images 1, images 2
    Assert.Equal(0.0, (SlicedWasserstein.compute a a 5).Average, 6)
    let ab, ba = SlicedWasserstein.compute a b 5, SlicedWasserstein.compute b a 5
    Assert.Equal(ab.Average, ba.Average, 9)
    Assert.Equal(ab, SlicedWasserstein.compute a b 5)
    Assert.NotEqual(ab.Average, (SlicedWasserstein.compute a b 6).Average)
    Assert.Equal<int list>([ 32; 16 ], ab.Resolutions)

[<Fact>]
let ``the distance grows steadily as one set is blurred or noised more`` () =
    let a = images 3
    let blurred = [ for k in 1..3 -> (SlicedWasserstein.compute a (blur a k) 1).Average ]
    Assert.True(List.pairwise blurred |> List.forall (fun (x, y) -> y > x), sprintf "blur: %A" blurred)
    let noised =
        [ for sigma in [ 0.05; 0.2; 0.5 ] ->
            use g = new torch.Generator(9UL)
            (SlicedWasserstein.compute a (a + torch.randn(a.shape, generator = g) * torch.tensor sigma) 1).Average ]
    Assert.True(List.pairwise noised |> List.forall (fun (x, y) -> y > x), sprintf "noise: %A" noised)
    // The finest level is the one blur hurts most.
    let levels = (SlicedWasserstein.compute a (blur a 2) 1).PerLevel
    Assert.True(levels[0] > levels[1], sprintf "levels: %A" levels)

[<Fact>]
let ``the Laplacian pyramid reconstructs the image`` () =
    let a = images 4
    match SlicedWasserstein.laplacianPyramid a 16 with
    | [ fine; coarse ] ->
        let rebuilt = fine + SlicedWasserstein.pyrUp coarse
        Assert.True((rebuilt - a).abs().max().item<float32>() < 1e-4f)
    | levels -> failwithf "expected 2 levels, got %d" levels.Length

[<Fact>]
let ``generation writes grids, singles and an interpolation whose ends are the two seeds' samples`` () =
    use run = new TempFolder()
    train tiny run.Path false None |> ignore
    use loaded = Generation.load run.Path None
    Assert.Equal(8, loaded.Position.Resolution)
    let out = run.File "generated"
    let grid, count = Generation.writeSamples loaded out 6 7
    Assert.Equal(6, count)
    Assert.True(File.Exists grid)
    Assert.Equal(7, Directory.GetFiles(out, "sample*.png").Length)
    let strip, frames = Generation.writeInterpolation loaded out 1 2 5
    Assert.Equal(5, frames)
    Assert.True(File.Exists strip)
    Assert.Equal(5, Directory.GetFiles(out, "interpolation-1-2-frame*.png").Length)
    use z = Sampling.interpolationLatents tiny.Architecture.LatentSize 1 2 5
    use path = Generation.sample loaded z
    use a = Generation.sample loaded (Generation.latents tiny.Architecture.LatentSize 1 1)
    use b = Generation.sample loaded (Generation.latents tiny.Architecture.LatentSize 2 1)
    Assert.True((path[0L] - a[0L]).abs().max().item<float32>() < 1e-4f)
    Assert.True((path[4L] - b[0L]).abs().max().item<float32>() < 1e-4f)
    Assert.True((path[2L] - a[0L]).abs().max().item<float32>() > 1e-3f)
    // Evaluation beside the real floor, written to the run folder.
    use data = TrainingData.load tiny ignore Threading.CancellationToken.None
    let result = Evaluation.withFloor loaded.Ema loaded.Position data 32 (RandomStreams.ofSeed 1) torch.CPU
    Evaluation.save (RunFolder run.Path).Swd result
    Assert.True(File.Exists(run.File "swd.json"))
    Assert.True(Double.IsFinite result.FakeVsRealAverage && Double.IsFinite result.RealVsRealAverage)
    Assert.Equal(32, result.Images)

[<Fact>]
let ``generate.fsx and the Serving package draw the same images for a seed, and export writes the model there`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 96L) |> ignore // mid-fade to 8²
    let out = run.File "generated"
    Assert.Equal(0, Cli.generate [| "generate.fsx"; "--"; "--run"; run.Path; "--count"; "70"; "--seed"; "5"; "--out"; out |])
    use generator = ProGan.Keras.Serving.TrainedGenerator.Load run.Path
    Assert.Equal(ProGan.Keras.Serving.GeneratorPosition(8, true, 0.5), generator.Position)
    use images = generator.Generate(70, 5)
    let fromPackage = run.File "package.png"
    ProGan.Keras.Serving.ImageGrid.Save(fromPackage, images)
    Assert.Equal<byte[]>(File.ReadAllBytes(Path.Combine(out, "samples-seed5.png")), File.ReadAllBytes fromPackage)
    ProGan.Keras.Serving.ImageGrid.SaveOne(fromPackage, images[69L])
    Assert.Equal<byte[]>(File.ReadAllBytes(Path.Combine(out, "sample-seed5-069.png")), File.ReadAllBytes fromPackage)
    Assert.True(File.Exists(Path.Combine(out, "latents-seed5.npy")))
    Assert.Equal(0, Cli.export [| "export.fsx"; "--"; "--run"; run.Path |])
    Assert.True(File.Exists((RunFolder run.Path).Onnx 8))
    // --format checkpoint: the EMA generator alone, a fraction of a training checkpoint, drawing the same images.
    Assert.Equal(0, Cli.export [| "export.fsx"; "--"; "--run"; run.Path; "--format"; "checkpoint" |])
    let alone = (RunFolder run.Path).GeneratorCheckpoint 8
    let full = List.head (checkpoints run.Path)
    Assert.True(FileInfo(alone).Length * 4L < FileInfo(full).Length, sprintf "%d bytes alone, %d in the training checkpoint" (FileInfo(alone).Length) (FileInfo(full).Length))
    use reloaded = ProGan.Keras.Serving.TrainedGenerator.Load alone
    Assert.Equal(generator.Position, reloaded.Position)
    Assert.Equal(generator.Header.ImagesShown, reloaded.Header.ImagesShown)
    use again = reloaded.Generate(70, 5)
    Assert.True(images.equal(again).all().item<bool>(), "the exported generator draws other images")
    // Training cannot start from it, and says why.
    use data = Procedural.pyramid 64 8 3 1
    use trainer = new Trainer(tiny, data, torch.CPU)
    let e = Assert.Throws<ProGan.Keras.Serving.CheckpointException>(fun () -> trainer.InitializeFrom alone |> ignore)
    Assert.Contains("holds only the EMA generator", e.Message)

[<Fact>]
let ``loading a missing run or one without checkpoints names the folder`` () =
    let e = Assert.Throws<RunFolderException>(fun () -> Generation.load "/no/such/run" None |> ignore)
    Assert.Contains("/no/such/run", e.Message)
    use run = new TempFolder()
    train tiny run.Path false (Some 8L) |> ignore
    for checkpoint in checkpoints run.Path do File.Delete checkpoint
    let e = Assert.Throws<RunFolderException>(fun () -> Generation.load run.Path None |> ignore)
    Assert.Contains("has no checkpoint", e.Message)

[<Fact>]
let ``a collapsed set of identical images has a finite distance, not NaN`` () =
    let a = images 5
    use copies = a.narrow(0L, 0L, 1L).expand(a.shape[0], -1L, -1L, -1L).contiguous()
    let d = SlicedWasserstein.compute copies a 1
    Assert.True(Double.IsFinite d.Average && d.Average > 0.0, sprintf "%A" d)
