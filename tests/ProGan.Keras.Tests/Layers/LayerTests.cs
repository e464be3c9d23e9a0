using ProGan.Keras.Layers;
using static ProGan.Keras.Tests.Reference;

namespace ProGan.Keras.Tests.Layers;

public class PixelNormalizationTests
{
    [Fact]
    public void Matches_the_formula_computed_on_plain_arrays()
    {
        using var x = torch.randn(2, 5, 3, 4, generator: torch.manual_seed(1));
        using var y = new PixelNormalization().call(x);
        AssertClose(PixelNorm(Values(x), 2, 5, 12, 1e-8), Values(y));
    }

    [Fact]
    public void Normalizes_each_row_of_a_latent_matrix()
    {
        using var z = torch.randn(4, 7, generator: torch.manual_seed(2));
        using var y = new PixelNormalization().call(z);
        AssertClose(PixelNorm(Values(z), 4, 7, 1, 1e-8), Values(y));
    }

    /// <summary>
    /// A channels-last input is normalised in its NHWC view: the formula's values, the input gradient of
    /// <c>y = x·r</c>, <c>r = (mean_c x² + ε)^(-1/2)</c> — <c>∂L/∂x = r·g − x·r³·mean_c(g·x)</c>, computed here in
    /// float64 — and the layout kept.
    /// </summary>
    [Fact]
    public void Normalizes_a_channels_last_input_with_the_formula_s_gradient_and_keeps_its_layout()
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.randn([2, 5, 3, 4], generator: torch.manual_seed(3));
        var g = torch.randn([2, 5, 3, 4], generator: torch.manual_seed(4));
        var leaf = ChannelsLast.To(x).detach().requires_grad_(true);
        var y = new PixelNormalization().call(leaf);
        var dx = torch.autograd.grad([(y * g).sum()], [leaf])[0];

        Assert.True(ChannelsLast.Is(y));
        AssertClose(PixelNorm(Values(x), 2, 5, 12, 1e-8), Values(y));
        var (x64, g64) = (x.to(torch.float64), g.to(torch.float64));
        var r = x64.square().mean([1], keepdim: true).add(1e-8).rsqrt();
        var expected = r * g64 - x64 * r.pow(3) * (g64 * x64).mean([1], keepdim: true);
        AssertClose(expected.to(torch.float32), dx);
    }

    [Fact]
    public void Normalizes_a_bfloat16_input_in_float32_rounding_once_and_keeps_its_layout()
    {
        using var scope = torch.NewDisposeScope();
        var x = ChannelsLast.To(torch.randn([2, 16, 4, 4], generator: torch.manual_seed(5))).to(torch.bfloat16);
        var y = new PixelNormalization().call(x);
        Assert.Equal(torch.bfloat16, y.dtype);
        Assert.True(ChannelsLast.Is(y));
        var expected = new PixelNormalization().call(x.to(torch.float32)).to(torch.bfloat16);
        Assert.True(expected.equal(y).all().item<bool>());
    }

    [Fact]
    public void Rejects_a_vector_and_a_negative_epsilon()
    {
        Assert.Contains("[N, C", Assert.Throws<ArgumentException>(() => new PixelNormalization().call(torch.ones(3))).Message);
        Assert.Equal("epsilon", Assert.Throws<ArgumentOutOfRangeException>(() => new PixelNormalization(-1)).ParamName);
    }
}

public class WeightedSumTests
{
    [Fact]
    public void Is_one_minus_alpha_times_old_plus_alpha_times_new()
    {
        using var old = torch.randn(2, 3, 4, 4, generator: torch.manual_seed(3));
        using var @new = torch.randn(2, 3, 4, 4, generator: torch.manual_seed(4));
        var layer = new WeightedSum(0.3);
        using var y = layer.call(old, @new);
        var o = Values(old); var n = Values(@new);
        AssertClose(o.Select((v, i) => (float)(0.7 * v + 0.3 * n[i])).ToArray(), Values(y));

        layer.Alpha = 0.9; // settable at run time, no rebuild
        using var y2 = layer.call(old, @new);
        AssertClose(o.Select((v, i) => (float)(0.1 * v + 0.9 * n[i])).ToArray(), Values(y2));
    }

