// The GAN losses and their named terms: WGAN-GP with drift (§A.1), LSGAN, logistic, hinge, R1, AC-GAN.
namespace ProGan.Training.Paper

open TorchSharp
open ProGan.Keras.Backend
open ProGan.Keras.Layers
open ProGan.Keras.Models
open ProGan.Training.Basics
open ProGan.Training.Config

/// The discriminator loss and its named terms, each a scalar tensor.
type DiscriminatorLoss =
    { /// The total minimised by D's step.
      Total: torch.Tensor
      /// The loss's adversarial term, averaged (for WGAN-GP: mean D(fake) − mean D(real), the negated Wasserstein
      /// estimate).
      Adversarial: torch.Tensor
      /// The gradient penalty before its weight: mean (‖∇D(x̂)‖₂ − γ)² for WGAN-GP, mean ‖∇D(real)‖₂² for R1, else 0.
      GradientPenalty: torch.Tensor
      /// mean D(real)² before ε_drift (WGAN-GP's drift term; logged for every loss).
      Drift: torch.Tensor
      /// A conditional run's auxiliary classifier on the reals: the share whose largest class logit is their class
      /// (AC-GAN, Odena et al. 2017); NaN without classes.
      ClassAccuracy: torch.Tensor }

/// The auxiliary classifier's part of a conditional run (AC-GAN, Odena et al. 2017; the reference's `cond_weight`):
/// the classes of the reals and of the fakes of a step, and the weight of the classification terms.
type Conditioning =
    { RealLabels: torch.Tensor
      FakeLabels: torch.Tensor
      Weight: float }

