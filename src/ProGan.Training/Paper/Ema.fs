// The generator's exponential moving average Gs (§A.1, `G_smoothing`).
namespace ProGan.Training.Paper

open TorchSharp

/// The generator's exponential moving average `Gs` (Karras et al. 2018, §A.1; reference `G_smoothing`), which draws
/// every sample and every metric.
module Ema =

    /// Copies the weights of `source` into `average` and freezes them: the average starts where G starts.
    let start (average: torch.nn.Module) (source: torch.nn.Module) =
        use _ = torch.no_grad()
        for (a, p) in Seq.zip (average.parameters()) (source.parameters()) do
            a.copy_(p) |> ignore
            a.requires_grad <- false

    /// β for a step of `batch` images, `shown` images into the warm-up, with a warm-up `rampup` (StyleGAN2's
    /// `ema_rampup`): the average's half-life in images is min(that of β, shown·rampup), so β_t = 0.5^(batch /
    /// half-life); `beta` as it is when `rampup` is 0. Progressive training counts `shown` from the start of the
    /// current level (`Schedule.levelStart`), where its new layers start moving: counted from the run's start, the
    /// slow average of those fast-moving layers washes the samples out at every level change.
    let betaAt (beta: float) (rampup: float) (batch: int) (shown: int64) =
        if rampup <= 0.0 || beta <= 0.0 then beta
        else
            let halfLife = float batch * log 0.5 / log beta
            let rampedHalfLife = min halfLife (float shown * rampup)
            if rampedHalfLife <= 0.0 then 0.0 else 0.5 ** (float batch / rampedHalfLife)

    /// One update after a training step: Gs ← lerp(G, Gs, β) = β·Gs + (1 − β)·G, parameter by parameter.
    let update (beta: float) (average: torch.nn.Module) (source: torch.nn.Module) =
        use _ = torch.no_grad()
        use weight = torch.tensor(1.0 - beta)
        for (a, p) in Seq.zip (average.parameters()) (source.parameters()) do
            a.lerp_(p, weight) |> ignore
