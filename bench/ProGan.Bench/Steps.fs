/// Where the benchmark's trainers start: one trainer warmed up at a resolution and phase.
module ProGan.Bench.Steps

open ProGan.Keras.Backend
open ProGan.Training.Config
open ProGan.Training.Data
open ProGan.Training.Loop

/// The images shown at which a timing of `resolution` starts: stabilising, the start of the level's own cycle; fading
/// in, the middle of the fade that brings the level in (α = 0.5).
let startAt (config: TrainingConfig) (resolution: int) (fading: bool) =
    let level = config.Architecture.LevelOf resolution
    let cycle = int64 (config.StabiliseImages + config.FadeImages)
    if fading then int64 (level - 1) * cycle + int64 config.StabiliseImages + int64 config.FadeImages / 2L else int64 level * cycle

/// A trainer of `config` on `data`, moved to `startAt` and warmed up by `warmup` steps (the caller disposes it).
let trainerAt (data: TrainingImages) (config: TrainingConfig) (resolution: int) (fading: bool) (warmup: int) =
    let trainer = new Trainer(config, data, TorchBackend.Device)
    trainer.JumpTo(startAt config resolution fading)
    for _ in 1..warmup do trainer.Step() |> ignore
    trainer
