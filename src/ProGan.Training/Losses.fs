namespace ProGan.Training

open TorchSharp

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

    /// D's loss: D(fake) − D(real) + λ·(‖∇D(x̂)‖₂ − γ)²/γ² + ε_drift·D(real)², averaged over the minibatch, where
    /// x̂ = lerp(real, fake, u) with one u ~ U(0, 1) per sample (`mix`) and the norm is over C, H, W of each sample.
    /// D(reals) and D(fakes) from one forward pass over both, equal to two separate passes. The minibatch-stddev layer
    /// puts sample n of N into group n mod (N/G); laying the reals' and the fakes' [G, N/G] blocks side by side keeps
    /// every group of the 2N batch all-real or all-fake, with the same members as before. Falls back to two passes
    /// when N < G, where the group size itself would change.
    let scoreTogether (d: torch.nn.Module<torch.Tensor, torch.Tensor>) (reals: torch.Tensor) (fakes: torch.Tensor) (groupSize: int) =
        let n = reals.shape[0]
        if n < int64 groupSize || n % int64 groupSize <> 0L then d.call reals, d.call fakes
        else
            let g = int64 groupSize
            let m = n / g
            let inner = reals.shape[1..]
            let blocks (x: torch.Tensor) = x.reshape(Array.append [| g; m |] inner)
            let both = torch.cat([| blocks reals; blocks fakes |], 1L).reshape(Array.append [| 2L * n |] inner)
            let scores = (d.call both).reshape(g, 2L * m, -1L)
            scores.narrow(1L, 0L, m).reshape(n, -1L), scores.narrow(1L, m, m).reshape(n, -1L)

    let discriminator (d: torch.nn.Module<torch.Tensor, torch.Tensor>) (reals: torch.Tensor) (fakes: torch.Tensor) (mix: torch.Tensor)
                      (lambda: float) (gamma: float) (epsilonDrift: float) (groupSize: int) =
        let realScores, fakeScores = scoreTogether d reals (fakes.detach()) groupSize
        let mixed = torch.lerp(reals.detach(), fakes.detach(), mix).requires_grad_(true)
        let mixedScores = d.call mixed
        let gradient =
            torch.autograd.grad([| mixedScores.sum() |], [| mixed |], retain_graph = true, create_graph = true)[0]
        let norms = gradient.flatten(1L).square().sum([| 1L |]).sqrt()
        let penalty = (norms - gamma).square()
        let drift = realScores.square()
        let perSample = fakeScores - realScores + penalty.unsqueeze(1L) * (lambda / (gamma * gamma)) + drift * epsilonDrift
        { Total = perSample.mean()
          Wasserstein = (fakeScores - realScores).mean()
          GradientPenalty = penalty.mean()
          Drift = drift.mean() }

    /// G's loss: −mean D(G(z)), through the composite model whose D is frozen.
    let generator (composite: torch.nn.Module<torch.Tensor, torch.Tensor>) (latents: torch.Tensor) = (composite.call latents).mean().neg()
