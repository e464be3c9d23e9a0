using ProGan.Keras.Backend;
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

    /// <summary>
    /// Whether two minibatches of <paramref name="batch"/> samples can go through one pass as
    /// <see cref="JoinGroupwise"/> lays them out, with every group keeping its members: the batch must be a multiple of
    /// the group size (below it, the group size of the joined batch would differ from each half's own).
    /// </summary>
    public static bool CanJoinGroupwise(long batch, int groupSize) => batch >= groupSize && batch % groupSize == 0;

    /// <summary>
    /// Two minibatches <c>[N, …]</c> as one <c>[2N, …]</c> whose minibatch-stddev groups are each all from
    /// <paramref name="a"/> or all from <paramref name="b"/>, with the same members they have when each goes alone:
    /// the <c>[G, N/G]</c> group layouts of both are laid side by side, <c>[G, 2N/G]</c>. Undo on the outputs with
    /// <see cref="SplitGroupwise"/>. A network with this layer (of group size <paramref name="groupSize"/>) then
    /// scores both in one pass, equal to two passes.
    /// </summary>
    /// <exception cref="ArgumentException">The shapes differ, or <see cref="CanJoinGroupwise"/> is false.</exception>
    public static Tensor JoinGroupwise(Tensor a, Tensor b, int groupSize)
    {
        if (!a.shape.SequenceEqual(b.shape))
            throw new ArgumentException($"JoinGroupwise needs two minibatches of one shape; got [{string.Join(", ", a.shape)}] and [{string.Join(", ", b.shape)}].", nameof(b));
        if (!CanJoinGroupwise(a.shape[0], groupSize))
            throw new ArgumentException($"JoinGroupwise needs a minibatch that is a multiple of the group size {groupSize}; got {a.shape[0]}.", nameof(a));
        using var scope = NewDisposeScope();
        long[] inner = a.shape[1..];
        long[] grouped = [groupSize, a.shape[0] / groupSize, .. inner];
        long[] joined = [2 * a.shape[0], .. inner];
        return torch.cat([a.reshape(grouped), b.reshape(grouped)], 1).reshape(joined).MoveToOuterDisposeScope(); // [G, 2M, …] → [2N, …]
    }

    /// <summary>The outputs <c>[2N, …]</c> of a pass over <see cref="JoinGroupwise"/>'s batch, back as (a's, b's).</summary>
    public static (Tensor A, Tensor B) SplitGroupwise(Tensor joined, int groupSize)
    {
        long n = joined.shape[0] / 2, m = n / groupSize;
        long[] inner = joined.shape[1..];
        using var scope = NewDisposeScope();
        var grouped = joined.reshape([groupSize, 2 * m, .. inner]);       // [G, 2M, …]
        long[] back = [n, .. inner];
        var a = grouped.narrow(1, 0, m).reshape(back);
        var b = grouped.narrow(1, m, m).reshape(back);
        return (a.MoveToOuterDisposeScope(), b.MoveToOuterDisposeScope());
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        if (x.dim() != 4)
            throw new ArgumentException($"MinibatchStdev expects NCHW input; got shape [{string.Join(", ", x.shape)}].", nameof(x));
        long n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        int g = EffectiveGroupSize(n);
        using var scope = NewDisposeScope();
        // The statistic in float32 at least: a bfloat16 x − mean keeps 8 significant bits (mixed precision).
        var y = (x.dtype is ScalarType.BFloat16 or ScalarType.Float16 ? x.to(ScalarType.Float32) : x)
            .reshape(g, -1, c, h, w);                                   // [G, M, C, H, W]
        y = y - y.mean([0], keepdim: true);
        y = y.Squared().mean([0]).PlusInPlace(Scalars.Of(Epsilon)).sqrt_();     // [M, C, H, W]
        y = y.mean([1, 2, 3], keepdim: true);                           // [M, 1, 1, 1]
        y = y.repeat(g, 1, h, w).to(x.dtype);                           // [N, 1, H, W]
        return torch.cat([x, y], 1).MoveToOuterDisposeScope();
    }
}
