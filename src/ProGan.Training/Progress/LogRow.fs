// One row of figures a run reports: log.csv, the display, TensorBoard.
namespace ProGan.Training.Progress

/// One row of log.csv: the means of the steps since the row before, by name.
type LogRow =
    { ImagesShown: int64
      Resolution: int
      Phase: string
      Alpha: float
      DLoss: float
      GLoss: float
      GradientPenalty: float
      /// D's adversarial term, before the penalties (WGAN: E[D(fake)] − E[D(real)]; Appendix A.1); NaN in a log
      /// written before it was logged.
      Adversarial: float
      /// D's drift statistic E[D(real)²], unweighted (the loss adds ε_drift times it); NaN in an older log.
      Drift: float
      /// A conditional run's D classifying the reals' classes right, the share of them (AC-GAN, Odena et al. 2017);
      /// NaN for an unconditional run or in an older log.
      ClassAccuracy: float
      ImagesPerSecond: float
      WallSeconds: float
      /// SWD ×10³ (average over levels) when metrics were computed at this row (a phase end), else NaN.
      Swd: float
      /// Mean MS-SSIM of pairs of generated images when measured at this row (a phase end), else NaN.
      MsSsim: float
      /// FD-ResNet18 (Fréchet distance in ResNet-18's features; not FID) when measured at this row, else NaN (and in a
      /// log written before it was logged).
      FdResNet18: float
      /// KID (mean unbiased MMD² over subsets, in ResNet-18's features) when measured at this row, else NaN.
      Kid: float
      /// Precision and recall (k = 3, in ResNet-18's features) when measured at this row, else NaN.
      Precision: float
      Recall: float }
