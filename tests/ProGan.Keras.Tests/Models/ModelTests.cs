using ProGan.Keras.Models;
using static ProGan.Keras.Tests.Reference;

namespace ProGan.Keras.Tests.Models;

public class ModelTests
{
    /// <summary>Tiny channels for CPU tests: 16, 16, 8, 4 feature maps at 4², 8², 16², 32².</summary>
    internal static readonly ProGanConfig Tiny = new() { LatentSize = 16, Resolution = 32, FmapBase = 64, FmapMax = 16 };

    private static Tensor Latents(int n, int seed = 11) => torch.randn(n, Tiny.LatentSize, generator: torch.manual_seed(seed));
    private static Tensor Images(int n, int r, int seed = 12) => torch.randn(n, 3, r, r, generator: torch.manual_seed(seed));

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Every_resolution_has_a_pair_with_the_right_output_shapes(bool fusedScale)
    {
        torch.manual_seed(1);
        var g = new ProgressiveGenerator(Tiny);
        var d = new ProgressiveDiscriminator(Tiny with { FusedScale = fusedScale });
        Assert.Equal(new[] { 4, 8, 16, 32 }, g.Pairs.Select(p => p.Resolution));
        using var z = Latents(4);
        foreach (var pair in g.Pairs)
        {
            Assert.Equal(pair.Resolution == 4, pair.FadeIn is null);
            Assert.Equal(new long[] { 4, 3, pair.Resolution, pair.Resolution }, pair.StraightThrough.call(z).shape);
            if (pair.FadeIn is not null)
                Assert.Equal(new long[] { 4, 3, pair.Resolution, pair.Resolution }, pair.FadeIn.call(z).shape);
        }
        foreach (var pair in d.Pairs)
        {
            using var x = Images(4, pair.Resolution);
            Assert.Equal(new long[] { 4, 1 }, pair.StraightThrough.call(x).shape);
            if (pair.FadeIn is not null) Assert.Equal(new long[] { 4, 1 }, pair.FadeIn.call(x).shape);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Fade_in_at_alpha_one_equals_the_straight_through_twin(bool fusedScale)
    {
        torch.manual_seed(2);
        var g = new ProgressiveGenerator(Tiny);
        var d = new ProgressiveDiscriminator(Tiny with { FusedScale = fusedScale });
        g.SetAlpha(1.0);
        d.SetAlpha(1.0);
        using var z = Latents(4);
        foreach (int r in new[] { 8, 16, 32 })
        {
            AssertClose(g[r].StraightThrough.call(z), g[r].FadeIn!.call(z), 1e-5);
            using var x = Images(4, r);
            AssertClose(d[r].StraightThrough.call(x), d[r].FadeIn!.call(x), 1e-5);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Fade_in_at_alpha_zero_is_the_lower_resolution_through_the_resampling(bool fusedScale)
    {
        torch.manual_seed(3);
        var g = new ProgressiveGenerator(Tiny);
        var d = new ProgressiveDiscriminator(Tiny with { FusedScale = fusedScale });
        g.SetAlpha(0.0);
        d.SetAlpha(0.0);
        using var z = Latents(4);
        foreach (int r in new[] { 8, 16, 32 })
        {
            // G: the upsampled image of the lower resolution (nearest neighbour: each pixel becomes a 2×2 block).
            var low = g[r / 2].StraightThrough.call(z);
            var upsampled = low.repeat_interleave(2, 2).repeat_interleave(2, 3);
            AssertClose(upsampled, g[r].FadeIn!.call(z), 1e-5);
            // D: the lower resolution's score of the 2×2-averaged image.
            using var x = Images(4, r);
            AssertClose(d[r / 2].StraightThrough.call(nn.functional.avg_pool2d(x, [2, 2])), d[r].FadeIn!.call(x), 1e-5);
        }
    }

    [Fact]
    public void Alpha_out_of_range_is_rejected_by_the_models_too()
    {
        var g = new ProgressiveGenerator(Tiny);
        Assert.Throws<ArgumentOutOfRangeException>(() => { g.SetAlpha(1.5); });
        Assert.Throws<InvalidOperationException>(() => { g[4].Select(fadingIn: true); });
    }

    [Fact]
    public void The_pair_shares_every_parameter_and_a_resolution_reuses_all_lower_layers_but_the_rgb_adapters()
    {
        var g = new ProgressiveGenerator(Tiny);
        var d = new ProgressiveDiscriminator(Tiny);
        foreach (var (straight, fade, lower, lowerFade) in new (nn.Module, nn.Module, nn.Module, nn.Module?)[]
                 {
                     (g[16].StraightThrough, g[16].FadeIn!, g[8].StraightThrough, g[8].FadeIn),
                     (d[16].StraightThrough, d[16].FadeIn!, d[8].StraightThrough, d[8].FadeIn),
                 })
        {
            var inStraight = straight.parameters().ToHashSet(ReferenceEqualityComparer.Instance);
            var inFade = fade.parameters().ToHashSet(ReferenceEqualityComparer.Instance);
            Assert.Superset(inStraight, inFade); // the fade-in model adds the lower RGB adapter…
            var lowerRgb = lower.parameters().Where(p => !inStraight.Contains(p)).ToList();
            Assert.Equal(inFade.Count, inStraight.Count + lowerRgb.Count);
            Assert.Equal(2, lowerRgb.Count); // …which is the only thing of the lower model not reused (weight, bias).
        }
    }

    [Fact]
    public void A_training_step_through_one_model_is_seen_by_its_twin()
    {
        torch.manual_seed(4);
        var g = new ProgressiveGenerator(Tiny);
        g.SetAlpha(0.5);
        using var z = Latents(4);
        var before = g[16].FadeIn!.call(z).detach();
        var lowBefore = g[8].StraightThrough.call(z).detach();
        var optimizer = torch.optim.SGD(g[16].StraightThrough.parameters(), 0.1);
        g[16].StraightThrough.call(z).mean().backward();
        optimizer.step();
        Assert.False(before.allclose(g[16].FadeIn!.call(z)), "the fade-in twin did not see the update");
        Assert.False(lowBefore.allclose(g[8].StraightThrough.call(z)), "the lower resolution did not see the shared update");
    }

    [Fact]
    public void All_resolutions_save_and_load_to_identical_outputs()
    {
        torch.manual_seed(5);
        var g = new ProgressiveGenerator(Tiny);
        var d = new ProgressiveDiscriminator(Tiny);
        string gPath = Path.GetTempFileName(), dPath = Path.GetTempFileName();
        try
        {
            g.save(gPath);
            d.save(dPath);
            torch.manual_seed(6);
            var g2 = new ProgressiveGenerator(Tiny);
            var d2 = new ProgressiveDiscriminator(Tiny);
            using var z = Latents(4);
            Assert.False(g[32].StraightThrough.call(z).allclose(g2[32].StraightThrough.call(z)));
            g2.load(gPath);
            d2.load(dPath);
            g.SetAlpha(0.25); g2.SetAlpha(0.25); d.SetAlpha(0.25); d2.SetAlpha(0.25);
            foreach (int r in new[] { 4, 8, 16, 32 })
            {
                AssertIdentical(g[r].StraightThrough.call(z), g2[r].StraightThrough.call(z));
                using var x = Images(4, r);
                AssertIdentical(d[r].StraightThrough.call(x), d2[r].StraightThrough.call(x));
                if (r > 4)
                {
                    AssertIdentical(g[r].FadeIn!.call(z), g2[r].FadeIn!.call(z));
                    AssertIdentical(d[r].FadeIn!.call(x), d2[r].FadeIn!.call(x));
                }
            }
        }
        finally { File.Delete(gPath); File.Delete(dPath); }
    }

    [Fact]
    public void One_pair_saves_and_loads_on_its_own()
    {
        torch.manual_seed(7);
        var g = new ProgressiveGenerator(Tiny);
        string path = Path.GetTempFileName();
        try
        {
            g[16].FadeIn!.save(path); // the fade-in model holds every parameter of the pair
            torch.manual_seed(8);
            var g2 = new ProgressiveGenerator(Tiny);
            g2[16].FadeIn!.load(path);
            g.SetAlpha(0.6); g2.SetAlpha(0.6);
            using var z = Latents(4);
            AssertIdentical(g[16].FadeIn!.call(z), g2[16].FadeIn!.call(z));
            AssertIdentical(g[16].StraightThrough.call(z), g2[16].StraightThrough.call(z));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Composite_trains_G_through_D_without_touching_D()
    {
        torch.manual_seed(9);
        var g = new ProgressiveGenerator(Tiny);
        var d = new ProgressiveDiscriminator(Tiny);
        var composite = new Composite(g[16].StraightThrough, d[16].StraightThrough);
        var dBefore = d.parameters().Select(p => p.detach().clone()).ToList();
        var gBefore = g[16].StraightThrough.parameters().Select(p => p.detach().clone()).ToList();

        // The optimiser holds D's parameters too: had D received gradients through the composite, it would change.
        var optimizer = torch.optim.Adam(composite.parameters().Concat(d.parameters()), 0.01);
        using var z = Latents(4);
        (-composite.call(z).mean()).backward();
        optimizer.step();

        Assert.All(d.parameters().Zip(dBefore), t => AssertIdentical(t.First, t.Second));
        Assert.All(d.parameters(), p => Assert.True(p.grad is null || p.grad.abs().sum().item<float>() == 0));
        Assert.All(d.parameters(), p => Assert.True(p.requires_grad)); // frozen only for the composite's pass
        Assert.Contains(g[16].StraightThrough.parameters().Zip(gBefore), t => !Identical(t.First, t.Second));
        Assert.Equal(g[16].StraightThrough.parameters().Count(), composite.parameters().Count());
    }

    [Fact]
    public void Composite_rejects_models_of_different_resolutions()
    {
        var e = Assert.Throws<ArgumentException>(() => new Composite(new ProgressiveGenerator(Tiny)[8].StraightThrough, new ProgressiveDiscriminator(Tiny)[16].StraightThrough));
        Assert.Contains("8²", e.Message);
    }

    [Fact]
    public void Discriminator_names_the_expected_shape_for_a_wrong_image()
    {
        var e = Assert.Throws<ArgumentException>(() => new ProgressiveDiscriminator(Tiny)[16].StraightThrough.call(torch.zeros(4, 3, 8, 8)));
        Assert.Contains("16, 16", e.Message);
    }

    [Fact]
    public void Paper_channels_follow_fmap_base_decay_and_max()
    {
        var paper = ProGanConfig.Paper;
        Assert.Equal(new[] { 512, 512, 512, 512, 256, 128, 64, 32, 16 }, Enumerable.Range(0, paper.LevelCount).Select(paper.ChannelsAt));
        Assert.Equal(128, ProGanConfig.Cifar.ChannelsAt(0));
    }

    [Fact]
    public void The_paper_networks_have_the_official_and_the_published_parameter_counts()
    {
        var g = new ProgressiveGenerator(ProGanConfig.Paper, torch.CPU);
        var d = new ProgressiveDiscriminator(ProGanConfig.Paper, torch.CPU);
        static long Count(nn.Module m) => m.parameters().Sum(p => p.numel());

        // The official G_paper / D_paper at 1024² (networks.py, default arguments), counted layer by layer from its
        // layer list: every conv or dense layer has its weights and one bias per output channel (apply_bias).
        static long Nf(int stage) => Math.Min(8192 >> stage, 512);
        static long Conv(long inChannels, long outChannels, int k) => inChannels * outChannels * k * k + outChannels;
        const int log2Resolution = 10, latent = 512, rgb = 3;
        long official = latent * 16 * Nf(1) + Nf(1) + Conv(Nf(1), Nf(1), 3);                     // 4×4: Dense (nf(1) biases), Conv
        for (int res = 3; res <= log2Resolution; res++)
            official += Conv(Nf(res - 2), Nf(res - 1), 3) + Conv(Nf(res - 1), Nf(res - 1), 3);  // Conv0_up, Conv1
        for (int res = 2; res <= log2Resolution; res++) official += Conv(Nf(res - 1), rgb, 1);   // ToRGB_lod, every lod
        Assert.Equal(official, Count(g));

        official = 0;
        for (int res = 2; res <= log2Resolution; res++) official += Conv(rgb, Nf(res - 1), 1);   // FromRGB_lod, every lod
        for (int res = log2Resolution; res >= 3; res--)
            official += Conv(Nf(res - 1), Nf(res - 1), 3) + Conv(Nf(res - 1), Nf(res - 2), 3);  // Conv0, Conv1_down
        official += Conv(Nf(1) + 1, Nf(1), 3) + 16 * Nf(1) * Nf(0) + Nf(0) + Nf(0) + 1;          // 4×4: Conv, Dense0, Dense1
        Assert.Equal(official, Count(d));

        // Table 2 of the paper: 23.1M trainable parameters in each of G and D at 1024² (the straight-through models,
        // without the unused lower toRGB/fromRGB adapters). The official repository prints its totals at run time
        // (print_layers) but states none.
        Assert.Equal(23.1, Count(g[1024].StraightThrough) / 1e6, 1);
        Assert.Equal(23.1, Count(d[1024].StraightThrough) / 1e6, 1);
    }

    [Theory]
    [InlineData(nameof(ProGanConfig.Resolution), 48)]
    [InlineData(nameof(ProGanConfig.LatentSize), 0)]
    [InlineData(nameof(ProGanConfig.MinibatchGroupSize), 0)]
    public void Bad_configuration_names_the_field(string field, int value)
    {
        var config = field switch
        {
            nameof(ProGanConfig.Resolution) => Tiny with { Resolution = value },
            nameof(ProGanConfig.LatentSize) => Tiny with { LatentSize = value },
            _ => Tiny with { MinibatchGroupSize = value },
        };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new ProgressiveGenerator(config));
        Assert.Equal(field, e.ParamName);
        Assert.Contains(value.ToString(), e.Message);
    }
}
