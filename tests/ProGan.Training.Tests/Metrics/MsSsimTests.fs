/// MS-SSIM (Wang et al. 2003) as the paper uses it (§5, Table 1), against a second computation written here with plain
/// loops over arrays, following the reference's `metrics/ms_ssim.py` line by line.
module ProGan.Training.Tests.Metrics.MsSsimTests

open System
open Xunit
open TorchSharp
open ProGan.Training.Basics
open ProGan.Training.Data
open ProGan.Training.Metrics
/// Plain-loop MS-SSIM of one pair of images [c][y][x] with values 0–255.
module private Reference =

    let gaussian (size: int) (sigma: float) =
        // MATLAB's fspecial('gaussian'): coordinates centred on the window, half-integers for an even size.
        let radius = size / 2
        let offset = if size % 2 = 0 then 0.5 else 0.0
        let w = Array2D.init size size (fun i j ->
            let y, x = float (i - radius) + offset, float (j - radius) + offset
            exp (-(x * x + y * y) / (2.0 * sigma * sigma)))
        let mutable total = 0.0
        w |> Array2D.iter (fun v -> total <- total + v)
        Array2D.map (fun v -> v / total) w

    /// A 'valid' filtering of one channel by the (symmetric) window.
    let filter (image: float[,]) (w: float[,]) =
        let size = Array2D.length1 w
        let h, wd = Array2D.length1 image - size + 1, Array2D.length2 image - size + 1
        Array2D.init h wd (fun y x ->
            let mutable sum = 0.0
            for i in 0 .. size - 1 do
                for j in 0 .. size - 1 do
                    sum <- sum + w[i, j] * image[y + i, x + j]
            sum)

    /// (mean SSIM, mean c·s) over every channel and position, as `_SSIMForMultiScale`.
    let ssimAndCs (a: float[,][]) (b: float[,][]) =
        let height, width = Array2D.length1 a[0], Array2D.length2 a[0]
        let size = min 11 (min height width)
        let w = gaussian size (float size * 1.5 / 11.0)
        let c1, c2 = (0.01 * 255.0) ** 2.0, (0.03 * 255.0) ** 2.0
        let mutable ssim, cs, n = 0.0, 0.0, 0
        for c in 0 .. a.Length - 1 do
            let product (p: float[,]) (q: float[,]) = Array2D.init height width (fun y x -> p[y, x] * q[y, x])
            let mu1, mu2 = filter a[c] w, filter b[c] w
            let s11, s22, s12 = filter (product a[c] a[c]) w, filter (product b[c] b[c]) w, filter (product a[c] b[c]) w
            for y in 0 .. Array2D.length1 mu1 - 1 do
                for x in 0 .. Array2D.length2 mu1 - 1 do
                    let m1, m2 = mu1[y, x], mu2[y, x]
                    let v1 = 2.0 * (s12[y, x] - m1 * m2) + c2
                    let v2 = (s11[y, x] - m1 * m1) + (s22[y, x] - m2 * m2) + c2
                    ssim <- ssim + (2.0 * m1 * m2 + c1) * v1 / ((m1 * m1 + m2 * m2 + c1) * v2)
                    cs <- cs + v1 / v2
                    n <- n + 1
        ssim / float n, cs / float n

    /// The mean of each 2×2 block (`_HoxDownsample`).
    let half (image: float[,]) =
        Array2D.init (Array2D.length1 image / 2) (Array2D.length2 image / 2) (fun y x ->
            (image[2 * y, 2 * x] + image[2 * y + 1, 2 * x] + image[2 * y, 2 * x + 1] + image[2 * y + 1, 2 * x + 1]) * 0.25)

    let msssim (a: float[,][]) (b: float[,][]) =
        let weights = [| 0.0448; 0.2856; 0.3001; 0.2363; 0.1333 |]
        // Five scales, or as many as leave a pixel; fewer scales keep the five exponents' sum.
        let scales = min 5 (int (Math.Log2(float (Array2D.length1 a[0]))) + 1)
        let used = weights[0 .. scales - 1] |> Array.map (fun w -> w * Array.sum weights / Array.sum weights[0 .. scales - 1])
        let mutable a, b, result = a, b, 1.0
        for scale in 0 .. scales - 1 do
            let ssim, cs = ssimAndCs a b
            result <- result * (max 0.0 (if scale = scales - 1 then ssim else cs)) ** used[scale]
            a <- Array.map half a
            b <- Array.map half b
        result

/// Images [N, 3, r, r] in [−1, 1] from the procedural data, and the same as 0–255 arrays [c][y][x] of one image.
let private images (count: int) (resolution: int) (seed: int) =
    (Procedural.render count resolution seed).to_type(torch.float64).div(scalar 127.5).sub(scalar 1.0)

let private arrays (image: torch.Tensor) =
    let p = MsSsim.pixels (image.unsqueeze(0L))
    let r = int p.shape[2]
    let data = p.contiguous().data<float>().ToArray()
    Array.init 3 (fun c -> Array2D.init r r (fun y x -> data[(c * r + y) * r + x]))

[<Fact>]
let ``identical images give exactly 1, at every size down to 4²`` () =
    for resolution in [ 4; 8; 32; 64 ] do
        use x = images 6 resolution 3
        use p = MsSsim.pixels x
        use scores = MsSsim.ofPairs p p
        for s in scores.data<float>().ToArray() do Assert.Equal(1.0, s, 12)
        // A set of copies: every pair is one image twice.
        use copies = x.narrow(0L, 0L, 1L).expand(8L, -1L, -1L, -1L).contiguous()
        Assert.Equal(1.0, MsSsim.meanOfPairs copies, 12)

[<Fact>]
let ``a fixed pair matches a plain-loop computation of the reference recipe, at five scales and at fewer`` () =
    for resolution in [ 32; 16; 8 ] do
        use x = images 2 resolution 11
        use y = images 2 resolution 12
        let a, b = arrays x[0L], arrays y[1L]
        let expected = Reference.msssim a b
        use tensors = MsSsim.ofPairs (MsSsim.pixels (x.narrow(0L, 0L, 1L))) (MsSsim.pixels (y.narrow(0L, 1L, 1L)))
        let actual = tensors.item<float>()
        Assert.InRange(expected, 0.01, 0.99) // a pair that is neither the same nor unrelated
        Assert.Equal(expected, actual, 9)
    // Pairs are (0, 1), (2, 3), …: the mean over a set is the mean of those pairs' values.
    use set = images 4 16 5
    let pairs = [ for i in [ 0L; 2L ] -> Reference.msssim (arrays set[i]) (arrays set[i + 1L]) ]
    Assert.Equal(List.average pairs, MsSsim.meanOfPairs set, 9)

[<Fact>]
let ``varied images score lower than near-copies, as the paper reads the metric`` () =
    use varied = images 32 32 7
    use first = varied.narrow(0L, 0L, 1L)
    use noise = torch.randn([| 32L; 3L; 32L; 32L |], dtype = torch.float64, generator = new torch.Generator(1UL)).mul(scalar 0.02)
    use nearCopies = (first.expand(32L, -1L, -1L, -1L) + noise).clamp(scalar -1.0, scalar 1.0)
    Assert.True(MsSsim.meanOfPairs varied < MsSsim.meanOfPairs nearCopies - 0.2)
