/// The layers' mathematics as properties over random shapes and values (Karras et al. 2018, §3–4).
module ProGan.Keras.Properties.LayerProperties

open System
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open TorchSharp
open ProGan.Keras.Layers
open ProGan.Keras.Properties.Tensors

[<Properties(Arbitrary = [| typeof<Shapes> |], MaxTest = 60)>]
module PixelNormalization =

    [<Property>]
    let ``gives unit RMS over the channels at every pixel`` (s: Nchw) =
        use x = tensorOf s
        use y = (new PixelNormalization()).call x
        let meanSquare = values (x.square().mean([| 1L |]))
        let rms = values (y.square().mean([| 1L |]).sqrt())
        // RMS is exactly sqrt(m / (m + ε)) for the input's mean square m: 1 wherever m ≫ ε = 1e-8.
        Array.forall2 (fun (m: float32) (r: float32) ->
            let want = sqrt (float m / (float m + 1e-8))
            abs (float r - want) < 1e-4 && (m < 1e-4f || abs (r - 1.0f) < 1e-3f)) meanSquare rms

    [<Property>]
    let ``is invariant to positive scaling`` (s: Nchw) (PositiveInt k) =
        let factor = float32 (k % 50 + 1) / 7.0f
        use x = tensorOf s
        // Exact invariance needs ε = 0 (with ε > 0 it holds only where the mean square dwarfs ε).
        use a = (new PixelNormalization(0.0)).call x
        use b = (new PixelNormalization(0.0)).call (x * torch.tensor factor)
        maxAbsDiff a b < 1e-4

[<Properties(Arbitrary = [| typeof<Shapes> |], MaxTest = 60)>]
module WeightedSum =

    let private pair (s: Nchw) = tensorOf s, tensorOf { s with Seed = s.Seed + 1 }

    [<Property>]
    let ``is old at alpha 0 and new at alpha 1`` (s: Nchw) =
        let old, neu = pair s
        let layer = (new WeightedSum(0.0))
        let atZero = maxAbsDiff (layer.call (old, neu)) old
        layer.Alpha <- 1.0
        atZero = 0.0 && maxAbsDiff (layer.call (old, neu)) neu = 0.0

    [<Property>]
    let ``is linear in alpha`` (s: Nchw) (a: NormalFloat) (b: NormalFloat) =
        let clamp (x: float) = abs x % 1.0
        let a, b = clamp a.Get, clamp b.Get
        let old, neu = pair s
        let at alpha = (new WeightedSum(alpha)).call (old, neu)
        let midpoint = at ((a + b) / 2.0)
        let average = (at a + at b) / torch.tensor 2.0f
        maxAbsDiff midpoint average <= 1e-5 * float s.Scale * 10.0

[<Properties(Arbitrary = [| typeof<Shapes> |], MaxTest = 60)>]
module MinibatchStdev =

    /// Plain-array reference: group of sample n is n mod (N/G); per group, sqrt(var over group + ε) averaged over C, H, W.
    let expected (x: float32[]) n c hw groupSize =
        let g = min groupSize n
        let m = n / g
        let perGroup =
            Array.init m (fun grp ->
                let mutable total = 0.0
                for k in 0 .. c * hw - 1 do
                    let xs = Array.init g (fun j -> float x[(j * m + grp) * c * hw + k])
                    let mean = Array.average xs
                    let var = xs |> Array.averageBy (fun v -> (v - mean) ** 2.0)
                    total <- total + sqrt (var + 1e-8)
                total / float (c * hw))
        Array.init n (fun s -> perGroup[s % m])

    [<Property>]
    let ``adds one channel, constant over pixels, equal to the hand-computed value`` (s: Nchw) (PositiveInt gs) =
        let groupSize = gs % 4 + 1
        let g = min groupSize s.N
        // Batches the group does not divide are rejected (as the reference asserts); use the largest divisible batch.
        let n = s.N - s.N % g
        use x = tensorOf { s with N = n }
        use y = (new MinibatchStdev(groupSize)).call x
        let hw = s.H * s.W
        let extra = values (y.narrow(1, int64 s.C, 1))
        let want = expected (values x) n s.C hw groupSize
        y.shape = [| int64 n; int64 s.C + 1L; int64 s.H; int64 s.W |]
        && maxAbsDiff (y.narrow(1, 0, int64 s.C)) x = 0.0
        && Seq.forall (fun i -> abs (float extra[i] - want[i / hw]) <= 1e-4 * (1.0 + want[i / hw])) (seq { 0 .. extra.Length - 1 })

    [<Property>]
    let ``rejects a batch its group size does not divide`` (PositiveInt k) =
        let groupSize = k % 3 + 2
        let n = groupSize + 1 + (k % (groupSize - 1)) // strictly between multiples of groupSize
        n % groupSize = 0
        || (try
                (new MinibatchStdev(groupSize)).call (randn k 1.0f [ int64 n; 2L; 2L; 2L ]) |> ignore
                false
            with :? ArgumentException as e -> e.Message.Contains(string n))

