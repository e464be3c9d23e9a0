using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Backend;

/// <summary>
/// Checks, once per process, that libtorch's CPU convolutions (oneDNN's JIT kernels) compute the right values and
/// gradients on this CPU, and routes them around oneDNN's faults where they do not.
/// </summary>
/// <remarks>
/// <para>
/// Seen on 2026-12-03 on a 2-core AMD EPYC VM (Zen 5: AVX-512 with BF16 and VP2INTERSECT; libtorch 2.10, oneDNN
/// 3.7.1): convolutions whose channel counts are not multiples of oneDNN's 16-channel block gave wrong input
/// gradients (relative error 0.1–0.7 against float64, e.g. 4 → 5 channels, 3×3, 8×8) and, with 17 or 65 input
/// channels, wrong outputs (D's minibatch-stddev convolution, 65 → 64: 6 %), with every ISA oneDNN offers above
/// SSE4.1 (<c>ONEDNN_MAX_CPU_ISA</c>); bfloat16 too. The same build was right on the machines before, and on that CPU
/// PyTorch 1.13 (oneDNN 2.6.3) is right through the same <c>jit:avx512_core</c> kernels and padded layouts. Training then
/// diverges to a non-finite loss within a few steps. Nothing fails loudly, so the library checks: <see cref="Apply"/>
/// runs a few such convolutions (plain, strided, depthwise, transposed; value, input and weight gradients) in float32
/// and bfloat16 against the same in float64, which never goes through oneDNN.
/// </para>
/// <para>
/// Where they are wrong, oneDNN is turned off for the process (<c>at::Context::setUserEnabledMkldnn(false)</c>, what
/// <c>torch.backends.mkldnn.enabled = False</c> does in PyTorch): every convolution, the library's or not, then runs as
/// im2col and matrix products, right and 1.6–2.6× slower (CPU preset steps, 8²–64²). The check also tries oneDNN with
/// each channel count zero-padded to a multiple of 16 (<see cref="AlignedConv2d"/>: the same sums and gradients),
/// which was right on that CPU; a program whose every convolution is the library's — the commands, the benchmark —
/// takes that path with <see cref="UseAlignedChannelsWhereRight"/>. The check costs about 0.12 s at start-up (0.25 s
/// where it finds a fault: it then checks both ways round it). <see cref="Notice"/> says in one line what was chosen and why.
/// </para>
/// <para>
/// NNPACK is turned off in every process: libtorch only reaches it for a float32 convolution that oneDNN declines
/// (float64, or oneDNN off), and on CPUs its start-up does not recognise it prints a warning at every such call.
/// </para>
/// <para>
/// <c>PROGAN_ONEDNN</c> overrides the check: <c>auto</c> (the default), <c>on</c> (oneDNN as it is, unchecked),
/// <c>aligned</c> (the library's convolutions padded, unchecked), <c>off</c>.
/// </para>
/// </remarks>
public static class CpuConvolutions
{
    /// <summary>Worst relative error (max |Δ| ÷ max |reference|) against float64 that counts as right, for float32.</summary>
    public const double Tolerance = 1e-4;

    /// <summary>The same for bfloat16, whose own rounding is about 4·10⁻³.</summary>
    public const double BFloat16Tolerance = 2e-2;

    /// <summary>The channel multiple <see cref="ConvolutionPath.OneDnnAlignedChannels"/> pads to (oneDNN's AVX-512 block).</summary>
    public const long ChannelAlignment = 16;

    /// <summary>How this process's CPU convolutions run; chosen by the start-up check.</summary>
    public static ConvolutionPath Path
    {
        get
        {
            TorchBackend.Initialize();
            return path;
        }
    }

    private static ConvolutionPath path = ConvolutionPath.OneDnn;

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
    /// Null where oneDNN is used as it is; otherwise one line saying how convolutions run and why (the failed check's
    /// figures, or <c>PROGAN_ONEDNN</c>), for a program's banner.
    /// </summary>
    public static string? Notice { get; private set; }

