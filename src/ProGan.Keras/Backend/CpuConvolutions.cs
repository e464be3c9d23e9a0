using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Backend;

/// <summary>
/// Checks, once per process, that libtorch's CPU convolutions (oneDNN's JIT kernels) compute the right values and
/// gradients on this CPU, and sends them to libtorch's own reference path where they do not.
/// </summary>
/// <remarks>
/// <para>
/// Seen on 2026-12-03 on a 2-core AMD EPYC VM (Zen 5: AVX-512 with BF16 and VP2INTERSECT; libtorch 2.10, oneDNN
/// 3.7.1): float32 convolutions whose channel counts are not multiples of oneDNN's 8- or 16-channel blocks gave wrong
/// input gradients (relative error 0.1–0.7 against float64, e.g. 4 → 5 channels, 3×3, 8×8), and with 17 input
/// channels wrong outputs, with every ISA oneDNN offers above SSE4.1 (<c>ONEDNN_MAX_CPU_ISA</c>); the same build was
/// right on the machines before. Training then diverges to a non-finite loss within a few steps. Nothing fails
/// loudly, so the library checks: <see cref="Apply"/> runs a few such convolutions (forward, input and weight
/// gradients, and one transposed convolution) in float32 against the same in float64, which never goes through
/// oneDNN, and where the worst relative error exceeds <see cref="Tolerance"/> it turns oneDNN off for the process
/// (<c>at::Context::setUserEnabledMkldnn(false)</c>, what <c>torch.backends.mkldnn.enabled = False</c> does in
/// PyTorch): convolutions then run as im2col and matrix products, right, and slower. The check costs a few
/// milliseconds at start-up.
/// </para>
/// <para>
/// NNPACK is turned off in every process: libtorch only reaches it for a float32 convolution that oneDNN declines
/// (float64, or oneDNN off), and on CPUs its start-up does not recognise it prints a warning at every such call.
/// </para>
/// <para>
/// <c>PROGAN_ONEDNN</c> overrides the check: <c>auto</c> (the default), <c>on</c> (keep oneDNN unchecked), <c>off</c>.
/// </para>
/// </remarks>
public static class CpuConvolutions
{
    /// <summary>Worst relative error (max |Δ| ÷ max |reference|) of float32 against float64 that counts as right.</summary>
    public const double Tolerance = 1e-4;

    /// <summary>Whether libtorch's CPU convolutions go through oneDNN in this process.</summary>
    public static bool OneDnn
    {
        get
        {
            TorchBackend.Initialize();
            return Native.UserEnabledMkldnn(Native.GlobalContext());
        }
    }

    /// <summary>
    /// Null where oneDNN is in use; otherwise one line saying why it is not (the failed check's figures, or
    /// <c>PROGAN_ONEDNN=off</c>), for a program's banner.
    /// </summary>
    public static string? Notice { get; private set; }

    /// <summary>The worst relative error of the check with oneDNN as it is now set (on or off).</summary>
    public static double WorstError()
    {
        TorchBackend.Initialize();
        return LibTorchError();
    }

    private static double LibTorchError() => WorstErrorOf((x, w, padding) => nn.functional.conv2d(x, w, padding: [padding, padding]),
        (x, w) => nn.functional.conv_transpose2d(x, w, strides: [2, 2], padding: [1, 1]));

    /// <summary>
    /// The worst relative error, against float64, of float32 values, input gradients and weight gradients of
    /// <paramref name="conv"/> (a "same" convolution given its padding) at channel counts oneDNN blocks unevenly, and
    /// of <paramref name="transposed"/> (stride 2, padding 1, a 4×4 kernel).
    /// </summary>
    public static double WorstError(Func<Tensor, Tensor, long, Tensor> conv, Func<Tensor, Tensor, Tensor> transposed)
    {
        TorchBackend.Initialize();
        return WorstErrorOf(conv, transposed);
    }

    private static double WorstErrorOf(Func<Tensor, Tensor, long, Tensor> conv, Func<Tensor, Tensor, Tensor> transposed)
    {
        using var scope = NewDisposeScope();
        using var noNnpack = new NnpackOff();
        double worst = 0;
        // (batch, in channels, out channels, kernel, side): the failures seen, and a block-aligned control.
        foreach (var (n, ci, co, k, side) in new[] { (2, 4, 5, 3, 8), (2, 17, 16, 3, 8), (2, 16, 8, 3, 8), (2, 64, 5, 3, 8), (2, 16, 16, 3, 8) })
        {
            worst = Math.Max(worst, Compare(ScalarType.Float32, ScalarType.Float64, n, ci, co, k, side,
                (x, w) => conv(x, w, k / 2)));
        }
        return Math.Max(worst, Compare(ScalarType.Float32, ScalarType.Float64, 2, 5, 5, 4, 8, transposed));
    }

