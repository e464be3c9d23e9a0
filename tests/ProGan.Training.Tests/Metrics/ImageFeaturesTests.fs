module ProGan.Training.Tests.Metrics.ImageFeaturesTests

open System
open System.IO
open System.Threading
open Microsoft.ML.OnnxRuntime
open Microsoft.ML.OnnxRuntime.Tensors
open Xunit
open TorchSharp
open ProGan.Keras.Models
open ProGan.Training.Basics
open ProGan.Training.Config
open ProGan.Training.Data
open ProGan.Training.Metrics
open ProGan.Training.Tests.Fixtures

/// The one test that runs the real ResNet-18 (a few seconds): its features, and the metrics it feeds end to end.
[<Fact>]
let ``ResNet-18 gives 512 features; FD is 0 for a set with itself, large for blank images, and a collapsed generator has little recall`` () =
    use data = Procedural.pyramid 128 8 3 1
    use images = data.Gather(1, Array.init 32 int64, torch.CPU)
    use features = ImageFeatures.Shared.Extract images
    Assert.Equal<int64[]>([| 32L; 512L |], features.shape)
    Assert.True(features.isfinite().all().item<bool>() && features.abs().sum().item<float32>() > 0.0f)
    use again = ImageFeatures.Shared.Extract images
    Assert.True(FrechetDistance.compute features again < 1e-3, "the same images gave other features")
    use others = data.Gather(1, Array.init 32 (fun i -> int64 (i + 32)), torch.CPU)
    use otherFeatures = ImageFeatures.Shared.Extract others
    use blank = ImageFeatures.Shared.Extract(torch.zeros_like images)
    let floor, toBlank = FrechetDistance.compute otherFeatures features, FrechetDistance.compute blank features
    Assert.True(toBlank > 5.0 * floor, sprintf "FD to blank images %f, to other real images %f" toBlank floor)
    // A generator that draws one image whatever the latent (as the diversity guard's test collapses one), measured
    // by the evaluation itself: far from the reals, and covering almost none of them, where a second set of reals does.
    use generator = new ProgressiveGenerator(tiny.Architecture, torch.CPU)
    do
        use _ = torch.no_grad()
        for struct (name, p) in generator.named_parameters() do
            if name.StartsWith "to_rgb" && name.EndsWith "weight" then p.zero_() |> ignore
    let position = Schedule.at tiny (TrainingConfig.totalImages tiny)
    let steps = ResizeArray<EvaluationStep>()
    use cache = new TempFolder()
    System.Environment.SetEnvironmentVariable("PROGAN_KERAS_FEATURE_CACHE", cache.Path)
    use _ = { new System.IDisposable with member _.Dispose() = System.Environment.SetEnvironmentVariable("PROGAN_KERAS_FEATURE_CACHE", null) }
    RealFeatures.clear ()
    let r = Evaluation.measureUntil [ "fd"; "kid"; "pr" ] CancellationToken.None steps.Add generator position data 32 (RandomStreams.ofSeed 1) torch.CPU
    Assert.Equal<string list>([ "fd"; "kid"; "pr" ], r.Metrics)
    Assert.True(System.Double.IsNaN r.FakeVsRealAverage && System.Double.IsNaN r.MsSsimGenerated)
    Assert.True(r.FdResNet18 > 5.0 * r.FdResNet18RealVsReal, sprintf "%A" r)
    Assert.True(r.Kid > 10.0 * abs r.KidRealVsReal, sprintf "%A" r)
    Assert.True(r.Recall < 0.1 && r.RecallRealVsReal > 0.5, sprintf "%A" r)
    Assert.Contains(steps, fun s -> match s with FeaturesExtracted(d, t) -> d = t | _ -> false)
    Assert.Contains(steps, fun s -> match s with FeaturesExtracted(96, 96) -> true | _ -> false) // generated, and two sets of reals
    // The reals' features are kept, on disk too: a second evaluation, in a process that has not seen them (memory
    // cleared), sends only the generated images through the network, and gives the same figures.
    Assert.Equal(2, System.IO.Directory.GetFiles(cache.Path, "*.f32").Length)
    RealFeatures.clear ()
    steps.Clear()
    let again = Evaluation.measureUntil [ "fd"; "kid"; "pr" ] CancellationToken.None steps.Add generator position data 32 (RandomStreams.ofSeed 1) torch.CPU
    Assert.Contains(steps, fun s -> match s with FeaturesExtracted(32, 32) -> true | _ -> false)
    Assert.Equal<float list>([ r.FdResNet18; r.FdResNet18RealVsReal; r.Kid; r.KidRealVsReal; r.Precision; r.Recall; r.RecallRealVsReal ],
                             [ again.FdResNet18; again.FdResNet18RealVsReal; again.Kid; again.KidRealVsReal; again.Precision; again.Recall; again.RecallRealVsReal ])
    // A phase end of training (`--metrics fd,pr`): the same reals (the first of the order), so the same figures.
    let phaseEnd = Evaluation.phaseEnd [ "fd"; "pr" ] generator position data 32 (RandomStreams.ofSeed 1) torch.CPU
    Assert.Equal(r.FdResNet18, phaseEnd.FdResNet18, 9)
    Assert.Equal(r.Recall, phaseEnd.Recall)
    Assert.True(System.Double.IsNaN phaseEnd.Swd && System.Double.IsNaN phaseEnd.Kid && System.Double.IsNaN phaseEnd.MsSsim)

