using ProGan.Keras.Layers;
using ProGan.Keras.Models;
using ProGan.Keras.Tests.Models;

namespace ProGan.Keras.Tests.Layers;

public class ChannelsLastTests
{
    [Fact]
    public void To_lays_a_tensor_out_NHWC_keeping_its_shape_and_values()
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.randn([2, 5, 3, 4], generator: torch.manual_seed(1));
        var y = ChannelsLast.To(x);
        Assert.Equal(x.shape, y.shape);
        Assert.Equal(new long[] { 3 * 4 * 5, 1, 4 * 5, 5 }, y.stride()); // [H·W·C, 1, W·C, C]
        Assert.True(ChannelsLast.Is(y));
        Assert.False(ChannelsLast.Is(x));
        Assert.False(ChannelsLast.Is(torch.randn([2, 1, 3, 4]))); // one channel: both layouts have the same strides
        Assert.True(x.equal(y).all().item<bool>());
    }

    /// <summary>
    /// The discriminator computes the same function, the same input and weight gradients, and the same gradients of
    /// the gradient penalty (the double backward) whichever layout its input has — at 32², where the official fused
    /// downscale convolution runs, and both block orders.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void The_discriminator_is_the_same_function_with_the_same_derivatives_in_either_layout(bool fusedScale)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        var d = new ProgressiveDiscriminator(ModelTests.Tiny with { FusedScale = fusedScale })[32].StraightThrough;
        var images = torch.randn([8, 3, 32, 32], generator: torch.manual_seed(4));

        (Tensor score, Tensor input, Tensor[] weights) Derivatives(Func<Tensor, Tensor> layout)
        {
            var x = layout(images.detach()).detach().requires_grad_(true);
            var score = d.call(x);
            var gradient = torch.autograd.grad([score.sum()], [x], retain_graph: true, create_graph: true)[0];
            var penalty = gradient.flatten(1).square().sum(1).sqrt().sub(1.0).square().mean();
            var parameters = d.parameters().ToArray();
            var all = torch.autograd.grad([score.mean() + penalty], [x, .. parameters]);
            return (score.detach(), all[0], all.Skip(1).ToArray());
        }

        var nchw = Derivatives(t => t);
        var nhwc = Derivatives(ChannelsLast.To);
        Assert.True(torch.allclose(nchw.score, nhwc.score, rtol: 1e-4, atol: 1e-5));
        Assert.True(torch.allclose(nchw.input, nhwc.input, rtol: 1e-4, atol: 1e-5));
        for (int i = 0; i < nchw.weights.Length; i++)
            Assert.True(torch.allclose(nchw.weights[i], nhwc.weights[i], rtol: 1e-3, atol: 1e-5), $"the gradient of parameter {i}");
    }

    [Fact]
    public void A_convolution_keeps_a_channels_last_input_channels_last()
    {
        using var scope = torch.NewDisposeScope();
        var conv = new WeightScaledConv2D(4, 6, 3);
        var down = new WeightScaledConv2D(4, 6, 3, downscale: true);
        var x = ChannelsLast.To(torch.randn([2, 4, 16, 16], generator: torch.manual_seed(5)));
        Assert.True(ChannelsLast.Is(conv.call(x)));
        Assert.True(ChannelsLast.Is(down.call(x)));
        Assert.True(torch.allclose(conv.call(x), conv.call(x.contiguous()), rtol: 1e-5, atol: 1e-6));
        Assert.True(torch.allclose(down.call(x), down.call(x.contiguous()), rtol: 1e-5, atol: 1e-6));
    }

    /// <summary>
    /// A network set channels-last computes the same images and scores, fading in or not, and G returns NCHW-contiguous
    /// images (what samples and image files read); the setting reaches every model, made before or after it is set.
    /// </summary>
    [Fact]
    public void Networks_set_channels_last_compute_the_same_and_G_returns_NCHW_images()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(6);
        var g = new ProgressiveGenerator(ModelTests.Tiny);
        var d = new ProgressiveDiscriminator(ModelTests.Tiny);
        g.SetAlpha(0.4);
        d.SetAlpha(0.4);
        var z = torch.randn([8, ModelTests.Tiny.LatentSize], generator: torch.manual_seed(7));
        var models = new[] { g[32].StraightThrough, g[32].FadeIn!, g[16].FadeIn! };
        var before = models.Select(m => m.call(z)).ToArray();
        var scoresBefore = before.Select((x, i) => (i == 2 ? d[16].FadeIn! : i == 1 ? d[32].FadeIn! : d[32].StraightThrough).call(x)).ToArray();
        g.ChannelsLast = true;
        d.ChannelsLast = true;
        Assert.True(models.All(m => m.ChannelsLast) && d[32].FadeIn!.ChannelsLast && d[4].StraightThrough.ChannelsLast);
        for (int i = 0; i < models.Length; i++)
        {
            var images = models[i].call(z);
            Assert.True(images.is_contiguous(), "G's images are NCHW-contiguous");
            // oneDNN's NHWC kernels sum in another order: up to 3e-5 apart on images of magnitude 1–2.5.
            Assert.True(torch.allclose(before[i], images, rtol: 1e-4, atol: 1e-4), $"the images of model {i}");
            var scores = (i == 2 ? d[16].FadeIn! : i == 1 ? d[32].FadeIn! : d[32].StraightThrough).call(images);
            Assert.True(torch.allclose(scoresBefore[i], scores, rtol: 1e-3, atol: 1e-4), $"the scores of model {i}");
        }
    }

    [Fact]
    public void ChannelsLastFrom_lays_out_the_models_from_that_resolution_up_both_of_each_pair()
    {
        var g = new ProgressiveGenerator(ModelTests.Tiny);
        var d = new ProgressiveDiscriminator(ModelTests.Tiny);
        bool[] Layouts<T>(ProgressiveNetwork<T> n) where T : nn.Module<Tensor, Tensor>, IMixedPrecisionModel =>
            n.Pairs.SelectMany(p => p.FadeIn is null ? new[] { p.StraightThrough } : new[] { p.StraightThrough, p.FadeIn })
                .Select(m => m.ChannelsLast).ToArray();
        Assert.All(Layouts(g).Concat(Layouts(d)), Assert.False); // NCHW by default
        g.ChannelsLastFrom = 16;
        d.ChannelsLastFrom = 16;
        // 4² (one model), 8², 16², 32² (two each): NHWC from 16² on, and the compute type set later keeps the layout.
        g.ComputeType = ScalarType.BFloat16;
        Assert.Equal(new[] { false, false, false, true, true, true, true }, Layouts(g));
        Assert.Equal(new[] { false, false, false, true, true, true, true }, Layouts(d));
        Assert.False(g.ChannelsLast); // not every model
        g.ChannelsLast = true;
        Assert.Equal(4, g.ChannelsLastFrom);
        Assert.All(Layouts(g), Assert.True);
        g.ChannelsLast = false;
        Assert.All(Layouts(g), Assert.False);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => g.ChannelsLastFrom = -1);
        Assert.Equal("ChannelsLastFrom", e.ParamName);
    }
}
