/// Training options beyond the paper's defaults, from the official code and the PyTorch GAN zoo (issue: options).
module ProGan.Training.Tests.Loop.TrainingOptionTests

open System
open System.IO
open Xunit
open TorchSharp
open ProGan.Keras.Models
open ProGan.Training.Basics
open ProGan.Training.Config
open ProGan.Training.Progress
open ProGan.Training.Data
open ProGan.Training.Paper
open ProGan.Training.Runs
open ProGan.Training.Loop
open ProGan.Training.Output
open ProGan.Training.Commands
open ProGan.Training.Tests.Fixtures

let private scalarOf (t: torch.Tensor) = t.item<float32>() |> float

[<Fact>]
let ``each loss has its formula's value on known scores, and gradients that push D and G the right way`` () =
    let r, f = 0.5, 0.5 // a real scored below every loss's target for reals, a fake above every target for fakes
    let softplus x = log (1.0 + exp x)
    let expected =
        [ WganGp, (f - r), -f
          Lsgan, 0.5 * (r - 1.0) ** 2.0 + 0.5 * f ** 2.0, 0.5 * (f - 1.0) ** 2.0
          Logistic, softplus f + softplus -r, softplus -f
          Hinge, max 0.0 (1.0 - r) + max 0.0 (1.0 + f), -f ]
    for loss, dExpected, gExpected in expected do
        let real = torch.tensor([| float32 r |]).requires_grad_(true)
        let fake = torch.tensor([| float32 f |]).requires_grad_(true)
        let dLoss = (Losses.adversarial loss real fake).sum()
        Assert.Equal(dExpected, scalarOf dLoss, 5)
        dLoss.backward()
        // D lowers its loss by scoring such reals higher and such fakes lower.
        Assert.True(scalarOf real.grad < 0.0, sprintf "%A: ∂L_D/∂D(real) = %g" loss (scalarOf real.grad))
        Assert.True(scalarOf fake.grad > 0.0, sprintf "%A: ∂L_D/∂D(fake) = %g" loss (scalarOf fake.grad))
        let fakeForG = torch.tensor([| float32 f |]).requires_grad_(true)
        let gLoss = (Losses.generatorAdversarial loss fakeForG).sum()
        Assert.Equal(gExpected, scalarOf gLoss, 5)
        gLoss.backward()
        Assert.True(scalarOf fakeForG.grad < 0.0, sprintf "%A: G lowers its loss by raising D(fake)" loss)

[<Fact>]
let ``R1 adds (γ/2)·‖∇D(real)‖² computed by hand for a linear critic`` () =
    // D(x) = Σ w·x has ∇D = w everywhere: the penalty is ‖w‖² for every sample.
    use g = torch.manual_seed 21L
    let w = torch.randn([| 1L; 2L; 2L; 2L |], generator = g)
    let critic =
        { new torch.nn.Module<torch.Tensor, torch.Tensor>("linear") with
            member _.forward x = (x * w).sum([| 1L; 2L; 3L |]).unsqueeze(1L) }
    let reals, fakes = torch.randn([| 4L; 2L; 2L; 2L |], generator = g), torch.randn([| 4L; 2L; 2L; 2L |], generator = g)
    let weights = { Lambda = 10.0; Gamma = 1.0; EpsilonDrift = 0.001; R1 = 4.0 }
    let terms = Losses.discriminator Logistic critic reals fakes (torch.zeros([| 4L; 1L; 1L; 1L |])) weights 4 None
    let normSquared = w.square().sum() |> scalarOf
    Assert.Equal(normSquared, scalarOf terms.GradientPenalty, 4)
    Assert.Equal(scalarOf terms.Adversarial + 2.0 * normSquared, scalarOf terms.Total, 4)

