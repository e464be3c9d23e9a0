// Bridges from F# to TorchSharp: kept Scalars (`scalar`, `whole`), loading TorchSharp first.
/// Small bridges between F# and TorchSharp's C#-shaped API.
[<AutoOpen>]
module ProGan.Training.Basics.TensorSyntax

open System
open TorchSharp

/// Makes TorchSharp loadable before the first tensor (see `TorchBackend`): F# code can reach `torch` before any
/// ProGan.Keras type, and F# has no module initializers, so each entry point — the commands, the notebooks' preamble,
/// the test framework — calls this once.
let ensureTorch () = ProGan.Keras.Backend.TorchBackend.Initialize() |> ignore

/// A constant as a TorchSharp Scalar that lives as long as the process (`Scalars.Of`): a Scalar made on the fly can
/// be freed by the finalizer while libtorch still reads it (see `ProGan.Keras.Backend.Scalars`). For constants only —
/// a value that changes every step takes `use s = value.ToScalar()` instead, or the cache would grow with it.
let scalar (value: float) : Scalar = ProGan.Keras.Backend.Scalars.Of value

/// An integer constant as a Scalar that lives as long as the process (integer bounds keep integer tensors integral).
let whole (value: int64) : Scalar = ProGan.Keras.Backend.Scalars.OfInt value

/// A tensor of the given shape over a byte array (copied).
let bytesTensor (data: byte[]) (shape: int64[]) : torch.Tensor =
    torch.tensor(data :> Collections.Generic.IList<byte>, ReadOnlySpan<int64>(shape))
