namespace ProGan.Training

open TorchSharp
open ProGan.Keras.Models
open ProGan.Keras.Serving

/// Drawing images from a progressive generator at a schedule position (through ProGan.Keras.Serving, so that training,
/// generate.fsx and the package draw the same images).
module Sampling =

    /// The generator model a schedule position trains: its resolution, and α during a fade-in.
    let generatorPosition (position: SchedulePosition) = GeneratorPosition(position.Resolution, (position.Phase = FadeIn), position.Alpha)

    /// Images in [−1, 1] from `generator` at `position` (its level, phase and α), without gradients, on `device`.
    let at (generator: ProgressiveGenerator) (position: SchedulePosition) (z: torch.Tensor) (device: torch.Device) =
        TrainedGenerator.Sample(generator, generatorPosition position, z, device)

    /// `count` latents drawn from N(0, I) with `seed` (`Latents.FromSeed`: one generator, 64 rows at a time).
    let latents (latentSize: int) (seed: uint64) (count: int) = Latents.FromSeed(latentSize, seed, count)
