using ProGan.Keras.Backend;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Layers;

/// <summary>
/// The two resolution changes of progressive growing (Karras et al. 2018, Figure 2 and Appendix A.1: "2×2 element
/// replication and average pooling"), as the reference's <c>upscale2d</c> and <c>downscale2d</c>, on NCHW tensors.
/// </summary>
public static class Resampling
{
    /// <summary>
    /// Nearest-neighbour ×2 upsampling (2×2 element replication): <c>y[n, c, i, j] = x[n, c, ⌊i/2⌋, ⌊j/2⌋]</c>.
    /// </summary>
    public static Tensor Upscale2D(Tensor x) => nn.functional.interpolate(x, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest);

    /// <summary>
    /// 2×2 box averaging (average pooling), halving the resolution:
    /// <c>y[n, c, i, j] = ¼ · Σ_{a, b ∈ {0, 1}} x[n, c, 2i + a, 2j + b]</c>; an odd last row or column is dropped, as
    /// <c>avg_pool2d</c> does.
    /// </summary>
    /// <remarks>
    /// Computed as a depthwise stride-2 convolution with a constant ¼ kernel, which equals <c>avg_pool2d(x, 2)</c> up
    /// to the order of the four-term sum (float rounding) and, through oneDNN, runs forward + backward about 2.7× faster
    /// on a 2-core CPU (32×128×64², 67 → 25 ms); the gradient penalty's double backward goes through it too. Input that
    /// is not 4-D goes to <c>avg_pool2d</c> itself.
    /// <para>
    /// Reduced-precision input on the CPU (bfloat16, float16: mixed precision) is averaged in float32 and rounded back
    /// to its type, <c>y = round(box(float32(x)))</c>: oneDNN has no fast reduced-precision depthwise kernel on a CPU
    /// without AMX, and the bfloat16 convolution costs about 2.7 ms forward + backward whatever its size
    /// (16×64×16² to 16×16×64²; 0.4–0.8 ms through float32, with both casts). The result is the float32 average
    /// rounded once, closer to the exact average than a sum in bfloat16; the gradient flows back in <c>x</c>'s type.
    /// </para>
    /// </remarks>
    public static Tensor Downscale2D(Tensor x)
    {
        if (x.dim() != 4) return nn.functional.avg_pool2d(x, [2, 2]);
        return x.device_type == DeviceType.CPU ? ComputeCast.ThroughFloat32(x, BoxAverage) : BoxAverage(x);
    }

    /// <summary>The 2×2 box average of a 4-D tensor as a depthwise stride-2 convolution with a constant ¼ kernel.</summary>
    private static Tensor BoxAverage(Tensor x)
    {
        using var box = torch.full([x.shape[1], 1, 2, 2], Scalars.Of(0.25), dtype: x.dtype, device: x.device);
        return CpuConvolutions.Conv2d(x, box, stride: 2, groups: x.shape[1]);
    }
}