// ── The pixels the network sees ───────────────────────────────────────────────────────────────────────────────────
// `ImageFeatures` turns images in [−1, 1] into the 0–255 RGB 224² input of the package's graphs. The test below
// builds that input again by hand — in float64, with a resize of its own — and runs the two graphs itself with ONNX
// Runtime, so a wrong scale ([−1, 1] or [0, 1] passed through), channels in the wrong order, or a wrong resize
// (corners aligned, no antialiasing when shrinking) gives other features and fails it.

/// A fixed image [C, side, side] in [−1, 1]: a smooth wave and 4-pixel blocks, different in each channel (so that a
/// swap of channels shows), reaching near both ends of the range.
let private pattern (channels: int) (side: int) (phase: float) =
    Array.init (channels * side * side) (fun k ->
        let c, y, x = k / (side * side), (k / side) % side, k % side
        let u, v = float x / float side, float y / float side
        let wave = sin (phase + 2.0 * Math.PI * (u * float (c + 1) + v * (1.5 - 0.4 * float c)) + 1.7 * float c)
        let block = if ((x / 4) + (y / 4) * (c + 1)) % 3 = 0 then 1.0 else -1.0
        0.6 * wave + 0.38 * block - 0.1 * float (c - 1))

/// The 1-D weights of a resize from `input` to `output` samples, each output's (first input, weights): Pillow's
/// bilinear filter — a triangle over the half-pixel-centred inputs, widened by the scale when shrinking
/// (antialiasing), cut at the edges and renormalised. Upsampling, it is plain bilinear interpolation with half-pixel
/// centres and the edge samples repeated.
let private resizeWeights (input: int) (output: int) =
    let scale = float input / float output
    let support = max scale 1.0
    Array.init output (fun i ->
        let centre = (float i + 0.5) * scale
        let first = max 0 (int (centre - support + 0.5))
        let last = min input (int (centre + support + 0.5))
        let w = [| for j in first .. last - 1 -> max 0.0 (1.0 - abs ((float j + 0.5 - centre) / support)) |]
        first, w |> Array.map (fun x -> x / Array.sum w))

/// `image` [C, side, side] in [−1, 1] as the graphs' input, computed here: 0–255 (gray repeated, RGBA's colour
/// times its alpha), resized to 224² row by row then column by column, as float32 [3·224·224] RGB.
let private expectedInput (channels: int) (side: int) (image: float[]) =
    let plane c = Array.init (side * side) (fun k -> min 255.0 (max 0.0 ((image[c * side * side + k] + 1.0) * 127.5)))
    let rgb =
        match channels with
        | 1 -> Array.replicate 3 (plane 0)
        | 3 -> Array.init 3 plane
        | 4 -> let alpha = plane 3 in Array.init 3 (fun c -> Array.map2 (fun v a -> v * a / 255.0) (plane c) alpha)
        | c -> failwithf "%d channels" c
    let out = 224
    let weights = resizeWeights side out
    let resized (p: float[]) =
        let rows = Array.init (side * out) (fun k ->
            let y, x = k / out, k % out
            let first, w = weights[x]
            w |> Array.mapi (fun j wj -> wj * p[y * side + first + j]) |> Array.sum)
        Array.init (out * out) (fun k ->
            let y, x = k / out, k % out
            let first, w = weights[y]
            w |> Array.mapi (fun j wj -> wj * rows[(first + j) * out + x]) |> Array.sum)
    rgb |> Array.collect (fun p -> (if side = out then p else resized p) |> Array.map (fun v -> float32 (min 255.0 (max 0.0 v))))

