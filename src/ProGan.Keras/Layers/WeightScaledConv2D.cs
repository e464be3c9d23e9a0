using ProGan.Keras.Backend;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ProGan.Keras.Layers;

/// <summary>
/// A 2-D convolution with equalized learning rate (Karras et al. 2018, §4.1): <c>conv(x, c·w) + b</c> with
/// w ~ N(0, 1), c = gain / sqrt(in_channels·k·k), b initialised to zero and not scaled. Stride 1, "same" padding.
/// With <c>upscale</c> it computes <c>conv(upsample2x(x), c·w) + b</c> (nearest-neighbour ×2 first,
/// <see cref="Resampling.Upscale2D"/>), the generator's upsample-then-convolve, fused as the reference's
/// <c>upscale2d_conv2d</c> where that is faster. With <c>downscale</c> it computes <c>avgpool2x2(conv(x, c·w)) + b</c>
/// (<see cref="Resampling.Downscale2D"/>), the reference's <c>conv2d_downscale2d</c>: the discriminator's
/// convolve-then-downscale as one stride-2 convolution, with the bias added after the downscale.
/// </summary>
/// <remarks>
/// <para>
/// Fusing computes the same function (up to the order of float sums): each output pixel of a k×k convolution over a
/// nearest-upsampled image reads a ((k+1)/2)² neighbourhood of the low-resolution input (2×2 for k = 3), so the whole
/// operation is one stride-2 transposed convolution with a (k+1)×(k+1) kernel made by summing the four one-pixel
/// shifts of w (<see cref="UpscaleKernel"/>). It does (k+1)²/(4k²) of the multiply-adds (4/9 for k = 3) and never
/// builds the 4× larger upsampled tensor. On small inputs oneDNN's transposed convolution is slower than the plain
/// path, so the layer fuses from an input side of <see cref="FusedUpscaleMinInputSize"/>.
/// </para>
/// <para>
/// Downscaling is the mirror image: the average of a 2×2 block of a k×k "same" convolution reads a (k+1)×(k+1)
/// neighbourhood of the input, so it is one stride-2 convolution (padding k/2) with the same four-shift sum of w times
/// ¼ (<see cref="DownscaleKernel"/>), run at the output resolution: again (k+1)²/(4k²) of the multiply-adds, and no
/// full-resolution output is ever stored. On 8² inputs oneDNN's stride-2 convolution is slower than convolving then
/// pooling, so the layer fuses from an input side of <see cref="FusedDownscaleMinInputSize"/> and below it computes
/// the same function in two steps. Pooling is linear, so the bias may be added before or after it; what differs
/// between the reference's two discriminators is where the activation goes, and that is for the model's
/// discriminator block to decide.
/// </para>
/// </remarks>
public sealed class WeightScaledConv2D : nn.Module<Tensor, Tensor>, ILayerConfig
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, object> GetConfig() => new Dictionary<string, object>
    {
        ["inChannels"] = InChannels, ["outChannels"] = OutChannels, ["kernelSize"] = KernelSize, ["gain"] = Gain, ["useBias"] = UseBias,
        ["upscale"] = Upscale, ["downscale"] = Downscale,
    };

    /// <summary>
    /// The input side (height and width) from which <see cref="Upscale"/> takes the fused path: 16, i.e. outputs of
    /// 32² and more. Measured on a 2-core CPU, forward + backward of 128 channels, batch 16, fused against plain time:
    /// 0.43× at 32² out, 0.24× at 64² out, but 1.6× at 8² out; at 16² out (8² inputs) forward + backward was 0.8×
    /// while forward alone was 1.3×, and whole training steps showed no difference, so 8² inputs stay plain.
    /// </summary>
    public const long FusedUpscaleMinInputSize = 16;

    /// <summary>
    /// The input side (height and width) from which <see cref="Downscale"/> takes the fused path: 16, i.e. outputs of
    /// 8² and more. Measured on a 2-core CPU, forward + backward of conv, bias, LeakyReLU, batch 16, fused against
    /// convolve-then-pool time: 0.66× (128 channels) to 0.87× (512) at 16² inputs, 0.48× at 64², but 1.3× (32
    /// channels) to 1.9× (512) at 8² inputs.
    /// </summary>
    public const long FusedDownscaleMinInputSize = 16;

