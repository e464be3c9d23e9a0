/// The paper's steps that sit between the layers and the loop, each against an independent computation.
module ProGan.Training.Tests.Paper.PaperStepTests

open System
open System.IO
open Xunit
open TorchSharp
open ProGan.Keras.Models
open ProGan.Keras.Serving
open ProGan.Training.Config
open ProGan.Training.Progress
open ProGan.Training.Data
open ProGan.Training.Paper
open ProGan.Training.Metrics
open ProGan.Training.Runs
open ProGan.Training.Loop
open ProGan.Training.Tests.Fixtures

let private maxDiff (a: torch.Tensor) (b: torch.Tensor) = (a - b).abs().max().item<float32>()

/// The lower level of detail shown at full size, by plain indexing: every pixel takes the mean of its 2×2 block.
let private lowerLevelByHand (x: torch.Tensor) =
    let n, c, h, w = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    let means = x.reshape(n, c, h / 2L, 2L, w / 2L, 2L).mean([| 3L; 5L |])          // [N, C, H/2, W/2]
    means.repeat_interleave(2L, 2L).repeat_interleave(2L, 3L)

[<Fact>]
let ``the reals' fade is the images at α = 1, the lower level at α = 0, and the lerp between`` () =
    use g = torch.manual_seed 11L
    let x = torch.randn([| 4L; 3L; 8L; 8L |], generator = g)
    let low = lowerLevelByHand x
    Assert.Equal(0.0f, maxDiff (Reals.fade 1.0 x) x)
    Assert.True(maxDiff (Reals.fade 0.0 x) low < 1e-6f)
    Assert.True(maxDiff (Reals.fade 0.3 x) (x * torch.tensor 0.3f + low * torch.tensor 0.7f) < 1e-6f)

[<Fact>]
let ``the EMA update is Gs ← β·Gs + (1 − β)·G for every parameter`` () =
    let config = ProGanConfig.Paper.With(resolution = 8, latentSize = 4, fmapBase = 16, fmapMax = 4)
    use torchSeed = torch.manual_seed 12L
    use g = new ProgressiveGenerator(config, torch.CPU)
    use average = new ProgressiveGenerator(config, torch.CPU)
    Ema.start average g
    Assert.All(Seq.zip (average.parameters()) (g.parameters()), fun (a, p) -> Assert.Equal(0.0f, maxDiff a p))
    Assert.All(average.parameters(), fun a -> Assert.False a.requires_grad)
    use _ = torch.no_grad()
    for p in g.parameters() do p.add_(torch.randn_like p) |> ignore
    let before = [ for a in average.parameters() -> a.clone() ]
    Ema.update 0.9 average g
    for (a, (old, p)) in Seq.zip (average.parameters()) (Seq.zip before (g.parameters())) do
        Assert.True(maxDiff a (old * torch.tensor 0.9f + p * torch.tensor 0.1f) < 1e-6f)

