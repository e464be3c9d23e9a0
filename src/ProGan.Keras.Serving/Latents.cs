using ProGan.Keras.Backend;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Serving;

/// <summary>
/// The latents a seed stands for, and spherical interpolation between them. Every sampler of this library draws
/// latents this way, so a seed gives the same images through <c>generate.fsx</c>, <see cref="TrainedGenerator"/> and
/// (fed the same latents) an exported ONNX model.
/// </summary>
public static class Latents
{
    /// <summary>Latents drawn, and images generated, at once.</summary>
    public const int BatchSize = 64;

    /// <summary>
    /// <paramref name="count"/> latents of <paramref name="seed"/>, <c>[n, latentSize]</c> at a time: one
    /// <c>torch.Generator(seed)</c> on the CPU, N(0, I), drawn <see cref="BatchSize"/> rows at a time (the draws depend
    /// on how many rows are drawn at once, so this is part of what a seed means).
    /// </summary>
    public static IEnumerable<Tensor> Batches(int latentSize, int seed, int count) => Batches(latentSize, unchecked((ulong)seed), count);

    /// <summary>The latents of a 64-bit seed (a negative <see cref="int"/> seed is its two's complement).</summary>
    public static IEnumerable<Tensor> Batches(int latentSize, ulong seed, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(latentSize, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        using var generator = new torch.Generator(seed);
        for (int first = 0; first < count; first += BatchSize)
            yield return randn([Math.Min(BatchSize, count - first), latentSize], generator: generator);
    }

    /// <summary>All <paramref name="count"/> latents of <paramref name="seed"/> at once, <c>[count, latentSize]</c>.</summary>
    public static Tensor FromSeed(int latentSize, int seed, int count) => FromSeed(latentSize, unchecked((ulong)seed), count);

    /// <summary>All <paramref name="count"/> latents of a 64-bit seed at once.</summary>
    public static Tensor FromSeed(int latentSize, ulong seed, int count)
    {
        var batches = Batches(latentSize, seed, count).ToArray();
        try { return batches.Length == 1 ? batches[0].alias() : cat(batches, 0); }
        finally { foreach (var b in batches) b.Dispose(); }
    }

    /// <summary>
    /// Spherical interpolation between two latents on the sphere of radius √d that the generator's first layer
    /// normalises latents onto (pixel norm of z), so every point along the way is a typical latent.
    /// </summary>
    public static Tensor Slerp(Tensor a, Tensor b, double t)
    {
        using var scope = NewDisposeScope();
        double d = a.shape[^1];
        var ua = a / a.Squared().sum().sqrt();
        var ub = b / b.Squared().sum().sqrt();
        double omega = Math.Acos(Math.Clamp((double)(ua * ub).sum().item<float>(), -1.0, 1.0));
        var result = omega < 1e-6
            ? lerp(ua, ub, tensor(t))
            : (ua * tensor(Math.Sin((1.0 - t) * omega) / Math.Sin(omega))).Plus(ub * tensor(Math.Sin(t * omega) / Math.Sin(omega)));
        return (result * tensor(Math.Sqrt(d))).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The latents at <paramref name="indices"/> (default: all) of <paramref name="steps"/> points from seed A's first
    /// latent to seed B's, evenly spaced in angle: <c>[indices, latentSize]</c>.
    /// </summary>
    public static Tensor Interpolation(int latentSize, int seedA, int seedB, int steps, IEnumerable<int>? indices = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        using var a = FromSeed(latentSize, seedA, 1);
        using var b = FromSeed(latentSize, seedB, 1);
        var points = (indices ?? Enumerable.Range(0, steps)).Select(i => Slerp(a, b, (double)i / Math.Max(1, steps - 1))).ToArray();
        try { return cat(points, 0); }
        finally { foreach (var p in points) p.Dispose(); }
    }
}
