using ProGan.Keras.Backend;
using ProGan.Keras.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ProGan.Keras.Models;

/// <summary>
/// The unit both networks are made of (Appendix A): a weight-scaled convolution, LeakyReLU, and — in the
/// generator only — pixel normalization.
/// </summary>
public sealed class ConvActivation : nn.Module<Tensor, Tensor>
{
    private readonly WeightScaledConv2D conv;
    private readonly PixelNormalization? norm;
    private readonly double slope;

    /// <summary>
    /// Creates the unit; with <paramref name="upscale"/> the convolution reads its input upsampled ×2, with
    /// <paramref name="downscale"/> its output is 2×2-averaged before the bias and the activation
    /// (<see cref="WeightScaledConv2D.Downscale"/>).
    /// </summary>
    public ConvActivation(long inChannels, long outChannels, long kernelSize, double slope, PixelNormalization? norm,
                          bool upscale = false, bool downscale = false)
        : base(nameof(ConvActivation))
    {
        conv = new WeightScaledConv2D(inChannels, outChannels, kernelSize, upscale: upscale, downscale: downscale);
        this.norm = norm;
        this.slope = slope;
        RegisterComponents();
    }

    /// <summary>The convolution.</summary>
    public WeightScaledConv2D Conv => conv;
    /// <summary>The pixel normalization after the activation, or null (the discriminator's units).</summary>
    public PixelNormalization? Norm => norm;
    /// <summary>The LeakyReLU slope.</summary>
    public double Slope => slope;

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        var y = conv.call(x).leaky_relu_(Scalars.Of(slope));
        return norm is null ? y : norm.call(y);
    }
}

/// <summary>
/// The generator's first block (Appendix A, Table 2): the latent, normalized onto the unit hypersphere, goes through a
/// dense layer to 4×4×nf(1) (gain √2/4), LeakyReLU and pixel norm, then one 3×3 convolution unit.
/// </summary>
/// <remarks>
/// As the reference's <c>G_paper</c> 4×4 block (<c>dense</c>, <c>reshape</c> to <c>[N, nf(1), 4, 4]</c>, then
/// <c>apply_bias</c>), the dense layer has no bias of its own: one bias per channel, nf(1) of them, is added after the
/// reshape, so <c>x = lrelu(reshape(dense(pn(z))) + b[c])</c>, then pixel norm.
/// </remarks>
public sealed class GeneratorInputBlock : nn.Module<Tensor, Tensor>
{
    private readonly PixelNormalization latentNorm;
    private readonly WeightScaledDense dense;
#pragma warning disable IDE1006 // TorchSharp names parameters after their state-dict keys.
    private readonly Parameter bias;
#pragma warning restore IDE1006
    private readonly PixelNormalization norm;
    private readonly ConvActivation conv;
    private readonly long channels;
    private readonly double slope;

    /// <summary>Creates the block.</summary>
    public GeneratorInputBlock(ProGanConfig config) : base(nameof(GeneratorInputBlock))
    {
        channels = config.ChannelsAt(0);
        slope = config.LeakyReluSlope;
        latentNorm = new PixelNormalization(config.PixelNormEpsilon);
        dense = new WeightScaledDense(config.InputSize, channels * 16, gain: Math.Sqrt(2.0) / 4, useBias: false);
        bias = new Parameter(torch.zeros(channels));
        norm = new PixelNormalization(config.PixelNormEpsilon);
        conv = new ConvActivation(channels, channels, 3, slope, new PixelNormalization(config.PixelNormEpsilon));
        RegisterComponents();
    }

    /// <summary>The normalization of the latent onto the unit hypersphere.</summary>
    public PixelNormalization LatentNorm => latentNorm;
    /// <summary>The dense layer latent → 4·4·nf(1) (no bias of its own).</summary>
    public WeightScaledDense Dense => dense;
    /// <summary>The per-channel bias added after the reshape, nf(1) values.</summary>
    public Parameter Bias => bias;
    /// <summary>The pixel normalization after the dense layer's activation.</summary>
    public PixelNormalization Norm => norm;
    /// <summary>The 3×3 convolution unit.</summary>
    public ConvActivation Conv => conv;
    /// <summary>Channels of the 4×4 output, nf(1).</summary>
    public long Channels => channels;
    /// <summary>The LeakyReLU slope.</summary>
    public double Slope => slope;

    /// <inheritdoc/>
    public override Tensor forward(Tensor latent)
    {
        // The bias in the activations' type: a float32 bias would promote a bfloat16 generator to float32 (mixed precision).
        using var b = ComputeCast.To(bias, latent.dtype);
        var x = dense.call(latentNorm.call(latent)).view(-1, channels, 4, 4).Plus(b.view(1, -1, 1, 1)); // [N, C, 4, 4]
        x = norm.call(x.leaky_relu_(Scalars.Of(slope)));
        return conv.call(x);
    }
}

