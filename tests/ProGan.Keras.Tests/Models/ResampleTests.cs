using ProGan.Keras.Models;

namespace ProGan.Keras.Tests.Models;

public class ResampleTests
{
    [Theory]
    [InlineData(8, 6)]
    [InlineData(7, 9)] // odd sides: the last row/column is dropped, as avg_pool2d does
    public void Down_equals_average_pooling_in_value_gradient_and_second_derivative(int h, int w)
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

        var ours = Derivatives(Resample.Down);
        var pooled = Derivatives(t => nn.functional.avg_pool2d(t, [2, 2]));
        Assert.Equal(pooled.y.shape, ours.y.shape);
        Assert.True(torch.allclose(ours.y, pooled.y, rtol: 0, atol: 1e-6));
        Assert.True(torch.allclose(ours.grad, pooled.grad, rtol: 1e-5, atol: 1e-5));
        Assert.True(torch.allclose(ours.second, pooled.second, rtol: 1e-4, atol: 1e-4));
    }
}
