using ProGan.Keras.Models;
using ProGan.Keras.Serving;
using ProGan.Keras.Serving.Onnx;

namespace ProGan.Keras.Tests.Models;

/// <summary>The reference's <c>label_size</c>: a one-hot label after the latent, and class logits after D's score.</summary>
public class ConditionalTests
{
    private static readonly ProGanConfig Config =
        ProGanConfig.Paper.With(resolution: 8, latentSize: 8, fmapBase: 32, fmapMax: 8, labelSize: 3);

    [Fact]
    public void A_conditional_generator_reads_the_label_and_its_discriminator_gives_a_score_and_class_logits()
    {
        using var seed = manual_seed(31);
        using var g = new ProgressiveGenerator(Config, CPU);
        using var d = new ProgressiveDiscriminator(Config, CPU);
        using var z = randn(4, Config.LatentSize);
        using var asZero = ConditionalInput.Of(z, zeros(4, dtype: int64), 3);
        using var asTwo = ConditionalInput.Of(z, full(4, 2L, dtype: int64), 3);
        Assert.Equal([4L, Config.LatentSize + 3], asZero.shape);
        Assert.Equal([0f, 0f, 1f], Reference.Values(asTwo[0].narrow(0, Config.LatentSize, 3)));
        using var _ = no_grad();
        var images0 = g[8].StraightThrough.call(asZero);
        var images2 = g[8].StraightThrough.call(asTwo);
        Assert.Equal([4L, 3, 8, 8], images0.shape);
        Assert.True((images0 - images2).abs().max().item<float>() > 1e-4f, "the label does not reach the image");
        var output = d[8].StraightThrough.call(images0);
        Assert.Equal([4L, 4], output.shape);
        Assert.Equal([4L, 1], ConditionalInput.Score(output).shape);
        Assert.Equal([4L, 3], ConditionalInput.ClassLogits(output).shape);
        // Unconditional networks are unchanged: one score, the latent alone.
        Assert.Equal(0, ProGanConfig.Paper.LabelSize);
        Assert.Throws<ArgumentException>(() => ConditionalInput.Of(z, full(4, 3L, dtype: int64), 3));
    }

    [Fact]
    public void The_package_and_the_ONNX_export_refuse_a_conditional_generator_with_one_line()
    {
        using var g = new ProgressiveGenerator(Config, CPU);
        var e = Assert.Throws<NotSupportedException>(() => OnnxExport.ToBytes(g, GeneratorPosition.StraightThrough(8)));
        Assert.Contains("conditional (3 classes)", e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }
}