/// The package's two graphs run directly: 0–255 RGB [1, 3, 224, 224] → the preprocessing graph → ResNet-18 → 512
/// features (and the preprocessed input, for a look at what the first graph does).
let private runGraphs (prep: InferenceSession) (network: InferenceSession) (input: float32[]) =
    let tensor = DenseTensor<float32>(Memory<float32>(input), ReadOnlySpan<int>([| 1; 3; 224; 224 |]))
    use prepared = prep.Run([ NamedOnnxValue.CreateFromTensor("OriginalInput", tensor) ])
    let bgr = Seq.toArray ((Seq.head prepared).AsTensor<float32>())
    let bgrTensor = DenseTensor<float32>(Memory<float32>(bgr), ReadOnlySpan<int>([| 1; 3; 224; 224 |]))
    use pooled = network.Run([ NamedOnnxValue.CreateFromTensor("Input247", bgrTensor) ], [ "Pooling395_Output_0" ])
    Seq.toArray ((Seq.head pooled).AsTensor<float32>()), bgr

[<Fact>]
let ``ResNet-18 sees each image as 0–255 RGB resized to 224² bilinearly: features equal those of the input built by hand`` () =
    let folder = ImageFeatures.ModelFolder
    use prep = new InferenceSession(Path.Combine(folder, "ResNetPrepOnnx", "ResNetPreprocess.onnx"))
    use network = new InferenceSession(Path.Combine(folder, "ResNet18Onnx", "ResNet18.onnx"))
    // What the first graph is documented to do with RGB in 0–255: BGR out, minus channel means near B 103.1, G 115.9,
    // R 123.2. A pure red image: its red, last out, is 255 − 123; blue and green, first, are minus their means.
    let red = Array.init (3 * 224 * 224) (fun k -> if k < 224 * 224 then 255.0f else 0.0f)
    let _, prepared = runGraphs prep network red
    let mean c = Array.averageBy float prepared[c * 224 * 224 .. (c + 1) * 224 * 224 - 1]
    Assert.True(abs (mean 0 + 103.1) < 1.0 && abs (mean 1 + 115.9) < 1.0 && abs (mean 2 - (255.0 - 123.2)) < 1.0,
                sprintf "the preprocessing graph's channel means of pure red: %.2f %.2f %.2f" (mean 0) (mean 1) (mean 2))
    // Images upsampled by 7 (32²), shrunk by 8/7 (256², antialiased), of the input's size (224²), gray (16²), and RGBA
    // (20², upsampled by 11.2): each through `ImageFeatures` and through the graphs from the input built above.
    let compared =
        [ for channels, side, phase in [ 3, 32, 0.0; 3, 256, 0.7; 3, 224, 1.9; 1, 16, 2.6; 4, 20, 4.1 ] do
            let image = pattern channels side phase
            use images = torch.tensor(Array.map float32 image, ReadOnlySpan<int64>([| 1L; int64 channels; int64 side; int64 side |]))
            use features = ImageFeatures.Shared.Extract images
            let actual = features.data<float32>().ToArray()
            let expected, _ = runGraphs prep network (expectedInput channels side image)
            let largest = expected |> Array.map abs |> Array.max
            let worst = Array.map2 (fun (a: float32) e -> abs (a - e)) actual expected |> Array.max
            sprintf "%d² × %d channels" side channels, worst, largest ]
    let shown = compared |> List.map (fun (what, worst, largest) -> sprintf "%s: differ by up to %g (largest %g)" what worst largest) |> String.concat "; "
    // Float32 resizes in another order, and another run of the graphs, differ by about 3e-6 of the largest feature.
    Assert.True(compared |> List.forall (fun (_, worst, largest) -> largest > 1.0f && worst <= 2e-5f * largest), shown)

