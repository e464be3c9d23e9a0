using ProGan.Keras.Layers;
using ProGan.Keras.Models;

namespace ProGan.Keras.Tests.Layers;

public class ResamplingTests
{
    [Theory]
    [InlineData(8, 6)]
    [InlineData(7, 9)] // odd sides: the last row/column is dropped, as avg_pool2d does
    public void Downscale2D_equals_average_pooling_in_value_gradient_and_second_derivative(int h, int w)
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.randn([3, 5, h, w], generator: torch.manual_seed(h * 10 + w)).requires_grad_(true);
        var g = torch.randn([3, 5, h / 2, w / 2], generator: torch.manual_seed(7));

        // The quantities the gradient penalty needs: value, ∇x, and ∇x of ‖∇x‖² (which runs the double backward).
        (Tensor y, Tensor grad, Tensor second) Derivatives(Func<Tensor, Tensor> down)
        {
            var y = down(x);
            var grad = torch.autograd.grad([(y * g * y).sum()], [x], retain_graph: true, create_graph: true)[0];
            var second = torch.autograd.grad([grad.square().sum()], [x])[0];
            return (y, grad, second);
        }

        var ours = Derivatives(Resampling.Downscale2D);
        var pooled = Derivatives(t => nn.functional.avg_pool2d(t, [2, 2]));
        Assert.Equal(pooled.y.shape, ours.y.shape);
        Assert.True(torch.allclose(ours.y, pooled.y, rtol: 0, atol: 1e-6));
        Assert.True(torch.allclose(ours.grad, pooled.grad, rtol: 1e-5, atol: 1e-5));
        Assert.True(torch.allclose(ours.second, pooled.second, rtol: 1e-4, atol: 1e-4));
    }

    [Fact]
    public void Downscale2D_of_bfloat16_is_the_exact_average_rounded_once_with_its_gradient_in_bfloat16()
    {
        using var scope = torch.NewDisposeScope();
        // Integers in [-64, 64]: exact in bfloat16, and so is every average of four (k/4 with |k| ≤ 256, ≤ 8 significant
        // bits), so the result must equal the exact average, computed here in float64.
        var ints = torch.randint(-64, 65, [2, 6, 8, 10], generator: torch.manual_seed(11)).to(ScalarType.Float64);
        var x = ints.to(ScalarType.BFloat16).requires_grad_(true);
        var y = Resampling.Downscale2D(x);
        Assert.Equal(ScalarType.BFloat16, y.dtype);
        var exact = ints.view(2, 6, 4, 2, 5, 2).mean([3, 5]);
        Assert.Equal(exact.data<double>().ToArray(), y.to(ScalarType.Float64).data<double>().ToArray());

        // ∂/∂x of Σ g·y is g/4 replicated over each 2×2 block, in x's type.
        var g = torch.randint(-8, 9, [2, 6, 4, 5], generator: torch.manual_seed(12)).to(ScalarType.Float64);
        var grad = torch.autograd.grad([(y * g.to(ScalarType.BFloat16)).sum()], [x])[0];
        Assert.Equal(ScalarType.BFloat16, grad.dtype);
        var expected = (g / 4).repeat_interleave(2, dim: 2).repeat_interleave(2, dim: 3);
        Assert.Equal(expected.data<double>().ToArray(), grad.to(ScalarType.Float64).data<double>().ToArray());
    }

    [Fact]
    public void Downscale2D_of_bfloat16_has_the_penalty_s_second_derivative()
    {
        using var scope = torch.NewDisposeScope();
        var x32 = torch.randn([3, 5, 8, 8], generator: torch.manual_seed(21));
        var g = torch.randn([3, 5, 4, 4], generator: torch.manual_seed(22));
        (Tensor grad, Tensor second) Derivatives(Tensor x, Func<Tensor, Tensor> down)
        {
            var y = down(x);
            var gy = g.to(y.dtype);
            var grad = torch.autograd.grad([(y * gy * y).sum()], [x], retain_graph: true, create_graph: true)[0];
            var second = torch.autograd.grad([grad.square().sum()], [x])[0];
            return (grad.to(ScalarType.Float32), second.to(ScalarType.Float32));
        }
        var narrow = Derivatives(x32.to(ScalarType.BFloat16).requires_grad_(true), Resampling.Downscale2D);
        var wide = Derivatives(x32.to(ScalarType.BFloat16).to(ScalarType.Float32).requires_grad_(true), t => nn.functional.avg_pool2d(t, [2, 2]));
        // bfloat16 keeps 8 significant bits: a few roundings along the chain stay within 3 %.
        Assert.True(torch.allclose(narrow.grad, wide.grad, rtol: 0.03, atol: 1e-2));
        Assert.True(torch.allclose(narrow.second, wide.second, rtol: 0.03, atol: 1e-2));
    }

    [Fact]
    public void Upscale2D_replicates_each_pixel_into_a_2x2_block()
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.randn([2, 3, 4, 5], generator: torch.manual_seed(4));
        var replicated = x.repeat_interleave(2, dim: 2).repeat_interleave(2, dim: 3); // y[n, c, i, j] = x[n, c, i/2, j/2]
        var y = Resampling.Upscale2D(x);
        Assert.Equal([2L, 3, 8, 10], y.shape);
        Assert.Equal(replicated.data<float>().ToArray(), y.data<float>().ToArray());
    }

    [Fact]
    public void The_models_resample_with_the_layers_operations()
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.randn([2, 3, 8, 8], generator: torch.manual_seed(3));
        Assert.Equal(Resampling.Downscale2D(x).data<float>().ToArray(), Resample.Down(x).data<float>().ToArray());
        Assert.Equal(Resampling.Upscale2D(x).data<float>().ToArray(), Resample.Up(x).data<float>().ToArray());
    }
}
