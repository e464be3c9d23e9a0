// The progressive schedule (§3, A.1): images shown → level, phase and α.
namespace ProGan.Training.Config

/// Whether a level is being blended in or trained on its own.
type Phase =
    | Stabilise
    | FadeIn

    override this.ToString() = match this with Stabilise -> "stabilise" | FadeIn -> "fade-in"

/// Where training stands, derived from the number of real images shown alone (reference `TrainingSchedule`).
type SchedulePosition =
    { ImagesShown: int64
      /// 0 → 4², 1 → 8², …: the level whose models are trained now (during a fade-in, the new one).
      Level: int
      Resolution: int
      Phase: Phase
      /// Fade-in weight of the new level, 1 while stabilising.
      Alpha: float
      /// The reference's level of detail: log2(final) − log2(resolution) + (1 − α).
      Lod: float
      /// Index of the stabilise/fade phase since the start (changes exactly when lod crosses an integer).
      PhaseIndex: int }

/// The training schedule as a pure function of images shown (Karras et al. 2018, §3; reference `train.py`).
module Schedule =

    /// Images shown when each phase begins, in phase order (`TrainingConfig.phaseImages`' running sums, from 0), with
    /// the end of the growth last.
    let private phaseStarts (config: TrainingConfig) = TrainingConfig.phaseImages config |> Array.scan (+) 0L

    /// Position after `shown` real images: each level stabilises (`StabiliseImages`, or its `StabiliseImagesAt`
    /// entry), then the next fades in (`FadeImages`, or its `FadeImagesAt` entry) with α rising linearly, until the
    /// final level, which stabilises from then on. With equal phases this is the reference's lod =
    /// L−1 − phase − max(phaseImages − stabilise, 0)/fade, clipped at 0. A stabilise phase includes its last image,
    /// a fade-in does not (α < 1), as the reference's formula has it.
    let at (config: TrainingConfig) (shown: int64) =
        let levels = config.Architecture.LevelCount
        if not config.Growing then
            // The non-progressive baseline: the final resolution from the first image.
            { ImagesShown = shown; Level = levels - 1; Resolution = config.Architecture.Resolution; Phase = Stabilise
              Alpha = 1.0; Lod = 0.0; PhaseIndex = 0 }
        else
            let starts = phaseStarts config
            let last = starts.Length - 2 // the final level's stabilise phase
            // The phase `shown` falls in: a stabilise phase holds its last image, a fade-in does not.
            let inside k = if k % 2 = 0 then shown <= starts[k + 1] else shown < starts[k + 1]
            let phase = seq { 0 .. last } |> Seq.tryFind inside |> Option.defaultValue last
            let start = starts[phase]
            let level = (phase + 1) / 2
            let fading = phase % 2 = 1
            let alpha = if fading then float (shown - start) / float (starts[phase + 1] - start) else 1.0
            { ImagesShown = shown
              Level = level
              Resolution = 4 <<< level
              Phase = if fading then FadeIn else Stabilise
              Alpha = alpha
              Lod = float (levels - 1 - level) + (1.0 - alpha)
              PhaseIndex = phase }

    /// Images shown when `level` began: where it starts fading in, after the level below's last stabilise image (0 for
    /// 4², and for every level without growing).
    let levelStart (config: TrainingConfig) (level: int) =
        // Level L > 0 begins with phase 2L − 1, its fade-in.
        if not config.Growing || level = 0 then 0L else (phaseStarts config)[2 * level - 1]

    /// Whether training is over.
    let isDone (config: TrainingConfig) (shown: int64) = shown >= TrainingConfig.totalImages config
