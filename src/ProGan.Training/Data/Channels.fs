// Image channels a run learns: 1, 3 or 4.
namespace ProGan.Training.Data

open TorchSharp
open ProGan.Training.Basics

/// Image channels a run learns: 1 (grayscale), 3 (RGB) or 4 (RGBA, alpha learned as a fourth channel, not composited).
module Channels =

    /// The channel counts a run can learn.
    let supported = [ 1; 3; 4 ]

    /// ITU-R BT.601 luma weights, as grayscale conversions (and PIL's "L" mode) use them.
    let private luma = [| 0.299f; 0.587f; 0.114f |]

    /// Decoded RGBA [4, h, w] (0–255) as `channels` channels: 1 → the luma of the colour composited onto black,
    /// 3 → the colour composited onto black, 4 → RGBA as it is.
    let fromRgba (channels: int) (rgba: torch.Tensor) =
        use scope = torch.NewDisposeScope()
        let alpha = rgba.narrow(0L, 3L, 1L).div(scalar 255.0)
        let rgb = rgba.narrow(0L, 0L, 3L) * alpha
        let result =
            match channels with
            | 1 -> (rgb * torch.tensor(luma).view(3L, 1L, 1L)).sum([| 0L |], keepdim = true)
            | 3 -> rgb
            | _ -> rgba.clone()
        result.MoveToOuterDisposeScope()
