// One training step of the paper's algorithm: D (with penalty), G through the frozen D, the EMA.
namespace ProGan.Training.Loop

open System
open System.Collections.Generic
open TorchSharp
open ProGan.Keras.Models
open ProGan.Training.Config
open ProGan.Training.Data
open ProGan.Training.Paper
open ProGan.Training.Runs

/// A loss or weight became NaN or ±∞; raised before the optimiser step that would have spread it.
exception NonFiniteException of images: int64 * what: string
    with override this.Message = sprintf "Training produced a non-finite %s at %d images." this.what this.images

/// The numbers of one training step (D's steps and one G step), as plain floats, D's from its last step (the penalty
/// from the last step that computed it). With WGAN-GP, D's loss is `Adversarial + λ·GradientPenalty + ε_drift·Drift`
/// (the terms before their weights, as `DiscriminatorLoss`).
type StepResult =
    { DLoss: float
      GLoss: float
      GradientPenalty: float
      Adversarial: float
      Drift: float
      Images: int }

/// One progressive GAN being trained (Karras et al. 2018, §3, Appendix A.1): it owns G, D, the EMA generator, both
/// optimisers, the random generators and the position in the schedule, and `Step` is one iteration of the paper's
/// algorithm — D's step(s), G's step through the frozen D, the EMA update. Layers and models are the C# library's.
type Trainer(config: TrainingConfig, data: TrainingImages, device: torch.Device) =
    let config = TrainingConfig.validate config
    let arch = config.Architecture
    let streams = RandomStreams.ofSeed config.Seed
    let loss = config.Loss
    let augment = config.Augment
    do
        // On the CPU every step frees and re-allocates the same large activations: keep them in the heap (15 % → 3 %
        // of a 64² step's CPU time spent in page faults; see HostAllocator).
        if device.``type`` = DeviceType.CPU then ProGan.Keras.Backend.HostAllocator.RetainFreedMemory() |> ignore
        if arch.LabelSize > 0 && data.ClassNames.Length <> arch.LabelSize then
            invalidArg "data" (sprintf "The networks are conditional on %d classes but the data has %d (%s); label the data (--labels) to match." arch.LabelSize data.ClassNames.Length (TrainingData.describe config))
        if data.Resolution < arch.Resolution then
            invalidArg "data" (sprintf "The data is %d² but the run trains to %d²; prepare it at the run's resolution." data.Resolution arch.Resolution)
        // Threads is a setting of the machine a run trains on: a run made elsewhere with more uses all cores here.
        if config.Threads > 0 then torch.set_num_threads (min config.Threads Environment.ProcessorCount)
        torch.manual_seed streams.Weights |> ignore

    let generator = new ProgressiveGenerator(arch, device)
    let discriminator = new ProgressiveDiscriminator(arch, device)
    let ema = new ProgressiveGenerator(arch, device)
    do
        Ema.start ema generator
        // Mixed precision for the networks that train; the EMA generator, which only samples, stays float32.
        generator.ComputeType <- TrainingConfig.computeType config
        discriminator.ComputeType <- TrainingConfig.computeType config

    /// 1, halved by every non-finite retry; the learning rate in use is the level's rate times this.
    let mutable rateScale = 1.0
    let mutable shownForRate = 0L

    /// The configured learning rate after `images`: the level's (`LearningRates`, else `LearningRate`) times the
    /// decay's factor (`TrainingConfig.decayAt`).
    let configuredRateAt (images: int64) =
        TrainingConfig.learningRateAt config (Schedule.at config images).Resolution * TrainingConfig.decayAt config images

    /// The learning rate in use after `images`: the configured one times the scale.
    let rateAt (images: int64) = configuredRateAt images * rateScale

    /// Adam as TorchSharp's, with its Scalars kept alive across the native calls (`ProGan.Keras.Optimizers.Adam`).
    let adam (m: torch.nn.Module) : TorchSharp.Modules.Adam =
        new ProGan.Keras.Optimizers.Adam(m.parameters(), rateAt shownForRate, config.Beta1, config.Beta2, config.AdamEpsilon)

    let state =
        { Generator = generator
          Discriminator = discriminator
          Ema = ema
          GeneratorOptimizer = adam generator
          DiscriminatorOptimizer = adam discriminator
          NoiseRandom = new torch.Generator(streams.Noise) }

    /// D's input: the images augmented by the policy (the same transformations for reals and fakes), else as they are.
    let augmented (images: torch.Tensor) = if augment.IsEmpty then images else DiffAugment.apply augment images state.NoiseRandom

    /// The gradient penalty of the last minibatch that computed it (lazy regularisation skips it on most).
    let mutable lastPenalty = 0.0

    let composites = Dictionary<struct (int * bool), Composite>()
    let mutable shown = 0L
    let mutable phaseIndex = 0

    /// The minibatch of reals at `images` shown for a step at `level` (a pure function of the seed and the position;
    /// D's repeats within a step draw at their own images shown, at the step's level).
    let drawAt (images: int64) (level: int) =
        Minibatch.draw streams.Data images level (TrainingConfig.minibatchAt config level) data.Count config.Mirror

    /// The next step's reals, gathered on another thread while this step runs (the draw, and the gather), so that
    /// reading a data set from disk costs no step time.
    let mutable prefetched : (MinibatchDraw * int64 * System.Threading.Tasks.Task<torch.Tensor>) option = None

    let dropPrefetch () =
        prefetched |> Option.iter (fun (_, _, task) -> try task.GetAwaiter().GetResult().Dispose() with _ -> ())
        prefetched <- None

    /// The reals at `images` shown for a step at `level`, and their draw: the prefetched ones when they are these,
    /// else gathered now.
    let realsAt (images: int64) (level: int) =
        let reals =
            match prefetched with
            | Some(draw, at, task) when at = images && draw.Level = level ->
                task.GetAwaiter().GetResult(), draw // its own exception, not an AggregateException
            | _ ->
                dropPrefetch ()
                let draw = drawAt images level
                Minibatch.gather data draw, draw
        prefetched <- None
        reals


    /// Starts gathering the reals of the step that will start at `images` shown.
    let prefetch (images: int64) =
        dropPrefetch ()
        if not (Schedule.isDone config images) then
            let draw = drawAt images (Schedule.at config images).Level
            prefetched <- Some(draw, images, System.Threading.Tasks.Task.Run(fun () -> Minibatch.gather data draw))

    /// The loss as a float, or NonFiniteException before anything is updated with it.
    let finite (what: string) (loss: torch.Tensor) =
        let value = loss.item<float32>() |> float
        if not (Double.IsFinite value) then raise (NonFiniteException(shown, what))
        value

    let latents (count: int) =
        use z = torch.randn([| int64 count; int64 arch.LatentSize |], generator = state.NoiseRandom)
        z.``to``(device)

    /// A conditional run's classes (AC-GAN): K = `Architecture.LabelSize`, 0 for an unconditional run.
    let classes = arch.LabelSize

    /// G's input for `count` fakes: latents, and for a conditional run a class per fake, uniform (one-hot after the
    /// latent). Returns the input and the classes.
    let fakeInputs (count: int) =
        Sampling.conditionalInput classes (latents count) (fun () ->
            torch.randint(int64 classes, [| int64 count |], generator = state.NoiseRandom).``to``(device))

    /// The classification part of a step's losses (None for an unconditional run).
    let conditioning (realLabels: torch.Tensor option) (fakeLabels: torch.Tensor option) =
        match realLabels, fakeLabels with
        | Some r, Some f -> Some { RealLabels = r; FakeLabels = f; Weight = config.ConditionWeight }
        | None, Some f -> Some { RealLabels = f; FakeLabels = f; Weight = config.ConditionWeight }
        | _ -> None

    /// G through a frozen D at one level and phase, with the augmentation policy between them (D sees augmented fakes
    /// in G's step as in its own), built once and kept.
    let compositeFor (level: int) (fading: bool) =
        let key = struct (level, fading)
        match composites.TryGetValue key with
        | true, c -> c
        | _ ->
            let between = if augment.IsEmpty then null else Func<torch.Tensor, torch.Tensor>(augmented)
            let c = new Composite(generator.Pairs[level].Select(fading), discriminator.Pairs[level].Select(fading), between)
            composites[key] <- c
            c

    /// Sets both optimisers' learning rate to the one at `images` shown.
    let applyRate (images: int64) =
        shownForRate <- images
        for optimizer in [ state.GeneratorOptimizer; state.DiscriminatorOptimizer ] do
            for group in optimizer.ParamGroups do group.LearningRate <- rateAt images

    /// Starts a new level of detail: Adam's moments are reset (`reset_opt_for_new_lod`) when configured, and the
    /// level's learning rate takes over.
    let enterPhase (position: SchedulePosition) =
        if position.PhaseIndex <> phaseIndex then
            shownForRate <- position.ImagesShown
            if config.ResetOptimizerEachLevel then
                state.GeneratorOptimizer.Dispose()
                state.DiscriminatorOptimizer.Dispose()
                state.GeneratorOptimizer <- adam generator
                state.DiscriminatorOptimizer <- adam discriminator
            else applyRate position.ImagesShown
            phaseIndex <- position.PhaseIndex

    /// D's step on the minibatch that starts at `images` shown: reals (faded as the reference's `process_reals`)
    /// against fakes of the current G, with the loss's penalties. Returns the loss terms.
    let discriminatorStep (position: SchedulePosition) (images: int64) (count: int) =
        let fading = position.Phase = FadeIn
        let d = discriminator.Pairs[position.Level].Select(fading)
        let sampled, draw = realsAt images position.Level
        use sampled = sampled
        let reals = Reals.fade position.Alpha (sampled.``to``(device))
        let realLabels =
            if classes = 0 then None
            else Some(torch.tensor(draw.Indices |> Array.map (fun i -> data.Labels[int i])).``to``(device))
        let input, fakeLabels = fakeInputs count
        let fakes =
            use _ = torch.no_grad()
            generator.Pairs[position.Level].Select(fading).call input
        let mix = torch.rand([| int64 count; 1L; 1L; 1L |], generator = state.NoiseRandom).``to``(device)
        state.DiscriminatorOptimizer.zero_grad()
        let weights = TrainingConfig.penaltyWeightsAt config (images / int64 count)
        let terms =
            Losses.discriminator loss d (augmented reals) (augmented fakes) mix weights arch.MinibatchGroupSize (conditioning realLabels fakeLabels)
        let total = finite "discriminator loss" terms.Total
        terms.Total.backward()
        state.DiscriminatorOptimizer.step() |> ignore
        if weights.Lambda > 0.0 || weights.R1 > 0.0 then lastPenalty <- terms.GradientPenalty.item<float32>() |> float
        total, terms

    /// G's step: −D(G(z)) through the composite, whose D is frozen. Returns the loss.
    let generatorStep (position: SchedulePosition) (count: int) =
        state.GeneratorOptimizer.zero_grad()
        let input, fakeLabels = fakeInputs count
        let gLoss = Losses.generator loss (compositeFor position.Level (position.Phase = FadeIn)) input (conditioning None fakeLabels)
        let total = finite "generator loss" gLoss
        gLoss.backward()
        state.GeneratorOptimizer.step() |> ignore
        total

    /// Moves the schedule to `images` shown without training (for benchmarks that time one level and phase).
    member _.JumpTo(images: int64) =
        if images < 0L then invalidArg "images" (sprintf "images must be ≥ 0; got %d." images)
        dropPrefetch ()
        shown <- images
        enterPhase (Schedule.at config shown)
        applyRate shown

    /// The configuration (validated).
    member _.Config = config
    /// The random streams of the run's seed.
    member _.Streams = streams
    /// Training state: networks, optimisers, random-number generators.
    member _.State = state
    /// The device computed on.
    member _.Device = device
    /// Real images shown so far.
    member _.ImagesShown = shown
    /// Where the schedule stands.
    member _.Position = Schedule.at config shown
    /// Whether the schedule is finished.
    member _.IsDone = Schedule.isDone config shown

    /// One iteration: `DRepeats` D steps (each on its own minibatch of reals, each counted in images shown, as the
    /// reference counts them), a G step through the frozen D, and the EMA update.
    member _.Step() : StepResult =
        let position = Schedule.at config shown
        enterPhase position
        // The rate is a function of the images shown (the level's rate, the decay): set it for this step.
        applyRate shown
        generator.SetAlpha position.Alpha
        discriminator.SetAlpha position.Alpha
        let count = TrainingConfig.minibatchAt config position.Level
        use scope = torch.NewDisposeScope()
        let dResults = [ for k in 0 .. config.DRepeats - 1 -> discriminatorStep position (shown + int64 (k * count)) count ]
        let dTotal, dLoss = List.last dResults
        let gTotal = generatorStep position count
        let intoLevel = shown - Schedule.levelStart config position.Level
        Ema.update (Ema.betaAt config.EmaBeta config.EmaRampup (config.DRepeats * count) intoLevel) ema generator
        shown <- shown + int64 (config.DRepeats * count)
        // Enter the next phase now rather than at the next step, so that a checkpoint written after this step
        // already holds the optimisers the next step will use: resuming from it is exactly not stopping.
        enterPhase (Schedule.at config shown)
        prefetch shown
        { DLoss = dTotal
          GLoss = gTotal
          GradientPenalty = lastPenalty
          Adversarial = dLoss.Adversarial.item<float32>() |> float
          Drift = dLoss.Drift.item<float32>() |> float
          Images = config.DRepeats * count }

    /// Images from the EMA generator at a schedule position, in [−1, 1].
    member _.SampleAt(position: SchedulePosition, z: torch.Tensor) = Sampling.at ema position z device

    /// Images from the EMA generator at the current position, in [−1, 1].
    member this.Sample(z: torch.Tensor) = this.SampleAt(this.Position, z)

    /// The first network whose weights are not all finite, or None.
    member _.NonFiniteWeights() =
        use scope = torch.NewDisposeScope()
        use _ = torch.no_grad()
        [ "generator", generator :> torch.nn.Module; "discriminator", discriminator; "EMA generator", ema ]
        |> List.tryPick (fun (name, m) ->
            if m.parameters() |> Seq.forall (fun p -> torch.isfinite(p).all().item<bool>()) then None else Some name)

    /// The learning rate in use (the level's, decayed, times `LearningRateScale`).
    member _.LearningRate = rateAt shown

    /// The factor on every level's learning rate: 1, lowered by non-finite retries (and restored from a checkpoint).
    member _.LearningRateScale = rateScale

    /// Sets that factor and applies it to both optimisers (a retry after a non-finite step sets it lower).
    member _.SetLearningRateScale(scale: float) =
        if not (scale > 0.0 && scale <= 1.0) then invalidArg "scale" (sprintf "The learning-rate scale must be in (0, 1]; got %g." scale)
        rateScale <- scale
        applyRate shown

    /// Writes a checkpoint of the whole state; refuses (NonFiniteException) if any weight is not finite.
    member this.Save(path: string) =
        match this.NonFiniteWeights() with
        | Some network -> raise (NonFiniteException(shown, sprintf "weight in the %s" network))
        | None -> Checkpoint.save path (Schedule.at config shown) config.Seed (rateAt shown) state

    /// Starts from the weights of another run's checkpoint (fine-tuning, `--init-from`): G, D and the EMA generator
    /// take every parameter the source has (its levels), higher levels keep their fresh initialisation, and the
    /// optimisers stay fresh. The source must share every architecture setting but the resolution, which may be lower.
    /// Returns the source's resolution.
    member _.InitializeFrom(path: string) =
        let source = (Checkpoint.readHeader path).Architecture
        match Checkpoint.differences (arch.With(resolution = source.Resolution)) source with
        | [] -> ()
        | diff -> raise (ArchitectureMismatchException(path, String.Join("; ", diff) + " (a run can start only from networks of the same shape)"))
        if source.Resolution > arch.Resolution then
            raise (ArchitectureMismatchException(path, sprintf "Resolution (run: %d, checkpoint: %d): a run can start only from a source of its resolution or lower" arch.Resolution source.Resolution))
        use g = new ProgressiveGenerator(source, torch.CPU)
        use d = new ProgressiveDiscriminator(source, torch.CPU)
        use e = new ProgressiveGenerator(source, torch.CPU)
        Checkpoint.loadNetworks path g d e |> ignore
        use _ = torch.no_grad()
        for (target: torch.nn.Module), (from: torch.nn.Module) in [ generator :> torch.nn.Module, g :> torch.nn.Module; discriminator, d; ema, e ] do
            let parameters = dict [ for struct (name, p) in from.named_parameters() -> name, p ]
            for struct (name, p) in target.named_parameters() do
                match parameters.TryGetValue name with
                | true, q when q.shape = p.shape -> p.copy_(q) |> ignore
                | _ -> ()
        source.Resolution

    /// Restores a checkpoint (same architecture) and continues at its images-shown count.
    member _.Load(path: string) =
        dropPrefetch ()
        let header = Checkpoint.load path state
        shown <- header.ImagesShown
        // A retry's lowered rate survives a resume: the saved rate over the configured one (the level's, decayed) is
        // the scale.
        let configured = configuredRateAt shown
        rateScale <- if header.LearningRate > 0.0 && configured > 0.0 then header.LearningRate / configured else 1.0
        applyRate shown
        phaseIndex <- (Schedule.at config shown).PhaseIndex
        header

    interface IDisposable with
        member _.Dispose() =
            dropPrefetch ()
            for c in composites.Values do c.Dispose()
            state.GeneratorOptimizer.Dispose()
            state.DiscriminatorOptimizer.Dispose()
            state.NoiseRandom.Dispose()
            generator.Dispose()
            discriminator.Dispose()
            ema.Dispose()
