namespace ProGan.Training

open System
open System.Collections.Generic
open TorchSharp
open ProGan.Keras.Models

/// A loss or weight became NaN or ±∞; raised before the optimiser step that would have spread it.
exception NonFiniteException of images: int64 * what: string
    with override this.Message = sprintf "Training produced a non-finite %s at %d images." this.what this.images

/// The numbers of one training step (one D step and one G step), as plain floats. D's loss is
/// `Wasserstein + λ·GradientPenalty + ε_drift·Drift` (the terms before their weights, as `DiscriminatorLoss`).
type StepResult =
    { DLoss: float
      GLoss: float
      GradientPenalty: float
      Wasserstein: float
      Drift: float
      Images: int }

/// One progressive GAN being trained: G, D, the EMA generator and both optimisers, stepped by images shown.
/// Layers and models are the C# library's; this type owns only time (Karras et al. 2018, §3, Appendix A.1).
type Trainer(config: TrainingConfig, data: ImagePyramid, device: torch.Device) =
    let config = TrainingConfig.validate config
    let arch = config.Architecture
    let streams = RandomStreams.ofSeed config.Seed
    let weights = TrainingConfig.lossWeights config
    do
        // On the CPU every step frees and re-allocates the same large activations: keep them in the heap (15 % → 3 %
        // of a 64² step's CPU time spent in page faults; see HostAllocator).
        if device.``type`` = DeviceType.CPU then ProGan.Keras.Backend.HostAllocator.RetainFreedMemory() |> ignore
        if data.Resolution < arch.Resolution then
            invalidArg "data" (sprintf "The data is %d² but the run trains to %d²; prepare it at the run's resolution." data.Resolution arch.Resolution)
        if config.Threads > 0 then torch.set_num_threads config.Threads
        torch.manual_seed streams.Weights |> ignore

    let generator = new ProgressiveGenerator(arch, device)
    let discriminator = new ProgressiveDiscriminator(arch, device)
    let ema = new ProgressiveGenerator(arch, device)
    do Ema.start ema generator

    let mutable learningRate = config.LearningRate

    let adam (m: torch.nn.Module) =
        torch.optim.Adam(m.parameters(), learningRate, config.Beta1, config.Beta2, config.AdamEpsilon)

    let state =
        { Generator = generator
          Discriminator = discriminator
          Ema = ema
          GeneratorOptimizer = adam generator
          DiscriminatorOptimizer = adam discriminator
          DataRandom = new torch.Generator(streams.Data)
          NoiseRandom = new torch.Generator(streams.Noise) }

    let composites = Dictionary<struct (int * bool), Composite>()
    let mutable shown = 0L
    let mutable phaseIndex = 0

    /// The loss as a float, or NonFiniteException before anything is updated with it.
    let finite (what: string) (loss: torch.Tensor) =
        let value = loss.item<float32>() |> float
        if not (Double.IsFinite value) then raise (NonFiniteException(shown, what))
        value

    let latents (count: int) =
        use z = torch.randn([| int64 count; int64 arch.LatentSize |], generator = state.NoiseRandom)
        z.``to``(device)

    /// G through a frozen D at one level and phase, built once and kept.
    let compositeFor (level: int) (fading: bool) =
        let key = struct (level, fading)
        match composites.TryGetValue key with
        | true, c -> c
        | _ ->
            let c = new Composite(generator.Pairs[level].Select(fading), discriminator.Pairs[level].Select(fading))
            composites[key] <- c
            c

    /// Starts a new level of detail: Adam's moments are reset (`reset_opt_for_new_lod`) when configured.
    let enterPhase (position: SchedulePosition) =
        if position.PhaseIndex <> phaseIndex then
            if config.ResetOptimizerEachLevel then
                state.GeneratorOptimizer.Dispose()
                state.DiscriminatorOptimizer.Dispose()
                state.GeneratorOptimizer <- adam generator
                state.DiscriminatorOptimizer <- adam discriminator
            phaseIndex <- position.PhaseIndex

    /// D's step: reals (faded as the reference's `process_reals`) against fakes of the current G, with the
    /// gradient penalty and drift. Returns the loss terms.
    let discriminatorStep (position: SchedulePosition) (count: int) =
        let fading = position.Phase = FadeIn
        let d = discriminator.Pairs[position.Level].Select(fading)
        use sampled = data.Sample(position.Level, count, state.DataRandom, config.Mirror, device)
        let reals = Reals.fade position.Alpha sampled
        let fakes =
            use _ = torch.no_grad()
            generator.Pairs[position.Level].Select(fading).call (latents count)
        let mix = torch.rand([| int64 count; 1L; 1L; 1L |], generator = state.NoiseRandom).``to``(device)
        state.DiscriminatorOptimizer.zero_grad()
        let loss = Losses.discriminator d reals fakes mix weights arch.MinibatchGroupSize
        let total = finite "discriminator loss" loss.Total
        loss.Total.backward()
        state.DiscriminatorOptimizer.step() |> ignore
        total, loss

    /// G's step: −D(G(z)) through the composite, whose D is frozen. Returns the loss.
    let generatorStep (position: SchedulePosition) (count: int) =
        state.GeneratorOptimizer.zero_grad()
        let loss = Losses.generator (compositeFor position.Level (position.Phase = FadeIn)) (latents count)
        let total = finite "generator loss" loss
        loss.backward()
        state.GeneratorOptimizer.step() |> ignore
        total

    /// Moves the schedule to `images` shown without training (for benchmarks that time one level and phase).
    member _.JumpTo(images: int64) =
        if images < 0L then invalidArg "images" (sprintf "images must be ≥ 0; got %d." images)
        shown <- images
        enterPhase (Schedule.at config shown)

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

    /// One iteration: a D step with gradient penalty and drift, a G step through the frozen D, and the EMA update.
    member _.Step() : StepResult =
        let position = Schedule.at config shown
        enterPhase position
        generator.SetAlpha position.Alpha
        discriminator.SetAlpha position.Alpha
        let count = TrainingConfig.minibatchAt config position.Level
        use scope = torch.NewDisposeScope()
        let dTotal, dLoss = discriminatorStep position count
        let gTotal = generatorStep position count
        Ema.update config.EmaBeta ema generator
        shown <- shown + int64 count
        // Enter the next phase now rather than at the next step, so that a checkpoint written after this step
        // already holds the optimisers the next step will use: resuming from it is exactly not stopping.
        enterPhase (Schedule.at config shown)
        { DLoss = dTotal
          GLoss = gTotal
          GradientPenalty = dLoss.GradientPenalty.item<float32>() |> float
          Wasserstein = dLoss.Wasserstein.item<float32>() |> float
          Drift = dLoss.Drift.item<float32>() |> float
          Images = count }

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

    /// The learning rate in use (lowered by `HalveLearningRate`).
    member _.LearningRate = learningRate

    /// Halves the learning rate of both optimisers (used to retry after a non-finite step).
    member _.HalveLearningRate() =
        learningRate <- learningRate / 2.0
        for optimizer in [ state.GeneratorOptimizer; state.DiscriminatorOptimizer ] do
            for group in optimizer.ParamGroups do group.LearningRate <- learningRate

    /// Writes a checkpoint of the whole state; refuses (NonFiniteException) if any weight is not finite.
    member this.Save(path: string) =
        match this.NonFiniteWeights() with
        | Some network -> raise (NonFiniteException(shown, sprintf "weight in the %s" network))
        | None -> Checkpoint.save path shown config.Seed learningRate state

    /// Restores a checkpoint (same architecture) and continues at its images-shown count.
    member _.Load(path: string) =
        let header = Checkpoint.load path state
        shown <- header.ImagesShown
        if header.LearningRate > 0.0 then learningRate <- header.LearningRate // a retry's lowered rate survives a resume
        phaseIndex <- (Schedule.at config shown).PhaseIndex
        header

    interface IDisposable with
        member _.Dispose() =
            for c in composites.Values do c.Dispose()
            state.GeneratorOptimizer.Dispose()
            state.DiscriminatorOptimizer.Dispose()
            state.DataRandom.Dispose()
            state.NoiseRandom.Dispose()
            generator.Dispose()
            discriminator.Dispose()
            ema.Dispose()
