using ProGan.Keras.Models;
using TorchSharp.Modules;

namespace ProGan.Keras.Tests.Models;

/// <summary>
/// Mixed precision: a network set to compute in bfloat16 computes the float32 network's function to bfloat16's
/// rounding (8 significant bits: about 0.4 % per operation), keeps float32 parameters and gradients, and takes the
/// gradient penalty's double backward.
/// </summary>
public class MixedPrecisionTests
{
    // 32²: every path of WeightScaledConv2D (plain and fused upscale, plain and fused downscale), fading in at α = ½.
    private const int Resolution = 32;

    private static (ProgressiveGenerator G, ProgressiveDiscriminator D) Networks()
    {
        torch.manual_seed(5);
        var g = new ProgressiveGenerator(ModelTests.Tiny);
        var d = new ProgressiveDiscriminator(ModelTests.Tiny);
        g.SetAlpha(0.5);
        d.SetAlpha(0.5);
        return (g, d);
    }

    /// <summary>‖a − b‖ / ‖b‖.</summary>
    private static double RelativeError(Tensor a, Tensor b) => (a - b).norm().item<float>() / b.norm().item<float>();

    /// <summary>The gradients of a model's parameters as one float32 vector.</summary>
    private static Tensor Gradients(nn.Module network) =>
        torch.cat(network.parameters().Select(p => p.grad!.flatten()).ToArray()).to(ScalarType.Float32);

    [Fact]
    public void A_bfloat16_network_computes_the_float32_function_to_bfloat16_rounding()
    {
        var (g, d) = Networks();
        using var z = torch.randn(8, ModelTests.Tiny.LatentSize, generator: torch.manual_seed(6));
        using var images32 = g[Resolution].FadeIn!.call(z);
        using var scores32 = d[Resolution].FadeIn!.call(images32);
        g.ComputeType = ScalarType.BFloat16;
        d.ComputeType = ScalarType.BFloat16;
        using var images16 = g[Resolution].FadeIn!.call(z);
        using var scores16 = d[Resolution].FadeIn!.call(images32);

        Assert.Equal(ScalarType.Float32, images16.dtype);
        Assert.Equal(ScalarType.Float32, scores16.dtype);
        // Rounded (so it did compute in bfloat16), but only by a few bfloat16 epsilons over the network's depth.
        foreach (var (narrow, wide) in new[] { (images16, images32), (scores16, scores32) })
        {
            double error = RelativeError(narrow, wide);
            Assert.InRange(error, 1e-4, 0.05);
        }
        Assert.All(g.parameters().Concat(d.parameters()), p => Assert.Equal(ScalarType.Float32, p.dtype));

        // Every layer keeps bfloat16: fed bfloat16, the models return bfloat16 (a float32 parameter added anywhere on
        // the way would promote the rest of the network to float32).
        using var z16 = z.to(ScalarType.BFloat16);
        using var fromNarrow = g[Resolution].FadeIn!.call(z16);
        Assert.Equal(ScalarType.BFloat16, fromNarrow.dtype);
        using var images = images32.to(ScalarType.BFloat16);
        using var scored = d[Resolution].FadeIn!.call(images);
        Assert.Equal(ScalarType.BFloat16, scored.dtype);
        using var bytes = torch.zeros([8, 3, Resolution, Resolution], ScalarType.Byte);
        Assert.Contains("expects floating-point input; got Byte", Assert.Throws<ArgumentException>(() => d[Resolution].FadeIn!.call(bytes)).Message);
    }

    [Fact]
    public void Bfloat16_gradients_reach_float32_parameters_and_the_penalty_double_backward_runs()
    {
        var (_, d) = Networks();
        using var x = torch.randn(8, 3, Resolution, Resolution, generator: torch.manual_seed(7));

        // The R1 penalty's shape of computation: ∇ₓD(x) with create_graph, then backward through ‖∇ₓD(x)‖² and D(x).
        (Tensor Input, Tensor Parameters) Step()
        {
            d.zero_grad();
            using var real = x.detach().requires_grad_(true);
            using var score = d[Resolution].FadeIn!.call(real);
            var input = torch.autograd.grad([score.sum()], [real], retain_graph: true, create_graph: true)[0];
            using var loss = input.square().sum() + score.sum();
            loss.backward();
            return (input.detach(), Gradients(d[Resolution].FadeIn!));
        }

        var (input32, parameters32) = Step();
        d.ComputeType = ScalarType.BFloat16;
        var (input16, parameters16) = Step();

        Assert.Equal(ScalarType.Float32, input16.dtype);
        Assert.All(d[Resolution].FadeIn!.parameters(), p => Assert.Equal(ScalarType.Float32, p.grad!.dtype));
        // Per pixel, ∇ₓD is 10–12 % off at every width tried (4–128 channels; a likely cause: where rounding flips a
        // pre-activation's sign, LeakyReLU's slope there changes fivefold). Summed over a minibatch, the parameters' ~1 %.
        Assert.InRange(RelativeError(input16, input32), 1e-3, 0.2);
        Assert.InRange(RelativeError(parameters16, parameters32), 1e-4, 0.05);
    }

    [Fact]
    public void Setting_the_network_sets_every_model_and_other_types_are_refused()
    {
        var (g, d) = Networks();
        g.ComputeType = ScalarType.BFloat16;
        Assert.All(g.Pairs.SelectMany(p => new IMixedPrecisionModel?[] { p.StraightThrough, p.FadeIn }).OfType<IMixedPrecisionModel>(),
                   m => Assert.Equal(ScalarType.BFloat16, m.ComputeType));
        Assert.All(d.Pairs.Select(p => p.StraightThrough), m => Assert.Equal(ScalarType.Float32, m.ComputeType));
        var e = Assert.Throws<ArgumentException>(() => d.ComputeType = ScalarType.Float16);
        Assert.Contains("use float32 or bfloat16", e.Message);
        Assert.Equal(ScalarType.Float32, d.ComputeType);
        Assert.Equal("bfloat16", MixedPrecision.Name(ScalarType.BFloat16));
        Assert.Equal(ScalarType.BFloat16, MixedPrecision.TryParse("bfloat16"));
        Assert.Null(MixedPrecision.TryParse("float16"));
    }

    [Fact]
    public void The_cpus_bfloat16_features_are_read_from_its_flags_lines_only()
    {
        // Two logical processors of an EPYC 9004 as Linux lists them (flags abridged), an Arm core, and one without.
        const string epyc = "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n\n"
                          + "processor\t: 1\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n";
        Assert.Equal(new[] { "avx512_bf16" }, MixedPrecision.CpuBFloat16Features(epyc));
        Assert.Equal(new[] { "avx512_bf16", "amx_bf16" }, MixedPrecision.CpuBFloat16Features("flags\t: amx_tile amx_bf16 avx512_bf16 amx_int8\n"));
        Assert.Equal(new[] { "bf16" }, MixedPrecision.CpuBFloat16Features("Features\t: fp asimd sve bf16 i8mm\nCPU implementer\t: 0x41\n"));
        // A name that only contains a feature's, and a feature named on another line, are not the feature.
        Assert.Empty(MixedPrecision.CpuBFloat16Features("model name\t: bf16 avx512_bf16 lookalike\nflags\t: avx512_bf16x sse\n"));
        Assert.Empty(MixedPrecision.CpuBFloat16Features(""));
    }
}
