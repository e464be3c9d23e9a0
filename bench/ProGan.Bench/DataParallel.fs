/// The data-parallel row (issue #38): the cpu preset's training step in this process's world — one process with all
/// cores, or N processes under `mpirun` with cores / N threads each — as steps/s and images/s, and the share of a
/// step spent in its all-reduces (timed alone on buffers of the step's gradient sizes).
module ProGan.Bench.DataParallel

open System
open System.Diagnostics
open TorchSharp
open ProGan.Training.Config
open ProGan.Training.Data
open ProGan.Training.Distributed
open ProGan.Training.Loop

let private median (xs: float list) = let s = List.sort xs in s[s.Length / 2]

/// Times `iterations` steps at each resolution (stabilise) after `warmup`; rank 0 prints one row per resolution.
let run (resolutions: int list) (warmup: int) (iterations: int) =
    let world = match World.launchedSize Environment.GetEnvironmentVariable with Some _ -> Mpi.init () | None -> World.single
    let threads = max 1 (Environment.ProcessorCount / world.Size)
    torch.set_num_threads threads
    if world.IsRoot then
        printfn "| processes × threads | resolution | minibatch | steps/s | images/s | all-reduce share of a step | gradient floats per step |"
        printfn "|---|---|---|---|---|---|---|"
    for resolution in resolutions do
        let config = { TrainingConfig.cpu resolution with Threads = threads }
        use data = Procedural.pyramid 64 resolution 3 1
        use trainer = new Trainer(config, data, torch.CPU, world)
        let level = config.Architecture.LevelOf resolution
        trainer.JumpTo(Schedule.levelStart config level + int64 config.FadeImages) // into the level's stabilise phase
        for _ in 1 .. warmup do trainer.Step() |> ignore
        let steps =
            [ for _ in 1 .. iterations ->
                let sw = Stopwatch.StartNew()
                trainer.Step() |> ignore
                sw.Elapsed.TotalSeconds ]
        let step = median steps
        // The floats each model's all-reduce carries: its gradients at this level (and 4 or 1 figures).
        let floats (m: torch.nn.Module) = m.parameters() |> Seq.filter (fun p -> not (isNull p.grad)) |> Seq.sumBy (fun p -> p.NumberOfElements)
        let d, g = floats trainer.State.Discriminator + 4L, floats trainer.State.Generator + 1L
        let allReduce =
            if world.Size = 1 then 0.0
            else
                use dBuffer = torch.zeros(d)
                use gBuffer = torch.zeros(g)
                median
                    [ for _ in 1 .. 20 ->
                        Mpi.barrier ()
                        let sw = Stopwatch.StartNew()
                        Mpi.allReduceTensor dBuffer
                        Mpi.allReduceTensor gBuffer
                        sw.Elapsed.TotalSeconds ]
        if world.IsRoot then
            let batch = TrainingConfig.minibatchAt config level
            printfn "| %d × %d | %d² | %d | %.2f | %.1f | %s | %d |" world.Size threads resolution batch (1.0 / step) (float batch / step)
                (if world.Size = 1 then "—" else sprintf "%.1f %%" (100.0 * allReduce / step)) (d + g)
    if world.Size > 1 then Mpi.finalize ()
