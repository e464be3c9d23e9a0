namespace ProGan.Training

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

    /// Position after `shown` real images: each level stabilises for `StabiliseImages`, then the next fades in for
    /// `FadeImages`; lod = L−1 − phase − max(phaseImages − stabilise, 0)/fade, clipped at 0.
    let at (config: TrainingConfig) (shown: int64) =
        let levels = config.Architecture.LevelCount
        if not config.Growing then
            // The non-progressive baseline: the final resolution from the first image.
            { ImagesShown = shown; Level = levels - 1; Resolution = config.Architecture.Resolution; Phase = Stabilise
              Alpha = 1.0; Lod = 0.0; PhaseIndex = 0 }
        else
            let stabilise, fade = int64 config.StabiliseImages, int64 config.FadeImages
            let cycle = min (shown / (stabilise + fade)) (int64 levels - 1L)
            let inCycle = shown - cycle * (stabilise + fade)
            let fading = cycle < int64 levels - 1L && inCycle > stabilise
            let level, alpha =
                if fading then int cycle + 1, float (inCycle - stabilise) / float fade
                else int cycle, 1.0
            { ImagesShown = shown
              Level = level
              Resolution = 4 <<< level
              Phase = if fading then FadeIn else Stabilise
              Alpha = alpha
              Lod = float (levels - 1 - level) + (1.0 - alpha)
              PhaseIndex = 2 * int cycle + (if fading then 1 else 0) }

    /// Whether training is over.
    let isDone (config: TrainingConfig) (shown: int64) = shown >= TrainingConfig.totalImages config
