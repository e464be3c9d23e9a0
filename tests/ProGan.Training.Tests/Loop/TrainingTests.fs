module ProGan.Training.Tests.Loop.TrainingTests

open System
open System.IO
open Xunit
open TorchSharp
open ProGan.Training.Config
open ProGan.Training.Progress
open ProGan.Training.Data
open ProGan.Training.Paper
open ProGan.Training.Runs
open ProGan.Training.Loop
open ProGan.Training.Tests.Fixtures

[<assembly: CollectionBehavior(DisableTestParallelization = true)>]
do ()

let private finiteRows (folder: string) =
    let rows = logRows folder
    Assert.NotEmpty rows
    for r in rows do
        Assert.True(Double.IsFinite r.DLoss && Double.IsFinite r.GLoss && Double.IsFinite r.GradientPenalty, sprintf "non-finite losses at %d" r.ImagesShown)
    rows

[<Fact>]
let ``a tiny run grows 4² to 8² and writes every artefact`` () =
    use run = new TempFolder()
    let position, events = train tiny run.Path false None
    Assert.Equal(8, position.Resolution)
    Assert.Equal(Stabilise, position.Phase)
    Assert.True(position.ImagesShown >= TrainingConfig.totalImages tiny)
    for file in [ "config.json"; "log.csv"; "loss.png"; "reals.png"; "final.png" ] do
        Assert.True(File.Exists(run.File file), file + " is missing")
    Assert.NotEmpty(Directory.GetFiles(run.Path, "fakes-*.png"))
    Assert.Equal(2, Directory.GetFiles(run.Path, "phase-*.png").Length) // end of 4² stabilise, end of 8² fade-in
    let checkpoints = checkpoints run.Path
    Assert.InRange(checkpoints.Length, 1, tiny.KeepCheckpoints)
    Assert.Empty(Directory.GetFiles(run.Path, "*.tmp*"))
    let rows = finiteRows run.Path
    let phases = rows |> List.map (fun r -> r.Resolution, r.Phase)
    let runs = phases |> List.fold (fun acc p -> match acc with last :: _ when last = p -> acc | _ -> p :: acc) [] |> List.rev
    Assert.Equal<(int * string) list>([ 4, "stabilise"; 8, "fade-in"; 8, "stabilise" ], runs)
    Assert.Contains(events, fun e -> match e with Finished(_, false) -> true | _ -> false)
    // config.json round-trips to the configuration the run used.
    let saved = RunFolder.readConfig (RunFolder run.Path)
    Assert.Equal(tiny.Architecture, saved.Architecture)
    Assert.Equal(tiny.StabiliseImages, saved.StabiliseImages)

[<Fact>]
let ``a run stopped mid-fade and resumed ends where an uninterrupted run ends, with the same weights`` () =
    use whole = new TempFolder()
    use split = new TempFolder()
    let config = { tiny with TickImages = 1000 }
    let uninterrupted, _ = train config whole.Path false None
    let stopped, _ = train config split.Path false (Some 96L) // 64 stabilise + 32 into the 64-image fade
    Assert.Equal(FadeIn, stopped.Phase)
    Assert.Equal(0.5, stopped.Alpha, 9)
    let resumed, events = train config split.Path true None
    Assert.Contains(events, fun e -> match e with Info text -> text.StartsWith "Resumed from checkpoint-000000000096" | _ -> false)
    Assert.Equal(uninterrupted, resumed)
    // Every random-number state was restored: the final EMA generator is bit-for-bit the uninterrupted one.
    let header (folder: string) = Checkpoint.readHeader (List.head (checkpoints folder))
    Assert.Equal((header whole.Path).ImagesShown, (header split.Path).ImagesShown)
    let a = File.ReadAllBytes(whole.File "final.png")
    let b = File.ReadAllBytes(split.File "final.png")
    Assert.Equal<byte[]>(a, b)
    let rowsWhole = logRows whole.Path |> List.map (fun r -> r.ImagesShown, r.DLoss, r.GLoss)
    let rowsSplit = logRows split.Path |> List.map (fun r -> r.ImagesShown, r.DLoss, r.GLoss)
    Assert.Equal<(int64 * float * float) list>(rowsWhole |> List.filter (fun (n, _, _) -> n > 96L), rowsSplit |> List.filter (fun (n, _, _) -> n > 96L))
    assertSameState whole.Path split.Path

