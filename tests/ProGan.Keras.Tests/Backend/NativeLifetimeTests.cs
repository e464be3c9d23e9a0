using ProGan.Keras.Backend;
using ProGan.Keras.Models;
using ProGan.Keras.Serving;
using ProGan.Keras.Tests.Models;

namespace ProGan.Keras.Tests.Backend;

/// <summary>
/// Runs alone: <see cref="FinalizerAudit"/> counts the finalizations of the whole process, which other tests'
/// garbage would add to.
/// </summary>
[CollectionDefinition(nameof(NativeLifetimeTests), DisableParallelization = true)]
public sealed class NativeLifetimeCollection;

/// <summary>
/// Native handles live as long as libtorch reads them: no Scalar or Tensor of a forward pass, a backward pass (the
/// gradient penalty's double backward too) or an optimizer step is left to the finalizer, which a GC on another thread
/// runs while libtorch may still read it (the random <c>c10::Scalar</c> faults of long training runs).
/// </summary>
[Collection(nameof(NativeLifetimeTests))]
public class NativeLifetimeTests
{
    private static (long Scalars, long Tensors) Audit(Action work) => FinalizerAudit.Measure(() =>
    {
        using var scope = torch.NewDisposeScope();
        work();
    });

    [Fact]
    public void The_audit_counts_the_Scalars_TorchSharp_makes_on_the_fly_and_none_of_the_kept_ones()
    {
        using var x = torch.randn(4, 8);
        Assert.True(Audit(() => { for (int i = 0; i < 50; i++) x.leaky_relu_(0.2); }).Scalars >= 50);    // a double for a Scalar
        Assert.True(Audit(() => { for (int i = 0; i < 50; i++) x.add_(x); }).Scalars >= 50);             // TorchSharp's alpha = 1
        Assert.True(Audit(() => { for (int i = 0; i < 50; i++) x.square(); }).Scalars >= 50);            // TorchSharp's pow(2)
        Assert.Equal(0, Audit(() => { for (int i = 0; i < 50; i++) x.leaky_relu_(Scalars.Of(0.2)); }).Scalars);
        Assert.Equal(0, Audit(() => { for (int i = 0; i < 50; i++) x.PlusInPlace(x).Squared(); }).Scalars);
    }

    [Theory]
    [InlineData("float32")]
    [InlineData("bfloat16")]
    public void Every_model_of_G_and_D_forward_and_backward_leaves_nothing_to_the_finalizer(string precision)
    {
        torch.manual_seed(3);
        using var g = new ProgressiveGenerator(ModelTests.Tiny);
        using var d = new ProgressiveDiscriminator(ModelTests.Tiny);
        g.ComputeType = d.ComputeType = MixedPrecision.TryParse(precision)!.Value;
        g.SetAlpha(0.5);
        d.SetAlpha(0.5);
        using var z = torch.randn(8, ModelTests.Tiny.LatentSize);
        // 32² reaches every path of WeightScaledConv2D (plain and fused up- and downscaling); the gradient of D at its
        // input, kept in the graph, is the gradient penalty's double backward.
        var audit = Audit(() =>
        {
            foreach (var level in Enumerable.Range(0, ModelTests.Tiny.LevelCount))
                foreach (var fading in level == 0 ? [false] : new[] { false, true })
                {
                    var images = g.Pairs[level].Select(fading).call(z);
                    var x = images.detach().requires_grad_(true);
                    var scores = d.Pairs[level].Select(fading).call(x);
                    var gradient = torch.autograd.grad([scores.sum()], [x], retain_graph: true, create_graph: true)[0];
                    (scores.mean() - gradient.flatten(1).Squared().sum(1).mean()).backward();
                    d.Pairs[level].Select(fading).call(images).mean().backward();
                }
        });
        Assert.Equal((0L, 0L), audit);
    }