    [Theory]
    [InlineData(-0.01)]
    [InlineData(1.01)]
    [InlineData(double.NaN)]
    public void Rejects_alpha_outside_zero_one(double alpha)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new WeightedSum().Alpha = alpha);
        Assert.Equal("Alpha", e.ParamName);
        Assert.Contains("[0, 1]", e.Message);
    }

    [Fact]
    public void Rejects_inputs_of_different_shapes_naming_both()
    {
        var e = Assert.Throws<ArgumentException>(() => new WeightedSum(0.5).call(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 8, 8)));
        Assert.Contains("[1, 3, 4, 4]", e.Message);
        Assert.Contains("[1, 3, 8, 8]", e.Message);
    }
}

public class MinibatchStdevTests
{
    [Theory]
    [InlineData(8, 4)]  // two groups, members 2 apart
    [InlineData(4, 4)]
    [InlineData(3, 4)]  // batch smaller than the group: one group of 3
    [InlineData(6, 2)]
    public void Appends_the_reference_statistic_as_one_constant_channel(int n, int groupSize)
    {
        using var x = torch.randn(n, 3, 4, 4, generator: torch.manual_seed(5));
        using var y = new MinibatchStdev(groupSize).call(x);
        Assert.Equal(new long[] { n, 4, 4, 4 }, y.shape);
        AssertClose(x, y[.., ..3]); // the input passes through unchanged
        var expected = MinibatchStdevPerSample(Values(x), n, 3, 16, groupSize, 1e-8);
        var extra = Values(y[.., 3]);
        for (int s = 0; s < n; s++)
            for (int p = 0; p < 16; p++)
                Assert.Equal(expected[s], extra[s * 16 + p], 5);
    }

    [Fact]
    public void Rejects_a_batch_the_group_size_does_not_divide()
    {
        var e = Assert.Throws<ArgumentException>(() => new MinibatchStdev(4).call(torch.zeros(6, 2, 4, 4)));
        Assert.Contains("6", e.Message);
        Assert.Contains("group size 4", e.Message);
    }
}

public class WeightScalingTests
{
    [Fact]
    public void Scale_is_gain_over_sqrt_fan_in()
    {
        Assert.Equal(Math.Sqrt(2) / Math.Sqrt(27), new WeightScaling(27).Scale, 12);
        Assert.Equal(1 / Math.Sqrt(64), new WeightScaledConv2D(64, 3, 1, gain: 1).Scaling.Scale, 12);
        Assert.Equal(Math.Sqrt(2) / 4 / Math.Sqrt(512), new WeightScaledDense(512, 8192, gain: Math.Sqrt(2) / 4).Scaling.Scale, 12);
    }

    [Fact]
    public void Weights_start_standard_normal_and_biases_zero()
    {
        var conv = new WeightScaledConv2D(64, 128, 3);
        Assert.Equal(0.0, conv.Weight.mean().item<float>(), 1);
        Assert.Equal(1.0, conv.Weight.std().item<float>(), 1);
        Assert.Equal(0f, conv.Bias!.abs().sum().item<float>());
    }

    [Fact]
    public void Conv_equals_a_plain_conv_with_prescaled_weights_and_so_do_the_gradients()
    {
        var conv = new WeightScaledConv2D(4, 6, 3, gain: 1.7);
        using (torch.no_grad()) conv.Bias!.normal_(generator: torch.manual_seed(9));
        using var x = torch.randn(2, 4, 5, 5, generator: torch.manual_seed(6));
        double c = 1.7 / Math.Sqrt(4 * 9);

        var y = conv.call(x);
        y.square().sum().backward();

        using var w = (conv.Weight.detach() * c).requires_grad_();
        using var b = conv.Bias!.detach().clone().requires_grad_();
        var plain = nn.functional.conv2d(x, w, b, padding: [1, 1]);
        plain.square().sum().backward();

        AssertClose(plain, y, 1e-4);
        AssertClose(w.grad! * c, conv.Weight.grad!, 1e-4); // d/dw f(c·w) = c·f'(c·w)
        AssertClose(b.grad!, conv.Bias!.grad!, 1e-4);      // the bias is not scaled
    }

