/// Random tensors for the properties, and plain-array reference computations.
module ProGan.Keras.Properties.Tensors

open FsCheck
open FsCheck.FSharp
open TorchSharp
open ProGan.Keras.Backend

/// Tests may build tensors before touching any library type, so make the backend loadable first.
let private ready = lazy (TorchBackend.Initialize() |> ignore)

/// A reproducible N(0, σ²) tensor of the given shape.
let randn (seed: int) (scale: float32) (shape: int64 list) =
    ready.Force()
    use g = torch.manual_seed (int64 seed)
    torch.randn(Array.ofList shape, generator = g) * torch.tensor scale

let values (t: torch.Tensor) : float32[] = t.detach().cpu().contiguous().data<float32>().ToArray()

let maxAbsDiff (a: torch.Tensor) (b: torch.Tensor) =
    Array.map2 (fun x y -> abs (float x - float y)) (values a) (values b) |> Array.max

/// A shape [N, C, H, W] with small dimensions, a seed and a magnitude spanning several orders.
type Nchw = { N: int; C: int; H: int; W: int; Seed: int; Scale: float32 }

let nchw (maxN: int) =
    gen {
        let! n = Gen.choose (1, maxN)
        let! c = Gen.choose (1, 6)
        let! h = Gen.choose (1, 6)
        let! w = Gen.choose (1, 6)
        let! seed = Gen.choose (0, 1_000_000)
        let! exponent = Gen.choose (-2, 2)
        return { N = n; C = c; H = h; W = w; Seed = seed; Scale = 10.0f ** float32 exponent }
    }

let tensorOf (s: Nchw) = randn s.Seed s.Scale [ int64 s.N; int64 s.C; int64 s.H; int64 s.W ]

/// Arbitrary values for the [<Property>] tests.
type Shapes =
    static member Nchw() = Arb.fromGen (nchw 8)
