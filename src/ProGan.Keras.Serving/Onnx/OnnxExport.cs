using System.Globalization;
using System.Text.Json;
using Google.Protobuf;
using ProGan.Keras.IO;
using ProGan.Keras.Layers;
using ProGan.Keras.Models;
using ProGan.Keras.Serving.Onnx.Proto;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Serving.Onnx;

/// <summary>What an ONNX export writes besides the graph.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>
    /// Whether the output is clipped to [−1, 1] (<c>Clip</c>), so that a consumer maps it to pixels directly; true by
    /// default. False gives the network's raw output, as <see cref="TrainedGenerator.Generate(Tensor, GeneratorPosition?, int?)"/> returns it.
    /// </summary>
    public bool ClipOutput { get; init; } = true;

    /// <summary>More <c>metadata_props</c> entries (they override the exporter's own of the same key).</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
}

/// <summary>
/// Writes one model of a <see cref="ProgressiveGenerator"/> as an ONNX model (opset <see cref="Opset"/>, IR version
/// <see cref="IrVersion"/>) that any ONNX Runtime runs: input <c>latent</c> <c>[batch, latent_size]</c> with a dynamic
/// batch dimension, output <c>image</c> <c>[batch, channels, r, r]</c> in [−1, 1].
/// </summary>
/// <remarks>
/// TorchSharp has no ONNX exporter, so the graph is built from the modules, operator for operator as their forward
/// passes compute: pixel norm as <c>Mul</c>/<c>ReduceMean</c>/<c>Add</c>/<c>Sqrt</c>/<c>Div</c>, the dense layer as
/// <c>Gemm</c>, convolutions as <c>Conv</c>, the upsample-then-convolve as <c>Resize</c> (nearest) + <c>Conv</c> below
/// <see cref="WeightScaledConv2D.FusedUpscaleMinInputSize"/> and as the fused stride-2 <c>ConvTranspose</c> with
/// <see cref="WeightScaledConv2D.UpscaleKernel"/> from there, <c>LeakyRelu</c>, and the fade-in as
/// <c>low + α·(high − low)</c> with α fixed. The equalized-learning-rate constants are folded into the stored
/// weights (c·w, computed as the layers compute it), so the model holds plain convolution weights.
/// </remarks>
public static class OnnxExport
{
    /// <summary>The ONNX operator set the models use.</summary>
    public const int Opset = 17;

    /// <summary>The ONNX IR version of the files (8: ONNX 1.12–1.13, the release of opset 17).</summary>
    public const long IrVersion = 8;

    /// <summary>The model's input name.</summary>
    public const string InputName = "latent";

    /// <summary>The name of a conditional generator's second input: the class, one-hot <c>[batch, LabelSize]</c>.</summary>
    public const string LabelName = "label";

    /// <summary>The model's output name.</summary>
    public const string OutputName = "image";

    /// <summary>The ONNX model of <paramref name="generator"/> at <paramref name="at"/>, serialized.</summary>
    public static byte[] ToBytes(ProgressiveGenerator generator, GeneratorPosition at, OnnxExportOptions? options = null) =>
        Build(generator, at, options ?? new OnnxExportOptions()).ToByteArray();

    /// <summary>Writes the ONNX model of <paramref name="generator"/> at <paramref name="at"/> to <paramref name="path"/>, atomically.</summary>
    public static void Save(string path, ProgressiveGenerator generator, GeneratorPosition at, OnnxExportOptions? options = null) =>
        AtomicFile.WriteAllBytes(path, ToBytes(generator, at, options));

    /// <summary>The producer name every exported model carries.</summary>
    public const string ProducerName = "ProGan.Keras.Serving";

    /// <summary>
    /// Whether <paramref name="path"/> is an ONNX model this library exported (its producer name): what an export may
    /// replace without <c>--force</c>.
    /// </summary>
    public static bool IsExport(string path)
    {
        if (!PathKinds.IsRegular(path)) return false;
        try
        {
            using var stream = File.OpenRead(path);
            return ModelProto.Parser.ParseFrom(stream).ProducerName == ProducerName;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Google.Protobuf.InvalidProtocolBufferException) { return false; }
    }

