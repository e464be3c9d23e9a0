// The layers in a model of one's own (docs/layers.md) and the README's models example, compiled and run by the suite
// so they cannot rot.
using ProGan.Keras.Layers;
using ProGan.Keras.Models;
using TorchSharp.Modules;

namespace ProGan.Keras.Tests;

/// <summary>A small convolutional encoder that is not a ProGAN: equalized-lr convolutions with pixel norm.</summary>
public sealed class TinyEncoder : nn.Module<Tensor, Tensor>
{
    private readonly WeightScaledConv2D conv1 = new(3, 32, kernelSize: 3);
    private readonly WeightScaledConv2D conv2 = new(32, 64, kernelSize: 3);
    private readonly PixelNormalization norm = new();
    private readonly WeightScaledDense head = new(64 * 8 * 8, 10, gain: 1.0);

    public TinyEncoder() : base(nameof(TinyEncoder)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        x = norm.call(nn.functional.leaky_relu(conv1.call(x), 0.2));         // [N, 32, 32, 32]
        x = nn.functional.avg_pool2d(x, 2);                                  // [N, 32, 16, 16]
        x = norm.call(nn.functional.leaky_relu(conv2.call(x), 0.2));         // [N, 64, 16, 16]
        return head.call(nn.functional.avg_pool2d(x, 2));                    // [N, 10]
    }
}

public class ReadmeExampleTests
{
    [Fact]
    public void The_readme_model_trains_like_any_TorchSharp_model()
    {
        torch.manual_seed(1);
        var model = new TinyEncoder();
        var optimizer = torch.optim.Adam(model.parameters(), lr: 1e-3, beta1: 0.0, beta2: 0.99);
        using var x = torch.randn(8, 3, 32, 32);
        using var target = torch.randint(10, [8]);
        float first = 0, last = 0;
        for (int step = 0; step < 20; step++)
        {
            using var scope = torch.NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(model.call(x), target);
            loss.backward();
            optimizer.step();
            if (step == 0) first = loss.item<float>();
            last = loss.item<float>();
        }
        Assert.Equal(6, model.parameters().Count()); // three layers, each a weight and a bias
        Assert.True(last < first, $"loss did not fall: {first} → {last}");
    }

    [Fact]
    public void The_readme_models_snippet_runs()
    {
        var config = ProGanConfig.Paper.With(resolution: 64, fmapBase: 64, fmapMax: 16, latentSize: 16); // README: paper channels
        var g = new ProgressiveGenerator(config);
        var d = new ProgressiveDiscriminator(config);
        var (resolution, straight, fadeIn) = g[32];
        g.SetAlpha(0.3);
        var images = fadeIn!.call(torch.randn(16, config.LatentSize));
        var scores = d[32].FadeIn!.call(images);
        var composite = new Composite(g[32].StraightThrough, d[32].StraightThrough);
        Assert.Equal(32, resolution);
        Assert.Equal(new long[] { 16, 3, 32, 32 }, images.shape);
        Assert.Equal(new long[] { 16, 1 }, scores.shape);
        Assert.Equal(straight.parameters().Count(), composite.parameters().Count());
    }
}
