// Images from a progressive generator at a schedule position, and the latents they come from.
namespace ProGan.Training.Paper

open TorchSharp
open ProGan.Keras.Models
open ProGan.Keras.Serving
open ProGan.Training.Config

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

    /// G's input from latents `z`: `z` itself for an unconditional generator (`labelSize` 0), else `z` followed by
    /// the one-hot class of each row (`ConditionalInput`, AC-GAN), the classes made by `labels` only then. The one
    /// place a conditional input is put together; returns the input and the classes. The caller owns `z`.
    let conditionalInput (labelSize: int) (z: torch.Tensor) (labels: unit -> torch.Tensor) =
        if labelSize = 0 then z, None
        else
            let classes = labels ()
            ConditionalInput.Of(z, classes, labelSize), Some classes

    /// The generator's input for `count` images of `config`: latents from `seed`, followed for a conditional generator
    /// by the one-hot class `classOf i` of image i.
    let inputs (config: ProGanConfig) (seed: uint64) (count: int) (classOf: int -> int) =
        let z = latents config.LatentSize seed count
        match conditionalInput config.LabelSize z (fun () -> torch.tensor(Array.init count (fun i -> int64 (classOf i % config.LabelSize)))) with
        | input, None -> input
        | input, Some labels ->
            z.Dispose()
            labels.Dispose()
            input

    /// Latents `indices` of the `steps` from seed A's to seed B's, evenly spaced in angle.
    let interpolation (latentSize: int) (seedA: int) (seedB: int) (steps: int) (indices: int seq) =
        Latents.Interpolation(latentSize, seedA, seedB, steps, indices)

    /// `steps` latents from seed A's to seed B's, evenly spaced in angle.
    let interpolationLatents (latentSize: int) (seedA: int) (seedB: int) (steps: int) =
        interpolation latentSize seedA seedB steps [ 0 .. steps - 1 ]
