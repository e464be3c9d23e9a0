// What a run tells whoever watches it.
namespace ProGan.Training.Progress

open ProGan.Training.Config
/// What a run tells whoever watches it.
type TrainingEvent =
    | Info of string
    | Warning of string
    | Preparing of done': int * total: int
    | Started of position: SchedulePosition * total: int64
    | Logged of row: LogRow * position: SchedulePosition * total: int64
    | Ticked of images: int64 * checkpoint: string
    | Finished of position: SchedulePosition * stoppedEarly: bool
