// Gradients averaged over the processes in one all-reduce per model and step (Horovod's tensor fusion).
namespace ProGan.Training.Distributed

open System
open TorchSharp

/// Averages a model's gradients over the world before its optimiser steps, so that every process takes the step a
/// single process would take on the whole minibatch (each process's loss is the mean over its equal slice, so the
/// mean of their gradients is the gradient of the mean over the minibatch). The gradients that exist — the same on
/// every process, at the same level and phase — are flattened into one buffer and summed by one all-reduce
/// (Horovod's tensor fusion: one collective per model and step, not one per tensor), then divided by the world size
/// and copied back. `extra` values ride in the same buffer and come back summed over the world: the step's figures
/// that every process must agree on (losses, to be logged and checked for non-finite values, on every process alike).
type GradientAverage(world: World, allReduceSum: float32[] -> int -> unit) =
    let mutable buffer : float32[] = [||]

    /// Averages the gradients of `parameters` in place; returns `extra` summed over the world.
    member _.Average(parameters: seq<Modules.Parameter>, extra: float32[]) : float32[] =
        use scope = torch.NewDisposeScope()
        let gradients = [| for p in parameters do match p.grad with null -> () | g -> g |]
        for g in gradients do
            if g.dtype <> torch.ScalarType.Float32 then
                raise (NotSupportedException(sprintf "Gradients are averaged over processes in float32; this one is %O." g.dtype))
        let flat =
            if gradients.Length = 0 then torch.zeros(0L)
            else torch.cat([| for g in gradients -> g.detach().flatten().cpu() |], 0L)
        let n = int flat.NumberOfElements
        if buffer.Length < n + extra.Length then buffer <- Array.zeroCreate (n + extra.Length)
        flat.data<float32>().CopyTo(buffer, 0, 0L)
        Array.blit extra 0 buffer n extra.Length
        allReduceSum buffer (n + extra.Length)
        flat.data<float32>().CopyFrom(buffer, 0, 0L)
        use size = (float32 world.Size).ToScalar()
        flat.div_(size) |> ignore
        let mutable offset = 0L
        use _ = torch.no_grad()
        for g in gradients do
            g.copy_(flat.narrow(0L, offset, g.NumberOfElements).view_as(g)) |> ignore
            offset <- offset + g.NumberOfElements
        Array.sub buffer n extra.Length
