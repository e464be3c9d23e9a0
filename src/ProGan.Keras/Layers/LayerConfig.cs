using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Layers;

/// <summary>
/// A layer whose hyperparameters can be read back and used to rebuild it, as Keras <c>get_config</c> /
/// <c>from_config</c>: <c>LayerConfig.FromConfig(name, layer.GetConfig())</c> with the same state dict gives the same
/// layer. Keys are the constructor's argument names.
/// </summary>
public interface ILayerConfig
{
    /// <summary>The constructor arguments that rebuild this layer.</summary>
    IReadOnlyDictionary<string, object> GetConfig();
}

/// <summary>Rebuilding layers from their <see cref="ILayerConfig.GetConfig"/> dictionaries.</summary>
public static class LayerConfig
{
    /// <summary>Rebuilds a layer of the named class (<c>GetType().Name</c>) from its configuration.</summary>
    /// <exception cref="ArgumentException">An unknown layer name, or a missing or malformed argument (named).</exception>
    public static nn.Module FromConfig(string layer, IReadOnlyDictionary<string, object> config) => layer switch
    {
        nameof(PixelNormalization) => new PixelNormalization(Double(config, "epsilon")),
        nameof(WeightedSum) => new WeightedSum(Double(config, "alpha")),
        nameof(MinibatchStdev) => new MinibatchStdev((int)Long(config, "groupSize"), Double(config, "epsilon")),
        nameof(WeightScaling) => new WeightScaling(Long(config, "fanIn"), Double(config, "gain")),
        nameof(WeightScaledConv2D) => new WeightScaledConv2D(Long(config, "inChannels"), Long(config, "outChannels"),
            Long(config, "kernelSize"), Double(config, "gain"), Bool(config, "useBias"),
            Flag(config, "upscale"), Flag(config, "downscale")),
        nameof(WeightScaledDense) => new WeightScaledDense(Long(config, "inFeatures"), Long(config, "outFeatures"),
            Double(config, "gain"), Bool(config, "useBias")),
        _ => throw new ArgumentException(
            $"Unknown layer '{layer}'; expected one of PixelNormalization, WeightedSum, MinibatchStdev, WeightScaling, WeightScaledConv2D, WeightScaledDense.",
            nameof(layer)),
    };

    private static object Value(IReadOnlyDictionary<string, object> config, string key) =>
        config.TryGetValue(key, out var value) && value is not null
            ? value
            : throw new ArgumentException($"The layer configuration lacks '{key}'.", nameof(config));

    private static double Double(IReadOnlyDictionary<string, object> c, string key) => Convert(c, key, v => System.Convert.ToDouble(v, CultureInfo.InvariantCulture));
    private static long Long(IReadOnlyDictionary<string, object> c, string key) => Convert(c, key, v => System.Convert.ToInt64(v, CultureInfo.InvariantCulture));
    private static bool Bool(IReadOnlyDictionary<string, object> c, string key) => Convert(c, key, v => System.Convert.ToBoolean(v, CultureInfo.InvariantCulture));

    /// <summary>An optional boolean argument: false where the configuration predates it.</summary>
    private static bool Flag(IReadOnlyDictionary<string, object> c, string key) => c.ContainsKey(key) && Bool(c, key);

    private static T Convert<T>(IReadOnlyDictionary<string, object> config, string key, Func<object, T> convert)
    {
        var value = Value(config, key);
        try { return convert(value); }
        catch (Exception e) when (e is FormatException or InvalidCastException or OverflowException)
        {
            throw new ArgumentException($"The layer configuration's '{key}' = {value} is not a {typeof(T).Name}.", nameof(config), e);
        }
    }
}
