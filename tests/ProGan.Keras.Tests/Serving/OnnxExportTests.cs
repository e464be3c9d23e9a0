using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using ProGan.Keras.Models;
using ProGan.Keras.Serving;
using ProGan.Keras.Serving.Onnx;
using Xunit.Abstractions;

namespace ProGan.Keras.Tests.Serving;

/// <summary>
/// The exported ONNX model computes the generator: ONNX Runtime's output equals TorchSharp's for both upsampling paths
/// (Resize + Conv below 16² inputs, the fused ConvTranspose from there), straight-through and mid-fade.
/// </summary>
public sealed class OnnxExportTests(ITestOutputHelper output)
{
    /// <summary>32² with small channels; biases drawn too, so that every bias reaches the output.</summary>
    private static ProgressiveGenerator RandomGenerator()
    {
        torch.manual_seed(11);
        var config = ProGanConfig.Paper.With(resolution: 32, latentSize: 16, fmapBase: 64, fmapMax: 16);
        var g = new ProgressiveGenerator(config, torch.CPU);
        using var _ = torch.no_grad();
        foreach (var (name, p) in g.named_parameters())
            if (name.EndsWith("bias", StringComparison.Ordinal)) p.normal_(0, 0.5);
        return g;
    }

    /// <summary>Runs a model through ONNX Runtime: latents [n, latent] in, images out.</summary>
    internal static float[] RunOnnx(byte[] model, float[] latents, long batch, long latentSize, out long[] shape)
    {
        using var session = new InferenceSession(model);
        using var input = OrtValue.CreateTensorValueFromMemory(latents, [batch, latentSize]);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, [OnnxExport.InputName], [input], [OnnxExport.OutputName]);
        shape = results[0].GetTensorTypeAndShape().Shape;
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    public static TheoryData<int, bool> Positions => new()
    {
        { 8, false }, { 8, true }, { 16, false }, { 16, true }, { 32, false }, { 32, true },
    };

    [Theory]
    [MemberData(nameof(Positions))]
    public void The_ONNX_model_computes_what_TorchSharp_computes(int resolution, bool fadeIn)
    {
        using var g = RandomGenerator();
        var at = new GeneratorPosition(resolution, fadeIn, fadeIn ? 0.37 : 1.0);
        byte[] model = OnnxExport.ToBytes(g, at, new OnnxExportOptions { ClipOutput = false });
        foreach (int batch in new[] { 1, 16 })
        {
            using var z = torch.randn(batch, g.Config.LatentSize);
            using var expected = TrainedGenerator.Sample(g, at, z);
            float[] actual = RunOnnx(model, z.data<float>().ToArray(), batch, g.Config.LatentSize, out var shape);
            Assert.Equal(expected.shape, shape);
            using var difference = (expected - torch.tensor(actual).view(expected.shape)).abs().max();
            float maxAbs = difference.item<float>();
            output.WriteLine($"{at}, batch {batch}: max |ONNX − TorchSharp| = {maxAbs:E2} (output RMS {expected.square().mean().sqrt().item<float>():F2})");
            Assert.True(maxAbs < 1e-4f, $"{at}, batch {batch}: max |ONNX − TorchSharp| = {maxAbs}");
        }
    }