[<Fact>]
let ``every loss trains with finite losses in each phase, and a lazily regularised step reports the last penalty computed`` () =
    // One step of each phase (4² stabilise, 8² fade-in, 8² stabilise) and one minibatch after the first: a whole run
    // repeats these steps, and the log's GP column is the mean of the steps' penalties.
    use data = Procedural.pyramid 64 8 3 1
    for loss, r1, interval in [ Lsgan, 0.0, 1; Logistic, 1.0, 1; Hinge, 0.0, 1; Logistic, 1.0, 16; WganGp, 0.0, 4 ] do
        let config = { tiny with Loss = loss; R1Weight = r1; PenaltyInterval = interval }
        use trainer = new Trainer(config, data, torch.CPU)
        let stepAt (images: int64) =
            trainer.JumpTo images
            let position = trainer.Position
            position, trainer.Step()
        let eight = Schedule.levelStart config 1 // 8² fades in after it, then stabilises
        let steps = [ stepAt 0L; stepAt 8L; stepAt (eight + 32L); stepAt (eight + int64 config.FadeImages + 32L) ]
        Assert.Equal<string list>([ "4² stabilise"; "4² stabilise"; "8² fade-in"; "8² stabilise" ],
                                  [ for p, _ in steps -> sprintf "%d² %O" p.Resolution p.Phase ])
        for p, s in steps do
            let at = sprintf "%s at %d images" (GanLoss.name loss) p.ImagesShown
            Assert.True(Double.IsFinite s.DLoss && Double.IsFinite s.GLoss, sprintf "%s: D %g, G %g" at s.DLoss s.GLoss)
            // A penalised run reports the penalty of its last penalised minibatch, never the 0 of a skipped one
            // (minibatches 1, 12 and 20 of K = 16, and 1 of K = 4, are skipped); an unpenalised one reports 0.
            if loss = WganGp || r1 > 0.0 then Assert.True(s.GradientPenalty > 0.0, sprintf "%s every %d: GP %g" at interval s.GradientPenalty)
            else Assert.Equal(0.0, s.GradientPenalty)

[<Fact>]
let ``lazy regularisation puts the penalty on every k-th minibatch, k times as heavy, and skips computing it between`` () =
    // Karras et al. 2020, §4: the penalty's expected weight per minibatch is unchanged; drift stays on every one.
    let every4 = { tiny with PenaltyInterval = 4 }
    let at = [ for i in 0L .. 7L -> TrainingConfig.penaltyWeightsAt every4 i ]
    Assert.Equal<float list>([ 40.0; 0.0; 0.0; 0.0; 40.0; 0.0; 0.0; 0.0 ], at |> List.map (fun w -> w.Lambda))
    Assert.Equal(tiny.GradientPenaltyWeight, at |> List.averageBy (fun w -> w.Lambda))
    Assert.All(at, fun w -> Assert.Equal(tiny.DriftWeight, w.EpsilonDrift))
    let r1 = [ for i in 16L .. 19L -> (TrainingConfig.penaltyWeightsAt { tiny with Loss = Logistic; R1Weight = 2.0; PenaltyInterval = 16 } i).R1 ]
    Assert.Equal<float list>([ 32.0; 0.0; 0.0; 0.0 ], r1)
    Assert.Equal(TrainingConfig.lossWeights tiny, TrainingConfig.penaltyWeightsAt tiny 3L)
    // D(x) = Σ w·x has ∇D = w: on a penalised minibatch the penalty is (‖w‖ − 1)² at weight 4λ; on a skipped one D's
    // loss is the adversarial and drift terms alone.
    use g = torch.manual_seed 22L
    let w = torch.randn([| 1L; 2L; 2L; 2L |], generator = g)
    let critic =
        { new torch.nn.Module<torch.Tensor, torch.Tensor>("linear") with
            member _.forward x = (x * w).sum([| 1L; 2L; 3L |]).unsqueeze(1L) }
    let reals, fakes = torch.randn([| 4L; 2L; 2L; 2L |], generator = g), torch.randn([| 4L; 2L; 2L; 2L |], generator = g)
    let mix = torch.rand([| 4L; 1L; 1L; 1L |], generator = g)
    let dReal, dFake = critic.call reals, critic.call fakes
    let adversarialAndDrift = (dFake - dReal + dReal.square() * 0.001).mean() |> scalarOf
    let penalty = (w.square().sum().sqrt() - 1.0).square() |> scalarOf
    let penalised = Losses.discriminator WganGp critic reals fakes mix at[4] 4 None
    Assert.Equal(penalty, scalarOf penalised.GradientPenalty, 4)
    Assert.Equal(adversarialAndDrift + 40.0 * penalty, scalarOf penalised.Total, 3)
    let skipped = Losses.discriminator WganGp critic reals fakes mix at[5] 4 None
    Assert.Equal(0.0, scalarOf skipped.GradientPenalty)
    Assert.Equal(adversarialAndDrift, scalarOf skipped.Total, 4)

