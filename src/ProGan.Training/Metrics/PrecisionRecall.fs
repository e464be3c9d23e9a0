// Improved precision and recall of a generator (Kynkäänniemi et al. 2019), from k-NN manifolds of features.
namespace ProGan.Training.Metrics

open TorchSharp
open ProGan.Training.Basics

/// Precision (how much of what is generated lies on the data's manifold) and recall (how much of the data's manifold
/// the generated images cover).
type PrecisionRecallResult = { Precision: float; Recall: float }

/// Improved precision and recall (Kynkäänniemi, Karras, Laine, Lehtinen & Aila 2019, "Improved precision and recall
/// metric for assessing generative models", §2): a set's manifold is the union of balls around its samples, each with
/// the radius of its k-th nearest neighbour in the set (k = 3); precision is the fraction of generated samples inside
/// the reals' manifold, recall the fraction of real samples inside the generated one. Distances are Euclidean in
/// feature space, in float64, a block of rows at a time (NVlabs' `precision_recall.py`: `kthvalue(k + 1)` counts the
/// sample itself, and a sample at exactly the radius counts as inside).
module PrecisionRecall =

    /// The paper's neighbourhood size.
    let defaultK = 3

    /// Rows of a distance matrix computed at a time (a block of 1024 × 10,000 float64 is 80 MB).
    let private rowsAtOnce = 1024L

    /// The blocks of rows of `a` [n, d], each handed to `f`, the results concatenated along the first axis.
    let private byRows (a: torch.Tensor) (f: torch.Tensor -> torch.Tensor) =
        use scope = torch.NewDisposeScope()
        let parts = [| for first in 0L .. rowsAtOnce .. a.shape[0] - 1L -> f (a.narrow(0L, first, min rowsAtOnce (a.shape[0] - first))) |]
        torch.cat(parts, 0L).MoveToOuterDisposeScope()

    /// The radius of every sample of `set` [n, d]: the distance to its k-th nearest other sample.
    let radii (k: int) (set: torch.Tensor) =
        if int64 k >= set.shape[0] then invalidArg "k" (sprintf "The %d-th nearest neighbour needs more than %d samples; the set has %d." k k set.shape[0])
        byRows set (fun rows ->
            let struct (values, _) = torch.cdist(rows, set).kthvalue(int64 k + 1L, dim = 1L)
            values)

    /// The fraction of `probes` [n, d] inside the manifold of `set` [m, d] whose radii are `setRadii` [m].
    let coverage (probes: torch.Tensor) (set: torch.Tensor) (setRadii: torch.Tensor) =
        use scope = torch.NewDisposeScope()
        let inside = byRows probes (fun rows -> torch.cdist(rows, set).le(setRadii.unsqueeze(0L)).any(1L))
        inside.to_type(torch.ScalarType.Float64).mean().item<float>()

    /// Precision and recall of `generated` [n, d] against `real` [m, d] with k-th-neighbour radii.
    let computeWith (k: int) (generated: torch.Tensor) (real: torch.Tensor) =
        use scope = torch.NewDisposeScope()
        let generated = generated.to_type(torch.ScalarType.Float64)
        let real = real.to_type(torch.ScalarType.Float64)
        { Precision = coverage generated real (radii k real)
          Recall = coverage real generated (radii k generated) }

    /// Precision and recall with the paper's k = 3.
    let compute (generated: torch.Tensor) (real: torch.Tensor) = computeWith defaultK generated real
