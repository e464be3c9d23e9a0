module ProGan.Training.Tests.Metrics.FeatureDistanceTests

open System
open Xunit
open TorchSharp
open ProGan.Training.Basics
open ProGan.Training.Metrics

/// Fixed features [40, 6], the same formulas as the numpy reference below.
let private fixedFeatures () =
    let i = torch.arange(40L, dtype = torch.ScalarType.Float64).unsqueeze(1L)
    let j = torch.arange(6L, dtype = torch.ScalarType.Float64).unsqueeze(0L)
    let a = (i * 0.37 + j * 1.1).sin() + j * 0.1
    let b = (i * 0.23 * (j + 1.0)).cos() * (j * 0.05 + 1.0) + 0.3
    a, b

/// Standard normal features [n, d] from `seed`.
let private gaussian (seed: uint64) (n: int64) (d: int64) =
    use g = new torch.Generator(seed)
    torch.randn([| n; d |], dtype = torch.ScalarType.Float64, generator = g)

// The reference values, computed once with numpy 1.24 / scipy 1.10 (pytorch-fid's formula for FD):
//   import numpy as np, scipy.linalg
//   n, d = 40, 6
//   i = np.arange(n)[:, None].astype(np.float64); j = np.arange(d)[None, :].astype(np.float64)
//   a = np.sin(0.37 * i + 1.1 * j) + 0.1 * j
//   b = np.cos(0.23 * i * (j + 1)) * (1 + 0.05 * j) + 0.3
//   def fd(x, y):
//       m1, m2 = x.mean(0), y.mean(0); s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
//       covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False); covmean = covmean.real
//       return ((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
//   def mmd(x, y):
//       m = x.shape[0]; k = lambda p, q: (p @ q.T / x.shape[1] + 1) ** 3
//       kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
//       return (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m ** 2
//   def pr(g, r, k=3):
//       dist = lambda p, q: np.sqrt(((p[:, None, :] - q[None, :, :]) ** 2).sum(-1))
//       rr, rg = np.sort(dist(r, r), 1)[:, k], np.sort(dist(g, g), 1)[:, k]
//       return (dist(g, r) <= rr[None, :]).any(1).mean(), (dist(r, g) <= rg[None, :]).any(1).mean()
//   print(repr(fd(a, b)), repr(mmd(a, b)), pr(a, b), repr(np.trace(scipy.linalg.sqrtm(np.cov(b, rowvar=False)))))
// (a's covariance has rank 2, b's is full rank: its square root is well conditioned.)
let private referenceFd, referenceKid, referencePrecision, referenceRecall, referenceTraceSqrt =
    3.07981873886696, 0.2828519424064031, 0.475, 0.1, 4.821822072370713

[<Fact>]
let ``FD, KID and precision/recall match numpy and scipy on fixed features`` () =
    let a, b = fixedFeatures ()
    Assert.Equal(referenceFd, FrechetDistance.compute a b, 9)
    // One subset of all 40 images: every draw is the whole set, whatever the order.
    let kid = KernelDistance.computeStepping (fun _ _ -> ()) 3 40 1UL a b
    Assert.Equal(referenceKid, kid.Mean, 9)
    Assert.Equal(0.0, kid.Std, 9)
    let pr = PrecisionRecall.compute a b
    Assert.Equal(referencePrecision, pr.Precision, 9)
    Assert.Equal(referenceRecall, pr.Recall, 9)
    let _, sigma = FrechetDistance.statistics b
    Assert.Equal(referenceTraceSqrt, (FrechetDistance.sqrtPsd sigma).trace().item<float>(), 9)
    // From the covariances alone, √Σ₁ of these rank-2 features carries errors of order √ε: close, not as close.
    Assert.Equal(referenceFd, FrechetDistance.ofStatistics (FrechetDistance.statistics a) (FrechetDistance.statistics b), 6)

[<Fact>]
let ``the matrix square root is the closed form on diagonal matrices and squares back on random SPD ones`` () =
    let diagonal = torch.tensor([| 4.0; 9.0; 0.25; 0.0 |], dtype = torch.ScalarType.Float64)
    let root = FrechetDistance.sqrtPsd (torch.diag diagonal)
    Assert.True(root.allclose(torch.diag(diagonal.sqrt()), rtol = 0.0, atol = 1e-12), root.ToString(TorchSharp.TensorStringStyle.Julia))
    for seed in 1UL .. 3UL do
        let x = gaussian seed 20L 12L
        let spd = x.t().matmul(x) + torch.eye(12L, dtype = torch.ScalarType.Float64) * 0.1
        let r = FrechetDistance.sqrtPsd spd
        Assert.True(r.matmul(r).allclose(spd, rtol = 1e-10, atol = 1e-10))
        Assert.True(r.allclose(r.t(), rtol = 0.0, atol = 1e-12))
        // Tr((Σ₁Σ₂)^½) of Σ with itself is Tr Σ; of commuting diagonals, Σ √(d₁d₂).
        Assert.Equal(spd.trace().item<float>(), FrechetDistance.traceSqrtProduct spd spd, 8)
        // On full-rank features the two routes (statistics, QR of the features) agree.
        let y = gaussian (seed + 10UL) 30L 12L * 2.0 + 1.0
        Assert.Equal(FrechetDistance.ofStatistics (FrechetDistance.statistics x) (FrechetDistance.statistics y), FrechetDistance.compute x y, 9)
    Assert.Equal(sqrt 8.0 + sqrt 27.0, FrechetDistance.traceSqrtProduct (torch.diag(torch.tensor([| 2.0; 3.0 |], dtype = torch.ScalarType.Float64))) (torch.diag(torch.tensor([| 4.0; 9.0 |], dtype = torch.ScalarType.Float64))), 12)

