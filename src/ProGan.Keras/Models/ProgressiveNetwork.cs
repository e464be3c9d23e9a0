using ProGan.Keras.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Models;

/// <summary>
/// Everything a progressive network owns: every layer of every resolution (so that saving it saves all resolutions
/// at once), and the straight-through/fade-in pair for each resolution built over those shared layers.
/// Shared plumbing of <see cref="ProgressiveGenerator"/> and <see cref="ProgressiveDiscriminator"/>.
/// </summary>
public abstract class ProgressiveNetwork<TModel> : nn.Module where TModel : nn.Module<Tensor, Tensor>, IMixedPrecisionModel
{
    private readonly List<ModelPair<TModel>> pairs = new();
    private readonly List<WeightedSum> fades = new();
    private ScalarType computeType = ScalarType.Float32;
    private int channelsLastFrom;

    /// <summary>Creates the container.</summary>
    protected ProgressiveNetwork(string name, ProGanConfig config) : base(name) => Config = config.Validate();

    /// <summary>The architecture.</summary>
    public ProGanConfig Config { get; }

    /// <summary>The pairs, one per resolution, lowest first (index = level: 0 → 4²).</summary>
    public IReadOnlyList<ModelPair<TModel>> Pairs => pairs;

    /// <summary>The pair of a resolution (4, 8, …, <see cref="ProGanConfig.Resolution"/>).</summary>
    public ModelPair<TModel> this[int resolution] => pairs[Config.LevelOf(resolution)];

    /// <summary>Sets α of every fade-in model (each model keeps its own <see cref="WeightedSum"/>).</summary>
    public void SetAlpha(double alpha)
    {
        foreach (var fade in fades) fade.Alpha = alpha;
    }

    /// <summary>
    /// The type every model of the network computes its activations in (<see cref="IMixedPrecisionModel"/>): float32
    /// (default), or bfloat16 for mixed precision — parameters, gradients and optimiser state stay float32, inputs and
    /// outputs keep their type.
    /// </summary>
    /// <exception cref="ArgumentException">A type other than float32 or bfloat16.</exception>
    public ScalarType ComputeType
    {
        get => computeType;
        set
        {
            computeType = MixedPrecision.Validate(value);
            foreach (var pair in pairs) ApplySettings(pair);
        }
    }

    /// <summary>
    /// Whether every model of the network lays its activations out channels-last (<see cref="IMixedPrecisionModel.ChannelsLast"/>):
    /// <see cref="ChannelsLastFrom"/> at 4; setting false sets <see cref="ChannelsLastFrom"/> to 0 (NCHW throughout).
    /// False by default. The function computed is the same in either layout (up to float rounding).
    /// </summary>
    public bool ChannelsLast
    {
        get => channelsLastFrom is > 0 and <= 4;
        set => ChannelsLastFrom = value ? 4 : 0;
    }

    /// <summary>
    /// The lowest resolution whose models lay their activations out channels-last (NHWC,
    /// <see cref="IMixedPrecisionModel.ChannelsLast"/>); lower resolutions stay NCHW. 0 (default): none. On a 2-core
    /// AVX-512 CPU (libtorch 2.10's oneDNN) channels-last paid ×1.02–1.07 at 16²–32² and ×1.11–1.14 at 64² for the
    /// CPU preset, in float32 and in bfloat16, and lost at 8² (×0.87); docs/benchmark.md.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A negative resolution.</exception>
    public int ChannelsLastFrom
    {
        get => channelsLastFrom;
        set
        {
            if (value < 0) throw new ArgumentOutOfRangeException(nameof(ChannelsLastFrom), value, "ChannelsLastFrom must be a resolution (4, 8, …), or 0 for none.");
            channelsLastFrom = value;
            foreach (var pair in pairs) ApplySettings(pair);
        }
    }

    /// <summary>Gives both models of <paramref name="pair"/> the network's compute type and layout.</summary>
    private void ApplySettings(ModelPair<TModel> pair)
    {
        bool nhwc = channelsLastFrom > 0 && pair.Resolution >= channelsLastFrom;
        pair.StraightThrough.ComputeType = computeType;
        pair.StraightThrough.ChannelsLast = nhwc;
        if (pair.FadeIn is not null)
        {
            pair.FadeIn.ComputeType = computeType;
            pair.FadeIn.ChannelsLast = nhwc;
        }
    }

