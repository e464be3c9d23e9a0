using ProGan.Keras.Models;
using static ProGan.Keras.Tests.Reference;

namespace ProGan.Keras.Tests.Models;

/// <summary>
/// The blocks against the official <c>networks.py</c> (<c>G_paper</c>, <c>D_paper</c>), rebuilt here from plain torch
/// operations and the blocks' own parameters (read by their state-dict names).
/// </summary>
public class OfficialNetworkTests
{
    private const double Slope = 0.2;
    private static readonly double Sqrt2 = Math.Sqrt(2.0);

    /// <summary>The module's parameters by state-dict name, every bias first drawn from N(0, 1) so that it matters.</summary>
    private static Dictionary<string, Tensor> RandomBiases(nn.Module module, int seed)
    {
        var parameters = module.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var random = torch.manual_seed(seed);
        using (torch.no_grad())
            foreach (var (_, p) in parameters.Where(p => p.Key.EndsWith("bias")))
                p.normal_(generator: random);
        return parameters;
    }

    private static Tensor Lrelu(Tensor x) => nn.functional.leaky_relu(x, Slope);
    private static Tensor PixelNorm(Tensor x) => x * (x.square().mean([1], keepdim: true) + 1e-8).rsqrt();
    private static Tensor PerChannel(Tensor bias) => bias.view(1, -1, 1, 1);

    /// <summary>A 3×3 "same" convolution with equalized learning rate (gain √2), without its bias.</summary>
    private static Tensor Conv3(Tensor x, Tensor weight) =>
        nn.functional.conv2d(x, weight * (Sqrt2 / Math.Sqrt(weight.shape[1] * 9)), padding: [1, 1]);

    [Theory]
    [InlineData(true, 8)]
    [InlineData(true, 16)] // from 16² the downscaling convolution is one stride-2 convolution
    [InlineData(false, 8)]
    [InlineData(false, 16)]
    public void A_discriminator_block_is_the_official_block_of_its_fused_scale(bool fusedScale, int side)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(21);
        var block = new DiscriminatorBlock(6, 4, ModelTests.Tiny with { FusedScale = fusedScale });
        var p = RandomBiases(block, 21);
        var x = torch.randn([4, 6, side, side], generator: torch.manual_seed(22));

        // D_paper: Conv0 = lrelu(conv + b); then Conv1_down = lrelu(conv2d_downscale2d + b) when fused_scale,
        // else downscale2d(lrelu(Conv1 + b)).
        var h = Lrelu(Conv3(x, p["conv0.conv.weight"]) + PerChannel(p["conv0.conv.bias"]));
        var conv1 = Conv3(h, p["conv1.conv.weight"]);
        var b1 = PerChannel(p["conv1.conv.bias"]);
        var expected = fusedScale
            ? Lrelu(nn.functional.avg_pool2d(conv1, [2, 2]) + b1)
            : nn.functional.avg_pool2d(Lrelu(conv1 + b1), [2, 2]);
        AssertClose(expected, block.call(x), 1e-5);
    }

    [Fact]
    public void The_two_discriminator_orders_share_parameters_but_are_different_functions()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(23);
        var fused = new DiscriminatorBlock(6, 4, ModelTests.Tiny);
        var separate = new DiscriminatorBlock(6, 4, ModelTests.Tiny with { FusedScale = false });
        RandomBiases(fused, 23);
        separate.load_state_dict(fused.state_dict()); // same names and shapes: only the order differs
        var x = torch.randn([4, 6, 8, 8], generator: torch.manual_seed(24));
        Assert.True(ProGanConfig.Paper.FusedScale, "the official default is fused_scale = True");
        Assert.False(fused.call(x).allclose(separate.call(x), rtol: 1e-3, atol: 1e-3));
    }

    [Fact]
    public void The_generator_input_block_adds_one_bias_per_channel_after_the_reshape()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(25);
        var config = ModelTests.Tiny;
        long channels = config.ChannelsAt(0), latent = config.LatentSize;
        var block = new GeneratorInputBlock(config);
        var p = RandomBiases(block, 25);
        Assert.Equal(new[] { "bias", "conv.conv.bias", "conv.conv.weight", "dense.weight" }, p.Keys.Order());
        Assert.Equal(new[] { channels }, p["bias"].shape); // nf(1) biases, not 16·nf(1)
        var z = torch.randn([4, latent], generator: torch.manual_seed(26));

        // G_paper 4×4: pixel_norm(latents); dense (gain √2/4, no bias); reshape to [N, nf(1), 4, 4]; apply_bias (one per
        // channel); lrelu; pixel norm; then Conv: pixel_norm(lrelu(conv + b)).
        var dense = nn.functional.linear(PixelNorm(z), p["dense.weight"] * (Sqrt2 / 4 / Math.Sqrt(latent)));
        var x = PixelNorm(Lrelu(dense.reshape(4, channels, 4, 4) + PerChannel(p["bias"])));
        var expected = PixelNorm(Lrelu(Conv3(x, p["conv.conv.weight"]) + PerChannel(p["conv.conv.bias"])));
        AssertClose(expected, block.call(z), 1e-5);
    }
}
