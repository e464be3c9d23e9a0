using ProGan.Keras.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ProGan.Keras.Models;

/// <summary>
/// The generator at one resolution, straight-through or fade-in (Karras et al. 2018, §3, Figure 2):
/// latent <c>[N, latent]</c> → image <c>[N, 3, r, r]</c>. It holds references to layers shared with every other
/// model of the same <see cref="ProgressiveGenerator"/>, so training one trains them all.
/// </summary>
/// <remarks>
/// Fade-in: <c>lerp(upsample(toRGB_low(h)), toRGB(block(h)), α)</c>, where h is the output of the lower
/// resolution's last block. Straight-through: <c>toRGB(block(h))</c>.
/// </remarks>
public sealed class GeneratorModel : nn.Module<Tensor, Tensor>, IMixedPrecisionModel
{
    private ScalarType computeType = ScalarType.Float32;
    private readonly GeneratorInputBlock input;
    private readonly ModuleList<GeneratorBlock> blocks;
    private readonly WeightScaledConv2D to_rgb;
    private readonly WeightScaledConv2D? to_rgb_low;
    private readonly WeightedSum? fade;

    internal GeneratorModel(int resolution, GeneratorInputBlock input, IEnumerable<GeneratorBlock> blocks,
                            WeightScaledConv2D toRgb, WeightScaledConv2D? toRgbLow, WeightedSum? fade)
        : base(fade is null ? $"Generator{resolution}" : $"Generator{resolution}FadeIn")
    {
        Resolution = resolution;
        this.input = input;
        this.blocks = nn.ModuleList(blocks.ToArray());
        to_rgb = toRgb;
        to_rgb_low = toRgbLow;
        this.fade = fade;
        RegisterComponents();
    }

    /// <summary>The output resolution r.</summary>
    public int Resolution { get; }

    /// <summary>The fade-in layer, or null for a straight-through model.</summary>
    public WeightedSum? Fade => fade;

    /// <inheritdoc/>
    /// <remarks>Set for every model of a network at once by <see cref="ProgressiveNetwork{TModel}.ComputeType"/>.</remarks>
    public ScalarType ComputeType { get => computeType; set => computeType = MixedPrecision.Validate(value); }

    /// <inheritdoc/>
    /// <remarks>Set for the models of a network by resolution with <see cref="ProgressiveNetwork{TModel}.ChannelsLastFrom"/>.</remarks>
    public bool ChannelsLast { get; set; }

    /// <summary>
    /// The images of <paramref name="latent"/>, computed in <see cref="ComputeType"/> and returned in <paramref name="latent"/>'s type.
    /// </summary>
    public override Tensor forward(Tensor latent) => MixedPrecision.Forward(latent, computeType, Compute, GetName(), nameof(latent));

    private Tensor Compute(Tensor latent)
    {
        var h = input.call(latent);
        if (ChannelsLast) h = Layers.ChannelsLast.To(h); // the convolutions' outputs, and everything after, follow
        int last = blocks.Count - 1;
        for (int i = 0; i < last; i++) h = blocks[i].call(h);
        if (fade is null || to_rgb_low is null)
            return Contiguous(to_rgb.call(last >= 0 ? blocks[last].call(h) : h));
        var low = Resample.Up(to_rgb_low.call(h));
        var high = to_rgb.call(blocks[last].call(h));
        return Contiguous(fade.call(low, high));
    }

    /// <summary>The images as NCHW-contiguous tensors, whatever layout the activations had.</summary>
    private Tensor Contiguous(Tensor images)
    {
        if (!ChannelsLast) return images;
        using (images) return images.contiguous();
    }
}
