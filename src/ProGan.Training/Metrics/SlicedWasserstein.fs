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
        torch.nn.functional.conv2d(padded, kernel.``to``(x.device), groups = x.shape[1])

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

    /// Sliced Wasserstein distance between two equally sized descriptor sets: `repeats` × `directions` random unit
    /// directions; project, sort, mean absolute difference; averaged over all directions.
    let distance (a: torch.Tensor) (b: torch.Tensor) (repeats: int) (directions: int) (generator: torch.Generator) =
        if a.shape[0] <> b.shape[0] then invalidArg "b" (sprintf "SWD needs descriptor sets of one size; got %d and %d." a.shape[0] b.shape[0])
        use scope = torch.NewDisposeScope()
        let values =
            [ for _ in 1..repeats do
                let dirs = torch.randn([| a.shape[1]; int64 directions |], generator = generator).``to``(a.device)
                let dirs = dirs / dirs.Squared().sum([| 0L |], keepdim = true).sqrt()
                let struct (pa, _) = (torch.matmul(a, dirs)).sort(0L)
                let struct (pb, _) = (torch.matmul(b, dirs)).sort(0L)
                (pa - pb).abs().mean().item<float32>() |> float ]
        List.average values

    /// SWD ×10³ between two image sets ([N, 3, r, r], same N and r), per level and averaged.
    let compute (a: torch.Tensor) (b: torch.Tensor) (seed: int) =
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
        let perLevel =
            List.map2 (fun (la: torch.Tensor) (lb: torch.Tensor) ->
                let da = normalize (descriptors la 128 positionsA) channels
                let db = normalize (descriptors lb 128 positionsB) channels
                distance da db 4 128 directions * 1e3) levelsA levelsB
        { Resolutions = levelsA |> List.map (fun l -> int l.shape[2]); PerLevel = perLevel; Average = List.average perLevel }