    /// <summary>Registers the pair of the next level.</summary>
    protected void AddPair(int resolution, Func<WeightedSum?, TModel> build)
    {
        WeightedSum? fade = pairs.Count == 0 ? null : new WeightedSum();
        if (fade is not null) fades.Add(fade);
        var pair = new ModelPair<TModel>(resolution, build(null), fade is null ? null : build(fade));
        ApplySettings(pair);
        pairs.Add(pair);
    }
}

/// <summary>
/// Builds the ProGAN generator (Appendix A, <c>G_paper</c>): for every resolution 4², 8², …, a pair of
/// straight-through and fade-in models over one set of shared layers.
/// </summary>
public sealed class ProgressiveGenerator : ProgressiveNetwork<GeneratorModel>
{
    private readonly GeneratorInputBlock input;
    private readonly TorchSharp.Modules.ModuleList<GeneratorBlock> blocks;
    private readonly TorchSharp.Modules.ModuleList<WeightScaledConv2D> to_rgb;

    /// <summary>Builds every resolution's pair on <paramref name="device"/> (default: <see cref="Backend.TorchBackend.Device"/>).</summary>
    public ProgressiveGenerator(ProGanConfig config, Device? device = null) : base(nameof(ProgressiveGenerator), config)
    {
        input = new GeneratorInputBlock(Config);
        blocks = nn.ModuleList<GeneratorBlock>();
        to_rgb = nn.ModuleList<WeightScaledConv2D>();
        for (int level = 0; level < Config.LevelCount; level++)
        {
            if (level > 0) blocks.Add(new GeneratorBlock(Config.ChannelsAt(level - 1), Config.ChannelsAt(level), Config));
            to_rgb.Add(new WeightScaledConv2D(Config.ChannelsAt(level), Config.ImageChannels, 1, gain: 1.0));
            int l = level;
            AddPair(Config.ResolutionOf(level), fade => new GeneratorModel(
                Config.ResolutionOf(l), input, blocks.Take(l), to_rgb[l], fade is null ? null : to_rgb[l - 1], fade));
        }
        RegisterComponents();
        this.to(device ?? Backend.TorchBackend.Device);
    }

    /// <summary>The 4×4 input block, shared by every resolution.</summary>
    public GeneratorInputBlock Input => input;

    /// <summary>The growth blocks: <c>Blocks[l − 1]</c> takes level l − 1 up to level l.</summary>
    public IReadOnlyList<GeneratorBlock> Blocks => blocks.AsReadOnly();

    /// <summary>The toRGB layer of every level (1×1, gain 1).</summary>
    public IReadOnlyList<WeightScaledConv2D> ToRgb => to_rgb.AsReadOnly();
}

/// <summary>
/// Builds the ProGAN discriminator (Appendix A, <c>D_paper</c>), the mirror image of <see cref="ProgressiveGenerator"/>: for every
/// resolution a pair of straight-through and fade-in models over one set of shared layers.
/// </summary>
public sealed class ProgressiveDiscriminator : ProgressiveNetwork<DiscriminatorModel>
{
    private readonly DiscriminatorOutputBlock output;
    private readonly TorchSharp.Modules.ModuleList<DiscriminatorBlock> blocks;
    private readonly TorchSharp.Modules.ModuleList<ConvActivation> from_rgb;

    /// <summary>Builds every resolution's pair on <paramref name="device"/> (default: <see cref="Backend.TorchBackend.Device"/>).</summary>
    public ProgressiveDiscriminator(ProGanConfig config, Device? device = null) : base(nameof(ProgressiveDiscriminator), config)
    {
        output = new DiscriminatorOutputBlock(Config);
        blocks = nn.ModuleList<DiscriminatorBlock>();
        from_rgb = nn.ModuleList<ConvActivation>();
        for (int level = 0; level < Config.LevelCount; level++)
        {
            // blocks[l - 1] takes level l down to level l − 1.
            if (level > 0) blocks.Add(new DiscriminatorBlock(Config.ChannelsAt(level), Config.ChannelsAt(level - 1), Config));
            from_rgb.Add(new ConvActivation(Config.ImageChannels, Config.ChannelsAt(level), 1, Config.LeakyReluSlope, null));
            int l = level;
            AddPair(Config.ResolutionOf(level), fade => new DiscriminatorModel(
                Config.ResolutionOf(l), from_rgb[l], fade is null ? null : from_rgb[l - 1],
                blocks.Take(l).Reverse(), output, fade));
        }
        RegisterComponents();
        this.to(device ?? Backend.TorchBackend.Device);
    }
}
