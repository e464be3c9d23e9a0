namespace ProGan.Keras.Models;

/// <summary>
/// The architecture of a ProGAN generator/discriminator pair, with the reference implementation's defaults
/// (Karras et al. 2018, Appendix A; <c>G_paper</c>/<c>D_paper</c>). Immutable: presets are <c>with</c> copies.
/// </summary>
public sealed record ProGanConfig
{
    /// <summary>Latent vector length (512 in the paper).</summary>
    public int LatentSize { get; init; } = 512;

    /// <summary>Final resolution, a power of two ≥ 4 (1024 in the paper). Models exist for every 4·2^k up to it.</summary>
    public int Resolution { get; init; } = 1024;

    /// <summary>Image channels (3 for RGB).</summary>
    public int ImageChannels { get; init; } = 3;

    /// <summary><c>fmap_base</c>: overall multiplier of the feature maps per stage.</summary>
    public int FmapBase { get; init; } = 8192;

    /// <summary><c>fmap_decay</c>: log2 of the feature-map reduction when the resolution doubles.</summary>
    public double FmapDecay { get; init; } = 1.0;

    /// <summary><c>fmap_max</c>: upper bound on feature maps at any stage.</summary>
    public int FmapMax { get; init; } = 512;

    /// <summary>Minibatch-stddev group size (4 in the reference).</summary>
    public int MinibatchGroupSize { get; init; } = 4;

    /// <summary>Slope of LeakyReLU for negative inputs (0.2).</summary>
    public double LeakyReluSlope { get; init; } = 0.2;

    /// <summary>ε of pixel normalization (1e-8).</summary>
    public double PixelNormEpsilon { get; init; } = 1e-8;

    /// <summary>
    /// <c>fused_scale</c> of <c>D_paper</c> (true in the reference): each discriminator block's second convolution and
    /// its 2×2 downscale are one stride-2 convolution (<c>conv2d_downscale2d</c>), with bias and LeakyReLU after the
    /// downscale: <c>lrelu(avgpool(conv(x)) + b)</c>. False: the paper's Table 2 order, the reference's
    /// <c>downscale2d(lrelu(conv(x) + b))</c>, a different function. The generator is unaffected: its fused
    /// <c>upscale2d_conv2d</c> equals upsampling then convolving, so it always fuses where that is faster.
    /// </summary>
    public bool FusedScale { get; init; } = true;

    /// <summary>
    /// <c>label_size</c> of the reference (0: unconditional). With K &gt; 0 classes the generator's input is the latent
    /// followed by a one-hot label, K values (<see cref="ConditionalInput"/>), pixel-normalized together as the
    /// reference normalizes <c>concat([latents, labels])</c>, and the discriminator returns 1 + K values per image: the
    /// score, then the class logits of the auxiliary classifier (AC-GAN, Odena et al. 2017).
    /// </summary>
    public int LabelSize { get; init; }

    /// <summary>The generator's input width: <see cref="LatentSize"/> + <see cref="LabelSize"/>.</summary>
    public int InputSize => LatentSize + LabelSize;

    /// <summary>The paper's networks for 1024² (CelebA-HQ).</summary>
    public static ProGanConfig Paper { get; } = new();

    /// <summary>The reference's CIFAR-10 networks: latent 128, fmap_base 4096, fmap_max 128 (a good small preset).</summary>
    public static ProGanConfig Cifar { get; } = new() { LatentSize = 128, FmapBase = 4096, FmapMax = 128, Resolution = 32 };

