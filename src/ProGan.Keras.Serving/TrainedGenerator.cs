using ProGan.Keras.Backend;
using ProGan.Keras.IO;
using ProGan.Keras.Models;
using ProGan.Keras.Serving.Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Serving;

/// <summary>
/// The EMA generator of a trained run, loaded for use: images from a seed or from latents at any level and α the
/// checkpoint has reached, spherical interpolation between seeds, PNG grids, and ONNX export. The architecture and
/// the position come from the checkpoint itself; nothing else of the run is needed.
/// </summary>
/// <example>
/// <code>
/// using var generator = TrainedGenerator.Load("runs/20261123-101500");    // a run folder or one checkpoint file
/// using var images = generator.Generate(count: 16, seed: 7);               // [16, 3, r, r] in [−1, 1], on the CPU
/// ImageGrid.Save("grid.png", images);
/// </code>
/// </example>
public sealed class TrainedGenerator : IDisposable
{
    private TrainedGenerator(CheckpointContent checkpoint, ProgressiveGenerator network, IReadOnlyList<CheckpointException> skipped)
    {
        CheckpointPath = checkpoint.Path;
        Header = checkpoint.Header;
        Network = network;
        Skipped = skipped;
    }

    /// <summary>The checkpoint the generator was loaded from.</summary>
    public string CheckpointPath { get; }

    /// <summary>The checkpoint's header (architecture, images shown, position).</summary>
    public CheckpointHeader Header { get; }

    /// <summary>The architecture.</summary>
    public ProGanConfig Architecture => Header.Architecture;

    /// <summary>Where training stood when the checkpoint was written: the model images are drawn from by default.</summary>
    public GeneratorPosition Position => Header.Position;

    /// <summary>Length of a latent vector.</summary>
    public int LatentSize => Architecture.LatentSize;

    /// <summary>The EMA generator itself (every resolution's models).</summary>
    public ProgressiveGenerator Network { get; }

    /// <summary>Newer checkpoints of the run folder that were passed over as damaged, each with the reason.</summary>
    public IReadOnlyList<CheckpointException> Skipped { get; }

    /// <summary>Loads a run folder (its newest good checkpoint) or one checkpoint file, whichever <paramref name="path"/> is.</summary>
    /// <param name="path">A run folder or a checkpoint file.</param>
    /// <param name="device">Where the network runs (default: <see cref="TorchBackend.Device"/>, CUDA when available).</param>
    public static TrainedGenerator Load(string path, Device? device = null) =>
        PathKinds.Of(path).Kind == PathKind.Folder ? FromRunFolder(path, device) : FromCheckpoint(path, device);

    /// <summary>Loads the EMA generator of the newest checkpoint of a run folder that passes its SHA-256 check.</summary>
    /// <exception cref="InvalidRunFolderException">Not a run folder, or no checkpoint in it.</exception>
    /// <exception cref="CheckpointException">Every checkpoint of the run is damaged (the newest one's problem).</exception>
    public static TrainedGenerator FromRunFolder(string folder, Device? device = null)
    {
        var (kind, _, what) = PathKinds.Of(folder);
        if (kind == PathKind.Missing) throw new InvalidRunFolderException($"The run folder '{folder}' does not exist.");
        if (kind != PathKind.Folder) throw new InvalidRunFolderException($"'{folder}' is {what}, not a run folder.");
        if (!RunFiles.IsRunFolder(folder))
            throw new InvalidRunFolderException($"'{folder}' is not a run folder (it has no {RunFiles.Manifest}); pass the folder that training wrote.");
        var checkpoints = RunFiles.Checkpoints(folder);
        if (checkpoints.Count == 0)
            throw new InvalidRunFolderException($"The run folder '{folder}' has no checkpoint yet; train longer (a checkpoint is written every tick).");
        var skipped = new List<CheckpointException>();
        foreach (var path in checkpoints)
        {
            CheckpointContent content;
            try { content = CheckpointFile.Read(path); }
            catch (CheckpointException e) { skipped.Add(e); continue; }
            return FromContent(content, device, skipped);
        }
        throw skipped[0];
    }

    /// <summary>Loads the EMA generator of one checkpoint file.</summary>
    /// <exception cref="CheckpointException">The file is missing, damaged, of another format version, or not a checkpoint.</exception>
    public static TrainedGenerator FromCheckpoint(string file, Device? device = null) =>
        FromContent(CheckpointFile.Read(file), device, []);

