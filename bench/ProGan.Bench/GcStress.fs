/// A reproduction of the random native `Scalar` faults (issue 31): the CPU preset trained on the procedural set while
/// another thread forces garbage collections and runs the finalizers back to back, so that any native handle a step
/// leaves to the finalizer (a Scalar or a Tensor nobody keeps alive) is freed while libtorch may still read it.
/// Before the fix this failed within seconds with `c10::Scalar::toFloat` / `Unknown scalar type`, the errors long
/// runs died of at random; a clean pass prints the steps it survived.
module ProGan.Bench.GcStress

open System
open System.Diagnostics
open System.Threading
open TorchSharp
open ProGan.Training.Config
open ProGan.Training.Data
open ProGan.Training.Loop

/// Trains for `seconds` under the GC hammer; returns 0 when no step faulted, 2 when one did (with the error).
let run (seconds: int) (resolution: int) (seed: int) =
    let config = { TrainingConfig.cpu resolution with Seed = seed }
    let data = TrainingData.load config ignore CancellationToken.None
    use trainer = new Trainer(config, data, torch.CPU)
    let mutable stop = false
    let hammer =
        Thread((fun () ->
            while not (Volatile.Read &stop) do
                GC.Collect()
                GC.WaitForPendingFinalizers()), IsBackground = true)
    let churn =
        Thread((fun () ->
            let mutable keep : obj = null
            while not (Volatile.Read &stop) do keep <- Array.zeroCreate<byte> 512
            GC.KeepAlive keep), IsBackground = true)
    hammer.Start()
    churn.Start()
    let clock = Stopwatch.StartNew()
    let gcs0 = GC.CollectionCount 0
    let mutable steps = 0
    let mutable lastReport = 0.0
    let report () =
        printfn "%6.0f s: %d steps, %d images (%d² %A), %d GCs" clock.Elapsed.TotalSeconds steps trainer.ImagesShown
            trainer.Position.Resolution trainer.Position.Phase (GC.CollectionCount 0 - gcs0)
    printfn "GC stress: the CPU preset to %d², seed %d, for %d s, a thread forcing GCs and finalizers back to back" resolution seed seconds
    try
        try
            while clock.Elapsed.TotalSeconds < float seconds && not trainer.IsDone do
                trainer.Step() |> ignore
                steps <- steps + 1
                if clock.Elapsed.TotalSeconds - lastReport >= 10.0 then
                    lastReport <- clock.Elapsed.TotalSeconds
                    report ()
            report ()
            printfn "no native fault in %d steps" steps
            0
        with e ->
            printfn "FAULT after %d steps (%.0f s, %d images): %s: %s" steps clock.Elapsed.TotalSeconds trainer.ImagesShown
                (e.GetType().Name) (e.Message.Split('\n')[0])
            2
    finally
        stop <- true