    [Fact]
    public void Adam_computes_TorchSharp_Adam_bit_for_bit_and_leaves_no_Scalar_to_the_finalizer()
    {
        // The paper's β₁ = 0, β₂ = 0.99, and a β₁ > 0 for the first moment's path.
        foreach (var (beta1, beta2) in new[] { (0.0, 0.99), (0.9, 0.999) })
        {
            torch.manual_seed(8);
            using var ours = new ProGan.Keras.Layers.WeightScaledDense(6, 5);
            using var theirs = new ProGan.Keras.Layers.WeightScaledDense(6, 5);
            using (torch.no_grad())
                foreach (var (a, b) in ours.parameters().Zip(theirs.parameters())) b.copy_(a);
            using var adam = new ProGan.Keras.Optimizers.Adam(ours.parameters(), 0.01, beta1, beta2, 1e-8);
            using var reference = torch.optim.Adam(theirs.parameters(), 0.01, beta1, beta2, 1e-8);
            void Step(nn.Module<Tensor, Tensor> model, torch.optim.Optimizer optimizer, int seed)
            {
                using var scope = torch.NewDisposeScope();
                optimizer.zero_grad();
                model.call(torch.randn(3, 6, generator: torch.manual_seed(seed))).Squared().mean().backward();
                optimizer.step();
            }
            for (int step = 0; step < 5; step++)
            {
                Step(ours, adam, step);
                Step(theirs, reference, step);
            }
            foreach (var (a, b) in ours.parameters().Zip(theirs.parameters()))
                Assert.True(a.eq(b).all().item<bool>(), $"β = ({beta1}, {beta2}): the parameters differ from TorchSharp's Adam's");
            Assert.Equal(0, Audit(() => { for (int step = 5; step < 10; step++) Step(ours, adam, step); }).Scalars);
        }
    }

    [Fact]
    public void Adam_refuses_what_it_does_not_implement()
    {
        using var layer = new ProGan.Keras.Layers.WeightScaledDense(2, 2);
        using var other = new ProGan.Keras.Layers.WeightScaledDense(2, 2);
        using var adam = new ProGan.Keras.Optimizers.Adam(layer.parameters());
        adam.add_param_group(new TorchSharp.Modules.Adam.ParamGroup(other.parameters(), weight_decay: 0.1));
        other.call(layer.call(torch.ones(1, 2))).sum().backward();
        var e = Assert.Throws<NotSupportedException>(() => adam.step());
        Assert.Contains("weight_decay", e.Message);
    }

    [Fact]
    public void Plus_adds_with_the_alpha_libtorch_takes_for_floating_and_integer_tensors()
    {
        using var f = torch.tensor(new[] { 1.5f, 2.5f });
        using var i = torch.tensor(new long[] { 1, 2 });
        Assert.Equal(new[] { 3.0f, 5.0f }, f.Plus(f).data<float>().ToArray());
        Assert.Equal(new long[] { 2, 4 }, i.Plus(i).data<long>().ToArray());
        Assert.Equal(new long[] { 8, 9 }, i.Plus(Scalars.OfInt(7)).data<long>().ToArray());
        Assert.Equal(new long[] { 0, 1, 2 }, Scalars.Arange(3).data<long>().ToArray());
        Assert.Equal(new[] { 2.25f, 6.25f }, f.Squared().data<float>().ToArray());
    }

    [Fact]
    public void Images_to_bytes_grids_and_latent_paths_leave_nothing_to_the_finalizer()
    {
        using var images = torch.rand(4, 4, 8, 8) * 2 - 1; // RGBA in [−1, 1]: the checkered background path too
        using var a = torch.randn(8);
        using var b = torch.randn(8);
        var audit = Audit(() =>
        {
            ImageGrid.ToBytes(images);
            ImageGrid.Square(images);
            ImageGrid.ToRgb(images);
            Latents.Slerp(a, b, 0.3);
        });
        Assert.Equal((0L, 0L), audit);
    }

    [Fact]
    public void A_fence_holds_collection_off_while_its_work_runs_and_restores_the_mode_after()
    {
        var mode = System.Runtime.GCSettings.LatencyMode;
        int before = -1, inner = -1;
        GcFence.Run(() =>
        {
            before = GC.CollectionCount(0);
            var garbage = new List<byte[]>();
            for (int i = 0; i < 64; i++) garbage.Add(new byte[64 << 10]); // 4 MiB, within the budget
            GcFence.Run(() => garbage.Clear());                            // a fence within a fence
            inner = GC.CollectionCount(0);
        });
        Assert.Equal(before, inner);
        Assert.Equal(mode, System.Runtime.GCSettings.LatencyMode);
        Assert.Throws<InvalidOperationException>(() => GcFence.Run(() => throw new InvalidOperationException("work's own")));
        Assert.Equal(mode, System.Runtime.GCSettings.LatencyMode);
    }
}
