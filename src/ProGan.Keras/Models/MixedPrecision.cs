using ProGan.Keras.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Models;

/// <summary>
/// A model that can compute in a narrower floating-point type than its parameters: mixed precision (Micikevicius et
/// al. 2018), as Keras's <c>mixed_bfloat16</c> policy. The parameters, their gradients and the optimiser's state stay
/// float32; the model casts its input to <see cref="ComputeType"/>, every weight-scaled layer casts its scaled weight
/// to the type of the activations it receives (<see cref="ComputeCast"/>), and the model returns its input's type
/// (float32 in training). Every layer keeps the activations' type: a float32 parameter added to bfloat16 activations
/// would promote the rest of the network to float32, silently.
/// </summary>
public interface IMixedPrecisionModel
{
    /// <summary>The type the model's activations are computed in: float32 (default) or bfloat16.</summary>
    ScalarType ComputeType { get; set; }

    /// <summary>
    /// Whether the model lays its activations out channels-last (NHWC, <see cref="ChannelsLast"/>), where oneDNN's
    /// CPU convolutions run without reordering; false (NCHW) by default. Inputs and outputs keep their layout.
    /// </summary>
    bool ChannelsLast { get; set; }
}

/// <summary>The compute types a <see cref="IMixedPrecisionModel"/> offers, and the casts at its edges.</summary>
public static class MixedPrecision
{
    /// <summary>
    /// The compute types: float32, and bfloat16 — float32's exponent range with an 8-bit significand, so it needs no
    /// loss scaling (float16 would, for a GAN's gradient penalties), and CPUs with AVX512-BF16 or AMX and recent GPUs
    /// run its convolutions about twice as fast.
    /// </summary>
    public static readonly IReadOnlyList<ScalarType> ComputeTypes = [ScalarType.Float32, ScalarType.BFloat16];

    /// <summary>The name <c>--precision</c> and config.json use for a compute type ("float32", "bfloat16").</summary>
    public static string Name(ScalarType type) => type switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        _ => throw Unsupported(type),
    };

    /// <summary>The compute type of a name from <see cref="Name"/>, or null.</summary>
    public static ScalarType? TryParse(string name) => name switch
    {
        "float32" => ScalarType.Float32,
        "bfloat16" => ScalarType.BFloat16,
        _ => null,
    };

    /// <summary>Returns <paramref name="type"/> if it is one of <see cref="ComputeTypes"/>.</summary>
    /// <exception cref="ArgumentException">Any other type.</exception>
    public static ScalarType Validate(ScalarType type) => ComputeTypes.Contains(type) ? type : throw Unsupported(type);

    /// <summary>
    /// A model's forward pass in <paramref name="computeType"/>: <paramref name="compute"/> of <paramref name="x"/>
    /// cast to it, the result cast back to <paramref name="x"/>'s type (no casts where they are the same).
    /// </summary>
    /// <param name="x">The model's input.</param>
    /// <param name="computeType">The model's <see cref="IMixedPrecisionModel.ComputeType"/>.</param>
    /// <param name="compute">The model's layers.</param>
    /// <param name="model">The model's name, for the error.</param>
    /// <param name="argument">The input's name, for the error.</param>
    /// <exception cref="ArgumentException">An integer or boolean input.</exception>
    public static Tensor Forward(Tensor x, ScalarType computeType, Func<Tensor, Tensor> compute, string model, string argument)
    {
        if (!torch.is_floating_point(x))
            throw new ArgumentException($"{model} expects floating-point input; got {x.dtype}. Convert it first (for 8-bit images: x.to(float32) / 127.5 - 1).", argument);
        if (x.dtype == computeType) return compute(x);
        using var narrow = x.to(computeType);
        using var result = compute(narrow);
        return result.to(x.dtype);
    }

    /// <summary>
    /// The CPU's features that give bfloat16 its own arithmetic — AVX512-BF16 and AMX-BF16 on x86-64, BF16 on Arm —
    /// as Linux lists them in /proc/cpuinfo (<c>avx512_bf16</c>, <c>amx_bf16</c>, <c>bf16</c>); oneDNN runs bfloat16
    /// convolutions faster than float32 only on these. Empty where the CPU has none, and where the list cannot be read
    /// (other systems): there bfloat16 is emulated, and slower.
    /// </summary>
    public static IReadOnlyList<string> CpuBFloat16Features()
    {
        try { return CpuBFloat16Features(File.ReadAllText("/proc/cpuinfo")); }
        catch (IOException) { return []; }
        catch (UnauthorizedAccessException) { return []; }
    }

    /// <summary>
    /// The bfloat16 features named on the <c>flags</c> (x86-64) or <c>Features</c> (Arm) lines of a /proc/cpuinfo
    /// text, each once, in the order <see cref="CpuBFloat16Features()"/> lists them.
    /// </summary>
    /// <param name="cpuinfo">The text of /proc/cpuinfo.</param>
    public static IReadOnlyList<string> CpuBFloat16Features(string cpuinfo)
    {
        var listed = new HashSet<string>();
        foreach (var line in cpuinfo.Split('\n'))
        {
            var colon = line.IndexOf(':');
            if (colon < 0) continue;
            var key = line[..colon].Trim();
            if (key != "flags" && key != "Features") continue;
            listed.UnionWith(line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        }
        return BFloat16Features.Where(listed.Contains).ToArray();
    }

    private static readonly string[] BFloat16Features = ["avx512_bf16", "amx_bf16", "bf16"];

    private static ArgumentException Unsupported(ScalarType type) => new(
        $"Compute type {type} is not supported; use float32 or bfloat16 (float16 would need loss scaling).", nameof(type));
}