[<Fact>]
let ``upkeep: a row every LogImages, at phase ends and at the stop; a tick every TickImages and at phase changes`` () =
    let config = { tiny with StabiliseImages = 64; FadeImages = 64; LogImages = 16; TickImages = 48; Metrics = "swd" }
    let at = Schedule.at config
    let upkeep (a: int64) (b: int64) (stopAt: int64) = Cadence.after config stopAt (at a) (at b)
    // Inside a phase, between multiples: nothing.
    Assert.Equal({ LogRow = false; Metrics = false; PhaseGrid = false; Tick = false; Done = false }, upkeep 40L 44L 1000L)
    // Crossing 16 logs; crossing 48 ticks too.
    Assert.Equal({ LogRow = true; Metrics = false; PhaseGrid = false; Tick = false; Done = false }, upkeep 8L 16L 1000L)
    Assert.Equal({ LogRow = true; Metrics = false; PhaseGrid = false; Tick = true; Done = false }, upkeep 40L 48L 1000L)
    // The step that leaves the 4² stabilise phase (64 → 72 images: α moves off 1): row, metric, grid and tick.
    Assert.Equal({ LogRow = true; Metrics = true; PhaseGrid = true; Tick = true; Done = false }, upkeep 64L 72L 1000L)
    // A requested stop between multiples still logs its row, and is done.
    Assert.Equal({ LogRow = true; Metrics = false; PhaseGrid = false; Tick = false; Done = true }, upkeep 36L 40L 40L)
    // The end of the schedule is a phase end: its metric is measured.
    let total = TrainingConfig.totalImages config
    Assert.True((upkeep (total - 8L) total total).Metrics)
    Assert.False((Cadence.after { config with Metrics = "" } total (at (total - 8L)) (at total)).Metrics)
    // Per-resolution tick lengths (tick_kimg_dict): 32 at 4², the default 48 elsewhere.
    let perLevel = { config with TickImagesAt = [| { Resolution = 4; Images = 32 } |] }
    Assert.True((Cadence.after perLevel 1000L (at 24L) (at 32L)).Tick)
    Assert.False((Cadence.after perLevel 1000L (at 40L) (at 48L)).Tick)
    Assert.False((Cadence.after perLevel 1000L (at 152L) (at 160L)).Tick) // 8² stabilise: multiples of 48, not 32
    Assert.True((Cadence.after perLevel 1000L (at 184L) (at 192L)).Tick)

[<Fact>]
let ``a checkpoint of another format version is refused with one line that says so`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 8L) |> ignore
    let path = List.head (checkpoints run.Path)
    let bytes = File.ReadAllBytes path
    // The format version is the last character of the magic string at the start ("PGKCKPT2"): write a version-1 file
    // with a valid SHA-256, as version 0.1 wrote them.
    let content = Array.copy bytes[.. bytes.Length - 33]
    let magic = Text.Encoding.ASCII.GetBytes "PGKCKPT2"
    let at = Seq.findIndex id (Seq.init (content.Length - magic.Length) (fun i -> content[i .. i + magic.Length - 1] = magic))
    content[at + magic.Length - 1] <- byte '1'
    File.WriteAllBytes(path, Array.append content (Security.Cryptography.SHA256.HashData content))
    let e = Assert.Throws<CheckpointException>(fun () -> Checkpoint.readHeader path |> ignore)
    Assert.Contains("has checkpoint format 1; this version", e.Message)
    Assert.Contains(sprintf "reads format %d only" Checkpoint.formatVersion, e.Message)

[<Fact>]
let ``the diversity ratio is 0 for copies of one image, about 1 for the data against itself, and warns a collapsing run`` () =
    use data = Procedural.pyramid 128 8 3 1
    let gather offset = Minibatch.gather data { Level = 1; Indices = Array.init 64 (fun i -> int64 (i + offset)); Mirrored = Array.zeroCreate 64 }
    use a = gather 0
    use b = gather 64
    use copies = a.narrow(0L, 0L, 1L).expand(64L, -1L, -1L, -1L)
    Assert.True(Diversity.ratioOf copies a < 0.01) // 0 up to cdist's rounding
    Assert.InRange(Diversity.ratioOf b a, 0.8, 1.25)
    // A generator that draws one image whatever the latent: the phase end says so.
    use run = new TempFolder()
    let collapse (trainer: Trainer) =
        use _ = torch.no_grad()
        for struct (name, p) in trainer.State.Ema.named_parameters() do
            if name.StartsWith "to_rgb" && name.EndsWith "weight" then p.zero_() |> ignore
    let events = Collections.Generic.List<TrainingEvent>()
    TrainingRun.run
        { Config = tiny; Folder = run.Path; Resume = false; StopAfterImages = Some 80L; Report = events.Add; OnStep = collapse
          Cancel = Threading.CancellationToken.None } |> ignore
    Assert.Contains(events, fun e -> match e with Warning text -> text.Contains "may be collapsing" | _ -> false)
