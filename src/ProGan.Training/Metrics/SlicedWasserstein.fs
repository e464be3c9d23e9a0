// The multi-scale sliced Wasserstein distance (§5, Appendix D).
namespace ProGan.Training.Metrics

open TorchSharp
open ProGan.Keras.Backend
open ProGan.Training.Basics

/// One SWD result: ×10³ per Laplacian level (finest first, in pixels) and their average, as the paper reports it.
type SwdResult =
    { Resolutions: int list
      PerLevel: float list
      Average: float }

/// The multi-scale sliced Wasserstein distance of Karras et al. 2018, §5 (reference `metrics/sliced_wasserstein.py`):
/// Laplacian pyramids of both image sets down to 16², 7×7 neighbourhoods sampled from each level and normalised per
/// channel, then the sliced Wasserstein distance between the descriptor sets along random unit directions.
/// Everything is tensor operations; randomness comes from one seeded generator.
module SlicedWasserstein =

    /// The separable 5×5 binomial filter [1, 4, 6, 4, 1]/16.
    let private binomial (channels: int64) (gain: float) =
        let k = torch.tensor([| 1.0f; 4.0f; 6.0f; 4.0f; 1.0f |]).div(scalar 16.0)
        (torch.outer(k, k) * torch.tensor (float32 gain)).expand(channels, 1L, 5L, 5L).contiguous()

    /// Filters with the binomial kernel, mirroring the borders (scipy's 'mirror' mode is PyTorch's 'reflect').
    let private blur (x: torch.Tensor) (gain: float) =
        use padded = torch.nn.functional.pad(x, [| 2L; 2L; 2L; 2L |], mode = PaddingModes.Reflect)
        use kernel = binomial x.shape[1] gain
        use onDevice = kernel.``to``(x.device)
        ProGan.Keras.Backend.CpuConvolutions.Conv2d(padded, onDevice, groups = x.shape[1])

    /// Blur, then keep every second pixel.
    let pyrDown (x: torch.Tensor) =
        use blurred = blur x 1.0
        blurred.slice(2L, 0L, blurred.shape[2], 2L).slice(3L, 0L, blurred.shape[3], 2L).contiguous()

    /// Insert zeros between pixels, then blur with 4× the gain.
    let pyrUp (x: torch.Tensor) =
        use scope = torch.NewDisposeScope()
        let n, c, h, w = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
        let wide = torch.stack([| x; torch.zeros_like x |], 4L).reshape(n, c, h, 2L * w)         // x0 0 x1 0 …
        let up = torch.stack([| wide; torch.zeros_like wide |], 3L).reshape(n, c, 2L * h, 2L * w) // and zero rows
        (blur up 4.0).MoveToOuterDisposeScope()

    /// The Laplacian pyramid, finest first; the last level is the Gaussian level at (at least) `minResolution`.
    let laplacianPyramid (images: torch.Tensor) (minResolution: int) =
        let rec build (g: torch.Tensor) acc =
            if g.shape[2] <= int64 minResolution then List.rev (g :: acc)
            else
                let lower = pyrDown g
                use upsampled = pyrUp lower
                build lower ((g - upsampled) :: acc)
        build images []

    /// `perImage` random 7×7 neighbourhoods (all channels) from every image: [N·perImage, C·7·7].
    let descriptors (level: torch.Tensor) (perImage: int) (generator: torch.Generator) =
        use scope = torch.NewDisposeScope()
        let n, c, s = level.shape[0], level.shape[1], level.shape[2]
        let size = min 7L s
        let ys = torch.randint(s - size + 1L, [| n; int64 perImage |], generator = generator)
        let xs = torch.randint(s - size + 1L, [| n; int64 perImage |], generator = generator)
        // All size×size windows, then pick one per (image, sample) by flat window index.
        let windows = level.unfold(2L, size, 1L).unfold(3L, size, 1L)               // [N, C, S', S', size, size]
        let positions = s - size + 1L
        let flat = windows.permute(0L, 2L, 3L, 1L, 4L, 5L).reshape(n, positions * positions, c * size * size)
        let index = (ys * whole positions).Plus(xs).unsqueeze(2L).expand(n, int64 perImage, c * size * size)
        flat.gather(1L, index).reshape(-1L, c * size * size).MoveToOuterDisposeScope()

    /// Normalises each channel of a level's descriptors to zero mean and unit deviation over the whole set (a constant
    /// channel stays 0).
    let normalize (descriptors: torch.Tensor) (channels: int64) =
        use scope = torch.NewDisposeScope()
        let d = descriptors.reshape(descriptors.shape[0], channels, -1L)
        let mean = d.mean([| 0L; 2L |], keepdim = true)
        // A set without any variation in a channel (a collapsed generator, solid images) has std 0: that channel's
        // descriptors are all 0 then, rather than NaN.
        let std = d.std([| 0L; 2L |], keepdim = true).clamp_min(scalar 1e-8)
        ((d - mean) / std).reshape(descriptors.shape[0], -1L).MoveToOuterDisposeScope()

    /// Projected values sorted at once, at most: the directions are projected and sorted a group at a time (about a
    /// second of a CPU's work each; a stop is seen between groups, and memory holds one group's projections).
    let private valuesAtOnce = 1L <<< 23

    /// `distance`, calling `step count` after each group of `count` directions (what a progress display counts, and
    /// where a stop can raise).
    let private distanceStepping (step: int -> unit) (a: torch.Tensor) (b: torch.Tensor) (repeats: int) (directions: int) (generator: torch.Generator) =
        if a.shape[0] <> b.shape[0] then invalidArg "b" (sprintf "SWD needs descriptor sets of one size; got %d and %d." a.shape[0] b.shape[0])
        use scope = torch.NewDisposeScope()
        let n = a.shape[0]
        let group = int (max 1L (min (int64 directions) (valuesAtOnce / max 1L n)))
        // The mean |sorted projection of a − sorted projection of b| along the unit directions (columns) of `dirs`.
        // Each direction's projections are a contiguous row, sorted along it: twice as fast as sorting the columns
        // of [N, directions], which gives the same values.
        let along (dirs: torch.Tensor) =
            let mutable total = 0.0
            for first in 0 .. group .. directions - 1 do
                use groupScope = torch.NewDisposeScope()
                let count = min group (directions - first)
                let d = dirs.narrow(1L, int64 first, int64 count).t()
                let struct (pa, _) = torch.matmul(d, a.t()).sort(1L)
                let struct (pb, _) = torch.matmul(d, b.t()).sort(1L)
                total <- total + float ((pa - pb).abs().sum().item<float32>())
                step count
            total / (float n * float directions)
        let values =
            [ for _ in 1..repeats do
                let dirs = torch.randn([| a.shape[1]; int64 directions |], generator = generator).``to``(a.device)
                along (dirs / dirs.Squared().sum([| 0L |], keepdim = true).sqrt()) ]
        List.average values

    /// Sliced Wasserstein distance between two equally sized descriptor sets: `repeats` × `directions` random unit
    /// directions; project, sort, mean absolute difference; averaged over all directions.
    let distance (a: torch.Tensor) (b: torch.Tensor) (repeats: int) (directions: int) (generator: torch.Generator) =
        distanceStepping ignore a b repeats directions generator

    /// Repeats of `distance` per level, and random directions in each.
    let private repeats, directionsPerRepeat = 4, 128

    /// `compute`, calling `step done total` after each group of its random projections (`repeats` × 128 directions per
    /// level): a long evaluation's progress, and where it can be stopped (an exception `step` raises propagates,
    /// every tensor freed).
    let computeStepping (step: int -> int -> unit) (a: torch.Tensor) (b: torch.Tensor) (seed: int) =
        if a.shape <> b.shape then invalidArg "b" (sprintf "SWD needs image sets of one shape; got %A and %A." a.shape b.shape)
        use scope = torch.NewDisposeScope()
        // Common random numbers: both sets are sampled at the same neighbourhood positions (a generator each, same
        // seed), so identical sets give exactly 0 and the distance is exactly symmetric; the reference draws the two
        // sets' positions independently, which adds sampling noise of the size of the real-vs-real floor.
        use positionsA = new torch.Generator(uint64 seed)
        use positionsB = new torch.Generator(uint64 seed)
        use directions = new torch.Generator(uint64 seed + 1UL)
        let channels = a.shape[1]
        let levelsA = laplacianPyramid (a.to_type(torch.ScalarType.Float32)) 16
        let levelsB = laplacianPyramid (b.to_type(torch.ScalarType.Float32)) 16
        let taken = ref 0
        let next (count: int) =
            taken.Value <- taken.Value + count
            step taken.Value (repeats * directionsPerRepeat * levelsA.Length)
        let perLevel =
            List.map2 (fun (la: torch.Tensor) (lb: torch.Tensor) ->
                let da = normalize (descriptors la 128 positionsA) channels
                let db = normalize (descriptors lb 128 positionsB) channels
                distanceStepping next da db repeats directionsPerRepeat directions * 1e3) levelsA levelsB
        { Resolutions = levelsA |> List.map (fun l -> int l.shape[2]); PerLevel = perLevel; Average = List.average perLevel }

    /// SWD ×10³ between two image sets ([N, 3, r, r], same N and r), per level and averaged.
    let compute (a: torch.Tensor) (b: torch.Tensor) (seed: int) = computeStepping (fun _ _ -> ()) a b seed
