using System.Security.Cryptography;
using System.Text;
using ProGan.Keras.Models;
using ProGan.Keras.Serving;

namespace ProGan.Keras.Tests.Serving;

/// <summary>
/// Loading a trained generator through the package: the architecture and position come from the checkpoint, a seed
/// means the latents one generator draws 64 at a time, and every bad input is one line that names it.
/// </summary>
public sealed class TrainedGeneratorTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("progan-serving-").FullName;
    private static readonly ProGanConfig Config = ProGanConfig.Paper.With(resolution: 16, latentSize: 8, fmapBase: 32, fmapMax: 8);

    public void Dispose() => Directory.Delete(folder, recursive: true);

    /// <summary>A run folder with a checkpoint of a random EMA generator at 8² mid-fade, as training writes it.</summary>
    private (string run, string checkpoint, ProgressiveGenerator ema) Run(long shown = 96)
    {
        torch.manual_seed(5);
        var ema = new ProgressiveGenerator(Config, torch.CPU);
        string run = Path.Combine(folder, "run");
        Directory.CreateDirectory(run);
        File.WriteAllText(Path.Combine(run, RunFiles.Manifest), "{}");
        string checkpoint = Path.Combine(run, RunFiles.CheckpointName(shown));
        var header = new CheckpointHeader { ImagesShown = shown, Architecture = Config, Position = new GeneratorPosition(8, true, 0.5) };
        CheckpointFile.Write(checkpoint, header, [(CheckpointSection.Ema, w => ema.save(w))]);
        return (run, checkpoint, ema);
    }

    [Fact]
    public void A_seed_gives_the_images_of_its_latents_drawn_64_at_a_time_at_the_checkpoint_position()
    {
        var (run, checkpoint, ema) = Run();
        using var _ = ema;
        using var generator = TrainedGenerator.Load(run, torch.CPU);
        Assert.Equal(checkpoint, generator.CheckpointPath);
        Assert.Equal(new GeneratorPosition(8, true, 0.5), generator.Position);
        using var images = generator.Generate(count: 70, seed: 3);
        Assert.Equal(new long[] { 70, 3, 8, 8 }, images.shape);
        using var g = new torch.Generator(3);
        using var first = torch.randn(64, 8, generator: g);
        using var rest = torch.randn(6, 8, generator: g);
        using var z = torch.cat([first, rest], 0);
        ema.SetAlpha(0.5);
        using var expected = torch.cat([ema[8].FadeIn!.call(first), ema[8].FadeIn!.call(rest)], 0); // images, too, 64 at a time
        Assert.True((expected.detach() - images).abs().max().item<float>() == 0f, "the package's images differ from the seed's latents through the same network");
        // Another level and α the checkpoint has reached; none above it.
        using var low = generator.Generate(z, generator.At(4));
        Assert.Equal(new long[] { 70, 3, 4, 4 }, low.shape);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => generator.At(16));
        Assert.Contains("trained up to 8² fade-in", e.Message);
        // Interpolation ends at the two seeds' first latents.
        using var walk = generator.Interpolate(1, 2, 5);
        using var a = generator.Generate(1, 1);
        using var b = generator.Generate(1, 2);
        Assert.True((walk[0] - a[0]).abs().max().item<float>() < 1e-4f);
        Assert.True((walk[4] - b[0]).abs().max().item<float>() < 1e-4f);
    }

    [Fact]
    public void Every_bad_input_is_one_line_that_names_it()
    {
        var (run, checkpoint, ema) = Run();
        ema.Dispose();
        string Message(Action load)
        {
            var e = Assert.ThrowsAny<Exception>(load);
            Assert.True(e is CheckpointException or InvalidRunFolderException, e.ToString());
            Assert.DoesNotContain('\n', e.Message);
            return e.Message;
        }
        Assert.Contains("does not exist", Message(() => TrainedGenerator.Load(Path.Combine(folder, "nothing"))));
        Assert.Contains("is not a run folder", Message(() => TrainedGenerator.FromRunFolder(folder)));
        string empty = Path.Combine(folder, "empty");
        Directory.CreateDirectory(empty);
        File.WriteAllText(Path.Combine(empty, RunFiles.Manifest), "{}");
        Assert.Contains("has no checkpoint yet", Message(() => TrainedGenerator.Load(empty)));
        string text = Path.Combine(folder, "notes.ckpt");
        File.WriteAllText(text, new string('x', 100));
        Assert.Contains("is not a ProGan.Keras checkpoint", Message(() => TrainedGenerator.Load(text))); // not "corrupted": it never was one

        // Version 1, with a valid SHA-256.
        byte[] bytes = File.ReadAllBytes(checkpoint);
        byte[] content = bytes[..^32];
        int at = Encoding.ASCII.GetString(content).IndexOf("PGKCKPT2", StringComparison.Ordinal);
        content[at + 7] = (byte)'1';
        string old = Path.Combine(folder, "old.ckpt");
        File.WriteAllBytes(old, [.. content, .. SHA256.HashData(content)]);
        string message = Message(() => TrainedGenerator.Load(old));
        Assert.Contains("has checkpoint format 1; this version", message);
        Assert.Contains($"reads format {CheckpointFile.FormatVersion} only", message);

        // A flipped byte in the newest checkpoint: named alone, and the run falls back to the one before it.
        string newer = Path.Combine(run, RunFiles.CheckpointName(200));
        File.Copy(checkpoint, newer);
        bytes = File.ReadAllBytes(newer);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(newer, bytes);
        message = Message(() => TrainedGenerator.FromCheckpoint(newer));
        Assert.Contains(newer, message);
        Assert.Contains("SHA-256", message);
        using var generator = TrainedGenerator.Load(run, torch.CPU);
        Assert.Equal(checkpoint, generator.CheckpointPath);
        Assert.Contains(generator.Skipped, s => s.Path == newer);
    }
}