    /// <summary>
    /// <c>conv2d</c> (square stride and padding) as this process runs the library's convolutions: on
    /// <see cref="ConvolutionPath.OneDnnAlignedChannels"/> through <see cref="AlignedConv2d"/>, otherwise as it is.
    /// </summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null, long stride = 1, long padding = 0, long groups = 1) =>
        path == ConvolutionPath.OneDnnAlignedChannels
            ? AlignedConv2d(x, weight, bias, stride, padding, groups)
            : nn.functional.conv2d(x, weight, bias, strides: [stride, stride], padding: [padding, padding], groups: groups);

    /// <summary><c>conv_transpose2d</c> with a kernel of shape [in, out, k, k] (no bias), as <see cref="Conv2d"/>.</summary>
    public static Tensor ConvTranspose2d(Tensor x, Tensor weight, long stride, long padding) =>
        path == ConvolutionPath.OneDnnAlignedChannels
            ? AlignedConvTranspose2d(x, weight, stride, padding)
            : nn.functional.conv_transpose2d(x, weight, strides: [stride, stride], padding: [padding, padding]);

    /// <summary>
    /// <c>conv2d</c> with the channels of a 4-D CPU tensor zero-padded to a multiple of <see cref="ChannelAlignment"/>
    /// and the output cut back to its channels: the same sums (the added channels multiply zeros), and through the pad
    /// and the cut the same gradients. Plain convolutions and depthwise ones (groups = channels) are padded; other
    /// groupings, other devices and aligned counts go as they are.
    /// </summary>
    public static Tensor AlignedConv2d(Tensor x, Tensor weight, Tensor? bias = null, long stride = 1, long padding = 0, long groups = 1)
    {
        long ci = x.shape[1], co = weight.shape[0];
        long ci2 = Aligned(ci), co2 = Aligned(co);
        bool plain = groups == 1, depthwise = groups == ci && co == ci && groups > 1;
        if (x.device_type != DeviceType.CPU || x.dim() != 4 || (ci2 == ci && co2 == co) || !(plain || depthwise))
            return nn.functional.conv2d(x, weight, bias, strides: [stride, stride], padding: [padding, padding], groups: groups);
        using var xp = nn.functional.pad(x, [0, 0, 0, 0, 0, ci2 - ci]);
        using var wp = plain
            ? nn.functional.pad(weight, [0, 0, 0, 0, 0, ci2 - ci, 0, co2 - co])
            : nn.functional.pad(weight, [0, 0, 0, 0, 0, 0, 0, co2 - co]);
        using var bp = bias is null ? null : nn.functional.pad(bias, [0, co2 - co]);
        using var full = nn.functional.conv2d(xp, wp, bp, strides: [stride, stride], padding: [padding, padding],
            groups: plain ? 1 : ci2);
        return full.narrow(1, 0, co);
    }

    /// <summary><c>conv_transpose2d</c> (kernel [in, out, k, k], no bias) padded as <see cref="AlignedConv2d"/>.</summary>
    public static Tensor AlignedConvTranspose2d(Tensor x, Tensor weight, long stride, long padding)
    {
        long ci = x.shape[1], co = weight.shape[1];
        long ci2 = Aligned(ci), co2 = Aligned(co);
        if (x.device_type != DeviceType.CPU || x.dim() != 4 || (ci2 == ci && co2 == co))
            return nn.functional.conv_transpose2d(x, weight, strides: [stride, stride], padding: [padding, padding]);
        using var xp = nn.functional.pad(x, [0, 0, 0, 0, 0, ci2 - ci]);
        using var wp = nn.functional.pad(weight, [0, 0, 0, 0, 0, co2 - co, 0, ci2 - ci]);
        using var full = nn.functional.conv_transpose2d(xp, wp, strides: [stride, stride], padding: [padding, padding]);
        return full.narrow(1, 0, co);
    }