// ── Threads ───────────────────────────────────────────────────────────────────────────────────────────────────────

/// ONNX Runtime's threads follow the process's `--threads`: `evaluate.fsx --threads N` and a training run's
/// `Threads` (whose phase ends measure `--metrics fd,kid,pr`) both set torch's count, and the shared network is the
/// one loaded with that many intra-op threads in its session options. torch's count is restored after.
[<Fact>]
let ``the feature network runs on the threads evaluate --threads and a training run's Threads give torch`` () =
    let before = torch.get_num_threads ()
    try
        let counts = List.distinct [ 1; Environment.ProcessorCount ]
        for n in counts do
            let args = ProGan.Training.Commands.CommandLine.parse ProGan.Training.Commands.EvaluateCommand.command [ "--threads"; string n ]
            ProGan.Training.Commands.EvaluateCommand.useThreads args
            Assert.Equal(n, torch.get_num_threads ())
            Assert.Equal(n, ImageFeatures.Shared.Threads)
        // No --threads: torch's count as it was (all cores by default), and the network follows it.
        torch.set_num_threads before
        ProGan.Training.Commands.EvaluateCommand.useThreads (ProGan.Training.Commands.CommandLine.parse ProGan.Training.Commands.EvaluateCommand.command [])
        Assert.Equal(before, ImageFeatures.Shared.Threads)
        // A training run with one thread, as `train.fsx --threads 1` makes it.
        use data = Procedural.pyramid 64 8 3 1
        use trainer = new ProGan.Training.Loop.Trainer({ tiny with Threads = 1 }, data, torch.CPU)
        Assert.Equal(1, ImageFeatures.Shared.Threads)
    finally torch.set_num_threads before

/// A feature network that is not there, not a graph, or the wrong graph fails with an error (the missing one names
/// the file and the fix), and the good graphs still load afterwards in the same process.
[<Fact>]
let ``a missing or corrupt feature network names the file and the fix`` () =
    let folder = Path.Combine(Path.GetTempPath(), sprintf "progan-features-%s" (Guid.NewGuid().ToString "N"))
    let prep, network = Path.Combine(folder, "ResNetPrepOnnx", "ResNetPreprocess.onnx"), Path.Combine(folder, "ResNet18Onnx", "ResNet18.onnx")
    try
        let missing = Assert.Throws<FileNotFoundException>(fun () -> ImageFeatures.Load(folder, 1) |> ignore)
        Assert.Contains(prep, missing.Message)
        Assert.Contains("PROGAN_KERAS_FEATURE_MODELS", missing.Message)
        // The preprocessing graph is good, the network's file is truncated: its session fails after prep's was made.
        Directory.CreateDirectory(Path.GetDirectoryName prep) |> ignore
        Directory.CreateDirectory(Path.GetDirectoryName network) |> ignore
        File.Copy(Path.Combine(ImageFeatures.ModelFolder, "ResNetPrepOnnx", "ResNetPreprocess.onnx"), prep)
        File.WriteAllBytes(network, File.ReadAllBytes(Path.Combine(ImageFeatures.ModelFolder, "ResNet18Onnx", "ResNet18.onnx"))[.. 4095])
        let corrupt = Assert.ThrowsAny<Exception>(fun () -> ImageFeatures.Load(folder, 1) |> ignore)
        Assert.IsType<OnnxRuntimeException>(corrupt) |> ignore
        // The other way round: a graph that is not the feature network (prep's graph where ResNet-18's should be).
        File.Copy(prep, network, overwrite = true)
        let foreign = Assert.ThrowsAny<Exception>(fun () -> ImageFeatures.Load(folder, 1) |> ignore)
        Assert.Contains("is not the expected graph", foreign.Message)
        use good = ImageFeatures.Load(ImageFeatures.ModelFolder, 1)
        Assert.Equal(1, good.Threads)
    finally
        if Directory.Exists folder then Directory.Delete(folder, true)
