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