[<Fact>]
let ``FD of a set with itself is 0, and with a shifted copy exactly the shift's squared length`` () =
    let a = gaussian 7UL 500L 16L
    Assert.Equal(0.0, FrechetDistance.compute a a, 8)
    let direction = gaussian 8UL 1L 16L
    let shifts = [ 0.1; 0.5; 2.0 ]
    for s in shifts do
        let shift = direction * s
        let expected = shift.square().sum().item<float>()
        Assert.Equal(expected, FrechetDistance.compute a (a + shift), 8)
    // And it tells two samples of one distribution (small, FD's bias) from a shifted one (large).
    let b = gaussian 9UL 500L 16L
    Assert.True(FrechetDistance.compute a b < 0.3 * FrechetDistance.compute a (b + direction))

[<Fact>]
let ``KID is unbiased: about 0 on two samples of one distribution, where its biased twin is not`` () =
    let x, y = gaussian 11UL 600L 16L, gaussian 12UL 600L 16L
    let kid = KernelDistance.computeStepping (fun _ _ -> ()) 50 200 3UL x y
    let shifted = KernelDistance.computeStepping (fun _ _ -> ()) 50 200 3UL x (y + 0.5)
    // Biased (V-statistic) the diagonal would add about 2·E[k(x, x)]/m ≈ 2·8/200 = 0.08 here.
    Assert.True(abs kid.Mean < 0.01, sprintf "KID of one distribution: %A" kid)
    Assert.True(abs kid.Mean < 3.0 * kid.Std / sqrt 50.0 + 1e-3, sprintf "%A" kid)
    Assert.True(shifted.Mean > 10.0 * abs kid.Mean && shifted.Mean > 0.05, sprintf "shifted: %A, same: %A" shifted kid)
    Assert.Equal(200, kid.SubsetSize)
    // Small sets: subsets of all their images.
    Assert.Equal(30, (KernelDistance.computeStepping (fun _ _ -> ()) 2 1000 3UL (x.narrow(0L, 0L, 30L)) y).SubsetSize)

[<Fact>]
let ``precision and recall are 1 on identical sets and 0 against a far blob, and a collapsed set has no recall`` () =
    let real = gaussian 21UL 300L 8L
    let same = PrecisionRecall.compute real real
    Assert.Equal(1.0, same.Precision)
    Assert.Equal(1.0, same.Recall)
    let far = PrecisionRecall.compute (gaussian 22UL 300L 8L + 50.0) real
    Assert.Equal(0.0, far.Precision)
    Assert.Equal(0.0, far.Recall)
    // A second sample of the data covers most of it; copies of one sample (a collapsed generator) lie on the data
    // but cover almost none of it.
    let floor = PrecisionRecall.compute (gaussian 23UL 300L 8L) real
    Assert.True(floor.Precision > 0.6 && floor.Recall > 0.6, sprintf "%A" floor)
    let collapsed = PrecisionRecall.compute (real.narrow(0L, 0L, 1L).expand(300L, -1L)) real
    Assert.Equal(1.0, collapsed.Precision)
    Assert.True(collapsed.Recall < 0.05, sprintf "%A" collapsed)

[<Fact>]
let ``the feature network's input is 224² RGB in 0–255: −1 is 0, 1 is 255, gray is repeated, RGBA composited onto black`` () =
    let gray = torch.tensor([| -1.0f; 1.0f; 0.0f; 1.0f |]).reshape(1L, 1L, 2L, 2L)
    use input = ImageFeatures.ToInput gray
    Assert.Equal<int64[]>([| 1L; 3L; 224L; 224L |], input.shape)
    Assert.Equal(0.0f, input[0L, 0L, 0L, 0L].item<float32>())
    Assert.Equal(255.0f, input[0L, 2L, 223L, 223L].item<float32>())
    Assert.Equal(0.0f, (input[0L, 0L] - input[0L, 2L]).abs().max().item<float32>())
    let rgba = torch.tensor([| 1.0f; 1.0f; 1.0f; 0.0f |]).reshape(1L, 4L, 1L, 1L) // white at half alpha
    use composited = ImageFeatures.ToInput rgba
    Assert.Equal(127.5f, composited[0L, 1L, 100L, 100L].item<float32>(), 3)