    [Fact]
    public void The_clipped_output_is_TorchSharp_clamped_to_minus_one_one_and_the_metadata_says_what_was_exported()
    {
        using var g = RandomGenerator();
        var at = new GeneratorPosition(16, true, 0.25);
        byte[] model = OnnxExport.ToBytes(g, at, new OnnxExportOptions { Metadata = new Dictionary<string, string> { ["config"] = "{}" } });
        using var z = torch.randn(4, g.Config.LatentSize);
        using var expected = TrainedGenerator.Sample(g, at, z).clamp(-1, 1);
        float[] actual = RunOnnx(model, z.data<float>().ToArray(), 4, g.Config.LatentSize, out _);
        Assert.InRange(actual.Min(), -1f, 1f);
        Assert.InRange(actual.Max(), -1f, 1f);
        Assert.True((expected - torch.tensor(actual).view(expected.shape)).abs().max().item<float>() < 1e-4f);
        using var session = new InferenceSession(model);
        var metadata = session.ModelMetadata.CustomMetadataMap;
        Assert.Equal("16", metadata["resolution"]);
        Assert.Equal("true", metadata["fade_in"]);
        Assert.Equal(0.25, double.Parse(metadata["alpha"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("16", metadata["latent_size"]);
        Assert.Equal("{}", metadata["config"]);
        Assert.Contains("\"FmapBase\":64", metadata["architecture"]);
        var input = session.InputMetadata[OnnxExport.InputName];
        Assert.Equal(new[] { -1, 16 }, input.Dimensions); // a dynamic batch dimension
        Assert.Equal("batch", input.SymbolicDimensions[0]);
    }

    [SkippableFact]
    public void The_ONNX_checker_accepts_the_model_with_full_check()
    {
        const string python = "/usr/bin/python3";
        Skip.IfNot(File.Exists(python), $"{python} is not installed; the ONNX checker needs Python with the onnx module (apt-get install python3-onnx).");
        var probe = Python(python, "-c", "import onnx");
        Skip.If(probe.code != 0, $"{python} cannot import onnx ({probe.output.Trim().Split('\n')[^1]}); apt-get install python3-onnx to run the checker.");
        using var g = RandomGenerator();
        string folder = Directory.CreateTempSubdirectory("progan-onnx-").FullName;
        try
        {
            foreach (var at in new[] { GeneratorPosition.StraightThrough(4), new GeneratorPosition(8, true, 0.5), GeneratorPosition.StraightThrough(32) })
            {
                string path = Path.Combine(folder, $"g{at.Resolution}.onnx");
                OnnxExport.Save(path, g, at);
                var (code, text) = Python(python, "-c",
                    "import sys, onnx; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); print('ok', m.opset_import[0].version)", path);
                Assert.True(code == 0, $"{at}: {text}");
                Assert.Contains($"ok {OnnxExport.Opset}", text);
            }
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    private static (int code, string output) Python(string python, params string[] args)
    {
        var info = new ProcessStartInfo(python, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var p = Process.Start(info)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout + stderr.Result);
    }
}

/// <summary>The Python snippet of docs/trained-model.md runs an exported model, where Python has onnxruntime and numpy.</summary>
public sealed class DocsPythonSnippetTests
{
    [SkippableFact]
    public void The_docs_python_snippet_runs_an_exported_model()
    {
        const string python = "/usr/bin/python3";
        Skip.IfNot(File.Exists(python), $"{python} is not installed; the Python snippet of docs/trained-model.md needs Python with onnxruntime and numpy.");
        var probe = PackageFeed.Run(Path.GetTempPath(), python, "-c", "import onnxruntime, numpy");
        Skip.If(probe.code != 0, $"{python} cannot import onnxruntime and numpy (pip install onnxruntime numpy; Debian has no package): {probe.output.Trim().Split('\n')[^1]}");
        string folder = Directory.CreateTempSubdirectory("progan-python-").FullName;
        try
        {
            torch.manual_seed(3);
            using var g = new ProgressiveGenerator(ProGanConfig.Paper.With(resolution: 16, latentSize: 8, fmapBase: 32, fmapMax: 8), torch.CPU);
            string model = Path.Combine(folder, "g.onnx"), latents = Path.Combine(folder, "z.npy"), script = Path.Combine(folder, "run.py");
            OnnxExport.Save(model, g, GeneratorPosition.StraightThrough(16));
            using (var z = torch.randn(5, 8)) Npy.Write(latents, z);
            File.WriteAllText(script, PackageTests.DocSnippet(PackageTests.TrainedModelPage, "onnx-python"));
            var (code, output) = PackageFeed.Run(folder, python, script, model, latents);
            Assert.True(code == 0, output);
            Assert.Contains("16 (5, 16, 16, 3)", output);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }
}
