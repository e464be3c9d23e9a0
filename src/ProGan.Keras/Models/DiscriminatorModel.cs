using ProGan.Keras.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ProGan.Keras.Models;

/// <summary>
/// The discriminator at one resolution, straight-through or fade-in, the mirror image of <see cref="GeneratorModel"/>:
/// image <c>[N, 3, r, r]</c> → <c>[N, 1 + K]</c>: the score, then the K = <see cref="ProGanConfig.LabelSize"/> class
/// logits of a conditional network (none by default). Layers are shared with every other model of the same
/// <see cref="ProgressiveDiscriminator"/>.
/// </summary>
/// <remarks>
/// Fade-in: <c>h = lerp(fromRGB_low(avgpool(x)), block(fromRGB(x)), α)</c>, then the lower resolution's blocks.
/// Straight-through: <c>h = block(fromRGB(x))</c>, then the same.
/// </remarks>
public sealed class DiscriminatorModel : nn.Module<Tensor, Tensor>, IMixedPrecisionModel
{
    private ScalarType computeType = ScalarType.Float32;
    private readonly ConvActivation from_rgb;
    private readonly ConvActivation? from_rgb_low;
    private readonly ModuleList<DiscriminatorBlock> blocks;
    private readonly DiscriminatorOutputBlock output;
    private readonly WeightedSum? fade;

    internal DiscriminatorModel(int resolution, ConvActivation fromRgb, ConvActivation? fromRgbLow,
                                IEnumerable<DiscriminatorBlock> blocks, DiscriminatorOutputBlock output, WeightedSum? fade)
        : base(fade is null ? $"Discriminator{resolution}" : $"Discriminator{resolution}FadeIn")
    {
        Resolution = resolution;
        from_rgb = fromRgb;
        from_rgb_low = fromRgbLow;
        this.blocks = nn.ModuleList(blocks.ToArray()); // highest resolution first
        this.output = output;
        this.fade = fade;
        RegisterComponents();
    }

    /// <summary>The input resolution r.</summary>
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
    /// The scores of <paramref name="image"/>, computed in <see cref="ComputeType"/> and returned in <paramref name="image"/>'s type.
    /// </summary>
    public override Tensor forward(Tensor image) => MixedPrecision.Forward(image, computeType, Compute, GetName(), nameof(image));

    private Tensor Compute(Tensor image)
    {
        if (image.dim() != 4 || image.shape[2] != Resolution || image.shape[3] != Resolution)
            throw new ArgumentException(
                $"{GetName()} expects images [N, C, {Resolution}, {Resolution}]; got [{string.Join(", ", image.shape)}].", nameof(image));
        if (ChannelsLast) image = Layers.ChannelsLast.To(image); // the convolutions' outputs, and everything after, follow
        Tensor h;
        int first = 0;
        if (fade is null || from_rgb_low is null)
            h = from_rgb.call(image);
        else
        {
            var high = blocks[0].call(from_rgb.call(image));
            var low = from_rgb_low.call(Resample.Down(image));
            h = fade.call(low, high);
            first = 1;
        }
        for (int i = first; i < blocks.Count; i++) h = blocks[i].call(h);
        return output.call(h);
    }
}