    /// <summary>
    /// Reads <c>PROGAN_ONEDNN</c>, turns NNPACK off, runs the check and turns oneDNN off where it fails. Called once by
    /// <see cref="TorchBackend.Initialize"/>.
    /// </summary>
    internal static void Apply()
    {
        IntPtr context;
        try { context = Native.GlobalContext(); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return; // a libtorch without these exports (another platform's build): left as it is
        }
        Native.SetUserEnabledNnpack(context, false);
        string setting = (Environment.GetEnvironmentVariable("PROGAN_ONEDNN") ?? "").Trim().ToLowerInvariant();
        switch (setting)
        {
            case "on":
                return;
            case "off":
                Native.SetUserEnabledMkldnn(context, false);
                Notice = "convolutions on libtorch's reference path (PROGAN_ONEDNN=off)";
                return;
            case "" or "auto":
                break;
            default:
                throw new ArgumentException($"PROGAN_ONEDNN='{setting}' is not a setting; use auto (the default), on or off.");
        }
        if (!Native.UserEnabledMkldnn(context)) return;
        double error = LibTorchError();
        if (error <= Tolerance) return;
        Native.SetUserEnabledMkldnn(context, false);
        double without = LibTorchError();
        Notice = without <= Tolerance
            ? $"convolutions on libtorch's reference path, slower: oneDNN's were wrong on this CPU (relative error {error:G2} against float64; PROGAN_ONEDNN=on keeps them)"
            : $"convolutions are wrong on this CPU with and without oneDNN (relative error {error:G2} and {without:G2} against float64)";
    }

    private static double Compare(ScalarType type, ScalarType reference, int n, int ci, int co, int k, int side, Func<Tensor, Tensor, Tensor> f)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(17UL);
        var x64 = randn([n, ci, side, side], dtype: reference, generator: generator);
        var w64 = randn([co, ci, k, k], dtype: reference, generator: generator);
        var (y, dx, dw) = ValueAndGradients(f, x64.to(type), w64.to(type), generator, reference);
        var (y64, dx64, dw64) = ValueAndGradients(f, x64, w64, generator, reference);
        return new[] { (y, y64), (dx, dx64), (dw, dw64) }.Max(pair =>
        {
            double scale = pair.Item2.abs().max().item<double>();
            return pair.Item1.to(reference).sub(pair.Item2).abs().max().item<double>() / Math.Max(scale, 1e-30);
        });
    }

    /// <summary>f(x, w), and the gradients of Σ f(x, w)·g for a fixed random g, with respect to x and w.</summary>
    private static (Tensor y, Tensor dx, Tensor dw) ValueAndGradients(Func<Tensor, Tensor, Tensor> f, Tensor x, Tensor w,
        Generator generator, ScalarType reference)
    {
        using var enabled = enable_grad();
        var xg = x.detach().requires_grad_(true);
        var wg = w.detach().requires_grad_(true);
        var y = f(xg, wg);
        var g = randn(y.shape, dtype: reference, generator: new Generator(23UL)).to(y.dtype);
        var grads = torch.autograd.grad([(y * g).sum()], [xg, wg]);
        return (y.detach(), grads[0], grads[1]);
    }

    /// <summary>NNPACK off for a scope (it stays off after <see cref="Apply"/>; this only matters before it).</summary>
    private readonly struct NnpackOff : IDisposable
    {
        private readonly bool before;
        public NnpackOff()
        {
            before = Native.UserEnabledNnpack(Native.GlobalContext());
            Native.SetUserEnabledNnpack(Native.GlobalContext(), false);
        }
        public void Dispose() => Native.SetUserEnabledNnpack(Native.GlobalContext(), before);
    }

    /// <summary>libtorch's global context (<c>at::globalContext()</c>) and its backend switches, by exported symbol.</summary>
    private static class Native
    {
        [DllImport("libtorch_cpu", EntryPoint = "_ZN2at13globalContextEv")]
        public static extern IntPtr GlobalContext();

        [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledMkldnnEb")]
        public static extern void SetUserEnabledMkldnn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

        [DllImport("libtorch_cpu", EntryPoint = "_ZNK2at7Context17userEnabledMkldnnEv")]
        [return: MarshalAs(UnmanagedType.U1)]
        public static extern bool UserEnabledMkldnn(IntPtr context);

        [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledNNPACKEb")]
        public static extern void SetUserEnabledNnpack(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

        [DllImport("libtorch_cpu", EntryPoint = "_ZNK2at7Context17userEnabledNNPACKEv")]
        [return: MarshalAs(UnmanagedType.U1)]
        public static extern bool UserEnabledNnpack(IntPtr context);
    }
}
