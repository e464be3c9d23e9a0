// What every notebook starts with: the library's Release build (`dotnet build src/ProGan.Training -c Release` from the
// repository root; `dotnet fsi train.fsx` builds it too), TorchSharp made loadable, and a helper the notebooks share.
#r "../src/ProGan.Training/bin/Release/net10.0/TorchSharp.dll"
#r "../src/ProGan.Training/bin/Release/net10.0/ProGan.Keras.dll"
#r "../src/ProGan.Training/bin/Release/net10.0/ProGan.Keras.Serving.dll"
#r "../src/ProGan.Training/bin/Release/net10.0/ProGan.Training.dll"

open TorchSharp

// Loads TorchSharp, patched where the system libstdc++ is too old (F# can reach `torch` before any library type).
ProGan.Training.TensorSyntax.ensureTorch ()

/// The largest absolute difference between two tensors.
let maxDiff (a: torch.Tensor) (b: torch.Tensor) = (a - b).abs().max().item<float32>()