    [Fact]
    public void Dense_equals_a_plain_linear_with_prescaled_weights_and_flattens_its_input()
    {
        var dense = new WeightScaledDense(12, 5);
        using var x = torch.randn(3, 3, 2, 2, generator: torch.manual_seed(7));
        double c = Math.Sqrt(2) / Math.Sqrt(12);
        var y = dense.call(x);
        y.sum().backward();

        using var w = (dense.Weight.detach() * c).requires_grad_();
        var plain = nn.functional.linear(x.reshape(3, 12), w, dense.Bias!.detach());
        plain.sum().backward();

        AssertClose(plain, y, 1e-5);
        AssertClose(w.grad! * c, dense.Weight.grad!, 1e-5);
    }

    [Fact]
    public void Bad_hyperparameters_name_the_argument()
    {
        Assert.Equal("kernelSize", Assert.Throws<ArgumentOutOfRangeException>(() => new WeightScaledConv2D(3, 3, 2)).ParamName);
        Assert.Equal("fanIn", Assert.Throws<ArgumentOutOfRangeException>(() => new WeightScaling(0)).ParamName);
        Assert.Equal("gain", Assert.Throws<ArgumentOutOfRangeException>(() => new WeightScaledDense(3, 3, gain: 0)).ParamName);
        var e = Assert.Throws<ArgumentException>(() => new WeightScaledDense(3, 3).call(torch.zeros(2, 4)));
        Assert.Contains("3 input features", e.Message);
        var up = Assert.Throws<ArgumentException>(() => new WeightScaledConv2D(3, 4, upscale: true).call(torch.zeros(3, 8, 8)));
        Assert.Contains("NCHW", up.Message);
    }
}

public class DownscalingConvTests
{
    // Input sides on both sides of the fused path's threshold (16): the two-step and the fused computation.
    [Theory]
    [InlineData(3, 8, 6)]
    [InlineData(3, 7, 9)] // odd sides: the last row/column is dropped, as avg_pool2d does
    [InlineData(1, 8, 8)]
    [InlineData(3, 16, 18)]
    [InlineData(3, 17, 21)]
    [InlineData(1, 16, 16)]
    [InlineData(5, 20, 16)]
    public void Equals_average_pooling_of_the_scaled_conv_in_value_gradients_and_second_derivatives(int k, int h, int w)
    {
        using var scope = torch.NewDisposeScope();
        var conv = new WeightScaledConv2D(4, 5, k, gain: 1.3, downscale: true);
        using (torch.no_grad()) conv.Bias!.normal_(generator: torch.manual_seed(3));
        double c = 1.3 / Math.Sqrt(4 * k * k);
        var x = torch.randn([2, 4, h, w], generator: torch.manual_seed(h * 10 + w)).requires_grad_(true);
        var g = torch.randn([2, 5, h / 2, w / 2], generator: torch.manual_seed(7));

        // Independent: the plain "same" convolution with c·w, 2×2 average pooling, then the bias (pooling is linear, so
        // the bias may come before or after it; D's order question is about the activation).
        var weight = conv.Weight.detach().clone().requires_grad_(true);
        var bias = conv.Bias!.detach().clone();
        Tensor Plain(Tensor t) =>
            nn.functional.avg_pool2d(nn.functional.conv2d(t, weight * c, padding: [k / 2, k / 2]), [2, 2]) + bias.view(1, -1, 1, 1);

        // Value; ∇x and ∇w of a quadratic objective; ∇x and ∇w of ‖∇x‖² (the gradient penalty's double backward).
        (Tensor y, Tensor dx, Tensor dw, Tensor ddx, Tensor ddw) Derivatives(Func<Tensor, Tensor> f, Tensor wrt)
        {
            var y = f(x);
            var first = torch.autograd.grad([(y * g * y).sum()], [x, wrt], retain_graph: true, create_graph: true);
            var second = torch.autograd.grad([first[0].square().sum()], [x, wrt]);
            return (y, first[0], first[1], second[0], second[1]);
        }

        var ours = Derivatives(conv.call, conv.Weight);
        var plain = Derivatives(Plain, weight);
        Assert.Equal(new long[] { 2, 5, h / 2, w / 2 }, ours.y.shape);
        AssertClose(plain.y, ours.y, 1e-5);
        AssertClose(plain.dx, ours.dx, 1e-4);
        AssertClose(plain.dw, ours.dw, 1e-4);
        AssertClose(plain.ddx, ours.ddx, 1e-4);
        AssertClose(plain.ddw, ours.ddw, 1e-4);
    }

