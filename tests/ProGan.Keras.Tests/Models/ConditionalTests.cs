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
    public void The_ONNX_export_of_a_conditional_generator_takes_the_class_as_a_second_input()
    {
        using var seed = manual_seed(32);
        using var g = new ProgressiveGenerator(Config, CPU);
        byte[] model = OnnxExport.ToBytes(g, GeneratorPosition.StraightThrough(8));
        using var z = randn(5, Config.LatentSize);
        using var labels = tensor(new long[] { 0, 1, 2, 1, 0 });
        using var expected = TrainedGenerator.Sample(g, GeneratorPosition.StraightThrough(8), ConditionalInput.Of(z, labels, 3));
        using var oneHot = nn.functional.one_hot(labels, 3).to_type(float32);
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(model);
        using var latentValue = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(Reference.Values(z), [5L, Config.LatentSize]);
        using var labelValue = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(Reference.Values(oneHot), [5L, 3L]);
        using var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
        using var results = session.Run(runOptions, [OnnxExport.InputName, OnnxExport.LabelName], [latentValue, labelValue], [OnnxExport.OutputName]);
        Reference.AssertClose(Reference.Values(expected.clamp(-1, 1)), results[0].GetTensorDataAsSpan<float>().ToArray(), 1e-4);
    }
}
