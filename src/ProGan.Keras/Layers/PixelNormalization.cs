using ProGan.Keras.Backend;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Layers;

/// <summary>
/// Pixelwise feature vector normalization (Karras et al. 2018, §4.2):
/// <c>b[x,y] = a[x,y] / sqrt(mean over channels of a[x,y]² + ε)</c>, applied independently at every pixel of an
/// NCHW tensor (or to every row of an <c>[N, C]</c> tensor, such as the latent vector).
/// </summary>
/// <remarks>Used after every convolution of the generator to keep signal magnitudes from escalating.</remarks>
public sealed class PixelNormalization : nn.Module<Tensor, Tensor>, ILayerConfig
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, object> GetConfig() => new Dictionary<string, object> { ["epsilon"] = Epsilon };

    /// <summary>Creates the layer.</summary>
    /// <param name="epsilon">ε inside the square root (1e-8 in the paper).</param>
    public PixelNormalization(double epsilon = 1e-8) : base(nameof(PixelNormalization))
    {
        if (!(epsilon >= 0) || double.IsInfinity(epsilon))
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "epsilon must be a finite value ≥ 0.");
        Epsilon = epsilon;
    }

    /// <summary>ε inside the square root.</summary>
    public double Epsilon { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        if (x.dim() < 2)
            throw new ArgumentException($"PixelNormalization expects [N, C, ...] input; got shape [{string.Join(", ", x.shape)}].", nameof(x));
        return x * x.Squared().mean([1], keepdim: true).PlusInPlace(Scalars.Of(Epsilon)).rsqrt_();
    }
}