    /// <summary>
    /// For a program whose every convolution is the library's (the training, generation and evaluation commands,
    /// the benchmark): where the start-up check turned oneDNN off but found it right with aligned channels, turns it
    /// back on and pads the library's convolutions (<see cref="ConvolutionPath.OneDnnAlignedChannels"/>) — on the
    /// CPU it was seen on, steps 1.6–2.6× faster than the reference path. Convolutions called outside the library
    /// would then run on oneDNN unpadded, so a library that cannot know its caller leaves this to the program. Does
    /// nothing elsewhere. Returns <see cref="Path"/>.
    /// </summary>
    public static ConvolutionPath UseAlignedChannelsWhereRight()
    {
        TorchBackend.Initialize();
        lock (Gate)
        {
            if (path == ConvolutionPath.Reference && alignedRight is { } why)
            {
                Native.SetUserEnabledMkldnn(Native.GlobalContext(), true);
                path = ConvolutionPath.OneDnnAlignedChannels;
                Notice = why;
            }
            return path;
        }
    }

    private static readonly object Gate = new();

    /// <summary>The notice of the aligned path where the check found it right while oneDNN as it is was not.</summary>
    private static string? alignedRight;

    private static long Aligned(long channels) => (channels + ChannelAlignment - 1) / ChannelAlignment * ChannelAlignment;

    /// <summary>
    /// The worst relative error of the check in <paramref name="type"/> (float32 or bfloat16) through
    /// <see cref="Conv2d"/> and <see cref="ConvTranspose2d"/> as this process runs them.
    /// </summary>
    public static double WorstError(ScalarType type)
    {
        TorchBackend.Initialize();
        return LibraryError(type);
    }

    private static double LibraryError(ScalarType type) => WorstErrorOf(type,
        (x, w, stride, padding, groups) => Conv2d(x, w, null, stride, padding, groups),
        (x, w) => ConvTranspose2d(x, w, 2, 1));

    private static double AlignedError(ScalarType type) => WorstErrorOf(type,
        (x, w, stride, padding, groups) => AlignedConv2d(x, w, null, stride, padding, groups),
        (x, w) => AlignedConvTranspose2d(x, w, 2, 1));

    private static double LibTorchError(ScalarType type) => WorstErrorOf(type,
        (x, w, stride, padding, groups) => nn.functional.conv2d(x, w, strides: [stride, stride], padding: [padding, padding], groups: groups),
        (x, w) => nn.functional.conv_transpose2d(x, w, strides: [2, 2], padding: [1, 1]));

    /// <summary>
    /// The worst relative error, against float64, of values, input gradients and weight gradients computed in
    /// <paramref name="type"/> by <paramref name="conv"/> (x, w, stride, padding, groups) at channel counts oneDNN
    /// blocks unevenly — D's minibatch-stddev convolution (65 → 64) among them — and by <paramref name="transposed"/>
    /// (stride 2, padding 1, a 4×4 kernel of shape [in, out, k, k]). Depthwise cases (a 3-channel blur, the 2×2 box
    /// average) run in float32 only: the library computes them so.
    /// </summary>
    public static double WorstError(ScalarType type, Func<Tensor, Tensor, long, long, long, Tensor> conv, Func<Tensor, Tensor, Tensor> transposed)
    {
        TorchBackend.Initialize();
        return WorstErrorOf(type, conv, transposed);
    }

    private static double WorstErrorOf(ScalarType type, Func<Tensor, Tensor, long, long, long, Tensor> conv, Func<Tensor, Tensor, Tensor> transposed)
    {
        using var scope = NewDisposeScope();
        // (in channels, out channels, kernel, side, stride, groups): the failures seen, and a block-aligned control.
        var cases = new List<(int ci, int co, int k, int side, int stride, int groups)>
        {
            (4, 5, 3, 8, 1, 1), (17, 16, 3, 8, 1, 1), (16, 8, 3, 8, 1, 1), (64, 5, 3, 8, 1, 1), (65, 64, 3, 4, 1, 1),
            (32, 3, 1, 16, 1, 1), (9, 17, 4, 16, 2, 1), (16, 16, 3, 8, 1, 1),
        };
        if (type == ScalarType.Float32) cases.AddRange([(3, 3, 5, 16, 1, 3), (64, 64, 2, 16, 2, 64)]);
        double worst = 0;
        foreach (var (ci, co, k, side, stride, groups) in cases)
        {
            long padding = stride == 1 ? k / 2 : (k - 2) / 2;
            worst = Math.Max(worst, Compare(type, ci, co, ci / groups, k, side, (x, w) => conv(x, w, stride, padding, groups)));
        }
        return Math.Max(worst, Compare(type, 5, 5, 5, 4, 8, transposed));
    }