    /// <summary>
    /// A copy with some fields replaced: the C# <c>with</c> expression for languages that lack it (F#).
    /// </summary>
    public ProGanConfig With(int? latentSize = null, int? resolution = null, int? imageChannels = null, int? fmapBase = null,
                             double? fmapDecay = null, int? fmapMax = null, int? minibatchGroupSize = null,
                             double? leakyReluSlope = null, double? pixelNormEpsilon = null, bool? fusedScale = null,
                             int? labelSize = null) => this with
    {
        LatentSize = latentSize ?? LatentSize,
        Resolution = resolution ?? Resolution,
        ImageChannels = imageChannels ?? ImageChannels,
        FmapBase = fmapBase ?? FmapBase,
        FmapDecay = fmapDecay ?? FmapDecay,
        FmapMax = fmapMax ?? FmapMax,
        MinibatchGroupSize = minibatchGroupSize ?? MinibatchGroupSize,
        LeakyReluSlope = leakyReluSlope ?? LeakyReluSlope,
        PixelNormEpsilon = pixelNormEpsilon ?? PixelNormEpsilon,
        FusedScale = fusedScale ?? FusedScale,
        LabelSize = labelSize ?? LabelSize,
    };

    /// <summary>Number of resolutions 4², 8², …, Resolution².</summary>
    public int LevelCount => Log2(Resolution) - 1;

    /// <summary>The resolution of level <paramref name="level"/> (0 → 4², 1 → 8², …).</summary>
    public int ResolutionOf(int level) => 4 << level;

    /// <summary><c>nf(stage) = min(fmap_base / 2^(stage·fmap_decay), fmap_max)</c>.</summary>
    public int FeatureMaps(int stage) => (int)Math.Min(FmapBase / Math.Pow(2.0, stage * FmapDecay), FmapMax);

    /// <summary>Feature maps at level <paramref name="level"/>: nf(log2(res) − 1) = nf(level + 1).</summary>
    public int ChannelsAt(int level) => FeatureMaps(level + 1);

    /// <summary>The level of a resolution (4 → 0, 8 → 1, …).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a power of two between 4 and <see cref="Resolution"/>.</exception>
    public int LevelOf(int resolution)
    {
        if (resolution < 4 || resolution > Resolution || (resolution & (resolution - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(resolution), resolution,
                $"resolution must be a power of two from 4 to {Resolution}.");
        return Log2(resolution) - 2;
    }

    /// <summary>Checks every field; throws an error naming the first bad one and its allowed range.</summary>
    public ProGanConfig Validate()
    {
        Require(LatentSize >= 1, nameof(LatentSize), LatentSize, "≥ 1");
        Require(Resolution >= 4 && (Resolution & (Resolution - 1)) == 0, nameof(Resolution), Resolution, "a power of two ≥ 4");
        Require(ImageChannels >= 1, nameof(ImageChannels), ImageChannels, "≥ 1");
        Require(FmapBase >= 1, nameof(FmapBase), FmapBase, "≥ 1");
        Require(FmapDecay >= 0 && double.IsFinite(FmapDecay), nameof(FmapDecay), FmapDecay, "a finite value ≥ 0");
        Require(FmapMax >= 1, nameof(FmapMax), FmapMax, "≥ 1");
        Require(MinibatchGroupSize >= 1, nameof(MinibatchGroupSize), MinibatchGroupSize, "≥ 1");
        Require(LabelSize >= 0, nameof(LabelSize), LabelSize, "≥ 0 (0: unconditional)");
        Require(LeakyReluSlope is >= 0 and < 1, nameof(LeakyReluSlope), LeakyReluSlope, "[0, 1)");
        Require(PixelNormEpsilon >= 0, nameof(PixelNormEpsilon), PixelNormEpsilon, "≥ 0");
        for (int level = 0; level < LevelCount; level++)
            Require(ChannelsAt(level) >= 1, nameof(FmapBase), FmapBase,
                $"large enough that every resolution up to {Resolution} has ≥ 1 feature map (nf({level + 1}) is 0)");
        return this;

        static void Require(bool ok, string name, object value, string range)
        {
            if (!ok) throw new ArgumentOutOfRangeException(name, value, $"ProGanConfig.{name} = {value} is invalid; it must be {range}.");
        }
    }

    private static int Log2(int x) => System.Numerics.BitOperations.Log2((uint)x);
}