    private static ModelProto Build(ProgressiveGenerator generator, GeneratorPosition at, OnnxExportOptions options)
    {
        var config = generator.Config;
        at.Validate(config);
        int level = config.LevelOf(at.Resolution);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var g = new OnnxGraph();
        g.Proto.Name = $"ProGAN generator {at}";
        g.Proto.Input.Add(OnnxGraph.Value(InputName, "batch", config.LatentSize));
        // A conditional generator takes its class as a second input, one-hot [batch, K], after the latent.
        if (config.LabelSize > 0) g.Proto.Input.Add(OnnxGraph.Value(LabelName, "batch", config.LabelSize));
        g.Proto.Output.Add(OnnxGraph.Value(OutputName, "batch", config.ImageChannels, at.Resolution, at.Resolution));

        // The input block: z normalised, dense to 4·4·nf(1), reshape, per-channel bias, LReLU, pixel norm, conv unit.
        var input = generator.Input;
        string combined = config.LabelSize > 0 ? g.Node("Concat", [InputName, LabelName], OnnxGraph.Int("axis", 1)) : InputName;
        string x = PixelNorm(g, combined, input.LatentNorm.Epsilon);
        x = g.Node("Gemm", [x, g.Constant("dense_weight", input.Dense.Scaling.call(input.Dense.Weight))], OnnxGraph.Int("transB", 1));
        x = g.Node("Reshape", [x, g.Int64s("shape", -1, input.Channels, 4, 4)]);
        x = g.Node("Add", [x, g.Constant("dense_bias", input.Bias.view(1, -1, 1, 1))]);
        x = g.Node("LeakyRelu", [x], OnnxGraph.Float("alpha", (float)input.Slope));
        x = PixelNorm(g, x, input.Norm.Epsilon);
        x = Unit(g, x, input.Conv, 4);

        // Growth blocks up to the one below the target level; the last block is shared by both paths of a fade-in.
        int size = 4;
        for (int i = 0; i < level - 1; i++, size *= 2) x = Block(g, x, generator.Blocks[i], size);
        string image;
        if (level == 0) image = Conv(g, x, generator.ToRgb[0], size);
        else
        {
            string high = Conv(g, Block(g, x, generator.Blocks[level - 1], size), generator.ToRgb[level], size * 2);
            if (!at.FadeIn) image = high;
            else
            {
                // WeightedSum: lerp(upsample(toRGB_low(h)), toRGB(block(h)), α) = low + α·(high − low).
                string low = Upsample(g, Conv(g, x, generator.ToRgb[level - 1], size));
                string difference = g.Node("Sub", [high, low]);
                string scaled = g.Node("Mul", [difference, g.Constant("alpha", [(float)at.Alpha])]);
                image = g.Node("Add", [low, scaled]);
            }
        }
        if (options.ClipOutput) g.Node("Clip", [image, g.Constant("min", [-1f]), g.Constant("max", [1f])]);
        else g.Node("Identity", [image]);
        g.NameLastOutput(OutputName);

        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = ProducerName,
            ProducerVersion = CheckpointFile.LibraryVersion,
            Domain = "progan.keras",
            ModelVersion = 1,
            DocString = $"ProGAN generator (Karras et al. 2018), {at}: latent [batch, {config.LatentSize}] -> image [batch, {config.ImageChannels}, {at.Resolution}, {at.Resolution}] in [-1, 1].",
            Graph = g.Proto,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        var metadata = new Dictionary<string, string>
        {
            ["resolution"] = at.Resolution.ToString(CultureInfo.InvariantCulture),
            ["fade_in"] = at.FadeIn ? "true" : "false",
            ["alpha"] = at.Alpha.ToString("R", CultureInfo.InvariantCulture),
            ["latent_size"] = config.LatentSize.ToString(CultureInfo.InvariantCulture),
            ["label_size"] = config.LabelSize.ToString(CultureInfo.InvariantCulture),
            ["image_channels"] = config.ImageChannels.ToString(CultureInfo.InvariantCulture),
            ["clip_output"] = options.ClipOutput ? "true" : "false",
            ["architecture"] = JsonSerializer.Serialize(config),
        };
        // A conditional generator's second input, described where every runtime's metadata reader finds it.
        if (config.LabelSize > 0)
            metadata["inputs"] = $"{InputName}: float32 [batch, {config.LatentSize}] drawn from N(0, I); " +
                                 $"{LabelName}: float32 [batch, {config.LabelSize}], one-hot: the class of each image (column i is class i; class_names, where given, names them)";
        foreach (var (key, value) in options.Metadata ?? new Dictionary<string, string>()) metadata[key] = value;
        foreach (var (key, value) in metadata) model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return model;
    }

