using ProGan.Keras.Backend;
using ProGan.Keras.IO;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Serving;

/// <summary>
/// Writing images in [−1, 1] (NCHW, 1, 3 or 4 channels) as PNG files: one image in its own channels, or a grid of many
/// shown as RGB (grayscale repeated, RGBA composited onto a checkerboard so that what is transparent shows as such).
/// </summary>
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
        images = ToRgb(images);
        int n = (int)images.shape[0], r = (int)images.shape[2];
        int scale = ScaleFor(r, minCell);
        int cell = r * scale;
        columns = Math.Max(1, Math.Min(columns, n));
        int rows = (n + columns - 1) / columns;
        const int gap = 1;
        var pixels = ToBytes(images);
        if (scale > 1) pixels = pixels.repeat_interleave(scale, 2).repeat_interleave(scale, 3);
        var canvas = full([rows * (cell + gap) + gap, columns * (cell + gap) + gap, 3], Scalars.OfInt(32), dtype: ScalarType.Byte);
        for (int i = 0; i < n; i++)
        {
            int top = gap + i / columns * (cell + gap), left = gap + i % columns * (cell + gap);
            canvas.narrow(0, top, cell).narrow(1, left, cell).copy_(pixels[i].permute(1, 2, 0));
        }
        return canvas.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Images in [−1, 1] <c>[N, C, H, W]</c> as RGB for a picture: one channel repeated three times; four channels
    /// (RGBA) composited onto a checkerboard of squares a quarter of the side, ±0.2 around mid-grey; three as they are.
    /// </summary>
    public static Tensor ToRgb(Tensor images)
    {
        using var scope = NewDisposeScope();
        var rgb = images.shape[1] switch
        {
            1 => images.expand(-1, 3, -1, -1).contiguous(),
            4 => Checkered(images),
            _ => images.alias(),
        };
        return rgb.MoveToOuterDisposeScope();

        static Tensor Checkered(Tensor rgba)
        {
            long h = rgba.shape[2], w = rgba.shape[3], square = Math.Max(1, h / 4);
            var y = Scalars.Arange(h, rgba.device).div(Scalars.OfInt(square), RoundingMode.floor).view(h, 1);
            var x = Scalars.Arange(w, rgba.device).div(Scalars.OfInt(square), RoundingMode.floor).view(1, w);
            var checker = y.Plus(x).remainder(Scalars.OfInt(2)).to_type(ScalarType.Float32).mul(Scalars.Of(0.4)).sub(Scalars.Of(0.2)).view(1, 1, h, w);
            var alpha = rgba.narrow(1, 3, 1).Plus(Scalars.Of(1.0)).div(Scalars.Of(2.0)).clamp(Scalars.Of(0.0), Scalars.Of(1.0));
            return lerp(checker.expand(rgba.shape[0], 3, h, w), rgba.narrow(1, 0, 3), alpha);
        }
    }

    /// <summary>The factor that enlarges images of <paramref name="resolution"/> to at least <paramref name="minSize"/> pixels.</summary>
    public static int ScaleFor(int resolution, int minSize) => Math.Max(1, (minSize + resolution - 1) / resolution);

    /// <summary>
    /// Images in [−1, 1] as RGB bytes (<see cref="ToRgb"/>) enlarged <paramref name="scale"/> times by nearest neighbour:
    /// <c>[N, 3, H·scale, W·scale]</c> on the CPU (video frames).
    /// </summary>
    public static Tensor Pixels(Tensor images, int scale)
    {
        using var scope = NewDisposeScope();
        var bytes = ToBytes(ToRgb(images));
        if (scale > 1) bytes = bytes.repeat_interleave(scale, 2).repeat_interleave(scale, 3);
        return bytes.MoveToOuterDisposeScope();
    }

    /// <summary>N images in [−1, 1] as one grid, about square: bytes <c>[H, W, 3]</c>.</summary>
    public static Tensor Square(Tensor images) => Compose(images, SquareColumns((int)images.shape[0]));

    /// <summary>Images in [−1, 1] as bytes 0…255 (clamped, rounded), on the CPU: <c>[N, C, H, W]</c>.</summary>
    public static Tensor ToBytes(Tensor images)
    {
        using var scope = NewDisposeScope();
        return images.detach().cpu().to_type(ScalarType.Float32)
            .Plus(Scalars.Of(1.0)).mul_(Scalars.Of(127.5)).round_().clamp_(Scalars.Of(0.0), Scalars.Of(255.0)).to_type(ScalarType.Byte).MoveToOuterDisposeScope();
    }

    /// <summary>Writes bytes <c>[H, W, C]</c> (C = 1 grey, 3 RGB, 4 RGBA) as a PNG, atomically.</summary>
    public static void WritePng(string path, Tensor pixels) => AtomicFile.Write(path, stream => EncodePng(pixels, stream));

    /// <summary>
    /// Encodes bytes <c>[H, W, C]</c> (C = 1 grey, 3 RGB, 4 RGBA) as an 8-bit PNG of that colour type (ImageSharp
    /// 2.1.13), so that a grey or RGBA image reads back in its own channels.
    /// </summary>
    public static void EncodePng(Tensor pixels, Stream stream)
    {
        int h = (int)pixels.shape[0], w = (int)pixels.shape[1];
        using var contiguous = pixels.contiguous();
        var data = contiguous.data<byte>().ToArray();
        switch (pixels.shape[2])
        {
            case 1: Encode(Image.LoadPixelData<L8>(data, w, h), PngColorType.Grayscale); break;
            case 4: Encode(Image.LoadPixelData<Rgba32>(data, w, h), PngColorType.RgbWithAlpha); break;
            default: Encode(Image.LoadPixelData<Rgb24>(data, w, h), PngColorType.Rgb); break;
        }

        void Encode(Image image, PngColorType colorType)
        {
            using (image) image.SaveAsPng(stream, new PngEncoder { ColorType = colorType, BitDepth = PngBitDepth.Bit8 });
        }
    }

    /// <summary>The columns of an about square grid of <paramref name="count"/> images.</summary>
    public static int SquareColumns(int count) => (int)Math.Ceiling(Math.Sqrt(count));

    /// <summary>Writes N images in [−1, 1] as one grid PNG, about square.</summary>
    public static void Save(string path, Tensor images)
    {
        using var grid = Compose(images, SquareColumns((int)images.shape[0]));
        WritePng(path, grid);
    }

    /// <summary>Writes one image <c>[C, r, r]</c> in [−1, 1] as a PNG at its own size, in its own channels.</summary>
    public static void SaveOne(string path, Tensor image)
    {
        using var scope = NewDisposeScope();
        using var batch = image.unsqueeze(0);
        WritePng(path, ToBytes(batch)[0].permute(1, 2, 0));
    }
}
