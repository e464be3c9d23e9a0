// The next step's minibatch of reals, gathered on another thread while the step before it runs.
namespace ProGan.Training.Data

open System
open System.Threading.Tasks
open TorchSharp

/// One minibatch of reals gathered ahead, on a thread pool thread, while the current step computes: reading a data
/// set from disk then costs no step time. It holds at most one; taking any other minibatch drops it.
type Prefetch(data: TrainingImages) =
    let mutable pending : (MinibatchDraw * int64 * Task<torch.Tensor>) option = None

    /// Drops the minibatch gathered ahead (waiting for its gather, and disposing of it).
    member _.Drop() =
        pending |> Option.iter (fun (_, _, task) -> try task.GetAwaiter().GetResult().Dispose() with _ -> ())
        pending <- None

    /// Starts gathering `draw`, the minibatch of the step that will start at `images` shown.
    member this.Start(draw: MinibatchDraw, images: int64) =
        this.Drop()
        pending <- Some(draw, images, Task.Run(fun () -> Minibatch.gather data draw))

    /// The reals of the step at `images` shown at `level`, and their draw: the ones gathered ahead when they are
    /// these, else `draw ()` gathered now.
    member this.Take(images: int64, level: int, draw: unit -> MinibatchDraw) =
        match pending with
        | Some(ahead, at, task) when at = images && ahead.Level = level ->
            pending <- None
            task.GetAwaiter().GetResult(), ahead // its own exception, not an AggregateException
        | _ ->
            this.Drop()
            let now = draw ()
            Minibatch.gather data now, now

    interface IDisposable with
        member this.Dispose() = this.Drop()
