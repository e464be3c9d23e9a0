// One training step of the paper's algorithm: D (with penalty), G through the frozen D, the EMA.
namespace ProGan.Training.Loop

open System
open System.Collections.Generic
open TorchSharp
open ProGan.Keras.Models
open ProGan.Training.Config
open ProGan.Training.Data
open ProGan.Training.Distributed
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
      /// D's auxiliary classifier right on the reals' classes, the share of them (AC-GAN); NaN without classes.
      ClassAccuracy: float
      Images: int }

/// One progressive GAN being trained (Karras et al. 2018, §3, Appendix A.1): it owns G, D, the EMA generator, both
/// optimisers and the random generators (TorchSharp updates them in place), and a `TrainerState` for everything else
/// it carries between steps (replaced by each step, through pure functions); `Step` is one iteration of the paper's
/// algorithm — D's step(s), G's step through the frozen D, the EMA update. Layers and models are the C# library's.
/// With a `world` of several processes (MPI, `Distributed.Mpi`), each trains on its slice of every minibatch and the
/// gradients are averaged before each optimiser step, so that every process takes the step one process would take.
type Trainer(config: TrainingConfig, data: TrainingImages, device: torch.Device, ?world: World) =
    let config = TrainingConfig.validate config
    let world = defaultArg world World.single
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
        if world.Size > 1 then
            for level in 0 .. arch.LevelCount - 1 do
                World.slice world arch.MinibatchGroupSize (TrainingConfig.minibatchAt config level) |> ignore
        // Threads is a setting of the machine a run trains on: a run made elsewhere with more uses all cores here.
        if config.Threads > 0 then torch.set_num_threads (min config.Threads Environment.ProcessorCount)
        // All cores (0), in one of several processes on a machine: its share of them, not all of them each.
        elif world.Size > 1 then
            torch.set_num_threads (max 1 (Environment.ProcessorCount / World.launchedLocalSize Environment.GetEnvironmentVariable))
        torch.manual_seed streams.Weights |> ignore

    let generator = new ProgressiveGenerator(arch, device)
    let discriminator = new ProgressiveDiscriminator(arch, device)
    let ema = new ProgressiveGenerator(arch, device)
    do
        Ema.start ema generator
        // Mixed precision for the networks that train; the EMA generator, which only samples, stays float32.
        generator.ComputeType <- TrainingConfig.computeType config
        discriminator.ComputeType <- TrainingConfig.computeType config
        generator.ChannelsLastFrom <- config.ChannelsLastFrom
        discriminator.ChannelsLastFrom <- config.ChannelsLastFrom
        ema.ChannelsLastFrom <- config.ChannelsLastFrom

    /// Where the trainer stands between steps (everything but its tensors); each step replaces it.
    let mutable at = TrainerState.start

    /// Adam as TorchSharp's, with its Scalars kept alive across the native calls (`ProGan.Keras.Optimizers.Adam`), at
    /// the learning rate in use.
    let adam (m: torch.nn.Module) : TorchSharp.Modules.Adam =
        new ProGan.Keras.Optimizers.Adam(m.parameters(), TrainerState.rate config at, config.Beta1, config.Beta2, config.AdamEpsilon)

    let state =
        { Generator = generator
          Discriminator = discriminator
          Ema = ema
          GeneratorOptimizer = adam generator
          DiscriminatorOptimizer = adam discriminator
          NoiseRandom = new torch.Generator(streams.Noise) }

    /// D's input: the images augmented by the policy (the same transformations for reals and fakes), else as they are.
    /// With several processes, the images are this process's slice of the minibatch: the transformations' parameters
    /// are drawn for the whole minibatch and sliced (`DiffAugment.applyTo`).
    let augmented (images: torch.Tensor) =
        if augment.IsEmpty then images
        else DiffAugment.applyTo (World.slice world arch.MinibatchGroupSize (int images.shape[0] * world.Size)) augment images state.NoiseRandom

    let composites = Dictionary<struct (int * bool), Composite>()

    /// Gradients averaged over the processes (None in one process).
    let nccl = if world.Size > 1 && device.``type`` = DeviceType.CUDA then Some(new NcclCommunicator(world, device)) else None
    let average =
        if world.Size = 1 then None
        else
            match nccl with
            | Some nccl -> Some(GradientAverage(world, nccl.AllReduce))
            | None -> Some(GradientAverage(world, Mpi.allReduceTensor))

    /// This process's part of a minibatch of `count` (all of it in one process).
    let sliceOf (count: int) = World.slice world arch.MinibatchGroupSize count

    /// The minibatch of reals at `images` shown for a step at `level` (a pure function of the seed and the position;
    /// D's repeats within a step draw at their own images shown, at the step's level).
    let drawAt (images: int64) (level: int) =
        let count = TrainingConfig.minibatchAt config level
        let draw = Minibatch.draw streams.Data images level count data.Count config.Mirror
        let slice = sliceOf count
        if slice.Count = count then draw
        else { draw with Indices = slice.Indices |> Array.map (fun i -> draw.Indices[int i]); Mirrored = slice.Indices |> Array.map (fun i -> draw.Mirrored[int i]) }

    /// The next step's reals, gathered on another thread while this step runs.
    let prefetch = new Prefetch(data)

    /// The loss as a float, or NonFiniteException before anything is updated with it.
    let finiteValue (what: string) (value: float) =
        if not (Double.IsFinite value) then raise (NonFiniteException(at.ImagesShown, what))
        value

    let finite (what: string) (loss: torch.Tensor) = finiteValue what (loss.item<float32>() |> float)

    let latents (count: int) =
        use z = torch.randn([| int64 count; int64 arch.LatentSize |], generator = state.NoiseRandom)
        z.``to``(device)

    /// A conditional run's classes (AC-GAN): K = `Architecture.LabelSize`, 0 for an unconditional run.
    let classes = arch.LabelSize

    /// G's input for this process's part of `count` fakes: latents, and for a conditional run a class per fake,
    /// uniform (one-hot after the latent). Returns the input and the classes. Drawn for the whole minibatch, then
    /// sliced: every process's noise stream stays the same, and each fake is the one a single process would draw.
    let fakeInputs (count: int) =
        let input, labels =
            Sampling.conditionalInput classes (latents count) (fun () ->
                torch.randint(int64 classes, [| int64 count |], generator = state.NoiseRandom).``to``(device))
        let slice = sliceOf count
        World.rows slice input, labels |> Option.map (World.rows slice)

    /// The figures of a step averaged over the processes, with the model's gradients (as they are in one process).
    let agree (model: torch.nn.Module) (figures: float list) =
        match average with
        | None -> figures
        | Some average ->
            average.Average(model.parameters(), figures |> List.map float32 |> Array.ofList)
            |> Array.map (fun sum -> float sum / float world.Size) |> List.ofArray

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

    /// Sets both optimisers' learning rate to the one in use.
    let applyRate () =
        for optimizer in [ state.GeneratorOptimizer; state.DiscriminatorOptimizer ] do
            for group in optimizer.ParamGroups do group.LearningRate <- TrainerState.rate config at

    /// Starts a new level of detail when the schedule has reached one: Adam's moments are reset
    /// (`reset_opt_for_new_lod`) when configured, and the level's learning rate takes over.
    let enterPhase () =
        if (TrainerState.newPhase config at).IsSome then
            if config.ResetOptimizerEachLevel then
                state.GeneratorOptimizer.Dispose()
                state.DiscriminatorOptimizer.Dispose()
                state.GeneratorOptimizer <- adam generator
                state.DiscriminatorOptimizer <- adam discriminator
            else applyRate ()
            at <- TrainerState.enterPhase config at

    /// D's step on the minibatch that starts at `images` shown: reals (faded as the reference's `process_reals`)
    /// against fakes of the current G, with the loss's penalties. Returns the loss, its terms, and the gradient
    /// penalty when this minibatch computed one.
    let discriminatorStep (position: SchedulePosition) (images: int64) (count: int) =
        let fading = position.Phase = FadeIn
        let d = discriminator.Pairs[position.Level].Select(fading)
        let sampled, draw = prefetch.Take(images, position.Level, fun () -> drawAt images position.Level)
        use sampled = sampled
        let reals = Reals.fade position.Alpha (sampled.``to``(device))
        let realLabels =
            if classes = 0 then None
            else Some(torch.tensor(draw.Indices |> Array.map (fun i -> data.Labels[int i])).``to``(device))
        let input, fakeLabels = fakeInputs count
        let fakes =
            use _ = torch.no_grad()
            generator.Pairs[position.Level].Select(fading).call input
        let mix = World.rows (sliceOf count) (torch.rand([| int64 count; 1L; 1L; 1L |], generator = state.NoiseRandom).``to``(device))
        state.DiscriminatorOptimizer.zero_grad()
        let weights = TrainingConfig.penaltyWeightsAt config (images / int64 count)
        let terms =
            Losses.discriminator loss d (augmented reals) (augmented fakes) mix weights arch.MinibatchGroupSize (conditioning realLabels fakeLabels)
        let value (t: torch.Tensor) = t.item<float32>() |> float
        let figures =
            if average.IsNone then
                let total = finite "discriminator loss" terms.Total
                terms.Total.backward()
                [ total; value terms.GradientPenalty; value terms.Adversarial; value terms.Drift; value terms.ClassAccuracy ]
            else
                // Every process must make the same decision: the loss is checked once averaged over all of them.
                terms.Total.backward()
                let figures = agree discriminator [ value terms.Total; value terms.GradientPenalty; value terms.Adversarial; value terms.Drift; value terms.ClassAccuracy ]
                finiteValue "discriminator loss" figures.Head |> ignore
                figures
        state.DiscriminatorOptimizer.step() |> ignore
        match figures with
        | [ total; penalty; adversarial; drift; accuracy ] ->
            let penalty = if weights.Lambda > 0.0 || weights.R1 > 0.0 then Some penalty else None
            total, (adversarial, drift, accuracy), penalty
        | _ -> failwith "unreachable: five figures"

    /// G's step: −D(G(z)) through the composite, whose D is frozen. Returns the loss.
    let generatorStep (position: SchedulePosition) (count: int) =
        state.GeneratorOptimizer.zero_grad()
        let input, fakeLabels = fakeInputs count
        let gLoss = Losses.generator loss (compositeFor position.Level (position.Phase = FadeIn)) input (conditioning None fakeLabels)
        let total =
            if average.IsNone then
                let total = finite "generator loss" gLoss
                gLoss.backward()
                total
            else
                gLoss.backward()
                agree generator [ gLoss.item<float32>() |> float ] |> List.head |> finiteValue "generator loss"
        state.GeneratorOptimizer.step() |> ignore
        total

    /// Moves the schedule to `images` shown without training (for benchmarks that time one level and phase).
    member _.JumpTo(images: int64) =
        at <- TrainerState.jumpTo images at
        prefetch.Drop()
        enterPhase ()
        applyRate ()

    /// The configuration (validated).
    member _.Config = config
    /// The processes training together (one, unless launched by MPI).
    member _.World = world
    /// The random streams of the run's seed.
    member _.Streams = streams
    /// Training state: networks, optimisers, random-number generators.
    member _.State = state
    /// The device computed on.
    member _.Device = device
    /// Where the trainer stands between steps.
    member _.At = at
    /// Real images shown so far.
    member _.ImagesShown = at.ImagesShown
    /// Where the schedule stands.
    member _.Position = TrainerState.position config at
    /// Whether the schedule is finished.
    member _.IsDone = Schedule.isDone config at.ImagesShown

    /// One iteration: `DRepeats` D steps (each on its own minibatch of reals, each counted in images shown, as the
    /// reference counts them), a G step through the frozen D, and the EMA update.
    member _.Step() : StepResult =
        let position = TrainerState.position config at
        enterPhase ()
        // The rate is a function of the images shown (the level's rate, the decay): set it for this step.
        applyRate ()
        generator.SetAlpha position.Alpha
        discriminator.SetAlpha position.Alpha
        let count = TrainingConfig.minibatchAt config position.Level
        use scope = torch.NewDisposeScope()
        let dResults = [ for k in 0 .. config.DRepeats - 1 -> discriminatorStep position (at.ImagesShown + int64 (k * count)) count ]
        let dTotal, (adversarial, drift, accuracy), _ = List.last dResults
        let gTotal = generatorStep position count
        let intoLevel = at.ImagesShown - Schedule.levelStart config position.Level
        Ema.update (Ema.betaAt config.EmaBeta config.EmaRampup (config.DRepeats * count) intoLevel) ema generator
        at <- TrainerState.afterStep (config.DRepeats * count) (dResults |> List.choose (fun (_, _, p) -> p) |> List.tryLast) at
        // Enter the next phase now rather than at the next step, so that a checkpoint written after this step
        // already holds the optimisers the next step will use: resuming from it is exactly not stopping.
        enterPhase ()
        if not (Schedule.isDone config at.ImagesShown) then
            prefetch.Start(drawAt at.ImagesShown (TrainerState.position config at).Level, at.ImagesShown)
        else prefetch.Drop()
        { DLoss = dTotal
          GLoss = gTotal
          GradientPenalty = at.LastPenalty
          Adversarial = adversarial
          Drift = drift
          ClassAccuracy = accuracy
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
    member _.LearningRate = TrainerState.rate config at

    /// The factor on every level's learning rate: 1, lowered by non-finite retries (and restored from a checkpoint).
    member _.LearningRateScale = at.RateScale

    /// Sets that factor and applies it to both optimisers (a retry after a non-finite step sets it lower).
    member _.SetLearningRateScale(scale: float) =
        at <- TrainerState.withRateScale scale at
        applyRate ()

    /// Writes a checkpoint of the whole state; refuses (NonFiniteException) if any weight is not finite.
    member this.Save(path: string) =
        match this.NonFiniteWeights() with
        | Some network -> raise (NonFiniteException(at.ImagesShown, sprintf "weight in the %s" network))
        | None -> Checkpoint.save path (TrainerState.position config at) config.Seed (TrainerState.rate config at) state

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
        prefetch.Drop()
        let header = Checkpoint.load path state
        at <- TrainerState.restored config header.ImagesShown header.LearningRate at
        applyRate ()
        header

    interface IDisposable with
        member _.Dispose() =
            (prefetch :> IDisposable).Dispose()
            nccl |> Option.iter (fun c -> (c :> IDisposable).Dispose())
            for c in composites.Values do c.Dispose()
            state.GeneratorOptimizer.Dispose()
            state.DiscriminatorOptimizer.Dispose()
            state.NoiseRandom.Dispose()
            generator.Dispose()
            discriminator.Dispose()
            ema.Dispose()