/// <summary>
/// A generator growth block (Appendix A): nearest-neighbour ×2 upsampling, then two 3×3 convolution units with
/// LeakyReLU and pixel norm. The upsampling is part of the first convolution (<see cref="WeightScaledConv2D.Upscale"/>),
/// which fuses the two where that is faster.
/// </summary>
public sealed class GeneratorBlock : nn.Module<Tensor, Tensor>
{
    private readonly ConvActivation conv0;
    private readonly ConvActivation conv1;

    /// <summary>Creates the block.</summary>
    public GeneratorBlock(long inChannels, long outChannels, ProGanConfig config) : base(nameof(GeneratorBlock))
    {
        conv0 = new ConvActivation(inChannels, outChannels, 3, config.LeakyReluSlope, new PixelNormalization(config.PixelNormEpsilon), upscale: true);
        conv1 = new ConvActivation(outChannels, outChannels, 3, config.LeakyReluSlope, new PixelNormalization(config.PixelNormEpsilon));
        RegisterComponents();
    }

    /// <summary>The first unit, which reads its input upsampled ×2.</summary>
    public ConvActivation Conv0 => conv0;
    /// <summary>The second unit.</summary>
    public ConvActivation Conv1 => conv1;

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => conv1.call(conv0.call(x));
}

/// <summary>
/// A discriminator block, the mirror of <see cref="GeneratorBlock"/> (Appendix A): two 3×3 convolution units with
/// LeakyReLU and a 2×2 downscale, in the order <see cref="ProGanConfig.FusedScale"/> picks.
/// </summary>
/// <remarks>
/// The reference's <c>D_paper</c> block: <c>Conv0</c>, then <c>conv2d_downscale2d</c> when <c>fused_scale</c> (its
/// default) else <c>downscale2d(conv2d(...))</c>, each convolution followed by <c>apply_bias</c> and LeakyReLU.
/// Fused (<see cref="ProGanConfig.FusedScale"/> true): <c>lrelu(avgpool(conv1(h)) + b1)</c>, the second convolution
/// computed at the output resolution as one stride-2 convolution (<see cref="WeightScaledConv2D.Downscale"/>).
/// Not fused: <c>avgpool(lrelu(conv1(h) + b1))</c>, the paper's Table 2 order. Both start with
/// <c>h = lrelu(conv0(x) + b0)</c>; they differ only in whether the activation comes before or after the pooling.
/// </remarks>
public sealed class DiscriminatorBlock : nn.Module<Tensor, Tensor>
{
    private readonly ConvActivation conv0;
    private readonly ConvActivation conv1;
    private readonly bool fusedScale;

    /// <summary>Creates the block.</summary>
    public DiscriminatorBlock(long inChannels, long outChannels, ProGanConfig config) : base(nameof(DiscriminatorBlock))
    {
        fusedScale = config.FusedScale;
        conv0 = new ConvActivation(inChannels, inChannels, 3, config.LeakyReluSlope, null);
        conv1 = new ConvActivation(inChannels, outChannels, 3, config.LeakyReluSlope, null, downscale: fusedScale);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        var y = conv1.call(conv0.call(x));
        return fusedScale ? y : Resample.Down(y);
    }
}

/// <summary>
/// The discriminator's last block, the mirror of <see cref="GeneratorInputBlock"/> (Appendix A): minibatch stddev
/// (nf(1) + 1 feature maps), a 3×3 convolution unit back to nf(1), a dense layer 4·4·nf(1) → nf(0) with LeakyReLU (the
/// paper's 4×4 convolution), and a linear dense layer (gain 1) to 1 + <see cref="ProGanConfig.LabelSize"/> values per
/// image: the score, then the class logits of a conditional network (the reference's <c>D_paper</c>, whose last layer
/// has <c>1 + label_size</c> outputs).
/// </summary>
public sealed class DiscriminatorOutputBlock : nn.Module<Tensor, Tensor>
{
    private readonly MinibatchStdev stdev;
    private readonly ConvActivation conv;
    private readonly WeightScaledDense dense0;
    private readonly WeightScaledDense dense1;
    private readonly double slope;

    /// <summary>Creates the block.</summary>
    public DiscriminatorOutputBlock(ProGanConfig config) : base(nameof(DiscriminatorOutputBlock))
    {
        long channels = config.ChannelsAt(0);
        slope = config.LeakyReluSlope;
        stdev = new MinibatchStdev(config.MinibatchGroupSize);
        conv = new ConvActivation(channels + 1, channels, 3, slope, null);
        dense0 = new WeightScaledDense(channels * 16, config.FeatureMaps(0));
        dense1 = new WeightScaledDense(config.FeatureMaps(0), 1 + config.LabelSize, gain: 1.0); // score, then class logits
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) =>
        dense1.call(dense0.call(conv.call(stdev.call(x))).leaky_relu_(Scalars.Of(slope)));
}
