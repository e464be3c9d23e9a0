namespace ProGan.Training

open TorchSharp
open ProGan.Keras.Models

/// Drawing images from a progressive generator at a schedule position.
module Sampling =

    /// Images in [−1, 1] from `generator` at `position` (its level, phase and α), without gradients.
    let at (generator: ProgressiveGenerator) (position: SchedulePosition) (z: torch.Tensor) (device: torch.Device) =
        generator.SetAlpha position.Alpha
        use scope = torch.NewDisposeScope()
        use _ = torch.no_grad()
        generator.Pairs[position.Level].Select(position.Phase = FadeIn).call(z.``to``(device)).MoveToOuterDisposeScope()

    /// `count` latents drawn from N(0, I) with `seed`.
    let latents (latentSize: int) (seed: uint64) (count: int) =
        use g = new torch.Generator(seed)
        torch.randn([| int64 count; int64 latentSize |], generator = g)
