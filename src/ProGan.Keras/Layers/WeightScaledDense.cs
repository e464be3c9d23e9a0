using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ProGan.Keras.Layers;

/// <summary>
/// A fully connected layer with equalized learning rate (Karras et al. 2018, §4.1): <c>x·(c·w)ᵀ + b</c> with
/// w ~ N(0, 1), c = gain / sqrt(in_features), b initialised to zero and not scaled. Inputs with more than two
/// dimensions are flattened after the batch dimension, as a Keras <c>Flatten</c> + <c>Dense</c> would.
/// </summary>
public sealed class WeightScaledDense : nn.Module<Tensor, Tensor>, ILayerConfig
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, object> GetConfig() => new Dictionary<string, object>
    {
        ["inFeatures"] = InFeatures, ["outFeatures"] = OutFeatures, ["gain"] = Gain, ["useBias"] = UseBias,
    };

#pragma warning disable IDE1006
    private readonly Parameter weight;
    private readonly Parameter? bias;
    private readonly WeightScaling scaling;
#pragma warning restore IDE1006

    /// <summary>Creates the layer.</summary>
    /// <param name="inFeatures">Input features (after flattening).</param>
    /// <param name="outFeatures">Output features.</param>
    /// <param name="gain">Gain of the He constant (√2 by default; √2/4 for the generator's first layer, 1 for D's output).</param>
    /// <param name="useBias">Whether to add a (zero-initialised, unscaled) bias.</param>
    public WeightScaledDense(long inFeatures, long outFeatures, double gain = WeightScaling.DefaultGain, bool useBias = true)
        : base(nameof(WeightScaledDense))
    {
        if (inFeatures < 1) throw new ArgumentOutOfRangeException(nameof(inFeatures), inFeatures, "inFeatures must be ≥ 1.");
        if (outFeatures < 1) throw new ArgumentOutOfRangeException(nameof(outFeatures), outFeatures, "outFeatures must be ≥ 1.");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        weight = WeightScaling.NewWeight(outFeatures, inFeatures);
        bias = useBias ? new Parameter(torch.zeros(outFeatures)) : null;
        scaling = new WeightScaling(inFeatures, gain);
        RegisterComponents();
    }

    /// <summary>Input features.</summary>
    public long InFeatures { get; }
    /// <summary>Output features.</summary>
    public long OutFeatures { get; }
    /// <summary>The gain of the He constant.</summary>
    public double Gain => scaling.Gain;
    /// <summary>Whether the layer adds a bias.</summary>
    public bool UseBias => bias is not null;
    /// <summary>The stored, unscaled N(0, 1) weight <c>[out, in]</c>.</summary>
    public Parameter Weight => weight;
    /// <summary>The bias, or null.</summary>
    public Parameter? Bias => bias;
    /// <summary>The run-time scaling.</summary>
    public WeightScaling Scaling => scaling;

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        using var flat = x.dim() > 2 ? x.flatten(1) : x.alias();
        if (flat.shape[1] != InFeatures)
            throw new ArgumentException($"WeightScaledDense expects {InFeatures} input features; got shape [{string.Join(", ", x.shape)}].", nameof(x));
        using var scaledWeight = scaling.call(weight);
        using var scaled = ComputeCast.To(scaledWeight, x.dtype); // as WeightScaledConv2D: the activations' type
        using var b = bias is null ? null : ComputeCast.To(bias, x.dtype);
        return nn.functional.linear(flat, scaled, b);
    }
}
