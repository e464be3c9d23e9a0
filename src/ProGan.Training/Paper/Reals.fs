// The real images D sees at a schedule position (`process_reals`: the fade of §3).
namespace ProGan.Training.Paper

open TorchSharp
open ProGan.Keras.Models

/// The real images D sees at a schedule position (reference `train.py process_reals`).
module Reals =

    /// During a fade-in the reals are blended between the two levels of detail exactly like the fakes:
    /// lerp(x, upsample(avgpool(x)), 1 − α) — at α = 1 the images themselves, at α = 0 the lower level shown at this
    /// resolution. While stabilising (α = 1) the images are returned as they are.
    let fade (alpha: float) (reals: torch.Tensor) =
        if alpha >= 1.0 then reals.alias()
        else
            use scope = torch.NewDisposeScope()
            let low = Resample.Up(Resample.Down reals)
            torch.lerp(reals, low, torch.tensor(1.0 - alpha, dtype = reals.dtype, device = reals.device)).MoveToOuterDisposeScope()