[<Properties(MaxTest = 40)>]
module WeightScaling =

    let private layerShape =
        gen {
            let! inC = Gen.choose (1, 6)
            let! outC = Gen.choose (1, 6)
            let! k = Gen.elements [ 1; 3; 5 ]
            let! gainTenths = Gen.choose (1, 30)
            let! seed = Gen.choose (0, 100_000)
            return inC, outC, k, float gainTenths / 10.0, seed
        }

    [<Property>]
    let ``a weight-scaled conv equals a plain conv with pre-scaled weights`` () =
        Prop.forAll (Arb.fromGen layerShape) (fun (inC, outC, k, gain, seed) ->
            torch.manual_seed (int64 seed) |> ignore
            let conv = (new WeightScaledConv2D(int64 inC, int64 outC, int64 k, gain))
            use x = randn seed 1.0f [ 2L; int64 inC; 7L; 7L ]
            let c = gain / sqrt (float (inC * k * k))
            use w = conv.Weight.detach() * torch.tensor (float32 c)
            use plain = torch.nn.functional.conv2d(x, w, conv.Bias.detach(), padding = [| int64 (k / 2); int64 (k / 2) |])
            maxAbsDiff (conv.call x) plain < 1e-4)

    [<Property>]
    let ``an upscaling weight-scaled conv equals nearest-neighbour upsampling then the conv`` () =
        // Input sides on both sides of the fused path's threshold (16): the plain and the fused computation.
        let sides = Gen.zip (Gen.elements [ 2; 5; 16; 19 ]) (Gen.elements [ 3; 16; 18 ])
        Prop.forAll (Arb.fromGen (Gen.zip layerShape sides)) (fun ((inC, outC, k, gain, seed), (h, w)) ->
            torch.manual_seed (int64 seed) |> ignore
            let conv = new WeightScaledConv2D(int64 inC, int64 outC, int64 k, gain, upscale = true)
            use _ = torch.no_grad()
            torch.nn.init.normal_(conv.Bias) |> ignore
            use x = randn seed 1.0f [ 2L; int64 inC; int64 h; int64 w ]
            // Independent: repeat every pixel 2×2 by indexing, then the plain convolution with c·w.
            use rows = torch.tensor [| for i in 0 .. 2 * h - 1 -> int64 (i / 2) |]
            use cols = torch.tensor [| for i in 0 .. 2 * w - 1 -> int64 (i / 2) |]
            use upsampled = x.index_select(2L, rows).index_select(3L, cols)
            use weight = conv.Weight.detach() * torch.tensor (float32 (gain / sqrt (float (inC * k * k))))
            use plain = torch.nn.functional.conv2d(upsampled, weight, conv.Bias.detach(), padding = [| int64 (k / 2); int64 (k / 2) |])
            use y = conv.call x
            y.shape = [| 2L; int64 outC; int64 (2 * h); int64 (2 * w) |] && maxAbsDiff y plain < 1e-4)

    [<Property>]
    let ``a weight-scaled dense equals a plain linear with pre-scaled weights`` () =
        Prop.forAll (Arb.fromGen layerShape) (fun (inF, outF, _, gain, seed) ->
            torch.manual_seed (int64 seed) |> ignore
            let dense = (new WeightScaledDense(int64 inF, int64 outF, gain))
            use x = randn seed 1.0f [ 3L; int64 inF ]
            use w = dense.Weight.detach() * torch.tensor (float32 (gain / sqrt (float inF)))
            use plain = torch.nn.functional.linear(x, w, dense.Bias.detach())
            maxAbsDiff (dense.call x) plain < 1e-5)
