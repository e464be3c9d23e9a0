namespace ProGan.Training

open TorchSharp
open ProGan.Keras.Layers

/// The discriminator loss and its named terms, each a scalar tensor.
type DiscriminatorLoss =
    { /// The total minimised by D's step.
      Total: torch.Tensor
      /// mean D(fake) − mean D(real): the negated Wasserstein estimate.
      Wasserstein: torch.Tensor
      /// mean (‖∇D(x̂)‖₂ − γ)² before λ.
      GradientPenalty: torch.Tensor
      /// mean D(real)² before ε_drift.
      Drift: torch.Tensor }

/// WGAN-GP with drift, as the reference's `loss.py` (`G_wgan_acgan`, `D_wgangp_acgan`) computes it
/// (Karras et al. 2018, Appendix A.1; Gulrajani et al. 2017). Pure functions of the networks and the minibatch.
module Losses =

    /// D(reals) and D(fakes) from one forward pass over both, equal to two separate passes: the minibatch-stddev
    /// layer's groups are kept apart by laying the two batches out group by group (`MinibatchStdev.JoinGroupwise`).
    /// Falls back to two passes when the batch is not a multiple of the group size, where joining would change it.
    let scoreTogether (d: torch.nn.Module<torch.Tensor, torch.Tensor>) (reals: torch.Tensor) (fakes: torch.Tensor) (groupSize: int) =
        if MinibatchStdev.CanJoinGroupwise(reals.shape[0], groupSize) then
            use joined = MinibatchStdev.JoinGroupwise(reals, fakes, groupSize)
            use scores = d.call joined
            let struct (realScores, fakeScores) = MinibatchStdev.SplitGroupwise(scores, groupSize)
            realScores, fakeScores
        else d.call reals, d.call fakes

    /// D's loss: D(fake) − D(real) + λ·(‖∇D(x̂)‖₂ − γ)²/γ² + ε_drift·D(real)², averaged over the minibatch, where
    /// x̂ = lerp(real, fake, u) with one u ~ U(0, 1) per sample (`mix`) and the norm is over C, H, W of each sample.
    let discriminator (d: torch.nn.Module<torch.Tensor, torch.Tensor>) (reals: torch.Tensor) (fakes: torch.Tensor) (mix: torch.Tensor)
                      (weights: LossWeights) (groupSize: int) =
        let realScores, fakeScores = scoreTogether d reals (fakes.detach()) groupSize
        let mixed = torch.lerp(reals.detach(), fakes.detach(), mix).requires_grad_(true)
        let mixedScores = d.call mixed
        let gradient =
            torch.autograd.grad([| mixedScores.sum() |], [| mixed |], retain_graph = true, create_graph = true)[0]
        let norms = gradient.flatten(1L).square().sum([| 1L |]).sqrt()
        let penalty = (norms - weights.Gamma).square()
        let drift = realScores.square()
        let perSample =
            fakeScores - realScores + penalty.unsqueeze(1L) * (weights.Lambda / (weights.Gamma * weights.Gamma)) + drift * weights.EpsilonDrift
        { Total = perSample.mean()
          Wasserstein = (fakeScores - realScores).mean()
          GradientPenalty = penalty.mean()
          Drift = drift.mean() }

    /// G's loss: −mean D(G(z)), through the composite model whose D is frozen.
    let generator (composite: torch.nn.Module<torch.Tensor, torch.Tensor>) (latents: torch.Tensor) = (composite.call latents).mean().neg()
