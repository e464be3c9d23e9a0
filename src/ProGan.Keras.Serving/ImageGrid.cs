using ProGan.Keras.IO;
using StbImageWriteSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Serving;

/// <summary>Writing images in [−1, 1] (NCHW) as PNG files: one image, or a grid of many.</summary>
public static class ImageGrid
{
    /// <summary>The smallest side of a grid cell: lower resolutions are enlarged (nearest neighbour) to stay visible.</summary>
    public const int MinCell = 64;

    /// <summary>
    /// Arranges N images into a grid with <paramref name="columns"/> columns and a 1-pixel gap, each image enlarged by
    /// nearest neighbour to at least <paramref name="minCell"/> pixels. Returns bytes <c>[H, W, 3]</c> on the CPU.
    /// </summary>
    public static Tensor Compose(Tensor images, int columns, int minCell = MinCell)
    {
        using var scope = NewDisposeScope();
        int n = (int)images.shape[0], r = (int)images.shape[2];
        int scale = Math.Max(1, (minCell + r - 1) / r);
        int cell = r * scale;
        columns = Math.Max(1, Math.Min(columns, n));
        int rows = (n + columns - 1) / columns;
        const int gap = 1;
        var pixels = ToBytes(images);
        if (scale > 1) pixels = pixels.repeat_interleave(scale, 2).repeat_interleave(scale, 3);
        var canvas = full([rows * (cell + gap) + gap, columns * (cell + gap) + gap, 3], 32, dtype: ScalarType.Byte);
        for (int i = 0; i < n; i++)
        {
            int top = gap + i / columns * (cell + gap), left = gap + i % columns * (cell + gap);
            canvas.narrow(0, top, cell).narrow(1, left, cell).copy_(pixels[i].permute(1, 2, 0));
        }
        return canvas.MoveToOuterDisposeScope();
    }

    /// <summary>Images in [−1, 1] as bytes 0…255 (clamped, rounded), on the CPU: <c>[N, C, H, W]</c>.</summary>
    public static Tensor ToBytes(Tensor images)
    {
        using var scope = NewDisposeScope();
        return images.detach().cpu().to_type(ScalarType.Float32)
            .add(1.0).mul_(127.5).round_().clamp_(0.0, 255.0).to_type(ScalarType.Byte).MoveToOuterDisposeScope();
    }

    /// <summary>Writes bytes <c>[H, W, 3]</c> as a PNG, atomically.</summary>
    public static void WritePng(string path, Tensor rgb)
    {
        int h = (int)rgb.shape[0], w = (int)rgb.shape[1];
        using var contiguous = rgb.contiguous();
        byte[] data = contiguous.data<byte>().ToArray();
        AtomicFile.Write(path, stream => new ImageWriter().WritePng(data, w, h, ColorComponents.RedGreenBlue, stream));
    }

    /// <summary>The columns of an about square grid of <paramref name="count"/> images.</summary>
    public static int SquareColumns(int count) => (int)Math.Ceiling(Math.Sqrt(count));

    /// <summary>Writes N images in [−1, 1] as one grid PNG, about square.</summary>
    public static void Save(string path, Tensor images)
    {
        using var grid = Compose(images, SquareColumns((int)images.shape[0]));
        WritePng(path, grid);
    }

    /// <summary>Writes one image <c>[3, r, r]</c> in [−1, 1] as a PNG at its own size.</summary>
    public static void SaveOne(string path, Tensor image)
    {
        using var batch = image.unsqueeze(0);
        using var grid = Compose(batch, 1, 1);
        using var inner = grid.narrow(0, 1, image.shape[1]).narrow(1, 1, image.shape[2]);
        WritePng(path, inner);
    }
}