[<Fact>]
let ``resuming is exact with every option that draws at random, from a prepared data set read on another thread`` () =
    use root = new TempFolder()
    let dataset = root.File "shapes"
    use images = Procedural.pyramid 64 8 3 1
    PreparedDataset.save dataset "shapes" images |> ignore
    let config = { tiny with DataFolder = dataset; TickImages = 1000; DRepeats = 2; Mirror = true; Augment = Augmentation.all; EmaRampup = 0.05 }
    let whole, split = root.File "whole", root.File "split"
    train config whole false None |> ignore
    train config split false (Some 96L) |> ignore
    train config split true None |> ignore
    assertSameState whole split

[<Fact>]
let ``the same seed gives the same first losses, another seed different ones`` () =
    let firstLosses seed =
        use data = Procedural.pyramid 32 8 3 seed
        use trainer = new Trainer({ tiny with Seed = seed }, data, torch.CPU)
        [ for _ in 1..3 -> let r = trainer.Step() in r.DLoss, r.GLoss ]
    Assert.Equal<(float * float) list>(firstLosses 5, firstLosses 5)
    Assert.NotEqual<(float * float) list>(firstLosses 5, firstLosses 6)

[<Fact>]
let ``the discriminator loss is the WGAN-GP formula computed by hand`` () =
    torch.manual_seed 3L |> ignore
    // A quadratic critic D(x) = (Σ w·x)²: its gradient 2(Σ w·x)·w depends on where x̂ lies, so the penalty checks the
    // per-sample interpolation lerp(real, fake, u) as well as the norm.
    let w = torch.randn([| 1L; 2L; 2L; 2L |])
    let critic =
        { new torch.nn.Module<torch.Tensor, torch.Tensor>("quadratic") with
            member _.forward x = (x * w).sum([| 1L; 2L; 3L |]).square().unsqueeze(1L) }
    let reals, fakes = torch.randn([| 4L; 2L; 2L; 2L |]), torch.randn([| 4L; 2L; 2L; 2L |])
    let mix = torch.tensor([| 0.1f; 0.4f; 0.7f; 0.95f |]).view(4L, 1L, 1L, 1L)
    let loss = Losses.discriminator WganGp critic reals fakes mix { Lambda = 10.0; Gamma = 1.0; EpsilonDrift = 0.001; R1 = 0.0 } 4 None
    let value (t: torch.Tensor) = t.data<float32>().ToArray() |> Array.map float
    let dReal, dFake = value (critic.call reals), value (critic.call fakes)
    let wNorm = w.square().sum().sqrt().item<float32>() |> float
    let penalties =
        [| for i in 0..3 ->
            let u = [| 0.1; 0.4; 0.7; 0.95 |][i]
            let r, f = value (reals[int64 i] * w), value (fakes[int64 i] * w)
            let s = Array.map2 (fun a b -> (1.0 - u) * a + u * b) r f |> Array.sum // Σ w·x̂ for this sample
            (2.0 * abs s * wNorm - 1.0) ** 2.0 |]
    let expected = Array.init 4 (fun i -> dFake[i] - dReal[i] + 10.0 * penalties[i] + 0.001 * dReal[i] ** 2.0) |> Array.average
    Assert.Equal(expected, loss.Total.item<float32>() |> float, 3)
    Assert.Equal(Array.average penalties, loss.GradientPenalty.item<float32>() |> float, 3)

[<Fact>]
let ``a conditional D's class accuracy is the share of reals whose largest class logit is their class, NaN without classes`` () =
    torch.manual_seed 5L |> ignore
    // D's output [N, 1 + K]: a score, then K = 3 class logits — here simply the first four values of each image.
    let critic =
        { new torch.nn.Module<torch.Tensor, torch.Tensor>("classifier") with
            member _.forward x = x.flatten(1L).narrow(1L, 0L, 4L) }
    let reals, fakes = torch.randn([| 8L; 2L; 2L; 2L |]), torch.randn([| 8L; 2L; 2L; 2L |])
    let mix = torch.rand([| 8L; 1L; 1L; 1L |])
    let labels = [| 0L; 1L; 2L; 0L; 1L; 2L; 0L; 1L |]
    let weights = { Lambda = 10.0; Gamma = 1.0; EpsilonDrift = 0.001; R1 = 0.0 }
    let conditioning = Some { RealLabels = torch.tensor labels; FakeLabels = torch.tensor labels; Weight = 1.0 }
    let loss = Losses.discriminator WganGp critic reals fakes mix weights 4 conditioning
    // Independently: the class of each real is the index of its largest value among values 1, 2, 3.
    let values = reals.flatten(1L).data<float32>().ToArray() |> Array.chunkBySize 8
    let right = Array.map2 (fun (v: float32[]) label -> int64 (Array.findIndex ((=) (Array.max v[1..3])) v[1..3]) = label) values labels
    let expected = float (right |> Array.filter id |> Array.length) / 8.0
    Assert.InRange(expected, 0.01, 0.99) // the draw has both right and wrong ones: the test tells counting from guessing
    Assert.Equal(expected, loss.ClassAccuracy.item<float32>() |> float, 6)
    let unconditional = Losses.discriminator WganGp critic reals fakes mix weights 4 None
    Assert.True(Single.IsNaN(unconditional.ClassAccuracy.item<float32>()))

