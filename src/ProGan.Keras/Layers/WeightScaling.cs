using ProGan.Keras.Backend;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ProGan.Keras.Layers;

/// <summary>
/// Equalized learning rate (Karras et al. 2018, §4.1): weights are stored as draws from N(0, 1) and multiplied at
/// run time by the He constant <c>c = gain / sqrt(fan_in)</c>, so Adam's per-parameter step sizes act equally on
/// every layer whatever its fan-in.
/// </summary>
/// <remarks>
/// This layer is the run-time scaling itself, written as a weight parametrization: <c>forward(w) = c·w</c>.
/// <see cref="WeightScaledConv2D"/> and <see cref="WeightScaledDense"/> own an N(0, 1) weight created by
/// <see cref="NewWeight"/> and pass it through this layer on every call.
/// </remarks>
public sealed class WeightScaling : nn.Module<Tensor, Tensor>, ILayerConfig
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, object> GetConfig() => new Dictionary<string, object> { ["fanIn"] = FanIn, ["gain"] = Gain };

    /// <summary>√2, the He gain for (leaky) ReLU layers used by the reference for hidden layers.</summary>
    /// <remarks>A constant (√2 to double precision) so that it can be every layer's default argument.</remarks>
    public const double DefaultGain = 1.4142135623730951;

    /// <summary>Creates the scaling for a layer of the given fan-in.</summary>
    /// <param name="fanIn">Inputs feeding one output: in_channels·k·k for a convolution, in_features for a dense layer.</param>
    /// <param name="gain">The gain (√2 by default; 1 for linear outputs such as toRGB).</param>
    public WeightScaling(long fanIn, double gain = DefaultGain) : base(nameof(WeightScaling))
    {
        if (fanIn < 1) throw new ArgumentOutOfRangeException(nameof(fanIn), fanIn, "fanIn must be ≥ 1.");
        if (!(gain > 0) || double.IsInfinity(gain)) throw new ArgumentOutOfRangeException(nameof(gain), gain, "gain must be a finite value > 0.");
        FanIn = fanIn;
        Gain = gain;
        Scale = gain / Math.Sqrt(fanIn);
    }

    /// <summary>The fan-in the scale is computed from.</summary>
    public long FanIn { get; }

    /// <summary>The gain.</summary>
    public double Gain { get; }

    /// <summary>The run-time multiplier c = gain / sqrt(fan_in).</summary>
    public double Scale { get; }

    /// <summary>Returns the scaled weight c·w.</summary>
    public override Tensor forward(Tensor weight) => weight.mul(Scalars.Of(Scale));

    /// <summary>A trainable weight of the given shape drawn from N(0, 1), as equalized learning rate requires.</summary>
    public static Parameter NewWeight(params long[] shape) => new(torch.randn(shape), requires_grad: true);
}
