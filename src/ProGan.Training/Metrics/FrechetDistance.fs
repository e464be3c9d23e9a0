// The Fréchet distance between two sets of features (Heusel et al. 2017), in float64.
namespace ProGan.Training.Metrics

open TorchSharp
open ProGan.Training.Basics

/// The Fréchet distance between Gaussians fitted to two sets of features (Heusel et al. 2017, "GANs trained by a two
/// time-scale update rule converge to a local Nash equilibrium", §"FID"):
///   FD = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½),
/// with μ the mean and Σ the covariance (n − 1 in the denominator, as numpy's `np.cov` and pytorch-fid) of the
/// features, all in float64. The eigenvalues of Σ₁Σ₂ are real and non-negative (it is similar to the symmetric
/// √Σ₁ Σ₂ √Σ₁), so Tr((Σ₁Σ₂)^½) = Σᵢ √λᵢ(Σ₁Σ₂): no non-symmetric square root, no complex parts to drop. From features
/// it is computed without any square root of a matrix: with centred features Xₖ = QₖRₖ (QR), Σₖ = RₖᵀRₖ / (nₖ − 1), and
/// the λᵢ are the squared singular values of R₁R₂ᵀ / √((n₁ − 1)(n₂ − 1)), so the trace is that matrix's nuclear norm —
/// accurate to rounding even when a covariance is singular (fewer images than dimensions, or features in a subspace),
/// where √Σ's rounding-level eigenvalues would add errors of order √ε. With this project's features (ResNet-18's, see
/// `ImageFeatures`) it is "FD-ResNet18", not FID: its values are not comparable with published FIDs (Inception-v3's).
module FrechetDistance =

    let private float64 (t: torch.Tensor) = t.to_type(torch.ScalarType.Float64)

    /// The square root of a symmetric positive semi-definite matrix [d, d] (float64): V diag(√λ) Vᵀ from its symmetric
    /// eigendecomposition, eigenvalues below 0 (rounding) taken as 0.
    let sqrtPsd (a: torch.Tensor) =
        use scope = torch.NewDisposeScope()
        let a = float64 a
        let struct (values, vectors) = torch.linalg.eigh((a + a.t()) / scalar 2.0)
        (vectors * values.clamp_min(scalar 0.0).sqrt().unsqueeze(0L)).matmul(vectors.t()).MoveToOuterDisposeScope()

    /// Tr((Σ₁Σ₂)^½) = Σᵢ √λᵢ(√Σ₁ Σ₂ √Σ₁) for symmetric positive semi-definite Σ₁, Σ₂ [d, d], from the covariances
    /// alone (accurate to about √ε·‖Σ‖ where Σ₁ is singular; `compute` does better from the features).
    let traceSqrtProduct (sigma1: torch.Tensor) (sigma2: torch.Tensor) =
        use scope = torch.NewDisposeScope()
        let root = sqrtPsd sigma1
        let m = root.matmul(float64 sigma2).matmul(root)
        torch.linalg.eigvalsh((m + m.t()) / scalar 2.0).clamp_min(scalar 0.0).sqrt().sum().item<float>()

    /// Mean [d] and covariance [d, d] (n − 1 in the denominator) of features [n, d], in float64.
    let statistics (features: torch.Tensor) =
        use scope = torch.NewDisposeScope()
        if features.dim() <> 2L || features.shape[0] < 2L then
            invalidArg "features" (sprintf "The Fréchet distance needs features [n ≥ 2, d]; got %A." features.shape)
        let x = float64 features
        let mean = x.mean([| 0L |])
        let centred = x - mean
        let covariance = centred.t().matmul(centred) / scalar (float (x.shape[0] - 1L))
        mean.MoveToOuterDisposeScope(), covariance.MoveToOuterDisposeScope()

    /// FD between Gaussians (μ₁, Σ₁) and (μ₂, Σ₂) (`traceSqrtProduct`'s accuracy).
    let ofStatistics (mean1: torch.Tensor, sigma1: torch.Tensor) (mean2: torch.Tensor, sigma2: torch.Tensor) =
        use scope = torch.NewDisposeScope()
        let shift = (mean1 - mean2).square().sum().item<float>()
        shift + sigma1.trace().item<float>() + sigma2.trace().item<float>() - 2.0 * traceSqrtProduct sigma1 sigma2

    /// FD between features [n₁, d] and [n₂, d], through QR factors of the centred features (see above).
    let compute (features1: torch.Tensor) (features2: torch.Tensor) =
        use scope = torch.NewDisposeScope()
        let centred (features: torch.Tensor) =
            if features.dim() <> 2L || features.shape[0] < 2L then
                invalidArg "features" (sprintf "The Fréchet distance needs features [n ≥ 2, d]; got %A." features.shape)
            let x = float64 features
            let mean = x.mean([| 0L |])
            mean, x - mean, float (x.shape[0] - 1L)
        let m1, x1, c1 = centred features1
        let m2, x2, c2 = centred features2
        if x1.shape[1] <> x2.shape[1] then invalidArg "features2" (sprintf "The two sets' features differ in size: %d and %d." x1.shape[1] x2.shape[1])
        let struct (_, r1) = torch.linalg.qr(x1, torch.linalg.QRMode.Reduced)
        let struct (_, r2) = torch.linalg.qr(x2, torch.linalg.QRMode.Reduced)
        let traceRoot = torch.linalg.svdvals(r1.matmul(r2.t())).sum().item<float>() / sqrt (c1 * c2)
        let shift = (m1 - m2).square().sum().item<float>()
        shift + x1.square().sum().item<float>() / c1 + x2.square().sum().item<float>() / c2 - 2.0 * traceRoot