/// The GAN losses, as pure functions of scores, networks and the minibatch. WGAN-GP with drift is the paper's
/// (Karras et al. 2018, Appendix A.1; reference `loss.py` `G_wgan_acgan`, `D_wgangp_acgan`; Gulrajani et al. 2017);
/// the others are the ones the paper's LSUN comparison, the reference's `loss.py` and the PyTorch GAN zoo offer.
module Losses =

    /// softplus(x) = log(1 + eˣ) = −log σ(−x). TorchSharp's `softplus` hands libtorch two Scalars (β, the threshold)
    /// made on the fly, which a GC can free mid-call (see `Scalars`); log-sigmoid takes none, and is as stable.
    let private softplus (x: torch.Tensor) = x.neg().log_sigmoid().neg()

    /// The adversarial terms per sample, of D and of G, for a loss and D's scores of reals `r` and fakes `f`:
    /// WGAN: D f − r, G −f · LSGAN (Mao et al. 2017, a = 0, b = c = 1): D ½(r − 1)² + ½f², G ½(f − 1)² ·
    /// logistic, non-saturating (Goodfellow et al. 2014; reference `D_logistic`, `G_logistic_nonsaturating`):
    /// D softplus(f) + softplus(−r), G softplus(−f) · hinge (Lim & Ye 2017): D relu(1 − r) + relu(1 + f), G −f.
    let adversarial (loss: GanLoss) (realScores: torch.Tensor) (fakeScores: torch.Tensor) =
        match loss with
        | WganGp -> fakeScores - realScores
        | Lsgan -> (realScores - scalar 1.0).Squared().Plus(fakeScores.Squared()) * scalar 0.5
        | Logistic -> (softplus fakeScores).Plus(softplus (realScores.neg()))
        | Hinge -> realScores.neg().Plus(scalar 1.0).relu().Plus(fakeScores.Plus(scalar 1.0).relu())

    /// G's adversarial term per sample, for D's scores of its fakes.
    let generatorAdversarial (loss: GanLoss) (fakeScores: torch.Tensor) =
        match loss with
        | WganGp | Hinge -> fakeScores.neg()
        | Lsgan -> (fakeScores - scalar 1.0).Squared() * scalar 0.5
        | Logistic -> softplus (fakeScores.neg())

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

    /// Per-sample ‖∇ₓ D(x)‖₂ at `x` (summed scores, so each sample's gradient is its own), kept in the graph so that
    /// D's step differentiates through it (the double backward). Only the score column counts, not class logits.
    let private gradientNorms (d: torch.nn.Module<torch.Tensor, torch.Tensor>) (x: torch.Tensor) =
        let scores = ConditionalInput.Score(d.call x)
        let gradient = torch.autograd.grad([| scores.sum() |], [| x |], retain_graph = true, create_graph = true)[0]
        gradient.flatten(1L).Squared().sum([| 1L |]).sqrt()

    /// D's loss, averaged over the minibatch: the adversarial term, plus for WGAN-GP λ·(‖∇D(x̂)‖₂ − γ)²/γ² +
    /// ε_drift·D(real)² with x̂ = lerp(real, fake, u), one u ~ U(0, 1) per sample (`mix`), the norm over C, H, W of
    /// each sample; with an R1 weight γ_R1 > 0, (γ_R1/2)·‖∇D(real)‖₂² (Mescheder et al. 2018). A penalty whose
    /// weight is 0 (a minibatch that lazy regularisation skips) is not computed, and reads 0.
    /// With `conditioning`, plus weight·(CE(classes of reals) + CE(classes of fakes)), the reference's
    /// `D_wgangp_acgan` label penalties.
    let discriminator (loss: GanLoss) (d: torch.nn.Module<torch.Tensor, torch.Tensor>) (reals: torch.Tensor) (fakes: torch.Tensor)
                      (mix: torch.Tensor) (weights: LossWeights) (groupSize: int) (conditioning: Conditioning option) =
        let realOut, fakeOut = scoreTogether d reals (fakes.detach()) groupSize
        let realScores, fakeScores = ConditionalInput.Score realOut, ConditionalInput.Score fakeOut
        let adversarial = adversarial loss realScores fakeScores
        let drift = realScores.Squared()
        let penalty, perSample =
            match loss with
            | WganGp when weights.Lambda > 0.0 ->
                let mixed = torch.lerp(reals.detach(), fakes.detach(), mix).requires_grad_(true)
                use gamma = weights.Gamma.ToScalar()
                use lambda = (weights.Lambda / (weights.Gamma * weights.Gamma)).ToScalar()
                use epsilonDrift = weights.EpsilonDrift.ToScalar()
                let penalty = (gradientNorms d mixed - gamma).Squared()
                penalty, adversarial.Plus(penalty.unsqueeze(1L) * lambda).Plus(drift * epsilonDrift)
            | WganGp ->
                use epsilonDrift = weights.EpsilonDrift.ToScalar()
                torch.zeros_like(realScores.squeeze(1L)), adversarial.Plus(drift * epsilonDrift)
            | _ when weights.R1 > 0.0 ->
                use halfR1 = (weights.R1 / 2.0).ToScalar()
                let penalty = (gradientNorms d (reals.detach().requires_grad_(true))).Squared()
                penalty, adversarial.Plus(penalty.unsqueeze(1L) * halfR1)
            | _ -> torch.zeros_like(realScores.squeeze(1L)), adversarial
        let perSample =
            match conditioning with
            | None -> perSample
            | Some c ->
                let ce (output: torch.Tensor) (labels: torch.Tensor) =
                    torch.nn.functional.cross_entropy(ConditionalInput.ClassLogits output, labels, reduction = torch.nn.Reduction.None)
                use weight = c.Weight.ToScalar()
                perSample.Plus(((ce realOut c.RealLabels).Plus(ce fakeOut c.FakeLabels) * weight).unsqueeze(1L))
        let accuracy =
            match conditioning with
            | None -> torch.tensor(nan, dtype = torch.ScalarType.Float32)
            | Some c ->
                use _ = torch.no_grad()
                ConditionalInput.ClassLogits(realOut).argmax(1L).eq(c.RealLabels).to_type(torch.ScalarType.Float32).mean()
        { Total = perSample.mean()
          Adversarial = adversarial.mean()
          GradientPenalty = penalty.mean()
          Drift = drift.mean()
          ClassAccuracy = accuracy }

    /// G's loss on D's output for its fakes, averaged: the adversarial term, plus with `conditioning`
    /// weight·CE(classes of the fakes) (the reference's `G_wgan_acgan` label penalty).
    let private generatorOn (loss: GanLoss) (output: torch.Tensor) (conditioning: Conditioning option) =
        let adversarial = generatorAdversarial loss (ConditionalInput.Score output)
        match conditioning with
        | None -> adversarial.mean()
        | Some c ->
            let ce = torch.nn.functional.cross_entropy(ConditionalInput.ClassLogits output, c.FakeLabels, reduction = torch.nn.Reduction.None)
            use weight = c.Weight.ToScalar()
            adversarial.Plus((ce * weight).unsqueeze(1L)).mean()

    /// G's loss through the composite model whose D is frozen.
    let generator (loss: GanLoss) (composite: torch.nn.Module<torch.Tensor, torch.Tensor>) (latents: torch.Tensor) (conditioning: Conditioning option) =
        generatorOn loss (composite.call latents) conditioning