#pragma warning disable IDE1006 // TorchSharp names parameters after their state-dict keys.
    private readonly Parameter weight;
    private readonly Parameter? bias;
    private readonly WeightScaling scaling;
#pragma warning restore IDE1006

    /// <summary>Creates the layer.</summary>
    /// <param name="inChannels">Input channels.</param>
    /// <param name="outChannels">Output channels.</param>
    /// <param name="kernelSize">Square kernel size; odd, so that "same" padding is exact.</param>
    /// <param name="gain">Gain of the He constant (√2 by default; 1 for toRGB).</param>
    /// <param name="useBias">Whether to add a (zero-initialised, unscaled) bias.</param>
    /// <param name="upscale">Whether the input is first upsampled ×2 (nearest neighbour): output side 2× the input's.</param>
    /// <param name="downscale">Whether the convolution's output is 2×2-averaged before the bias is added (the
    /// reference's <c>conv2d_downscale2d</c>): output side half the input's.</param>
    public WeightScaledConv2D(long inChannels, long outChannels, long kernelSize = 3, double gain = WeightScaling.DefaultGain, bool useBias = true,
                              bool upscale = false, bool downscale = false)
        : base(nameof(WeightScaledConv2D))
    {
        if (upscale && downscale)
            throw new ArgumentException("A WeightScaledConv2D cannot both upscale and downscale; set one of upscale, downscale.", nameof(downscale));
        if (inChannels < 1) throw new ArgumentOutOfRangeException(nameof(inChannels), inChannels, "inChannels must be ≥ 1.");
        if (outChannels < 1) throw new ArgumentOutOfRangeException(nameof(outChannels), outChannels, "outChannels must be ≥ 1.");
        if (kernelSize < 1 || kernelSize % 2 == 0)
            throw new ArgumentOutOfRangeException(nameof(kernelSize), kernelSize, "kernelSize must be odd and ≥ 1 (same padding).");
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Upscale = upscale;
        Downscale = downscale;
        weight = WeightScaling.NewWeight(outChannels, inChannels, kernelSize, kernelSize);
        bias = useBias ? new Parameter(torch.zeros(outChannels)) : null;
        scaling = new WeightScaling(inChannels * kernelSize * kernelSize, gain);
        RegisterComponents();
    }

    /// <summary>Input channels.</summary>
    public long InChannels { get; }
    /// <summary>Output channels.</summary>
    public long OutChannels { get; }
    /// <summary>Square kernel size.</summary>
    public long KernelSize { get; }
    /// <summary>The gain of the He constant.</summary>
    public double Gain => scaling.Gain;
    /// <summary>Whether the input is upsampled ×2 (nearest neighbour) before the convolution.</summary>
    public bool Upscale { get; }
    /// <summary>Whether the output is 2×2-averaged (before the bias) after the convolution.</summary>
    public bool Downscale { get; }
    /// <summary>Whether the layer adds a bias.</summary>
    public bool UseBias => bias is not null;
    /// <summary>The stored, unscaled N(0, 1) weight <c>[out, in, k, k]</c>.</summary>
    public Parameter Weight => weight;
    /// <summary>The bias, or null.</summary>
    public Parameter? Bias => bias;
    /// <summary>The run-time scaling.</summary>
    public WeightScaling Scaling => scaling;

    /// <inheritdoc/>
    /// <remarks>
    /// The parameters are float32; they meet activations of the model's compute type (mixed precision,
    /// <see cref="ComputeCast"/>): the kernel, built in float32, and the bias are cast to <paramref name="x"/>'s type,
    /// and the result is of that type.
    /// </remarks>
    public override Tensor forward(Tensor x)
    {
        long pad = KernelSize / 2;
        using var scaled = scaling.call(weight);
        using var b = bias is null ? null : ComputeCast.To(bias, x.dtype);
        if (!Upscale && !Downscale)
        {
            using var w = KernelFor(x, ComputeCast.To(scaled, x.dtype));
            return CpuConvolutions.Conv2d(x, w, b, padding: pad);
        }
        if (x.dim() != 4)
            throw new ArgumentException(
                $"{(Upscale ? "An upscaling" : "A downscaling")} WeightScaledConv2D expects NCHW input; got shape [{string.Join(", ", x.shape)}].", nameof(x));
        if (Downscale && Math.Min(x.shape[2], x.shape[3]) < FusedDownscaleMinInputSize)
        {
            using var w = ComputeCast.To(scaled, x.dtype);
            using var full = CpuConvolutions.Conv2d(x, w, padding: pad);
            var pooled = Resampling.Downscale2D(full);
            if (b is null) return pooled;
            using (pooled)
            using (var perChannel = b.view(1, -1, 1, 1))
                return pooled.Plus(perChannel);
        }
        if (Downscale)
        {
            using var box = DownscaleKernel(scaled);
            using var w = KernelFor(x, ComputeCast.To(box, x.dtype));
            return CpuConvolutions.Conv2d(x, w, b, stride: 2, padding: pad);
        }
        if (Math.Min(x.shape[2], x.shape[3]) < FusedUpscaleMinInputSize)
        {
            using var w = ComputeCast.To(scaled, x.dtype);
            using var upsampled = Resampling.Upscale2D(x);
            return CpuConvolutions.Conv2d(upsampled, w, b, padding: pad);
        }
        using var kernel = UpscaleKernel(scaled);
        using var k = ComputeCast.To(kernel, x.dtype);
        // The bias is added after the transposed convolution, not passed to it: libtorch 2.10's CPU transposed
        // convolution reduces the bias gradient slowly in bfloat16. Forward + backward of 8 inputs of 32 channels at 32²
        // to 16 at 64²: 6.6 ms with the bias in the call, 3.0 added after it (2.5 without); 128 → 128 channels at 32²:
        // 51 against 37 ms. In float32 the two ways are level (docs/benchmark.md). The same sum and gradients, up to
        // one more rounding of the output in bfloat16.
        var y = CpuConvolutions.ConvTranspose2d(x, k, stride: 2, padding: pad);
        if (b is null) return y;
        using var biasMap = b.view(1, -1, 1, 1);
        return y.PlusInPlace(biasMap);
    }

    /// <summary>The kernel <paramref name="w"/> in <paramref name="x"/>'s layout: channels-last where the input is
    /// (<see cref="ChannelsLast"/>), so that oneDNN runs its NHWC kernels with no reorder; as it is otherwise.</summary>
    private static Tensor KernelFor(Tensor x, Tensor w)
    {
        if (!ChannelsLast.Is(x)) return w;
        using (w) return ChannelsLast.To(w);
    }

    /// <summary>
    /// The transposed-convolution kernel <c>[in, out, k+1, k+1]</c> that, with stride 2 and padding k/2, equals a
    /// k×k "same" convolution with <paramref name="w"/> <c>[out, in, k, k]</c> after nearest-neighbour ×2 upsampling:
    /// w zero-padded by one pixel, its four one-pixel shifts summed, flipped in both spatial axes (a transposed
    /// convolution scatters where a convolution gathers).
    /// </summary>
    public static Tensor UpscaleKernel(Tensor w)
    {
        using var sum = ShiftSum(w);
        using var flipped = sum.flip(2, 3);
        return flipped.transpose(0, 1);
    }

    /// <summary>
    /// The convolution kernel <c>[out, in, k+1, k+1]</c> that, with stride 2 and padding k/2, equals a k×k "same"
    /// convolution with <paramref name="w"/> <c>[out, in, k, k]</c> followed by 2×2 average pooling: w zero-padded by
    /// one pixel, its four one-pixel shifts summed, times ¼ (the reference's <c>conv2d_downscale2d</c>).
    /// </summary>
    public static Tensor DownscaleKernel(Tensor w) => ShiftSum(w).mul_(Scalars.Of(0.25));

    /// <summary>w <c>[out, in, k, k]</c> zero-padded by one pixel and its four one-pixel shifts summed: <c>[out, in, k+1, k+1]</c>.</summary>
    private static Tensor ShiftSum(Tensor w)
    {
        using var scope = NewDisposeScope();
        long k = w.shape[2] + 1;
        var p = nn.functional.pad(w, [1, 1, 1, 1]);
        var sum = p.narrow(2, 1, k).narrow(3, 1, k).Plus(p.narrow(2, 0, k).narrow(3, 1, k))
                .Plus(p.narrow(2, 1, k).narrow(3, 0, k)).Plus(p.narrow(2, 0, k).narrow(3, 0, k));
        return sum.MoveToOuterDisposeScope();
    }
}