    /// <summary>Pixel norm over the channel axis: x / sqrt(mean(x², axis 1) + ε).</summary>
    private static string PixelNorm(OnnxGraph g, string x, double epsilon)
    {
        string square = g.Node("Mul", [x, x]);
        string mean = g.Node("ReduceMean", [square], OnnxGraph.Ints("axes", 1), OnnxGraph.Int("keepdims", 1));
        string root = g.Node("Sqrt", [g.Node("Add", [mean, g.Constant("epsilon", [(float)epsilon])])]);
        return g.Node("Div", [x, root]);
    }

    /// <summary>A growth block: two units, the first reading its input upsampled ×2.</summary>
    private static string Block(OnnxGraph g, string x, GeneratorBlock block, int inputSize) =>
        Unit(g, Unit(g, x, block.Conv0, inputSize), block.Conv1, inputSize * 2);

    /// <summary>A unit: convolution, LeakyReLU, pixel norm.</summary>
    private static string Unit(OnnxGraph g, string x, ConvActivation unit, int inputSize)
    {
        string y = g.Node("LeakyRelu", [Conv(g, x, unit.Conv, inputSize)], OnnxGraph.Float("alpha", (float)unit.Slope));
        return unit.Norm is null ? y : PixelNorm(g, y, unit.Norm.Epsilon);
    }

    /// <summary>Nearest-neighbour ×2: output pixel (y, x) reads input (⌊y/2⌋, ⌊x/2⌋).</summary>
    private static string Upsample(OnnxGraph g, string x) =>
        g.Node("Resize", [x, "", g.Constant("scales", [1f, 1f, 2f, 2f], 4)],
            OnnxGraph.String("mode", "nearest"), OnnxGraph.String("coordinate_transformation_mode", "asymmetric"),
            OnnxGraph.String("nearest_mode", "floor"));

    /// <summary>A weight-scaled convolution with c·w folded in, on the path the layer itself takes at this input size.</summary>
    private static string Conv(OnnxGraph g, string x, WeightScaledConv2D layer, int inputSize)
    {
        if (layer.Downscale) throw new NotSupportedException("Downscaling convolutions belong to the discriminator, which is not exported.");
        long k = layer.KernelSize, pad = k / 2;
        var scaled = layer.Scaling.call(layer.Weight);
        string bias = layer.Bias is null ? "" : g.Constant("bias", layer.Bias);
        if (layer.Upscale && inputSize >= WeightScaledConv2D.FusedUpscaleMinInputSize)
            return g.Node("ConvTranspose", Inputs(x, g.Constant("weight", WeightScaledConv2D.UpscaleKernel(scaled)), bias),
                OnnxGraph.Ints("kernel_shape", k + 1, k + 1), OnnxGraph.Ints("strides", 2, 2), OnnxGraph.Ints("pads", pad, pad, pad, pad));
        if (layer.Upscale) x = Upsample(g, x);
        return g.Node("Conv", Inputs(x, g.Constant("weight", scaled), bias),
            OnnxGraph.Ints("kernel_shape", k, k), OnnxGraph.Ints("strides", 1, 1), OnnxGraph.Ints("pads", pad, pad, pad, pad));
    }

    private static string[] Inputs(string x, string weight, string bias) => bias == "" ? [x, weight] : [x, weight, bias];
}
