namespace ProGan.Training

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

    /// One update after a training step: Gs ← lerp(G, Gs, β) = β·Gs + (1 − β)·G, parameter by parameter.
    let update (beta: float) (average: torch.nn.Module) (source: torch.nn.Module) =
        use _ = torch.no_grad()
        use weight = torch.tensor(1.0 - beta)
        for (a, p) in Seq.zip (average.parameters()) (source.parameters()) do
            a.lerp_(p, weight) |> ignore
