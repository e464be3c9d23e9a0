using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Layers;

/// <summary>
/// The fade-in of a new resolution (Karras et al. 2018, §3, Figure 2): <c>(1 − α)·old + α·new</c>.
/// </summary>
/// <remarks>
/// α is a plain, non-trainable value of the layer that the trainer sets as images are shown (0 = only the old,
/// upsampled/downsampled path; 1 = only the new block). Changing it needs no rebuild of any model.
/// </remarks>
public sealed class WeightedSum : nn.Module<Tensor, Tensor, Tensor>, ILayerConfig
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, object> GetConfig() => new Dictionary<string, object> { ["alpha"] = Alpha };

    private double alpha;

    /// <summary>Creates the layer.</summary>
    /// <param name="alpha">The initial blend weight α of the new path, in [0, 1].</param>
    public WeightedSum(double alpha = 0.0) : base(nameof(WeightedSum)) => Alpha = alpha;

    /// <summary>The blend weight α of the new path, in [0, 1].</summary>
    /// <exception cref="ArgumentOutOfRangeException">α is outside [0, 1] or not a number.</exception>
    public double Alpha
    {
        get => alpha;
        set => alpha = value is >= 0.0 and <= 1.0
            ? value
            : throw new ArgumentOutOfRangeException(nameof(Alpha), value, "alpha must lie in [0, 1].");
    }

    /// <summary>Blends <paramref name="old"/> and <paramref name="new"/>, which must have the same shape.</summary>
    public override Tensor forward(Tensor old, Tensor @new)
    {
        if (!old.shape.SequenceEqual(@new.shape))
            throw new ArgumentException(
                $"WeightedSum needs inputs of one shape; got old [{string.Join(", ", old.shape)}] and new [{string.Join(", ", @new.shape)}].");
        using var weight = torch.tensor(alpha); // a 0-d float64 tensor, disposed here rather than left to the finalizer
        return torch.lerp(old, @new, weight);
    }
}
