namespace ProGan.Training

open TorchSharp

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

    /// Images in [−1, 1] [N, C, r, r] as RGB for a picture: grayscale repeated, RGBA composited onto a light/dark
    /// checkerboard so that what is transparent shows as such.
    let toRgb (images: torch.Tensor) =
        use scope = torch.NewDisposeScope()
        let result =
            match int images.shape[1] with
            | 1 -> images.expand(-1L, 3L, -1L, -1L).contiguous()
            | 4 ->
                let h, w = images.shape[2], images.shape[3]
                let square = max 1L (h / 4L)
                let y = (torch.arange(h) / square).floor().view(h, 1L)
                let x = (torch.arange(w) / square).floor().view(1L, w)
                let parity = (y + x).remainder(scalar 2.0).to_type(torch.ScalarType.Float32)
                let checker = parity.mul(scalar 0.4).sub(scalar 0.2).view(1L, 1L, h, w)
                let alpha = images.narrow(1L, 3L, 1L).add(scalar 1.0).div(scalar 2.0).clamp(scalar 0.0, scalar 1.0)
                torch.lerp(checker.expand(images.shape[0], 3L, h, w), images.narrow(1L, 0L, 3L), alpha)
            | _ -> images.alias()
        result.MoveToOuterDisposeScope()
