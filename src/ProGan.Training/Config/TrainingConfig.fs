// The one immutable configuration of a run, with the paper's defaults and the CPU preset.
namespace ProGan.Training.Config

open System
open System.Text.Json
open System.Text.Json.Serialization
open ProGan.Keras.Models

/// An option's cases by the names the command line and config.json use.
module NamedCases =
    /// The name of `value`.
    let name (names: (string * 'T) list) (value: 'T) = names |> List.find (snd >> (=) value) |> fst
    /// The case named `text`, if any.
    let tryParse (names: (string * 'T) list) (text: string) = names |> List.tryFind (fst >> (=) text) |> Option.map snd

/// A choice among named cases, read and written as its name (config.json keeps the strings the command line takes;
/// an unknown name is refused with the names allowed, never read as a default).
type NamedCasesJson<'T when 'T: equality>(names: (string * 'T) list, what: string) =
    inherit JsonConverter<'T>()
    override _.Read(reader, _, _) =
        let text = if reader.TokenType = JsonTokenType.String then reader.GetString() else null
        match NamedCases.tryParse names text with
        | Some value -> value
        | None ->
            let allowed = String.Join(", ", names |> List.map (fun (name, _) -> "\"" + name + "\""))
            raise (JsonException(sprintf "%s must be one of %s" what allowed))
    override _.Write(writer, value, _) = writer.WriteStringValue(NamedCases.name names value)

/// The GAN loss D and G minimise (`Losses`): the paper's WGAN-GP, or one of the losses the paper's LSUN comparison,
/// the reference's `loss.py` and the PyTorch GAN zoo offer.
[<JsonConverter(typeof<GanLossJson>)>]
type GanLoss =
    | WganGp
    | Lsgan
    | Logistic
    | Hinge
    /// The names `--loss` and config.json use.
    static member Names = [ "wgan-gp", WganGp; "lsgan", Lsgan; "logistic", Logistic; "hinge", Hinge ]
and GanLossJson() =
    inherit NamedCasesJson<GanLoss>(GanLoss.Names, "Loss")

module GanLoss =
    /// The names `--loss` and config.json use.
    let names = GanLoss.Names
    let name (loss: GanLoss) = NamedCases.name names loss
    let tryParse (text: string) = NamedCases.tryParse names text

/// One transformation of differentiable augmentation (DiffAugment, Zhao et al. 2020; `Paper/DiffAugment.fs`).
[<JsonConverter(typeof<AugmentationJson>)>]
type Augmentation =
    | Color
    | Translation
    | Cutout
    /// The names of the paper's policy "color,translation,cutout", in the order they are applied.
    static member Names = [ "color", Color; "translation", Translation; "cutout", Cutout ]
and AugmentationJson() =
    inherit NamedCasesJson<Augmentation>(Augmentation.Names, "an augmentation")

module Augmentation =
    /// Every transformation, in the order they are applied.
    let all = Augmentation.Names |> List.map snd
    let name (a: Augmentation) = NamedCases.name Augmentation.Names a
    /// Parses a policy (`color,translation,cutout`, any subset, empty for none); Error names what is not a transformation.
    let tryParsePolicy (policy: string) =
        let parsed =
            policy.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
            |> List.ofArray |> List.map (fun part -> part, NamedCases.tryParse Augmentation.Names part)
        match parsed |> List.tryFind (snd >> Option.isNone) with
        | Some(bad, _) -> Error bad
        | None -> Ok(parsed |> List.choose snd)
    /// A policy as `--augment` and config.json write it.
    let formatPolicy (policy: Augmentation list) = String.Join(",", policy |> List.map name)

/// A DiffAugment policy in config.json: the comma-separated names `--augment` takes ("" for none).
type AugmentPolicyJson() =
    inherit JsonConverter<Augmentation list>()
    override _.Read(reader, _, _) =
        let text = if reader.TokenType = JsonTokenType.String then reader.GetString() else null
        match (if isNull text then Error "(not a string)" else Augmentation.tryParsePolicy text) with
        | Ok policy -> policy
        | Error bad -> raise (JsonException(sprintf "Augment names '%s'; the transformations are %s" bad (String.Join(", ", Augmentation.Names |> List.map fst))))
    override _.Write(writer, value, _) = writer.WriteStringValue(Augmentation.formatPolicy value)

/// The type G and D compute their activations in (mixed precision, `IMixedPrecisionModel`).
[<JsonConverter(typeof<PrecisionJson>)>]
type Precision =
    | Float32
    | BFloat16
    /// The tensor type G and D compute in.
    member p.ScalarType =
        match p with
        | Float32 -> TorchSharp.torch.ScalarType.Float32
        | BFloat16 -> TorchSharp.torch.ScalarType.BFloat16
    /// The names `--precision` and config.json use: the layer package's (`MixedPrecision.Name`).
    static member Names = [ for p in [ Float32; BFloat16 ] -> MixedPrecision.Name p.ScalarType, p ]
and PrecisionJson() =
    inherit NamedCasesJson<Precision>(Precision.Names, "Precision")

module Precision =
    let name (p: Precision) = NamedCases.name Precision.Names p
    let tryParse (text: string) = NamedCases.tryParse Precision.Names text

/// Where a conditional run's classes come from (AC-GAN, the reference's `label_size`).
[<JsonConverter(typeof<LabelSourceJson>)>]
type LabelSource =
    /// An unconditional run (the paper).
    | Unlabelled
    /// Every immediate subfolder of the data folder is a class.
    | FolderClasses
    /// The procedural set labelled by its shapes: discs or squares.
    | ShapeClasses
    /// The names `--labels` and config.json use ("" for none).
    static member Names = [ "", Unlabelled; "folders", FolderClasses; "shapes", ShapeClasses ]
and LabelSourceJson() =
    inherit NamedCasesJson<LabelSource>(LabelSource.Names, "Labels")

module LabelSource =
    let name (l: LabelSource) = NamedCases.name LabelSource.Names l
    let tryParse (text: string) = NamedCases.tryParse LabelSource.Names text

/// A learning rate that holds at one resolution (the reference's `G_lrate_dict` / `D_lrate_dict` entries).
[<CLIMutable>]
type ResolutionRate =
    { Resolution: int
      Rate: float }

/// A number of images that holds at one resolution: a tick length (the reference's `tick_kimg_dict` entries) or a
/// phase length (`StabiliseImagesAt`, `FadeImagesAt`).
[<CLIMutable>]
type ResolutionImages =
    { Resolution: int
      Images: int }

/// Everything a progressive training run needs, in one immutable record (Karras et al. 2018, §3 and Appendix A;
/// numbers from the reference `config.py`/`train.py`). Presets are `with` copies; every field can be overridden
/// from the command line.
[<CLIMutable>]
type TrainingConfig =
    { /// The networks; `Resolution` is the final resolution the run grows to.
      Architecture: ProGanConfig
      /// Real images shown while each level stabilises (`lod_training_kimg`·1000).
      StabiliseImages: int
      /// Real images shown while the next level fades in (`lod_transition_kimg`·1000).
      FadeImages: int
      /// Stabilise lengths at given resolutions, over `StabiliseImages`: long phases where steps are cheap (4²–16²
      /// cost a tenth of a 32² step on a CPU), short ones where they are dear; empty for none (the paper).
      StabiliseImagesAt: ResolutionImages[]
      /// Fade-in lengths at given resolutions (the level fading in), over `FadeImages`; empty for none (the paper).
      FadeImagesAt: ResolutionImages[]
      /// Real images over the whole run (`total_kimg`·1000); training stays at the final level once grown.
      /// 0: stop after the final level's first stabilise phase.
      TotalImages: int64
      /// Minibatch size per level (4², 8², …); the last entry holds for all higher levels.
      Minibatch: int[]
      /// Adam learning rate α for both networks.
      LearningRate: float
      /// Learning rates at given resolutions, over `LearningRate` (the reference's `G_lrate_dict`); empty for none.
      LearningRates: ResolutionRate[]
      /// Learning-rate decay: over this last fraction of the run's images (`totalImages`) the rate falls linearly to
      /// 0 (the linear decay of CycleGAN and SN-GAN), so that the last steps settle instead of swinging; 0 for none
      /// (the paper).
      LearningRateDecay: float
      /// The GAN loss: WGAN-GP (the paper's), LSGAN, logistic (non-saturating) or hinge.
      Loss: GanLoss
      /// γ of the R1 penalty (γ/2)·‖∇D(real)‖² (Mescheder et al. 2018) for the non-WGAN losses; 0 for none.
      R1Weight: float
      /// Lazy regularisation (Karras et al. 2020, StyleGAN2 §4): the gradient penalty (WGAN-GP's or R1) only on every
      /// k-th minibatch, weighted k times, so that the other minibatches skip its double backward; 1 = every
      /// minibatch (the paper).
      PenaltyInterval: int
      /// D steps per G step (the reference's `D_repeats`); each shows a minibatch of reals.
      DRepeats: int
      /// Grow progressively (the paper); false trains the final resolution from the start, the paper's
      /// non-progressive baseline, for the same number of images.
      Growing: bool
      /// Conditional training (AC-GAN, the reference's `label_size`): the classes are the data folder's subfolders
      /// or the procedural set's shapes; unlabelled for an unconditional run. `Architecture.LabelSize` is the number
      /// of classes.
      Labels: LabelSource
      /// The weight of the auxiliary classification terms (the reference's `cond_weight`, 1).
      ConditionWeight: float
      /// A run folder or checkpoint whose G, D and EMA weights a new run starts from (fine-tuning; its levels are
      /// loaded, higher ones start fresh; the optimisers start fresh); empty for none.
      InitFrom: string
      /// Adam β1 (0 in the paper).
      Beta1: float
      /// Adam β2 (0.99 in the paper).
      Beta2: float
      /// Adam ε (1e-8).
      AdamEpsilon: float
      /// λ, the weight of the WGAN-GP gradient penalty.
      GradientPenaltyWeight: float
      /// γ, the gradient norm the penalty pulls towards (1).
      GradientPenaltyTarget: float
      /// ε_drift, the weight of D(real)² that keeps scores near zero.
      DriftWeight: float
      /// β of the generator's exponential moving average (`G_smoothing`).
      EmaBeta: float
      /// EMA warm-up (StyleGAN2's `ema_rampup`): the average's half-life is at most this fraction of the images shown
      /// since the current level began, so that a short run's average does not lag far behind G, nor a level's new
      /// layers; 0 for none (the paper).
      EmaRampup: float
      /// Differentiable augmentation of reals and fakes before D (DiffAugment, Zhao et al. 2020): any of
      /// color, translation, cutout; empty for none (the paper). config.json writes it as `--augment` takes it.
      [<JsonConverter(typeof<AugmentPolicyJson>)>]
      Augment: Augmentation list
      /// Reset Adam's moments whenever a new level of detail begins (`reset_opt_for_new_lod`).
      ResetOptimizerEachLevel: bool
      /// Randomly mirror real images left–right.
      Mirror: bool
      /// Seed of every random choice (weights, latents, minibatches).
      Seed: int
      /// Images between ticks: sample grid, loss plot and checkpoint.
      TickImages: int
      /// Tick lengths at given resolutions, over `TickImages` (the reference's `tick_kimg_dict`: long ticks while the
      /// steps are cheap, short ones at high resolution); empty for none.
      TickImagesAt: ResolutionImages[]
      /// Images between rows of log.csv.
      LogImages: int
      /// Checkpoints kept in the run folder (older ones are deleted).
      KeepCheckpoints: int
      /// Intra-op CPU threads (0 = all cores).
      Threads: int
      /// The type G and D compute their activations in (mixed precision, `IMixedPrecisionModel`): float32 (the
      /// paper), or bfloat16 — convolutions about twice as fast where the CPU has AVX512-BF16 or AMX, and on recent
      /// GPUs. Parameters, gradients, Adam's moments, the EMA generator and every sample stay float32.
      Precision: Precision
      /// The lowest resolution whose G and D lay their activations out channels-last (NHWC, which oneDNN's
      /// convolutions read without reordering; `ProgressiveNetwork.ChannelsLastFrom`); 0 for none. The same function
      /// either way, up to float rounding. 32 by default: on the CPU preset's steps, paired against NCHW in one process
      /// (2 cores, AVX-512, libtorch 2.10), ×1.02–1.07 at 16²–32², ×1.11–1.14 at 64², in float32 and bfloat16, and
      /// ×0.87 at 8² (docs/benchmark.md). Not measured on a GPU.
      ChannelsLastFrom: int
      /// Images in the embedded procedural data set (used when DataFolder is empty).
      ProceduralImages: int
      /// The training images: a folder read recursively, or empty for the embedded procedural shapes. The one place
      /// a run's data source is stated.
      DataFolder: string
      /// After a non-finite loss, roll back to the last checkpoint and retry with half the learning rate this many
      /// times before stopping (0: stop at once).
      NonFiniteRetries: int
      /// Metrics computed at the end of every phase and logged: "" (none), or a comma-separated list of
      /// `TrainingConfig.knownMetrics`: "swd", "ms-ssim", "fd" (FD-ResNet18), "kid", "pr" (precision and recall).
      Metrics: string
      /// Images per set for those metrics.
      MetricImages: int
      /// Write TensorBoard event files (`tensorboard/` in the run folder) beside log.csv.
      TensorBoard: bool }

/// The weights of WGAN-GP's terms (Gulrajani et al. 2017; Karras et al. 2018, Appendix A.1).
type LossWeights =
    { /// λ, the weight of the gradient penalty (10).
      Lambda: float
      /// γ, the gradient norm the penalty pulls towards (1).
      Gamma: float
      /// ε_drift, the weight of D(real)² that keeps scores near zero (0.001).
      EpsilonDrift: float
      /// γ of the R1 penalty (γ/2)·‖∇D(real)‖² for the non-WGAN losses; 0 for none.
      R1: float }

module TrainingConfig =

    /// The loss weights of a configuration.
    let lossWeights (c: TrainingConfig) =
        { Lambda = c.GradientPenaltyWeight; Gamma = c.GradientPenaltyTarget; EpsilonDrift = c.DriftWeight; R1 = c.R1Weight }

    /// The loss weights of the D step on minibatch `index` (images shown at its start ÷ its size) under lazy
    /// regularisation (Karras et al. 2020, §4): every `PenaltyInterval`-th minibatch carries the penalty k times, so
    /// its expected weight per minibatch is the configured one; the others carry none and skip computing it.
    let penaltyWeightsAt (c: TrainingConfig) (index: int64) =
        let weights = lossWeights c
        let k = c.PenaltyInterval
        if index % int64 k = 0L then { weights with Lambda = weights.Lambda * float k; R1 = weights.R1 * float k }
        else { weights with Lambda = 0.0; R1 = 0.0 }

    /// The type G and D compute in (`Precision`).
    let computeType (c: TrainingConfig) = c.Precision.ScalarType

    /// `--precision auto` picks bfloat16 where the final level's convolutions are at least this large, counted as its
    /// feature maps × its side: the CPU preset's 32 maps at 32² reach it. Paired rounds of 2026-12-03
    /// (`--precision-steps 16,32,64 3`, docs/benchmark.md) measured bfloat16 ×1.09–×1.66 faster at every size from
    /// 1,024 up on a CPU with bfloat16 arithmetic; smaller networks were not measured, and there the rest of the step
    /// (element-wise work, the casts at the layers' edges), which bfloat16 does not speed up, weighs the most.
    let autoBFloat16Size = 1024

    /// `--precision auto`: bfloat16 where the benchmark measured it faster — a CPU with bfloat16 arithmetic
    /// (`cpuBFloat16Features`: AVX512-BF16, AMX-BF16 or Arm's BF16; elsewhere bfloat16 is emulated and slower) and a
    /// final level whose feature maps × side reach `autoBFloat16Size` — and float32 elsewhere, with the reason, for
    /// the run's first lines. On CUDA, float32: no GPU has measured it for this project.
    let autoPrecision (cpuBFloat16Features: string list) (device: TorchSharp.DeviceType) (c: TrainingConfig) =
        let a = c.Architecture
        let maps = a.ChannelsAt(a.LevelCount - 1)
        let size = sprintf "%d feature maps at %d²" maps a.Resolution
        match device, cpuBFloat16Features with
        | TorchSharp.DeviceType.CPU, [] ->
            Float32, "this CPU has no bfloat16 arithmetic (no avx512_bf16, amx_bf16 or bf16 among its flags), so bfloat16 would be emulated, and slower"
        | TorchSharp.DeviceType.CPU, features when maps * a.Resolution < autoBFloat16Size ->
            Float32, sprintf "this CPU has %s, but the benchmark has not measured bfloat16 with %s (it paid from maps × side ≥ %d, e.g. 32 maps at 32²)"
                         (String.Join(", ", features)) size autoBFloat16Size
        | TorchSharp.DeviceType.CPU, features ->
            BFloat16, sprintf "this CPU has %s, and the benchmark measured the bfloat16 step faster with %s (parameters, Adam and samples stay float32)"
                          (String.Join(", ", features)) size
        | other, _ ->
            Float32, sprintf "bfloat16 on %O is not measured by this project; pass --precision bfloat16 to try it" other

    let private imagesAt (entries: ResolutionImages[]) (fallback: int) (resolution: int) =
        entries |> Array.tryFind (fun e -> e.Resolution = resolution) |> Option.map (fun e -> e.Images) |> Option.defaultValue fallback

    /// The images between ticks at a resolution: its `TickImagesAt` entry, else `TickImages`.
    let tickImagesAt (c: TrainingConfig) (resolution: int) = imagesAt c.TickImagesAt c.TickImages resolution

    /// The learning rate at a resolution: its `LearningRates` entry, else `LearningRate`.
    let learningRateAt (c: TrainingConfig) (resolution: int) =
        c.LearningRates |> Array.tryFind (fun r -> r.Resolution = resolution) |> Option.map (fun r -> r.Rate) |> Option.defaultValue c.LearningRate

    /// The images of level `resolution`'s stabilise phase: its `StabiliseImagesAt` entry, else `StabiliseImages`.
    let stabiliseImagesAt (c: TrainingConfig) (resolution: int) = imagesAt c.StabiliseImagesAt c.StabiliseImages resolution

    /// The images of level `resolution`'s fade-in: its `FadeImagesAt` entry, else `FadeImages`.
    let fadeImagesAt (c: TrainingConfig) (resolution: int) = imagesAt c.FadeImagesAt c.FadeImages resolution

    /// The length of every phase in order — 4² stabilises, 8² fades in, 8² stabilises, …, the final level stabilises
    /// (phase k is level ⌊(k + 1)/2⌋'s, a fade-in when k is odd). The last one is the first stabilise of the final
    /// level, after which training stays there.
    let phaseImages (c: TrainingConfig) =
        [| for k in 0 .. 2 * (c.Architecture.LevelCount - 1) ->
             let resolution = 4 <<< ((k + 1) / 2)
             int64 (if k % 2 = 0 then stabiliseImagesAt c resolution else fadeImagesAt c resolution) |]

    /// Real images until the final level has faded in and stabilised once.
    let growthImages (c: TrainingConfig) = Array.sum (phaseImages c)

    /// Real images shown over the whole run: `TotalImages`, or the growth when that is 0.
    let totalImages (c: TrainingConfig) = if c.TotalImages > 0L then c.TotalImages else growthImages c

    /// The factor on the learning rate after `shown` images under `LearningRateDecay` = f: 1 until the last f·T of
    /// the run's T images (`totalImages`), then (T − shown) / (f·T), falling linearly to 0 at T.
    let decayAt (c: TrainingConfig) (shown: int64) =
        let total = float (totalImages c)
        let span = c.LearningRateDecay * total
        if span <= 0.0 then 1.0 else Math.Clamp((total - float shown) / span, 0.0, 1.0)

    /// The metrics a run or `evaluate.fsx` can measure: the paper's SWD and MS-SSIM (§5); FD-ResNet18, KID and
    /// precision/recall ("pr") in ResNet-18's feature space (`ProGan.Training.Metrics.ImageFeatures`).
    let knownMetrics = [ "swd"; "ms-ssim"; "fd"; "kid"; "pr" ]

    /// The metrics `Metrics` names, in the order given.
    let metricNames (c: TrainingConfig) =
        c.Metrics.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries) |> List.ofArray

    /// The minibatch size at a level (0 → 4²).
    let minibatchAt (c: TrainingConfig) (level: int) = c.Minibatch[min level (c.Minibatch.Length - 1)]

    /// The reference's numbers (`config.py`, older `train.py` minibatch overrides) for a final resolution.
    let paper (resolution: int) =
        { Architecture = ProGanConfig.Paper.With(resolution = resolution)
          StabiliseImages = 600_000
          FadeImages = 600_000
          StabiliseImagesAt = [||]
          FadeImagesAt = [||]
          TotalImages = 15_000_000L
          // The older reference lowered the minibatch to 14, 6 and 3 at 256²–1024²; those are not multiples of the
          // minibatch-stddev group of 4 (the reference splits them across GPUs), so the nearest multiples are used.
          Minibatch = [| 16; 16; 16; 16; 16; 16; 12; 8; 4 |]
          LearningRate = 0.001
          LearningRates = [||]
          LearningRateDecay = 0.0
          Loss = WganGp
          R1Weight = 0.0
          PenaltyInterval = 1
          DRepeats = 1
          Growing = true
          InitFrom = ""
          Labels = Unlabelled
          ConditionWeight = 1.0
          Beta1 = 0.0
          Beta2 = 0.99
          AdamEpsilon = 1e-8
          GradientPenaltyWeight = 10.0
          GradientPenaltyTarget = 1.0
          DriftWeight = 0.001
          EmaBeta = 0.999
          EmaRampup = 0.0
          Augment = []
          ResetOptimizerEachLevel = true
          Mirror = false
          Seed = 1
          TickImages = 20_000
          TickImagesAt = [||]
          LogImages = 2_000
          KeepCheckpoints = 3
          Threads = 0
          Precision = Float32
          ChannelsLastFrom = 32
          ProceduralImages = 8192
          DataFolder = ""
          NonFiniteRetries = 0
          Metrics = ""
          MetricImages = 256
          TensorBoard = true }

    /// Small enough that 4² → 32² finishes in about ten minutes on two CPU cores: narrow networks
    /// (latent 64, at most 64 feature maps), short phases (12k images instead of 600k), the final level trained on
    /// for 80k images. The rest comes from the quality study
    /// (docs/quality-study.md, "Quality per CPU-minute"): a 32² step costs ten 4²–16² steps here, so longer low phases are nearly free
    /// (12k-image phases: 16² at 2.7× the SWD floor, against 3.5–8× with 6k), and time at the final level is what
    /// brings its SWD down; so the loss is the non-saturating logistic one with R1 (γ = 1) computed on every 16th
    /// minibatch only (lazy regularisation: WGAN-GP's penalty is 40 % of a 32² step; 1.75× the images per minute,
    /// 3.85× the floor in 10 minutes against 4.6×); and with so few images per run, the number of steps and their size
    /// is what counts: a minibatch of 8 (twice the steps of 16, and no slower per image on two cores) with a learning
    /// rate of 0.012 (the paper's 0.001 left the samples nearly identical at 8² after ~400 steps), with the paper's EMA
    /// β = 0.999 per step warmed up as StyleGAN2 does (half-life at most 5 % of the images shown), reached 2.0× the
    /// floor in 10 minutes, against 2.2× with 0.008 and β = 0.99 (2.2× with either change alone), 3.05× with 8 at
    /// 0.003, 2.9× with 16 at 0.005 and 3.85× with 16 at 0.003. The warm-up counts from the start of each level
    /// (`Ema.betaAt`), where the new layers start moving: counted from the run's start, the slow average washed the
    /// samples out at every level change (15× the floor at 48k and 72k images, against 4–5×; 4.7× at 5 minutes against
    /// 2.8×). A learning-rate decay over the last half (`LearningRateDecay` 0.5) ends lower on the emoji at 30 minutes
    /// but not here (2.05× at 10 minutes), so it is left to longer runs.
    let cpu (resolution: int) =
        { paper resolution with
            Architecture = ProGanConfig.Paper.With(latentSize = 64, resolution = resolution, fmapBase = 512, fmapMax = 64)
            StabiliseImages = 12_000
            FadeImages = 12_000
            StabiliseImagesAt = [| { Resolution = resolution; Images = 80_000 } |]
            TotalImages = 0L
            Minibatch = [| 8 |]
            LearningRate = 0.012
            Loss = Logistic
            R1Weight = 1.0
            PenaltyInterval = 16
            EmaRampup = 0.05
            TickImages = 2_000
            LogImages = 256
            ProceduralImages = 2048 }

    /// Named presets.
    let presets = [ "cpu", cpu; "paper", paper ]

    /// Checks every field; the error names the field, its value and the allowed range.
    let validate (c: TrainingConfig) =
        let fail name (value: obj) range =
            invalidArg name (sprintf "%s = %O is invalid; it must be %s." name value range)
        if isNull (box c.Architecture) then fail "Architecture" "null" "the networks' settings"
        if isNull c.Minibatch then fail "Minibatch" "null" "at least one size"
        c.Architecture.Validate() |> ignore
        for name, value in
            [ "LearningRate", c.LearningRate; "Beta1", c.Beta1; "Beta2", c.Beta2; "AdamEpsilon", c.AdamEpsilon
              "GradientPenaltyWeight", c.GradientPenaltyWeight; "GradientPenaltyTarget", c.GradientPenaltyTarget
              "DriftWeight", c.DriftWeight; "EmaBeta", c.EmaBeta ] do
            if not (Double.IsFinite value) then fail name value "a finite number"
        if c.Architecture.Resolution < 8 then fail "resolution" c.Architecture.Resolution "a power of two ≥ 8"
        if c.StabiliseImages < 1 then fail "StabiliseImages" c.StabiliseImages "≥ 1"
        if c.FadeImages < 1 then fail "FadeImages" c.FadeImages "≥ 1"
        if c.Minibatch.Length = 0 then fail "Minibatch" "[]" "at least one size"
        let group = c.Architecture.MinibatchGroupSize
        if c.TotalImages <> 0L && c.TotalImages < growthImages c then
            fail "TotalImages" c.TotalImages (sprintf "0 or ≥ %d, the images needed to grow to the final resolution" (growthImages c))
        for size in c.Minibatch |> Array.truncate c.Architecture.LevelCount do
            if size < group then fail "Minibatch" size (sprintf "≥ the minibatch-stddev group size %d" group)
            if size % min group size <> 0 then
                fail "Minibatch" size (sprintf "a multiple of the minibatch-stddev group size %d" group)
        // A per-resolution entry names a level of the run: a power of two from `lowest` to the final resolution.
        let checkResolution name (lowest: int) (clause: string) (r: int) =
            if r < lowest || r > c.Architecture.Resolution || (r &&& (r - 1)) <> 0 then
                fail name r (sprintf "a resolution of the run%s, a power of two from %d to %d" clause lowest c.Architecture.Resolution)
        if not (c.LearningRate > 0.0) then fail "LearningRate" c.LearningRate "> 0"
        if isNull c.LearningRates then fail "LearningRates" "null" "a list (empty for none)"
        for r in c.LearningRates do
            checkResolution "LearningRates" 4 "" r.Resolution
            if not (r.Rate > 0.0 && Double.IsFinite r.Rate) then fail "LearningRates" r.Rate "> 0 and finite"
        if not (c.LearningRateDecay >= 0.0 && c.LearningRateDecay <= 1.0) then
            fail "LearningRateDecay" c.LearningRateDecay "in [0, 1]: the last fraction of the run's images over which the rate falls to 0"
        if not (c.R1Weight >= 0.0 && Double.IsFinite c.R1Weight) then fail "R1Weight" c.R1Weight "≥ 0 and finite"
        if c.R1Weight > 0.0 && c.Loss = WganGp then fail "R1Weight" c.R1Weight "0 with wgan-gp (it has its own gradient penalty)"
        if c.PenaltyInterval < 1 || c.PenaltyInterval > 64 then fail "PenaltyInterval" c.PenaltyInterval "from 1 (every minibatch) to 64"
        if c.DRepeats < 1 || c.DRepeats > 16 then fail "DRepeats" c.DRepeats "from 1 to 16"
        if isNull c.InitFrom then fail "InitFrom" "null" "a run folder or checkpoint, or empty for none"
        if c.Labels = ShapeClasses && c.DataFolder <> "" then fail "Labels" "shapes" "\"folders\" with a data folder (\"shapes\" labels the embedded procedural set)"
        if c.Labels = Unlabelled && c.Architecture.LabelSize > 0 then fail "LabelSize" c.Architecture.LabelSize "0 without --labels"
        if not (c.ConditionWeight >= 0.0 && Double.IsFinite c.ConditionWeight) then fail "ConditionWeight" c.ConditionWeight "≥ 0 and finite"
        if not (c.Beta1 >= 0.0 && c.Beta1 < 1.0) then fail "Beta1" c.Beta1 "in [0, 1)"
        if not (c.Beta2 >= 0.0 && c.Beta2 < 1.0) then fail "Beta2" c.Beta2 "in [0, 1)"
        if not (c.AdamEpsilon > 0.0) then fail "AdamEpsilon" c.AdamEpsilon "> 0"
        if not (c.GradientPenaltyWeight >= 0.0) then fail "GradientPenaltyWeight" c.GradientPenaltyWeight "≥ 0"
        if not (c.GradientPenaltyTarget > 0.0) then fail "GradientPenaltyTarget" c.GradientPenaltyTarget "> 0"
        if not (c.DriftWeight >= 0.0) then fail "DriftWeight" c.DriftWeight "≥ 0"
        if not (c.EmaBeta >= 0.0 && c.EmaBeta < 1.0) then fail "EmaBeta" c.EmaBeta "in [0, 1)"
        if not (c.EmaRampup >= 0.0 && Double.IsFinite c.EmaRampup) then fail "EmaRampup" c.EmaRampup "≥ 0 (0: no warm-up)"
        if isNull (box c.Augment) then fail "Augment" "null" "a policy, or empty for none"
        if c.TickImages < 1 then fail "TickImages" c.TickImages "≥ 1"
        for name, entries, lowest, clause in
            [ "StabiliseImagesAt", c.StabiliseImagesAt, 4, " that stabilises"
              "FadeImagesAt", c.FadeImagesAt, 8, " that fades in"
              "TickImagesAt", c.TickImagesAt, 4, "" ] do
            if isNull entries then fail name "null" "a list (empty for none)"
            for e in entries do
                checkResolution name lowest clause e.Resolution
                if e.Images < 1 then fail name e.Images "≥ 1"
        if c.LogImages < 1 then fail "LogImages" c.LogImages "≥ 1"
        if c.KeepCheckpoints < 1 then fail "KeepCheckpoints" c.KeepCheckpoints "≥ 1"
        // At most the cores is checked by --threads: a run trained elsewhere with more still loads here (clamped).
        if c.Threads < 0 then fail "Threads" c.Threads "≥ 0 (0 = all cores)"
        if c.ProceduralImages < 1 then fail "ProceduralImages" c.ProceduralImages "≥ 1"
        if c.ChannelsLastFrom <> 0 && (c.ChannelsLastFrom < 4 || c.ChannelsLastFrom &&& (c.ChannelsLastFrom - 1) <> 0) then
            fail "ChannelsLastFrom" c.ChannelsLastFrom "a resolution (4, 8, 16, …), or 0 for none"
        if c.NonFiniteRetries < 0 then fail "NonFiniteRetries" c.NonFiniteRetries "≥ 0"
        if isNull c.Metrics || not (metricNames c |> List.forall (fun m -> List.contains m knownMetrics)) then
            fail "Metrics" c.Metrics (sprintf "empty, or some of %s separated by commas" (String.Join(", ", knownMetrics)))
        if c.TensorBoard && totalImages c > int64 Int32.MaxValue then
            fail "TotalImages" (totalImages c) (sprintf "at most %d with TensorBoard on (its steps are images shown, and TorchSharp's writer takes an int), or turn it off (--no-tensorboard)" Int32.MaxValue)
        if c.MetricImages < 16 then fail "MetricImages" c.MetricImages "≥ 16"
        if isNull c.DataFolder then fail "DataFolder" "null" "a folder, or empty for the procedural shapes"
        c