[<Fact>]
let ``a corrupted checkpoint is reported with its path and the previous one is used`` () =
    use run = new TempFolder()
    let config = { tiny with TickImages = 32; KeepCheckpoints = 5 }
    train config run.Path false (Some 96L) |> ignore
    let newest, previous = match checkpoints run.Path with n :: p :: _ -> n, p | _ -> failwith "expected two checkpoints"
    let bytes = File.ReadAllBytes newest
    bytes[bytes.Length / 2] <- bytes[bytes.Length / 2] ^^^ 0xFFuy
    File.WriteAllBytes(newest, bytes)
    let e = Assert.ThrowsAny<exn>(fun () -> Checkpoint.readHeader newest |> ignore)
    Assert.Contains(newest, e.Message)
    Assert.Contains("SHA-256", e.Message)
    let _, events = train config run.Path true (Some 112L)
    Assert.Contains(events, fun e -> match e with Warning text -> text.Contains(Path.GetFileName newest) | _ -> false)
    Assert.True(File.Exists(newest + ".bad"), "the damaged checkpoint is set aside, not tried again")
    Assert.Contains(events, fun e -> match e with Info text -> text.StartsWith("Resumed from " + Path.GetFileName previous) | _ -> false)

[<Fact>]
let ``a checkpoint from another architecture names the field that differs`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 16L) |> ignore
    let other = { tiny with Architecture = tiny.Architecture.With(latentSize = 12) }
    use data = Procedural.pyramid 16 8 3 1
    use trainer = new Trainer(other, data, torch.CPU)
    let e = Assert.ThrowsAny<exn>(fun () -> trainer.Load(List.head (checkpoints run.Path)) |> ignore)
    Assert.Contains("LatentSize (run: 12, checkpoint: 8)", e.Message)

[<Fact>]
let ``resuming exactly at a phase boundary continues as if never stopped`` () =
    // 72 images: the first step of the fade-in has just run, and Adam was reset for the new level of detail.
    use whole = new TempFolder()
    use split = new TempFolder()
    let config = { tiny with TickImages = 1000 }
    train config whole.Path false None |> ignore
    train config split.Path false (Some 72L) |> ignore
    train config split.Path true None |> ignore
    Assert.Equal<byte[]>(File.ReadAllBytes(whole.File "final.png"), File.ReadAllBytes(split.File "final.png"))

[<Fact>]
let ``with --metrics swd every phase end logs the SWD, other rows leave it blank`` () =
    use run = new TempFolder()
    train { tiny with Metrics = "swd"; MetricImages = 32 } run.Path false None |> ignore
    let rows = logRows run.Path
    let withSwd = rows |> List.filter (fun r -> not (Double.IsNaN r.Swd))
    Assert.Equal<int64 list>([ 72L; 128L; 192L ], withSwd |> List.map (fun r -> r.ImagesShown)) // 4² end, fade end, final
    Assert.All(withSwd, fun r -> Assert.True(Double.IsFinite r.Swd && r.Swd > 0.0))
    Assert.True(rows.Length > withSwd.Length)

[<Fact>]
let ``scoring reals and fakes in one pass equals two passes, minibatch-stddev groups included`` () =
    torch.manual_seed 8L |> ignore
    let arch = ProGan.Keras.Models.ProGanConfig.Paper.With(resolution = 8, latentSize = 8, fmapBase = 32, fmapMax = 8)
    use d = new ProGan.Keras.Models.ProgressiveDiscriminator(arch, torch.CPU)
    let model = d[8].StraightThrough
    let reals, fakes = torch.randn([| 16L; 3L; 8L; 8L |]), torch.randn([| 16L; 3L; 8L; 8L |]) * torch.tensor 3.0f
    let together = Losses.scoreTogether model reals fakes 4
    let separate = model.call reals, model.call fakes
    Assert.True((fst together - fst separate).abs().max().item<float32>() < 1e-5f)
    Assert.True((snd together - snd separate).abs().max().item<float32>() < 1e-5f)
    // Mixing the sets in one group would change the statistic: the naive concatenation differs.
    let naive = model.call (torch.cat([| reals; fakes |], 0L))
    Assert.True((naive.narrow(0L, 0L, 16L) - fst separate).abs().max().item<float32>() > 1e-4f)
