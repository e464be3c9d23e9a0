// The kernel inception distance's unbiased MMD² over subsets (Bińkowski et al. 2018), in float64.
namespace ProGan.Training.Metrics

open System.Threading
open TorchSharp
open ProGan.Training.Basics

/// KID: the mean and standard deviation over subsets of an unbiased estimate of the squared maximum mean discrepancy.
type KernelDistanceResult =
    { Mean: float
      Std: float
      /// Subsets drawn, and images in each.
      Subsets: int
      SubsetSize: int }

/// The kernel distance of Bińkowski et al. 2018 ("Demystifying MMD GANs", §4, "KID"): the unbiased estimator of
/// MMD² with the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³ over features of dimension d,
///   MMD²ᵤ = Σ_{i≠j} k(xᵢ, xⱼ) / (m(m−1)) + Σ_{i≠j} k(yᵢ, yⱼ) / (m(m−1)) − 2 Σ_{i,j} k(xᵢ, yⱼ) / m²,
/// averaged over random subsets of m images of each set, drawn without replacement — torch-fidelity's and clean-fid's
/// defaults: 100 subsets of 1000 images (fewer where a set is smaller). Unbiased: for two samples of one distribution
/// it is 0 on average (single subsets can be negative), unlike FD, which is biased upwards at small n.
module KernelDistance =

    /// torch-fidelity's `kid_subsets` and `kid_subset_size`.
    let defaultSubsets, defaultSubsetSize = 100, 1000

    /// MMD²ᵤ of one pair of subsets x [m, d], y [m, d] (float64).
    let unbiasedMmd2 (x: torch.Tensor) (y: torch.Tensor) =
        use scope = torch.NewDisposeScope()
        let m, d = float x.shape[0], float x.shape[1]
        let kernel (a: torch.Tensor) (b: torch.Tensor) = (a.matmul(b.t()) / scalar d + scalar 1.0).pow(scalar 3.0)
        let offDiagonal (k: torch.Tensor) = k.sum().item<float>() - k.diagonal().sum().item<float>()
        offDiagonal (kernel x x) / (m * (m - 1.0)) + offDiagonal (kernel y y) / (m * (m - 1.0))
        - 2.0 * (kernel x y).sum().item<float>() / (m * m)

    /// KID of features [n₁, d] against [n₂, d]: `subsets` pairs of subsets of min(`subsetSize`, n₁, n₂) images, drawn
    /// from `seed`; `stepped` is called after each subset with (done, total), and may throw to stop.
    let computeStepping (stepped: int -> int -> unit) (subsets: int) (subsetSize: int) (seed: uint64) (features1: torch.Tensor) (features2: torch.Tensor) =
        let m = min subsetSize (int (min features1.shape[0] features2.shape[0]))
        if m < 2 then invalidArg "features1" (sprintf "KID needs subsets of at least 2 images; the sets have %d and %d." features1.shape[0] features2.shape[0])
        use x = features1.to_type(torch.ScalarType.Float64)
        use y = features2.to_type(torch.ScalarType.Float64)
        use g = new torch.Generator(seed)
        let values =
            [| for s in 1 .. subsets do
                use scope = torch.NewDisposeScope()
                let pick (set: torch.Tensor) = set.index_select(0L, torch.randperm(set.shape[0], generator = g).narrow(0L, 0L, int64 m))
                let value = unbiasedMmd2 (pick x) (pick y)
                stepped s subsets
                value |]
        let mean = Array.average values
        { Mean = mean; Std = sqrt (values |> Array.averageBy (fun v -> (v - mean) ** 2.0)); Subsets = subsets; SubsetSize = m }

    /// KID with torch-fidelity's defaults.
    let compute (seed: uint64) (features1: torch.Tensor) (features2: torch.Tensor) =
        computeStepping (fun _ _ -> ()) defaultSubsets defaultSubsetSize seed features1 features2