    /// <summary>
    /// Reads <c>PROGAN_ONEDNN</c>, turns NNPACK off, runs the check and picks <see cref="Path"/>. Called once by
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
            case "aligned":
                path = ConvolutionPath.OneDnnAlignedChannels; // checked neither: the user's choice
                Notice = $"oneDNN convolutions with channels zero-padded to multiples of {ChannelAlignment} (PROGAN_ONEDNN=aligned)";
                return;
            case "off":
                Native.SetUserEnabledMkldnn(context, false);
                path = ConvolutionPath.Reference;
                Notice = "convolutions on libtorch's reference path (PROGAN_ONEDNN=off)";
                return;
            case "" or "auto":
                break;
            default:
                throw new ArgumentException($"PROGAN_ONEDNN='{setting}' is not a setting; use auto (the default), on, aligned or off.");
        }
        if (!Native.UserEnabledMkldnn(context)) { path = ConvolutionPath.Reference; return; }
        (double f32, double bf16) = (LibTorchError(ScalarType.Float32), LibTorchError(ScalarType.BFloat16));
        if (f32 <= Tolerance && bf16 <= BFloat16Tolerance) return;
        string measured = $"relative error {f32:G2} in float32, {bf16:G2} in bfloat16, against float64";
        bool aligned = AlignedError(ScalarType.Float32) <= Tolerance && AlignedError(ScalarType.BFloat16) <= BFloat16Tolerance;
        if (aligned)
            alignedRight = $"oneDNN convolutions with channels zero-padded to multiples of {ChannelAlignment}: unpadded they were wrong on this CPU ({measured})";
        path = ConvolutionPath.Reference;
        Native.SetUserEnabledMkldnn(context, false);
        (double rf32, double rbf16) = (LibTorchError(ScalarType.Float32), LibTorchError(ScalarType.BFloat16));
        Notice = rf32 > Tolerance || rbf16 > BFloat16Tolerance
            ? $"convolutions are wrong on this CPU with and without oneDNN ({measured}; {rf32:G2} and {rbf16:G2} without)"
            : $"convolutions on libtorch's reference path, slower: oneDNN's were wrong on this CPU ({measured}; "
              + (aligned ? "PROGAN_ONEDNN=aligned pads the library's own convolutions instead, right here and faster)" : "right with padded channels neither)");
    }

    private static double Compare(ScalarType type, int ci, int co, int wci, int k, int side, Func<Tensor, Tensor, Tensor> f)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(17UL);
        var x64 = randn([2, ci, side, side], dtype: ScalarType.Float64, generator: generator);
        var w64 = randn([co, wci, k, k], dtype: ScalarType.Float64, generator: generator);
        var (y, dx, dw) = ValueAndGradients(f, x64.to(type), w64.to(type));
        var (y64, dx64, dw64) = ValueAndGradients(f, x64, w64);
        return new[] { (y, y64), (dx, dx64), (dw, dw64) }.Max(pair =>
        {
            double scale = pair.Item2.abs().max().item<double>();
            return pair.Item1.to(ScalarType.Float64).sub(pair.Item2).abs().max().item<double>() / Math.Max(scale, 1e-30);
        });
    }

    /// <summary>f(x, w), and the gradients of Σ f(x, w)·g for a fixed random g, with respect to x and w.</summary>
    private static (Tensor y, Tensor dx, Tensor dw) ValueAndGradients(Func<Tensor, Tensor, Tensor> f, Tensor x, Tensor w)
    {
        using var enabled = enable_grad();
        var xg = x.detach().requires_grad_(true);
        var wg = w.detach().requires_grad_(true);
        var y = f(xg, wg);
        var g = randn(y.shape, dtype: ScalarType.Float64, generator: new Generator(23UL)).to(y.dtype);
        var grads = torch.autograd.grad([(y * g).sum()], [xg, wg]);
        return (y.detach(), grads[0], grads[1]);
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
    }
}
