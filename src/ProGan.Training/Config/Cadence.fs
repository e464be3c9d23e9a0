// What the run loop does after a step (log row, phase end, tick), as pure functions of images shown.
namespace ProGan.Training.Config

/// What the run loop does after a step, besides training (reference `train.py`: a tick of maintenance every
/// `tick_kimg`, snapshots at its ticks).
type Upkeep =
    { /// Append a row to log.csv (every `LogImages`, at every phase end, and at the stop).
      LogRow: bool
      /// Compute the configured metrics of the phase that just ended.
      Metrics: bool
      /// Draw the grid of the phase that just ended.
      PhaseGrid: bool
      /// A tick: the sample grid, the loss chart and a checkpoint (every `TickImages` — or the level's
      /// `TickImagesAt` — and at every phase change).
      Tick: bool
      /// The run has reached its stop.
      Done: bool }

/// The run loop's decisions as a pure function of the configuration and the schedule positions around one step.
module Cadence =

    /// What to do after a step that took the schedule from `before` to `after`, in a run that stops at `stopAt` images.
    let after (config: TrainingConfig) (stopAt: int64) (before: SchedulePosition) (after: SchedulePosition) =
        let crossed (every: int) = after.ImagesShown / int64 every > before.ImagesShown / int64 every
        let phaseChanged = after.PhaseIndex <> before.PhaseIndex
        let phaseEnded = phaseChanged || Schedule.isDone config after.ImagesShown
        let stopped = after.ImagesShown >= stopAt
        { LogRow = crossed config.LogImages || phaseEnded || stopped
          Metrics = config.Metrics <> "" && phaseEnded
          PhaseGrid = phaseChanged
          Tick = crossed (TrainingConfig.tickImagesAt config before.Resolution) || phaseChanged
          Done = stopped }