    [Fact]
    public void Rejects_upscale_with_downscale_and_an_input_that_is_not_NCHW()
    {
        var both = Assert.Throws<ArgumentException>(() => new WeightScaledConv2D(3, 4, upscale: true, downscale: true));
        Assert.Equal("downscale", both.ParamName);
        var flat = Assert.Throws<ArgumentException>(() => new WeightScaledConv2D(3, 4, downscale: true).call(torch.zeros(3, 8, 8)));
        Assert.Contains("downscaling", flat.Message);
        Assert.Contains("NCHW", flat.Message);
    }
}

public class UpscalingConvTests
{
    // The fused path (input side ≥ 16: a transposed convolution, its bias added after it) against upsampling by
    // indexing then the plain convolution, in float32 and in bfloat16 (mixed precision: float32 parameters).
    [Theory]
    [InlineData("Float32", 1e-4)]
    [InlineData("BFloat16", 0.03)]
    public void Equals_upsampling_then_the_scaled_conv_in_value_and_every_gradient(string type, double tolerance)
    {
        using var scope = torch.NewDisposeScope();
        var dtype = Enum.Parse<ScalarType>(type);
        var conv = new WeightScaledConv2D(6, 4, 3, gain: 1.3, upscale: true);
        using (torch.no_grad()) conv.Bias!.normal_(generator: torch.manual_seed(5));
        double c = 1.3 / Math.Sqrt(6 * 3 * 3);
        var x32 = torch.randn([2, 6, 16, 17], generator: torch.manual_seed(6)).to(dtype).to(ScalarType.Float32);
        var g = torch.randn([2, 4, 32, 34], generator: torch.manual_seed(8)).to(dtype).to(ScalarType.Float32);

        var x = x32.to(dtype).requires_grad_(true);
        var y = conv.call(x);
        Assert.Equal(dtype, y.dtype);
        var ours = torch.autograd.grad([(y * g.to(dtype)).sum()], [x, conv.Weight, conv.Bias!]);

        var xr = x32.clone().requires_grad_(true);
        var weight = conv.Weight.detach().clone().requires_grad_(true);
        var bias = conv.Bias!.detach().clone().requires_grad_(true);
        var rows = torch.tensor(Enumerable.Range(0, 32).Select(i => (long)(i / 2)).ToArray()); // pixel i/2 to row i
        var cols = torch.tensor(Enumerable.Range(0, 34).Select(i => (long)(i / 2)).ToArray());
        var plain = nn.functional.conv2d(xr.index_select(2, rows).index_select(3, cols), weight * c, bias, padding: [1, 1]);
        var reference = torch.autograd.grad([(plain * g).sum()], [xr, weight, bias]);

        Reference.AssertClose(plain.detach(), y.to(ScalarType.Float32), tolerance);
        Assert.Equal(dtype, ours[0].dtype);
        Assert.Equal(ScalarType.Float32, ours[1].dtype);
        Assert.Equal(ScalarType.Float32, ours[2].dtype);
        // The bias gradient is Σ over batch and pixels of the output gradient: g's sums, large, so relative.
        Reference.AssertClose(reference[0], ours[0].to(ScalarType.Float32), tolerance);
        Reference.AssertClose(reference[1] / reference[1].abs().max(), ours[1] / reference[1].abs().max(), tolerance);
        Reference.AssertClose(reference[2] / reference[2].abs().max(), ours[2] / reference[2].abs().max(), tolerance);
    }
}

