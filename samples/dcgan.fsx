// The DCGAN sample's layers from F#, against the ProGan.Keras package in a local folder feed:
//   dotnet pack src/ProGan.Keras -c Release -o artifacts/packages   (from the repository root), then
//   dotnet fsi samples/dcgan.fsx
#i "nuget: ../artifacts/packages"
#r "nuget: ProGan.Keras, 0.1.0"
#r "nuget: libtorch-cpu-linux-x64, 2.10.0"

open TorchSharp
open ProGan.Keras.Backend
open ProGan.Keras.Layers

// F# has no module initializers: make TorchSharp loadable before the first tensor.
TorchBackend.Initialize() |> ignore
torch.manual_seed 1L |> ignore

let conv = new WeightScaledConv2D(3L, 8L, 3L)
let norm = new PixelNormalization()
let stdev = new MinibatchStdev(4)
let head = new WeightScaledDense(9L * 8L * 8L, 1L, gain = 1.0)
let parameters = Seq.concat [ conv.parameters(); head.parameters() ] |> Array.ofSeq
let before = parameters |> Array.map (fun p -> p.detach().clone())
let optimizer = torch.optim.Adam(parameters, 1e-2, 0.0, 0.99)
let images = torch.randn([| 8L; 3L; 8L; 8L |])
let targets = torch.ones([| 8L; 1L |])
let mutable finite = true
for step in 1..20 do
    optimizer.zero_grad()
    let features = norm.call (torch.nn.functional.leaky_relu(conv.call images, 0.2))
    let scores = head.call (stdev.call features)
    let loss = torch.nn.functional.mse_loss(scores, targets)
    loss.backward()
    optimizer.step() |> ignore
    finite <- finite && System.Single.IsFinite(loss.item<float32>())
let changed = Array.exists2 (fun (p: Modules.Parameter) (b: torch.Tensor) -> not (p.allclose b)) parameters before
printfn "finite losses: %b" finite
printfn "parameters changed: %b" changed
if not (finite && changed) then exit 1