    private static TrainedGenerator FromContent(CheckpointContent content, Device? device, IReadOnlyList<CheckpointException> skipped)
    {
        var header = content.Header;
        try { header.Position.Validate(header.Architecture.Validate()); }
        catch (ArgumentException e)
        {
            throw new CheckpointException(content.Path, $"has an invalid header: {e.Message.Split('\n')[0].Split(" (Parameter")[0]}");
        }
        var network = new ProgressiveGenerator(header.Architecture, device ?? TorchBackend.Device);
        try
        {
            content.Read(CheckpointSection.Ema, reader => network.load(reader));
            network.eval();
            return new TrainedGenerator(content, network, skipped);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A position of this checkpoint: the straight-through model at <paramref name="resolution"/>, or with
    /// <paramref name="alpha"/> the fade-in model at that α.
    /// </summary>
    public GeneratorPosition At(int resolution, double? alpha = null) =>
        Check(alpha is { } a ? new GeneratorPosition(resolution, true, a) : GeneratorPosition.StraightThrough(resolution));

    private GeneratorPosition Check(GeneratorPosition? at)
    {
        if (at is null) return Position;
        at.Validate(Architecture);
        if (at.Resolution > Position.Resolution)
            throw new ArgumentOutOfRangeException("resolution", at.Resolution,
                $"the checkpoint was trained up to {Position}; resolution must be at most {Position.Resolution}.");
        return at;
    }

    /// <summary>
    /// Images in [−1, 1] (the network's output, unclamped), <c>[N, C, r, r]</c> on the CPU, from
    /// <paramref name="generator"/> at <paramref name="at"/>, without gradients. Sets α of the generator's fade-in models.
    /// </summary>
    public static Tensor Sample(ProgressiveGenerator generator, GeneratorPosition at, Tensor latents, Device? device = null)
    {
        generator.SetAlpha(at.Alpha);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var model = generator[at.Resolution].Select(at.FadeIn);
        var target = device ?? generator.parameters().First().device;
        return model.call(latents.to(target)).MoveToOuterDisposeScope();
    }

    /// <summary>The classes of a conditional generator (<see cref="ProGanConfig.LabelSize"/>; 0: unconditional).</summary>
    public int Classes => Architecture.LabelSize;

    /// <summary>
    /// Images from caller latents <c>[N, LatentSize]</c> at <paramref name="at"/> (default: <see cref="Position"/>), on
    /// the CPU. A conditional generator draws class <paramref name="classIndex"/> for every image, or without one the
    /// classes in turn (image i: class i mod <see cref="Classes"/>).
    /// </summary>
    public Tensor Generate(Tensor latents, GeneratorPosition? at = null, int? classIndex = null)
    {
        if (latents.dim() != 2 || latents.shape[1] != LatentSize)
            throw new ArgumentException($"latents must be [N, {LatentSize}]; got [{string.Join(", ", latents.shape)}].", nameof(latents));
        if (classIndex is { } c && (Classes == 0 || c < 0 || c >= Classes))
            throw new ArgumentOutOfRangeException(nameof(classIndex), c,
                Classes == 0 ? "The generator is unconditional: it has no classes." : $"The generator has classes 0 to {Classes - 1}.");
        var position = Check(at);
        var batches = new List<Tensor>();
        try
        {
            for (long first = 0; first < latents.shape[0]; first += Latents.BatchSize)
            {
                using var z = latents.narrow(0, first, Math.Min(Latents.BatchSize, latents.shape[0] - first));
                using var input = Condition(z, first, classIndex);
                using var images = Sample(Network, position, input);
                batches.Add(images.cpu());
            }
            return batches.Count == 1 ? batches[0].alias() : cat(batches, 0);
        }
        finally { foreach (var b in batches) b.Dispose(); }
    }

    /// <summary>
    /// <paramref name="count"/> images of <paramref name="seed"/> (<see cref="Latents.Batches(int, int, int)"/>: exactly the images
    /// <c>generate.fsx --seed</c> draws), on the CPU; <paramref name="classIndex"/> as for the latents' overload.
    /// </summary>
    public Tensor Generate(int count, int seed, GeneratorPosition? at = null, int? classIndex = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        using var z = Latents.FromSeed(LatentSize, seed, count);
        return Generate(z, at, classIndex);
    }

    /// <summary><paramref name="steps"/> images along the spherical interpolation from seed A's latent to seed B's, on the CPU.</summary>
    public Tensor Interpolate(int seedA, int seedB, int steps, GeneratorPosition? at = null, int? classIndex = null)
    {
        using var z = Latents.Interpolation(LatentSize, seedA, seedB, steps);
        return Generate(z, at, classIndex);
    }

    /// <summary>The network's input for latents <c>[n, L]</c> that start at image <paramref name="first"/>: as they are
    /// for an unconditional generator, else followed by the one-hot class (the given one, or image i's i mod K).</summary>
    private Tensor Condition(Tensor latents, long first, int? classIndex)
    {
        if (Classes == 0) return latents.alias();
        using var start = first.ToScalar();
        using var labels = classIndex is { } c
            ? full(latents.shape[0], Scalars.OfInt(c), dtype: int64)
            : Scalars.Arange(latents.shape[0]).PlusInPlace(start).remainder_(Scalars.OfInt(Classes));
        return ConditionalInput.Of(latents, labels, Classes);
    }

    /// <summary>Writes the generator at <paramref name="at"/> (default: <see cref="Position"/>) as an ONNX model (<see cref="OnnxExport"/>).</summary>
    /// <param name="path">The .onnx file (written atomically).</param>
    /// <param name="at">The model to export.</param>
    /// <param name="metadata">More <c>metadata_props</c> (the run's configuration, say).</param>
    public void ExportOnnx(string path, GeneratorPosition? at = null, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var extra = new Dictionary<string, string>
        {
            ["format_version"] = CheckpointFile.FormatVersion.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["images_shown"] = Header.ImagesShown.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        foreach (var (k, v) in metadata ?? new Dictionary<string, string>()) extra[k] = v;
        OnnxExport.Save(path, Network, Check(at), new OnnxExportOptions { Metadata = extra });
    }

    /// <summary>
    /// Writes this generator alone as a checkpoint file: the header and the EMA section, about a seventh of a training
    /// checkpoint (no G, D or Adam state). <see cref="Load"/> reads it as it reads any checkpoint, so it is the small
    /// file to ship a trained model in (the notebooks' showcase model is one); training cannot resume from it.
    /// </summary>
    /// <exception cref="IOException">The file could not be written; a previous file of that name is untouched.</exception>
    public void SaveGeneratorOnly(string path) =>
        CheckpointFile.Write(path, Header, [(CheckpointSection.Ema, writer => Network.save(writer))]);

    /// <inheritdoc/>
    public void Dispose() => Network.Dispose();
}
