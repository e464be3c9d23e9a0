using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Layers;

/// <summary>
/// Minibatch standard deviation (Karras et al. 2018, §3): appends one feature map holding, for each group of
/// samples, the standard deviation of every feature at every pixel over the group, averaged over features and pixels.
/// </summary>
/// <remarks>
/// As in the reference, the minibatch of N samples is split into groups of G = min(group size, N) by reshaping to
/// <c>[G, N/G, C, H, W]</c>, so members of one group are N/G apart and sample n belongs to group n mod (N/G).
/// Per group: subtract the group mean, average the squares over the group, <c>sqrt(· + ε)</c>, average over C, H, W.
/// The result is tiled to <c>[N, 1, H, W]</c> and concatenated, giving C + 1 channels. N must be divisible by G.
/// </remarks>
public sealed class MinibatchStdev : nn.Module<Tensor, Tensor>, ILayerConfig
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, object> GetConfig() =>
        new Dictionary<string, object> { ["groupSize"] = GroupSize, ["epsilon"] = Epsilon };

    /// <summary>Creates the layer.</summary>
    /// <param name="groupSize">Samples per group (4 in the reference); the whole batch when it is smaller.</param>
    /// <param name="epsilon">ε added to the variance before the square root.</param>
    public MinibatchStdev(int groupSize = 4, double epsilon = 1e-8) : base(nameof(MinibatchStdev))
    {
        if (groupSize < 1) throw new ArgumentOutOfRangeException(nameof(groupSize), groupSize, "groupSize must be ≥ 1.");
        if (!(epsilon >= 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "epsilon must be ≥ 0.");
        GroupSize = groupSize;
        Epsilon = epsilon;
    }

    /// <summary>Samples per group.</summary>
    public int GroupSize { get; }

    /// <summary>ε added to the variance before the square root.</summary>
    public double Epsilon { get; }

    /// <summary>The group size used for a minibatch of <paramref name="batch"/> samples, checked for divisibility.</summary>
    /// <exception cref="ArgumentException">The batch is not divisible by the group size.</exception>
    public int EffectiveGroupSize(long batch)
    {
        int g = (int)Math.Min(GroupSize, batch);
        if (batch % g != 0)
            throw new ArgumentException(
                $"MinibatchStdev: a minibatch of {batch} is not divisible by the group size {g}; " +
                "use a batch size that is a multiple of the group size (the reference asserts this too).");
        return g;
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        if (x.dim() != 4)
            throw new ArgumentException($"MinibatchStdev expects NCHW input; got shape [{string.Join(", ", x.shape)}].", nameof(x));
        long n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        int g = EffectiveGroupSize(n);
        using var scope = NewDisposeScope();
        var y = x.reshape(g, -1, c, h, w);                              // [G, M, C, H, W]
        y = y - y.mean([0], keepdim: true);
        y = y.square().mean([0]).add_(Epsilon).sqrt_();                 // [M, C, H, W]
        y = y.mean([1, 2, 3], keepdim: true);                           // [M, 1, 1, 1]
        y = y.repeat(g, 1, h, w);                                       // [N, 1, H, W]
        return torch.cat([x, y], 1).MoveToOuterDisposeScope();
    }
}
