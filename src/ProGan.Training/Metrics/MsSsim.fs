// Multi-scale structural similarity of image pairs (Wang et al. 2003), as §5 uses it.
namespace ProGan.Training.Metrics

open System
open TorchSharp
open ProGan.Keras.Backend
open ProGan.Training.Basics

/// Multi-scale structural similarity (Wang, Simoncelli & Bovik 2003), as Karras et al. 2018 use it (§5, Table 1,
/// after Odena et al. 2017): the mean MS-SSIM of random pairs of generated images, beside the same for real images.
/// Lower means the images differ more from each other — more variation; a generator that collapses to a few modes
/// scores higher than the data. The recipe is the reference's `metrics/ms_ssim.py` (itself TensorFlow's
/// `msssim.py`): 8-bit pixels, an 11-tap Gaussian window with σ = 1.5 (both shrunk on small images), 2×2 box
/// downsampling between scales, negative terms clipped to 0, and the per-pair value averaged at the end.
module MsSsim =

    /// The exponents of the five scales, finest first (Wang et al. 2003, §3.2; they do not quite sum to 1).
    let weights = [| 0.0448; 0.2856; 0.3001; 0.2363; 0.1333 |]

    /// The Gaussian window's size and σ at full size (both shrink together on images smaller than the window).
    let filterSize, filterSigma = 11, 1.5

    /// K1, K2 of SSIM's stabilising constants C1 = (K1·L)², C2 = (K2·L)², with L = 255, the range of 8-bit pixels.
    let k1, k2, dynamicRange = 0.01, 0.03, 255.0

    /// The scales an image of `size`² has: five, or as many as halving leaves at least one pixel (at 8² the
    /// reference would fail; here 8², 4², 2², 1² weigh by the first four exponents, rescaled to the five's sum).
    let scales (size: int) = min weights.Length (int (Math.Log2(float size)) + 1)

    /// MATLAB's `fspecial('gaussian', size, sigma)`: a normalised `size`² window, centred between pixels when `size`
    /// is even (the reference's `_FSpecialGauss`).
    let window (size: int) (sigma: float) =
        let offset = if size % 2 = 0 then 0.5 else 0.0
        let coordinate i = float (i - size / 2) + offset
        let g = Array2D.init size size (fun y x -> exp (-(coordinate x ** 2.0 + coordinate y ** 2.0) / (2.0 * sigma * sigma)))
        let total = Seq.sum (Seq.cast<float> g)
        Array2D.map (fun v -> v / total) g

    /// SSIM and its contrast-structure part c·s per pair at one scale: images [N, C, H, W] (float64, 0–255) → two [N].
    let private ssimAndContrast (x: torch.Tensor) (y: torch.Tensor) =
        use scope = torch.NewDisposeScope()
        let channels, height, width = x.shape[1], int x.shape[2], int x.shape[3]
        let size = min filterSize (min height width)
        let sigma = float size * filterSigma / float filterSize
        let w = window size sigma
        let kernel =
            torch.tensor(Array.init (size * size) (fun i -> w[i / size, i % size]), dtype = torch.float64)
                .reshape(1L, 1L, int64 size, int64 size).expand(channels, 1L, int64 size, int64 size)
        // A 'valid' convolution per channel: the window never leaves the image.
        let blur (t: torch.Tensor) = torch.nn.functional.conv2d(t, kernel, groups = channels)
        let mu1, mu2 = blur x, blur y
        let sigma11 = blur (x * x) - mu1 * mu1
        let sigma22 = blur (y * y) - mu2 * mu2
        let sigma12 = blur (x * y) - mu1 * mu2
        let c1, c2 = (k1 * dynamicRange) ** 2.0, (k2 * dynamicRange) ** 2.0
        let c1, c2, two = scalar c1, scalar c2, scalar 2.0
        let v1 = (sigma12 * two).Plus c2 // [N, C, H', W']
        let v2 = sigma11.Plus(sigma22).Plus c2
        let ssim = ((mu1 * mu2 * two).Plus(c1) * v1 / ((mu1 * mu1).Plus(mu2 * mu2).Plus(c1) * v2)).mean([| 1L; 2L; 3L |])
        let contrast = (v1 / v2).mean([| 1L; 2L; 3L |])
        ssim.MoveToOuterDisposeScope(), contrast.MoveToOuterDisposeScope()

    /// MS-SSIM of each pair (x[i], y[i]): images [N, C, H, W] with pixel values 0–255 → [N] (float64).
    let ofPairs (x: torch.Tensor) (y: torch.Tensor) =
        if x.shape <> y.shape || x.dim() <> 4L then
            invalidArg "y" (sprintf "MS-SSIM compares two batches of the same shape [N, C, H, W]; got %A and %A." x.shape y.shape)
        use scope = torch.NewDisposeScope()
        let count = scales (int (min x.shape[2] x.shape[3]))
        let exponents = weights |> Array.truncate count |> Array.map (fun w -> w * Array.sum weights / Array.sum (Array.truncate count weights))
        let rec walk (a: torch.Tensor) (b: torch.Tensor) (scale: int) (product: torch.Tensor) : torch.Tensor =
            let ssim, contrast = ssimAndContrast a b
            if scale = count - 1 then product * ssim.clamp_min(scalar 0.0).pow(scalar exponents[scale])
            else
                // The reference's `_HoxDownsample`: the mean of each 2×2 block.
                let half (t: torch.Tensor) = torch.nn.functional.avg_pool2d(t, 2L)
                walk (half a) (half b) (scale + 1) (product * contrast.clamp_min(scalar 0.0).pow(scalar exponents[scale]))
        let a, b = x.to_type(torch.float64), y.to_type(torch.float64)
        (walk a b 0 (torch.ones([| x.shape[0] |], dtype = torch.float64))).MoveToOuterDisposeScope()

    /// Images in [−1, 1] as the 8-bit pixel values the reference compares (0–255, rounded), in float64.
    let pixels (images: torch.Tensor) =
        use scope = torch.NewDisposeScope()
        images.detach().cpu().to_type(torch.float64).Plus(scalar 1.0).mul(scalar 127.5).round().clamp(scalar 0.0, scalar 255.0).MoveToOuterDisposeScope()

    /// The mean MS-SSIM of the pairs (images[0], images[1]), (images[2], images[3]), … of a set in [−1, 1] (the
    /// reference's `feed`: even against odd images). Needs at least two images.
    let meanOfPairs (images: torch.Tensor) =
        let n = images.shape[0] / 2L
        if n < 1L then invalidArg "images" "MS-SSIM needs at least two images (one pair)."
        use scope = torch.NewDisposeScope()
        let p = pixels (images.narrow(0L, 0L, 2L * n))
        let pairs = p.reshape(n, 2L, p.shape[1], p.shape[2], p.shape[3])
        (ofPairs (pairs.select(1L, 0L)) (pairs.select(1L, 1L))).mean().item<float>()
