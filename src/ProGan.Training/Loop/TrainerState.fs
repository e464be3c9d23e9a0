// What a trainer carries from one step to the next besides its tensors, and the pure functions that step it.
namespace ProGan.Training.Loop

open ProGan.Training.Config

/// Everything a `Trainer` carries from one step to the next besides its networks, optimisers and random generators
/// (which TorchSharp updates in place): where the schedule stands, which phase the optimisers were set up for, the
/// learning-rate scale of non-finite retries, and the last gradient penalty. The schedule itself (resolution, α,
/// minibatch, rate) is a pure function of `ImagesShown` (Karras et al. 2018, Appendix A.1; `Schedule.at`).
type TrainerState =
    { /// Real images shown so far, D's repeats counted as the reference counts them.
      ImagesShown: int64
      /// The phase (`SchedulePosition.PhaseIndex`) the optimisers belong to; a step in another phase enters it first.
      OptimizerPhase: int
      /// 1, halved by every non-finite retry; the learning rate in use is the configured one times this.
      RateScale: float
      /// The gradient penalty of the last minibatch that computed it (lazy regularisation skips it on most).
      LastPenalty: float }

/// The trainer's state stepped by pure functions: a step advances it, a new phase is found from it, a checkpoint
/// restores it.
module TrainerState =

    /// Before the first step.
    let start = { ImagesShown = 0L; OptimizerPhase = 0; RateScale = 1.0; LastPenalty = 0.0 }

    /// The configured learning rate after `images`: the level's (`LearningRates`, else `LearningRate`) times the
    /// decay's factor (`TrainingConfig.decayAt`).
    let configuredRateAt (config: TrainingConfig) (images: int64) =
        TrainingConfig.learningRateAt config (Schedule.at config images).Resolution * TrainingConfig.decayAt config images

    /// The learning rate in use at the state's images shown: the configured one times the scale.
    let rate (config: TrainingConfig) (state: TrainerState) = configuredRateAt config state.ImagesShown * state.RateScale

    /// The schedule's position at the state.
    let position (config: TrainingConfig) (state: TrainerState) = Schedule.at config state.ImagesShown

    /// The phase a step from this state trains in, when the optimisers belong to another one (a new level of detail:
    /// the reference resets Adam's moments there, `reset_opt_for_new_lod`); None within the optimisers' phase.
    let newPhase (config: TrainingConfig) (state: TrainerState) =
        let at = position config state
        if at.PhaseIndex <> state.OptimizerPhase then Some at else None

    /// The optimisers now belong to the phase at the state.
    let enterPhase (config: TrainingConfig) (state: TrainerState) = { state with OptimizerPhase = (position config state).PhaseIndex }

    /// After a step that showed `images` reals; `penalty` is the step's last computed gradient penalty, if any.
    let afterStep (images: int) (penalty: float option) (state: TrainerState) =
        { state with ImagesShown = state.ImagesShown + int64 images; LastPenalty = defaultArg penalty state.LastPenalty }

    /// Moved to `images` shown without training (its phase is entered by the next step, or by `enterPhase`).
    let jumpTo (images: int64) (state: TrainerState) =
        if images < 0L then invalidArg "images" (sprintf "images must be ≥ 0; got %d." images)
        { state with ImagesShown = images }

    /// With another learning-rate scale, in (0, 1].
    let withRateScale (scale: float) (state: TrainerState) =
        if not (scale > 0.0 && scale <= 1.0) then invalidArg "scale" (sprintf "The learning-rate scale must be in (0, 1]; got %g." scale)
        { state with RateScale = scale }

    /// Restored from a checkpoint written at `images` shown with learning rate `savedRate`: its optimisers belong to
    /// the phase there, and a retry's lowered rate survives as the scale (saved over configured).
    let restored (config: TrainingConfig) (images: int64) (savedRate: float) (state: TrainerState) =
        let configured = configuredRateAt config images
        { state with
            ImagesShown = images
            OptimizerPhase = (Schedule.at config images).PhaseIndex
            RateScale = if savedRate > 0.0 && configured > 0.0 then savedRate / configured else 1.0 }
