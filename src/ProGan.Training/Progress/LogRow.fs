// One row of figures a run reports: log.csv, the display, TensorBoard.
namespace ProGan.Training.Progress

/// One row of log.csv.
type LogRow =
    { ImagesShown: int64
      Resolution: int
      Phase: string
      Alpha: float
      DLoss: float
      GLoss: float
      GradientPenalty: float
      ImagesPerSecond: float
      WallSeconds: float
      /// SWD ×10³ (average over levels) when metrics were computed at this row (a phase end), else NaN.
      Swd: float
      /// Mean MS-SSIM of pairs of generated images when measured at this row (a phase end), else NaN.
      MsSsim: float }
