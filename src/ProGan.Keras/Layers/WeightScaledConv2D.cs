using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ProGan.Keras.Layers;

/// <summary>
/// A 2-D convolution with equalized learning rate (Karras et al. 2018, §4.1): <c>conv(x, c·w) + b</c> with
/// w ~ N(0, 1), c = gain / sqrt(in_channels·k·k), b initialised to zero and not scaled. Stride 1, "same" padding.
/// </summary>
public sealed class WeightScaledConv2D : nn.Module<Tensor, Tensor>, ILayerConfig
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, object> GetConfig() => new Dictionary<string, object>
    {
        ["inChannels"] = InChannels, ["outChannels"] = OutChannels, ["kernelSize"] = KernelSize, ["gain"] = Gain, ["useBias"] = UseBias,
    };

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
    public WeightScaledConv2D(long inChannels, long outChannels, long kernelSize = 3, double gain = 1.4142135623730951, bool useBias = true)
        : base(nameof(WeightScaledConv2D))
    {
        if (inChannels < 1) throw new ArgumentOutOfRangeException(nameof(inChannels), inChannels, "inChannels must be ≥ 1.");
        if (outChannels < 1) throw new ArgumentOutOfRangeException(nameof(outChannels), outChannels, "outChannels must be ≥ 1.");
        if (kernelSize < 1 || kernelSize % 2 == 0)
            throw new ArgumentOutOfRangeException(nameof(kernelSize), kernelSize, "kernelSize must be odd and ≥ 1 (same padding).");
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
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
    /// <summary>Whether the layer adds a bias.</summary>
    public bool UseBias => bias is not null;
    /// <summary>The stored, unscaled N(0, 1) weight <c>[out, in, k, k]</c>.</summary>
    public Parameter Weight => weight;
    /// <summary>The bias, or null.</summary>
    public Parameter? Bias => bias;
    /// <summary>The run-time scaling.</summary>
    public WeightScaling Scaling => scaling;

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        using var scaled = scaling.call(weight);
        return nn.functional.conv2d(x, scaled, bias, padding: [KernelSize / 2, KernelSize / 2]);
    }
}