[<Fact>]
let ``per-resolution learning rates, D repeats and the non-progressive baseline follow the schedule`` () =
    let config =
        TrainCommand.plan (CommandLine.parse TrainCommand.command [ "--resolution"; "8"; "--lr"; "4:0.002,8:0.0005"; "--d-repeats"; "2" ])
    let config = { config.Config with Architecture = tiny.Architecture; StabiliseImages = 64; FadeImages = 64; Minibatch = [| 8 |]; ProceduralImages = 64 }
    use data = Procedural.pyramid 64 8 3 1
    use trainer = new Trainer(config, data, torch.CPU)
    let rates () = [ for o in [ trainer.State.GeneratorOptimizer; trainer.State.DiscriminatorOptimizer ] do for group in o.ParamGroups -> group.LearningRate ]
    Assert.All(rates (), fun lr -> Assert.Equal(0.002, lr, 9))
    let result = trainer.Step()
    Assert.Equal(16, result.Images) // two D steps of 8 reals each
    Assert.Equal(16L, trainer.ImagesShown)
    trainer.JumpTo 140L // 8² stabilise
    trainer.Step() |> ignore
    Assert.All(rates (), fun lr -> Assert.Equal(0.0005, lr, 9))
    Assert.Equal(0.0005, trainer.LearningRate, 9)
    // Without growing every step trains the final level, and the run shows as many images as a growing one.
    use run = new TempFolder()
    let flat = { tiny with Growing = false }
    let position, _ = train flat run.Path false None
    Assert.Equal(TrainingConfig.totalImages tiny, position.ImagesShown)
    Assert.All(logRows run.Path, fun r -> Assert.True(r.Resolution = 8 && r.Phase = "stabilise"))

[<Fact>]
let ``the learning rate decays linearly to 0 over the run's last fraction, and a checkpoint mid-decay resumes at its rate`` () =
    let config = { tiny with TotalImages = 0L; LearningRateDecay = 0.5 }
    let total = TrainingConfig.totalImages config
    let expected (shown: int64) = if shown <= total / 2L then 1.0 else float (total - shown) / (0.5 * float total)
    for shown in [ 0L; total / 4L; total / 2L; total / 2L + 1L; 3L * total / 4L; total - 8L; total ] do
        Assert.Equal(expected shown, TrainingConfig.decayAt config shown, 12)
    Assert.Equal(1.0, TrainingConfig.decayAt { config with LearningRateDecay = 0.0 } total)
    Assert.Equal(0.0, TrainingConfig.decayAt config (total + 100L))
    use data = Procedural.pyramid 64 8 3 1
    use trainer = new Trainer(config, data, torch.CPU)
    let rates () = [ for o in [ trainer.State.GeneratorOptimizer; trainer.State.DiscriminatorOptimizer ] do for group in o.ParamGroups -> group.LearningRate ]
    let at = 3L * total / 4L
    trainer.JumpTo at
    trainer.Step() |> ignore
    Assert.All(rates (), fun lr -> Assert.Equal(config.LearningRate * expected at, lr, 12))
    // The next step, not a phase change or a jump, lowers the optimisers' rate again.
    let next = trainer.ImagesShown
    trainer.Step() |> ignore
    Assert.All(rates (), fun lr -> Assert.Equal(config.LearningRate * expected next, lr, 12))
    Assert.True(expected next < expected at)
    Assert.Equal(config.LearningRate * expected trainer.ImagesShown, trainer.LearningRate, 12)
    use folder = new TempFolder()
    let file = Path.Combine(folder.Path, "mid-decay.ckpt")
    trainer.Save file
    use resumed = new Trainer(config, data, torch.CPU)
    resumed.Load file |> ignore
    Assert.Equal(1.0, resumed.LearningRateScale, 9)
    Assert.Equal(trainer.LearningRate, resumed.LearningRate, 12)
    // End to end: the run's last checkpoint was written at rate 0.
    use run = new TempFolder()
    let position, _ = train config run.Path false None
    Assert.Equal(total, position.ImagesShown)
    Assert.Equal(0.0, (Checkpoint.readHeader (List.head (checkpoints run.Path))).LearningRate)

