module ProGan.Training.Tests.Metrics.ImageFeaturesTests

open System.Threading
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
