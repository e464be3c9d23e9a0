// Gradients averaged over the processes in one all-reduce per model and step (Horovod's tensor fusion).
namespace ProGan.Training.Distributed

open System
open TorchSharp

/// Averages a model's gradients over the world before its optimiser steps, so that every process takes the step a
/// single process would take on the whole minibatch (each process's loss is the mean over its equal slice, so the
/// mean of their gradients is the gradient of the mean over the minibatch). The gradients that exist — the same on
/// every process, at the same level and phase — are flattened into one buffer on their device and summed by one
/// all-reduce (Horovod's tensor fusion: one collective per model and step, not one per tensor), then divided by the
/// world size and copied back. `extra` values ride in the same buffer and come back summed over the world: the step's
/// figures that every process must agree on (losses, to be logged and checked for non-finite values, on every process
/// alike). `allReduce` sums a contiguous float32 tensor over the processes in place: `Mpi.allReduceTensor` on the
/// CPU, `Nccl`'s on CUDA devices.
type GradientAverage(world: World, allReduce: torch.Tensor -> unit) =

    /// Averages the gradients of `parameters` in place; returns `extra` summed over the world.
    member _.Average(parameters: seq<Modules.Parameter>, extra: float32[]) : float32[] =
        use scope = torch.NewDisposeScope()
        let gradients = [| for p in parameters do match p.grad with null -> () | g -> g |]
        for g in gradients do
            if g.dtype <> torch.ScalarType.Float32 then
                raise (NotSupportedException(sprintf "Gradients are averaged over processes in float32; this one is %O." g.dtype))
        let device = if gradients.Length = 0 then torch.CPU else gradients[0].device
        let flat = torch.cat(Array.append [| for g in gradients -> g.detach().flatten() |] [| torch.tensor(extra, device = device) |], 0L)
        allReduce flat
        let n = flat.NumberOfElements - int64 extra.Length
        let sums = flat.narrow(0L, n, int64 extra.Length).cpu().data<float32>().ToArray()
        use _ = torch.no_grad()
        use size = (float32 world.Size).ToScalar()
        let mutable offset = 0L
        for g in gradients do
            g.copy_(flat.narrow(0L, offset, g.NumberOfElements).view_as(g)).div_(size) |> ignore
            offset <- offset + g.NumberOfElements
        sums
