using ProGan.Keras.Layers;
using static ProGan.Keras.Tests.Reference;

namespace ProGan.Keras.Tests.Layers;

public class LayerConfigTests
{
    private const string DownscalingConv = nameof(WeightScaledConv2D) + " (downscale)";

    public static TheoryData<string> Layers() => new()
    {
        nameof(PixelNormalization), nameof(WeightedSum), nameof(MinibatchStdev), nameof(WeightScaling),
        nameof(WeightScaledConv2D), DownscalingConv, nameof(WeightScaledDense),
    };

    private static (nn.Module layer, Func<nn.Module, Tensor> run) Make(string name)
    {
        using var x = torch.randn(4, 3, 6, 6, generator: torch.manual_seed(1));
        var x2 = torch.randn(4, 3, 6, 6, generator: torch.manual_seed(2));
        var input = x.clone();
        return name switch
        {
            nameof(PixelNormalization) => (new PixelNormalization(1e-6), m => ((PixelNormalization)m).call(input)),
            nameof(WeightedSum) => (new WeightedSum(0.35), m => ((WeightedSum)m).call(input, x2)),
            nameof(MinibatchStdev) => (new MinibatchStdev(2, 1e-4), m => ((MinibatchStdev)m).call(input)),
            nameof(WeightScaling) => (new WeightScaling(27, 0.7), m => ((WeightScaling)m).call(input)),
            nameof(WeightScaledConv2D) => (new WeightScaledConv2D(3, 5, 3, gain: 1.3, useBias: false, upscale: true), m => ((WeightScaledConv2D)m).call(input)),
            DownscalingConv => (new WeightScaledConv2D(3, 5, 3, gain: 0.8, downscale: true), m => ((WeightScaledConv2D)m).call(input)),
            _ => (new WeightScaledDense(108, 7, gain: 0.9), m => ((WeightScaledDense)m).call(input)),
        };
    }

    [Theory]
    [MemberData(nameof(Layers))]
    public void A_layer_rebuilt_from_its_config_and_state_dict_gives_the_same_output(string name)
    {
        var (layer, run) = Make(name);
        var config = ((ILayerConfig)layer).GetConfig();
        var rebuilt = LayerConfig.FromConfig(layer.GetType().Name, config);
        Assert.Equal(config, ((ILayerConfig)rebuilt).GetConfig());
        rebuilt.load_state_dict(layer.state_dict());
        AssertIdentical(run(layer), run(rebuilt));
    }

    [Fact]
    public void Config_values_survive_a_trip_through_strings_and_bad_ones_are_named()
    {
        var config = new Dictionary<string, object> { ["inFeatures"] = "12", ["outFeatures"] = 3L, ["gain"] = "1.5", ["useBias"] = "false" };
        var dense = (WeightScaledDense)LayerConfig.FromConfig(nameof(WeightScaledDense), config);
        Assert.Equal(1.5, dense.Gain);
        Assert.False(dense.UseBias);
        config["gain"] = "loud";
        Assert.Contains("'gain'", Assert.Throws<ArgumentException>(() => LayerConfig.FromConfig(nameof(WeightScaledDense), config)).Message);
        Assert.Contains("Unknown layer 'Dropout'", Assert.Throws<ArgumentException>(() => LayerConfig.FromConfig("Dropout", config)).Message);
    }
}
