using static TorchSharp.torch;

namespace ProGan.Keras.Layers;

/// <summary>
/// The cast of mixed precision (Micikevicius et al. 2018, §3.1, "FP32 master copy of weights"): the parameters stay
/// float32, and a layer casts what it applies to its input (its scaled weight, its bias) to the type of the
/// activations it receives, <c>cast(p, t) = p</c> if p's type is t, else p rounded to t; the gradient flows back to p in
/// p's own type. A layer thus returns its input's type: a float32 bias added to bfloat16 activations would promote the
/// rest of the network to float32, silently.
/// </summary>
public static class ComputeCast
{
    /// <summary>
    /// <paramref name="x"/> in <paramref name="type"/>: a new tensor (the caller disposes it; an alias of
    /// <paramref name="x"/> where the type is already <paramref name="type"/>) whose gradient flows back to
    /// <paramref name="x"/> in <paramref name="x"/>'s own type.
    /// </summary>
    public static Tensor To(Tensor x, ScalarType type) => x.dtype == type ? x.alias() : x.to(type);

    /// <summary>
    /// <c>f(x)</c>, computed in float32 and rounded back to <paramref name="x"/>'s type once where <paramref name="x"/> is
    /// reduced precision (bfloat16, float16); otherwise <c>f(x)</c> as it is. For operations whose reduced-precision
    /// CPU kernels are slower than float32's with both casts; the gradient flows back in <paramref name="x"/>'s type.
    /// </summary>
    public static Tensor ThroughFloat32(Tensor x, Func<Tensor, Tensor> f)
    {
        if (x.dtype is not (ScalarType.BFloat16 or ScalarType.Float16)) return f(x);
        using var wide = x.to(ScalarType.Float32);
        using var y = f(wide);
        return y.to(x.dtype);
    }
}
