/// Small bridges between F# and TorchSharp's C#-shaped API.
[<AutoOpen>]
module ProGan.Training.TensorSyntax

open System
open TorchSharp

/// Makes TorchSharp loadable before the first tensor (see `TorchBackend`): F# code can reach `torch` before any
/// ProGan.Keras type, and F# has no module initializers, so each entry point — the commands, the notebooks' preamble,
/// the test framework — calls this once.
let ensureTorch () = ProGan.Keras.Backend.TorchBackend.Initialize() |> ignore

/// A number as a TorchSharp Scalar. F# does not apply TorchSharp's implicit conversion where a Tensor overload
/// competes (`x.mul_(2.0)` is ambiguous), so the conversion is spelled out.
let inline scalar (value: float) : Scalar = Scalar.op_Implicit value

/// A tensor of the given shape over a byte array (copied).
let bytesTensor (data: byte[]) (shape: int64[]) : torch.Tensor =
    torch.tensor(data :> Collections.Generic.IList<byte>, ReadOnlySpan<int64>(shape))
