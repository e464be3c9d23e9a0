using System.Collections.Concurrent;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Backend;

/// <summary>
/// Scalars that stay alive while libtorch reads them: the one owner of every <see cref="Scalar"/> this code base hands
/// to native code.
/// </summary>
/// <remarks>
/// <para>TorchSharp 0.107 passes a <see cref="Scalar"/>'s native handle to libtorch and then no longer refers to the
/// managed object. A Scalar made on the fly — a <c>double</c> where a Scalar is taken (<c>x.mul(0.5)</c>,
/// <c>leaky_relu(x, 0.2)</c>, <c>x * 2.0</c>), and the <c>alpha = 1</c> TorchSharp itself makes in <c>x.add(y)</c>
/// and <c>x + y</c> — is then garbage from the JIT's point of view while the native call runs. A GC started by any other
/// thread (a prefetch, a progress display) can queue it, and the finalizer thread can delete the native
/// <c>c10::Scalar</c> before libtorch reads it. The freed memory's first word is then the allocator's free-list link,
/// so libtorch sees an unknown tag: <c>Expected false to be true</c> from <c>c10::Scalar::toFloat</c> (Scalar.h:140) or
/// <c>Unknown scalar type</c> from <c>c10::Scalar::type</c> — the two errors that stopped long training runs at
/// random. (A 4×8 <c>leaky_relu_(x, 0.2)</c> in a loop beside a thread that forces GCs fails within a second; with
/// <see cref="Of"/>'s Scalar it ran 27 million calls without a fault. TorchSharp pull requests 1434 and 1496 are open
/// on this.)</para>
/// <para>The rule here: a Scalar handed to native code is either a constant from <see cref="Of"/>, which lives as long
/// as the process, or a <c>using</c> variable that lives until the end of the call's scope. TorchSharp's additions make
/// an alpha = 1 of their own (<c>x.add(y)</c>, <c>x.add(c)</c>, <c>x + y</c>, <c>x + c</c>, <c>c - x</c>), and <c>x.square()</c> a 2,
/// so squares go through <see cref="Squared"/> and additions through <c>Plus</c> / <c>PlusInPlace</c>, which pass a kept 1 (<see cref="One"/>). <see cref="FinalizerAudit"/>
/// checks that a training step leaves no Scalar to the finalizer.</para>
/// </remarks>
public static class Scalars
{
    private static readonly ConcurrentDictionary<(double, ScalarType), Scalar> Constants = new();

    /// <summary>
    /// The Scalar holding <paramref name="value"/>, made once and kept for the life of the process (thread-safe; libtorch
    /// only reads it). For constants — slopes, gains, 0.5, 127.5 — not for values that change every step (those take a
    /// <c>using var s = value.ToScalar()</c>).
    /// </summary>
    public static Scalar Of(double value) => Constants.GetOrAdd((value, ScalarType.Float64), key => key.Item1.ToScalar());

    /// <summary>The integer Scalar holding <paramref name="value"/>, kept for the life of the process (for integer tensors).</summary>
    public static Scalar OfInt(long value) => Constants.GetOrAdd((value, ScalarType.Int64), key => ((long)key.Item1).ToScalar());

    /// <summary>1, the <c>alpha</c> of a plain addition to <paramref name="x"/> (an integer 1 for an integer tensor,
    /// which libtorch requires).</summary>
    public static Scalar One(Tensor x) => x.is_floating_point() || x.is_complex() ? Of(1.0) : OfInt(1);

    /// <summary><c>x + y</c>, without the temporary Scalar TorchSharp's <c>x.add(y)</c> and <c>x + y</c> make for alpha = 1.</summary>
    public static Tensor Plus(this Tensor x, Tensor y) => x.add(y, One(x));

    /// <summary><c>x²</c>, as TorchSharp's <c>x.square()</c> computes it (<c>pow(x, 2)</c>), without its temporary 2.</summary>
    public static Tensor Squared(this Tensor x) => x.pow(OfInt(2));

    /// <summary>
    /// 0, 1, …, <paramref name="count"/> − 1 as int64 on <paramref name="device"/>, without the temporary Scalars that
    /// TorchSharp's <c>arange(stop)</c> makes for the start, stop and step.
    /// </summary>
    public static Tensor Arange(long count, Device? device = null)
    {
        using var stop = count.ToScalar();
        return arange(OfInt(0), stop, OfInt(1), dtype: ScalarType.Int64, device: device);
    }

    /// <summary>In-place <c>x += y</c>, without the temporary Scalar of TorchSharp's <c>x.add_(y)</c>.</summary>
    public static Tensor PlusInPlace(this Tensor x, Tensor y) => x.add_(y, One(x));

    /// <summary><c>x + c</c> for a Scalar <paramref name="c"/> the caller keeps alive, without the temporary alpha = 1
    /// of TorchSharp's <c>x.add(c)</c> and <c>x + c</c>.</summary>
    public static Tensor Plus(this Tensor x, Scalar c) => x.add(c, One(x));

    /// <summary>In-place <c>x += c</c>, without the temporary alpha = 1 of TorchSharp's <c>x.add_(c)</c>.</summary>
    public static Tensor PlusInPlace(this Tensor x, Scalar c) => x.add_(c, One(x));
}