[<Fact>]
let ``a run started from another run's weights has its levels, fresh higher ones, and refuses another shape`` () =
    use source = new TempFolder()
    train tiny source.Path false None |> ignore
    let bigger = { tiny with Architecture = tiny.Architecture.With(resolution = 16); InitFrom = source.Path }
    use data = Procedural.pyramid 64 16 3 1
    use trainer = new Trainer(bigger, data, torch.CPU)
    Assert.Equal(8, trainer.InitializeFrom(List.head (checkpoints source.Path)))
    use g = new ProgressiveGenerator(tiny.Architecture, torch.CPU)
    use d = new ProgressiveDiscriminator(tiny.Architecture, torch.CPU)
    use e = new ProgressiveGenerator(tiny.Architecture, torch.CPU)
    Checkpoint.loadNetworks (List.head (checkpoints source.Path)) g d e |> ignore
    let sourceParameters = dict [ for struct (name, p) in e.named_parameters() -> name, p ]
    let mutable copied, fresh = 0, 0
    for struct (name, p) in trainer.State.Ema.named_parameters() do
        match sourceParameters.TryGetValue name with
        | true, q when q.shape = p.shape ->
            Assert.True(p.equal(q).all().item<bool>(), name)
            copied <- copied + 1
        | _ -> fresh <- fresh + 1
    Assert.True(copied > 0 && fresh > 0, sprintf "%d copied, %d fresh" copied fresh)
    // The whole run: new levels train from there.
    use run = new TempFolder()
    let _, events = train { bigger with StabiliseImages = 32; FadeImages = 32 } run.Path false (Some 64L)
    Assert.Contains(events, fun e -> match e with Info text -> text.StartsWith "Started from the weights of" && text.Contains "16² and above are new" | _ -> false)
    let other = { bigger with Architecture = bigger.Architecture.With(latentSize = 12) }
    use other' = new Trainer(other, data, torch.CPU)
    let e = Assert.Throws<ArchitectureMismatchException>(fun () -> other'.InitializeFrom(List.head (checkpoints source.Path)) |> ignore)
    Assert.Contains("LatentSize (run: 12, checkpoint: 8)", e.Message)

[<Fact>]
let ``grayscale and RGBA folders train end to end, and their samples are written in their own channels`` () =
    for channels, components in [ 1, 1; 4, 4 ] do
        use data = new TempFolder()
        for i in 0..7 do
            let pixel = if channels = 1 then [| byte (i * 30) |] else [| byte (i * 30); 90uy; 200uy; byte (60 + i * 20) |]
            writePng (data.File(sprintf "%d.png" i)) 8 8 components (solid 8 8 pixel)
        let config =
            { tiny with DataFolder = data.Path; Minibatch = [| 4 |]; Architecture = tiny.Architecture.With(imageChannels = channels)
                        Metrics = "swd,ms-ssim"; MetricImages = 16 } // both metrics on 1 and 4 channels
        // The data keeps its channels: grey as one, alpha as the fourth, not composited.
        use images = TrainingData.load config ignore Threading.CancellationToken.None
        Assert.Equal(channels, images.Channels)
        let top = (levelBytes images (images.LevelCount - 1)).to_type(torch.ScalarType.Float32)
        let expectedLast = if channels = 1 then [| for i in 0..7 -> float32 (i * 30) |] else [| for i in 0..7 -> float32 (60 + i * 20) |]
        Assert.Equal<float32[]>(expectedLast, top.select(1L, int64 (channels - 1)).mean([| 1L; 2L |]).data<float32>().ToArray())
        use run = new TempFolder()
        let position, _ = train config run.Path false None
        Assert.True(Schedule.isDone config position.ImagesShown)
        Assert.True(File.Exists(RunFolder(run.Path).Final))
        Assert.Contains(logRows run.Path, fun r -> Double.IsFinite r.Swd && Double.IsFinite r.MsSsim)
        use loaded = Generation.load run.Path None
        let out = run.File "samples"
        Generation.writeSamples loaded out 2 7 |> ignore
        let single = Directory.GetFiles(out, "sample-seed7-*.png") |> Array.head
        use png = File.OpenRead single
        Assert.Equal(8 * channels, (SixLabors.ImageSharp.Image.Identify png).PixelType.BitsPerPixel) // 8-bit grey, 8-bit RGBA

[<Fact>]
let ``DiffAugment shifts by whole pixels with zeros coming in, cuts out half-side squares, and lets gradients through`` () =
    use g = new torch.Generator(5UL)
    let x = torch.rand([| 6L; 3L; 8L; 8L |], generator = g) + 1.0f // no zeros of its own
    let shifted = DiffAugment.translation x g
    let value (t: torch.Tensor) (n: int) (c: int) (y: int) (xx: int) = t[int64 n, int64 c, int64 y, int64 xx].item<float32>()
    for n in 0..5 do
        // Some shift (dy, dx) within ⅛ of the side explains every pixel: out[y, x] = in[y + dy, x + dx], else 0.
        let explains (dy, dx) =
            [ for c in 0..2 do for y in 0..7 do for xx in 0..7 -> c, y, xx ]
            |> List.forall (fun (c, y, xx) ->
                let sy, sx = y + dy, xx + dx
                let expected = if sy < 0 || sy > 7 || sx < 0 || sx > 7 then 0.0f else value x n c sy sx
                value shifted n c y xx = expected)
        Assert.True([ for dy in -1..1 do for dx in -1..1 -> dy, dx ] |> List.exists explains, sprintf "image %d is not a shift" n)
    Assert.False(shifted.equal(x).all().item<bool>(), "no image was shifted")
    let cut = DiffAugment.cutout x g
    for n in 0..5 do
        Assert.Equal(3 * 16, cut[int64 n].eq(scalar 0.0).sum().item<int64>() |> int) // a 4×4 square in every channel
    let input = x.clone().requires_grad_(true)
    (DiffAugment.apply Augmentation.all input g).sum().backward()
    Assert.True(input.grad.abs().sum().item<float32>() > 0.0f && torch.isfinite(input.grad).all().item<bool>())
    Assert.Equal(Error "rotate", Augmentation.tryParsePolicy "color,rotate")

[<Fact>]
let ``the EMA warm-up caps its half-life at a fraction of the images shown into the level`` () =
    Assert.Equal(0.999, Ema.betaAt 0.999 0.0 16 1000L)
    // Half-life min(16·ln ½ / ln 0.999 ≈ 11,084, 1000·0.05 = 50) = 50 images: β = ½^(16/50).
    Assert.Equal(0.5 ** (16.0 / 50.0), Ema.betaAt 0.999 0.05 16 1000L, 12)
    Assert.Equal(0.999, Ema.betaAt 0.999 0.05 16 10_000_000L, 12)
    Assert.Equal(0.0, Ema.betaAt 0.999 0.05 16 0L)
    // The warm-up counts from the start of the current level: the first step of a new level (β = 0) sets the average
    // to G, where counted from the run's start it would have kept the slow average of the level before.
    let config = { tiny with EmaRampup = 0.05 }
    use data = Procedural.pyramid 64 8 3 1
    use trainer = new Trainer(config, data, torch.CPU)
    let start = Schedule.levelStart config 1
    Assert.Equal(TrainingConfig.stabiliseImagesAt config 4 |> int64, start)
    Assert.Equal((0, 1), ((Schedule.at config start).Level, (Schedule.at config (start + 1L)).Level))
    trainer.JumpTo(start + 1L) // one image into 8²: half-life 0.05 images, β = ½^160
    trainer.Step() |> ignore
    for (a, p) in Seq.zip (trainer.State.Ema.parameters()) (trainer.State.Generator.parameters()) do
        Assert.True(a.equal(p).all().item<bool>())

/// One step of `trainer`, and copies of every input its D got in it, in order (D's module at the step's level and
/// phase, which D's step, its gradient penalty and G's step all call).
let private stepSeenByD (trainer: Trainer) =
    let position = trainer.Position
    let d = trainer.State.Discriminator.Pairs[position.Level].Select((position.Phase = FadeIn))
    let seen = Collections.Generic.List<torch.Tensor>()
    // The step runs in a dispose scope: the copies leave it.
    let hook = d.register_forward_pre_hook(fun _ input -> seen.Add(input.detach().clone().DetachFromDisposeScope()); input)
    try trainer.Step(), List.ofSeq seen
    finally hook.remove()

/// Per image of [N, C, H, W], how many pixels are 0 in every channel (what cutout leaves, and translation brings in).
let private zeroPixels (images: torch.Tensor) =
    use zero = images.eq(scalar 0.0)
    use all = zero.all(1L)
    use count = all.sum([| 1L; 2L |])
    count.data<int64>().ToArray() |> List.ofArray

[<Fact>]
let ``with augmentation D sees augmented reals and fakes in its step, and augmented fakes in G's step`` () =
    // Two runs from one seed, one with cutout (a 2×2 square of zeros at 4²): the same reals and fakes reach D, zeroed
    // in one square per image with augmentation, untouched without.
    use data = Procedural.pyramid 64 8 3 1
    use plain = new Trainer(tiny, data, torch.CPU)
    use cut = new Trainer({ tiny with Augment = [ Cutout ] }, data, torch.CPU)
    let group = tiny.Architecture.MinibatchGroupSize
    let _, plainSeen = stepSeenByD plain
    let _, cutSeen = stepSeenByD cut
    try
        // D's step scores reals and fakes in one pass (joined group by group), then its penalty at mixes; G's step
        // scores new fakes.
        Assert.Equal<int64 list list>([ [ 16L; 3L; 4L; 4L ]; [ 8L; 3L; 4L; 4L ]; [ 8L; 3L; 4L; 4L ] ], [ for t in cutSeen -> List.ofArray t.shape ])
        let split (seen: torch.Tensor list) =
            let struct (reals, fakes) = ProGan.Keras.Layers.MinibatchStdev.SplitGroupwise(seen[0], group)
            [ reals; fakes; seen[2] ]
        let plainRoles, cutRoles = split plainSeen, split cutSeen
        use _ = { new IDisposable with member _.Dispose() = for t in plainRoles[0..1] @ cutRoles[0..1] do t.Dispose() }
        for role, p, c in List.zip3 [ "reals in D's step"; "fakes in D's step"; "fakes in G's step" ] plainRoles cutRoles do
            Assert.True(zeroPixels p |> List.forall ((=) 0L), sprintf "%s: without augmentation %A pixels are 0" role (zeroPixels p))
            Assert.True(zeroPixels c |> List.forall (fun n -> n >= 4L), sprintf "%s: with cutout %A pixels are 0, not a 2×2 square per image" role (zeroPixels c))
            if role <> "fakes in G's step" then // G's step draws its latents after the augmentation's draws: other fakes
                Assert.Equal<int64 list>(List.replicate 8 4L, zeroPixels c)
                use changed = c.ne(p)
                use kept = c.ne(scalar 0.0)
                use changedAndKept = changed.logical_and(kept)
                use anywhere = changedAndKept.any()
                Assert.False(anywhere.item<bool>(), sprintf "%s: changed beyond the cut squares" role)
        // The whole policy with the EMA warm-up, where a level fades in: D's inputs are augmented there too (cutout's
        // 4×4 square at 8²), and the losses stay finite.
        let config = { tiny with Augment = Augmentation.all; EmaRampup = 0.05 }
        use augmented = new Trainer(config, data, torch.CPU)
        augmented.JumpTo(Schedule.levelStart config 1 + 8L)
        Assert.Equal(FadeIn, augmented.Position.Phase)
        let step, seen = stepSeenByD augmented
        try
            Assert.True(Double.IsFinite step.DLoss && Double.IsFinite step.GLoss, sprintf "D %g, G %g" step.DLoss step.GLoss)
            Assert.Equal(3, seen.Length)
            for t in [ seen[0]; seen[2] ] do
                Assert.True(zeroPixels t |> List.forall (fun n -> n >= 16L), sprintf "%A pixels are 0 at 8² fading in" (zeroPixels t))
        finally for t in seen do t.Dispose()
    finally for t in plainSeen @ cutSeen do t.Dispose()

/// A folder of two classes: `first/` and `second/`, 16 images each; `red` decides which class holds the red images
/// (all of one class red, the other blue), or with `red = None` both classes hold both colours (labels that say
/// nothing about the image).
let private twoColourFolder (root: string) (red: string option) =
    let rng = Random 5
    for cls in [ "first"; "second" ] do
        Directory.CreateDirectory(Path.Combine(root, cls)) |> ignore
        for i in 0..15 do
            let isRed = match red with Some r -> r = cls | None -> i % 2 = 0
            let jitter () = byte (rng.Next(0, 40))
            let pixels = Array.init (8 * 8 * 3) (fun k ->
                match k % 3 with
                | 0 -> if isRed then 215uy + jitter () else jitter ()
                | 1 -> jitter ()
                | _ -> if isRed then jitter () else 215uy + jitter ())
            writePng (Path.Combine(root, cls, sprintf "%d.png" i)) 8 8 3 pixels

/// Trains a conditional tiny model on a folder and returns, per class, the share of its samples a fixed rule (more red
/// than blue) calls red.
let private redShareByClass (folder: string) =
    // About 1,500 steps of a small network (seconds): the class control emerges after some hundreds.
    let config =
        { tiny with DataFolder = folder; Labels = FolderClasses; Minibatch = [| 8 |]; StabiliseImages = 4096; FadeImages = 4096
                    LearningRate = 0.001; ConditionWeight = 4.0
                    Architecture = tiny.Architecture.With(latentSize = 16, fmapBase = 64, fmapMax = 16, labelSize = 2) }
    use data = TrainingData.load config ignore Threading.CancellationToken.None
    use trainer = new Trainer(config, data, torch.CPU)
    while not trainer.IsDone do trainer.Step() |> ignore
    [ for cls in 0..1 ->
        use z = Sampling.inputs config.Architecture 99UL 32 (fun _ -> cls)
        use images = Sampling.at trainer.State.Ema trainer.Position z torch.CPU // the EMA generator, which draws every sample
        let red = images.select(1L, 0L).mean([| 1L; 2L |])
        let blue = images.select(1L, 2L).mean([| 1L; 2L |])
        (red.gt(blue).sum().item<int64>() |> float) / 32.0 ]

[<Fact>]
let ``a conditional run draws the class it is asked for, and cannot when the labels say nothing`` () =
    use labelled = new TempFolder()
    twoColourFolder labelled.Path (Some "first")
    match redShareByClass labelled.Path with
    | [ first; second ] ->
        Assert.True(first >= 0.9, sprintf "class 'first' (red): %.0f %% of its samples red" (100.0 * first))
        Assert.True(second <= 0.1, sprintf "class 'second' (blue): %.0f %% of its samples red" (100.0 * second))
    | shares -> failwithf "%A" shares
    use shuffled = new TempFolder()
    twoColourFolder shuffled.Path None
    match redShareByClass shuffled.Path with
    | [ first; second ] ->
        Assert.False(first >= 0.9 && second <= 0.1, sprintf "labels that say nothing still gave control: %.2f / %.2f" first second)
    | shares -> failwithf "%A" shares

[<Fact>]
let ``an empty class folder and a class of one image are warned of before preparing`` () =
    use data = new TempFolder()
    twoColourFolder data.Path (Some "first")
    Directory.CreateDirectory(data.File "empty") |> ignore
    Directory.CreateDirectory(data.File "lonely") |> ignore
    writePng (Path.Combine(data.Path, "lonely", "0.png")) 8 8 3 (solid 8 8 [| 9uy; 9uy; 9uy |])
    use root = new TempFolder()
    let code, err, _ = runCommand Cli.prepare [ "--data"; data.Path; "--labels"; "folders"; "--resolution"; "8"; "--out"; root.File "set" ]
    Assert.True((code = 0), err)
    Assert.Contains(sprintf "warning: --labels folders: class folder(s) empty of '%s' hold no usable image, so they are no class; the classes are first, lonely, second." data.Path, err)
    Assert.Contains("warning: --labels folders: class(es) lonely of", err)

[<Fact>]
let ``the procedural set labelled by shape trains a conditional run whose configuration records its classes`` () =
    use run = new TempFolder()
    let _, events = train { tiny with Labels = ShapeClasses } run.Path false None
    Assert.Contains(events, fun e -> match e with Info text -> text = "Conditional on 2 classes: discs, squares" | _ -> false)
    Assert.Equal(2, (RunFolder.readConfig (RunFolder run.Path)).Architecture.LabelSize)
    use images = Procedural.pyramidOf 64 8 3 1 true
    Assert.Equal<string[]>([| "discs"; "squares" |], images.ClassNames)
    Assert.Equal(64, images.Labels.Length)
    Assert.True(images.Labels |> Array.exists ((=) 0L) && images.Labels |> Array.exists ((=) 1L))
    // Resuming keeps the classes; generate.fsx draws one class by name, and names the classes when asked for another.
    let resumed, _ = train (RunFolder.readConfig (RunFolder run.Path)) run.Path true None
    Assert.True(Schedule.isDone tiny resumed.ImagesShown)
    let out = run.File "squares"
    let code, err, _ = runCommand Cli.generate [ "--run"; run.Path; "--class"; "squares"; "--count"; "4"; "--out"; out ]
    Assert.True((code = 0), err)
    Assert.Equal(4, Directory.GetFiles(out, "sample-seed7-*.png").Length)
    use loaded = Generation.load run.Path None
    use asDiscs = (Generation.withClass loaded "discs" |> Generation.sample) (Generation.latents 8 7 4)
    use asSquares = (Generation.withClass loaded "squares" |> Generation.sample) (Generation.latents 8 7 4)
    Assert.True((asDiscs - asSquares).abs().max().item<float32>() > 1e-4f, "the class does not reach the images")
    let code, err, _ = runCommand Cli.generate [ "--run"; run.Path; "--class"; "circles" ]
    Assert.Equal(2, code)
    Assert.Contains("the run's classes are discs, squares", err)
    // Its ONNX export takes the class as a second input, said on the console and in the model's metadata.
    let onnx = run.File "conditional.onnx"
    let code, err, out = runCommand Cli.export [ "--run"; run.Path; "--out"; onnx ]
    Assert.True((code = 0), err)
    Assert.Contains("label [batch, 2] (one-hot class: discs, squares)", out)
    let model = Text.Encoding.UTF8.GetString(File.ReadAllBytes onnx)
    Assert.Contains("label: float32 [batch, 2], one-hot", model)
    Assert.Contains("discs,squares", model)

[<Fact>]
let ``bfloat16 precision trains G and D in bfloat16 and keeps the parameters and the EMA generator float32`` () =
    use data = Procedural.pyramid 64 8 3 1
    let firstSteps precision =
        use trainer = new Trainer({ tiny with Precision = precision }, data, torch.CPU)
        let steps = [ for _ in 1..3 -> trainer.Step() ]
        let state = trainer.State
        Assert.Equal((if precision = BFloat16 then torch.ScalarType.BFloat16 else torch.ScalarType.Float32), state.Generator.ComputeType)
        Assert.Equal(state.Generator.ComputeType, state.Discriminator.ComputeType)
        Assert.Equal(torch.ScalarType.Float32, state.Ema.ComputeType)
        for p in Seq.concat [ state.Generator.parameters(); state.Discriminator.parameters(); state.Ema.parameters() ] do
            Assert.Equal(torch.ScalarType.Float32, p.dtype)
        steps |> List.map (fun s -> s.DLoss)
    let narrow, wide = firstSteps BFloat16, firstSteps Float32
    // Same seed, same minibatches: the losses differ by bfloat16's rounding only (so it did compute in bfloat16). The
    // WGAN-GP penalty squares the rounded gradient norm's distance from 1, so D's loss moves more than G's: up to 11 %
    // at step 2 with libtorch's reference convolutions (0.395 against 0.443), 5 % with oneDNN's.
    for n, w in List.zip narrow wide do
        Assert.True(Double.IsFinite n)
        Assert.NotEqual(w, n)
        Assert.InRange(abs (n - w), 0.0, 0.15 * abs w + 0.01)

[<Fact>]
let ``the trainer lays out G, D and the EMA generator channels-last from ChannelsLastFrom up, and a step runs so`` () =
    use data = Procedural.pyramid 64 8 3 1
    let layouts (trainer: Trainer) =
        [ for network in [ trainer.State.Generator; trainer.State.Ema ] do
            for pair in network.Pairs -> pair.Resolution, pair.StraightThrough.ChannelsLast ]
        @ [ for pair in trainer.State.Discriminator.Pairs -> pair.Resolution, pair.StraightThrough.ChannelsLast ]
    use nhwc = new Trainer({ tiny with ChannelsLastFrom = 8 }, data, torch.CPU)
    Assert.Equal<(int * bool) list>([ 4, false; 8, true; 4, false; 8, true; 4, false; 8, true ], layouts nhwc)
    Assert.True(nhwc.State.Discriminator.Pairs[1].FadeIn.ChannelsLast)
    use nchw = new Trainer({ tiny with ChannelsLastFrom = 0 }, data, torch.CPU)
    Assert.All(layouts nchw, fun (_, channelsLast) -> Assert.False channelsLast)
    nhwc.JumpTo 140L // 8² stabilise
    Assert.True(Double.IsFinite (nhwc.Step()).DLoss)

