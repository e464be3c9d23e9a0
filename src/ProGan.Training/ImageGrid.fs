namespace ProGan.Training

open System
open StbImageWriteSharp
open TorchSharp
open ProGan.Keras.IO

/// Writing images in [−1, 1] (NCHW) as PNG files: one image, or a grid of many.
module ImageGrid =

    /// The factor that enlarges images of `resolution` to at least `minSize` pixels.
    let scaleFor (resolution: int) (minSize: int) = max 1 ((minSize + resolution - 1) / resolution)

    /// N images in [−1, 1] as 8-bit pixels, enlarged `scale` times by nearest neighbour: bytes [N, 3, H·scale, W·scale].
    let pixels (images: torch.Tensor) (scale: int) =
        use scope = torch.NewDisposeScope()
        let bytes =
            images.detach().cpu().to_type(torch.ScalarType.Float32)
                .add(scalar 1.0).mul_(scalar 127.5).round_().clamp_(scalar 0.0, scalar 255.0).to_type(torch.ScalarType.Byte)
        let bytes = if scale > 1 then bytes.repeat_interleave(int64 scale, 2L).repeat_interleave(int64 scale, 3L) else bytes
        bytes.MoveToOuterDisposeScope()

    /// Arranges N images into a grid with `columns` columns and a 1-pixel gap, each image enlarged by nearest
    /// neighbour to at least `minCell` pixels so that low resolutions stay visible. Returns bytes [H, W, 3].
    let compose (images: torch.Tensor) (columns: int) (minCell: int) =
        use scope = torch.NewDisposeScope()
        let n, r = int images.shape[0], int images.shape[2]
        let scale = scaleFor r minCell
        let cell = r * scale
        let columns = max 1 (min columns n)
        let rows = (n + columns - 1) / columns
        let gap = 1
        let pixels = pixels images scale
        let canvas = torch.full([| int64 (rows * (cell + gap) + gap); int64 (columns * (cell + gap) + gap); 3L |], scalar 32.0, dtype = torch.ScalarType.Byte)
        for i in 0 .. n - 1 do
            let top, left = gap + (i / columns) * (cell + gap), gap + (i % columns) * (cell + gap)
            canvas.narrow(0L, int64 top, int64 cell).narrow(1L, int64 left, int64 cell).copy_(pixels[int64 i].permute(1L, 2L, 0L)) |> ignore
        canvas.MoveToOuterDisposeScope()

    /// Writes bytes [H, W, 3] as a PNG, atomically.
    let writePng (path: string) (rgb: torch.Tensor) =
        let h, w = int rgb.shape[0], int rgb.shape[1]
        let data = rgb.contiguous().data<byte>().ToArray()
        AtomicFile.Write(path, fun stream -> ImageWriter().WritePng(data, w, h, ColorComponents.RedGreenBlue, stream))

    /// N images in [−1, 1] as one grid, about square: bytes [H, W, 3].
    let square (images: torch.Tensor) = compose images (int (ceil (sqrt (float images.shape[0])))) 64

    /// Writes N images in [−1, 1] as one grid PNG, about square.
    let save (path: string) (images: torch.Tensor) =
        use grid = square images
        writePng path grid

    /// Writes one image [3, r, r] in [−1, 1] as a PNG at its own size.
    let saveOne (path: string) (image: torch.Tensor) =
        use grid = compose (image.unsqueeze(0L)) 1 1
        use inner = grid.narrow(0L, 1L, image.shape[1]).narrow(1L, 1L, image.shape[2])
        writePng path inner
