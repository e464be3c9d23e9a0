using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ProGan.Keras.IO;

namespace ProGan.Keras.Serving;

/// <summary>The named sections of a training checkpoint, in the order training writes them.</summary>
public static class CheckpointSection
{
    /// <summary>The generator G (every resolution, <c>Module.save</c>).</summary>
    public const string Generator = "generator";
    /// <summary>The discriminator D.</summary>
    public const string Discriminator = "discriminator";
    /// <summary>The exponential moving average of G (<c>Gs</c>), which draws every sample.</summary>
    public const string Ema = "ema";
    /// <summary>G's Adam state.</summary>
    public const string GeneratorOptimizer = "generator-optimizer";
    /// <summary>D's Adam state.</summary>
    public const string DiscriminatorOptimizer = "discriminator-optimizer";
    /// <summary>The state of the random-number generator that draws latents and the gradient penalty's mix.</summary>
    public const string NoiseRandom = "noise-random";
}

/// <summary>
/// The checkpoint file format, and its one owner. A checkpoint is
/// <c>magic "PGKCKPT" + format version</c> (a length-prefixed string), the <see cref="CheckpointHeader"/> as JSON
/// (a length-prefixed string), then named sections (<c>name</c>, <c>int64 length</c>, <c>bytes</c>), then a SHA-256
/// of everything before it. It is written atomically (<see cref="AtomicFile"/>), so a file under its final name is
/// always complete, and it is verified before any byte of it is used.
/// </summary>
/// <remarks>
/// Sections make the file readable in parts: sampling reads the EMA generator without building G and D. Strings are
/// written as <see cref="BinaryWriter.Write(string)"/> writes them (a 7-bit encoded length, then UTF-8).
/// </remarks>
public static class CheckpointFile
{
    /// <summary>
    /// The format this version writes and reads. 2: the official network (one bias per channel in G's first layer,
    /// <c>FusedScale</c> D), its tensors in named sections, the generator's position in the header. A version-1 file is
    /// refused, never misread.
    /// </summary>
    public const int FormatVersion = 2;

    /// <summary>The extension of checkpoint files.</summary>
    public const string Extension = ".ckpt";

    private const string MagicPrefix = "PGKCKPT";
    private static readonly string Magic = MagicPrefix + FormatVersion;
    private const int HashLength = 32;

    /// <summary>The version of this library, as errors name it.</summary>
    public static string LibraryVersion { get; } =
        typeof(CheckpointFile).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "?";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    /// <summary>
    /// Writes a checkpoint to <paramref name="path"/> atomically: the header, then each section as its writer fills it.
    /// </summary>
    /// <exception cref="IOException">The file could not be written; the previous file of that name is untouched.</exception>
    public static void Write(string path, CheckpointHeader header, IEnumerable<(string Name, Action<BinaryWriter> Write)> sections)
    {
        ArgumentNullException.ThrowIfNull(header);
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(JsonSerializer.Serialize(header, Json));
            foreach (var (name, write) in sections)
            {
                using var section = new MemoryStream();
                using (var sw = new BinaryWriter(section, Encoding.UTF8, leaveOpen: true)) write(sw);
                w.Write(name);
                w.Write(section.Length);
                w.Write(section.GetBuffer(), 0, (int)section.Length);
            }
        }
        byte[] hash = SHA256.HashData(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
        AtomicFile.Write(path, file =>
        {
            file.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
            file.Write(hash, 0, hash.Length);
        });
    }

    /// <summary>Whether the bytes start as a checkpoint of any format version does: the length-prefixed magic.</summary>
    private static bool HasMagicPrefix(ReadOnlySpan<byte> bytes) =>
        bytes.Length > MagicPrefix.Length && bytes[0] > MagicPrefix.Length && bytes[0] < 0x80
        && bytes.Slice(1, MagicPrefix.Length).SequenceEqual(Encoding.ASCII.GetBytes(MagicPrefix));

    /// <summary>
    /// Whether <paramref name="path"/> is a regular file that starts as a checkpoint of this library does (any format
    /// version; its content is not verified): what an export may replace without <c>--force</c>.
    /// </summary>
    public static bool IsCheckpointFile(string path)
    {
        if (!PathKinds.IsRegular(path)) return false;
        try
        {
            using var stream = File.OpenRead(path);
            var head = new byte[1 + MagicPrefix.Length];
            return stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false) == head.Length && HasMagicPrefix(head);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>
    /// Reads and verifies a checkpoint: a regular file, its SHA-256 matching, this format version, a readable header.
    /// </summary>
    /// <exception cref="CheckpointException">Anything is wrong, in one line that names the file.</exception>
    public static CheckpointContent Read(string path)
    {
        var (kind, _, what) = PathKinds.Of(path);
        byte[] bytes = kind switch
        {
            PathKind.Regular => ReadAll(path),
            PathKind.Missing => throw new CheckpointException(path, "does not exist."),
            PathKind.Folder => throw new CheckpointException(path, "is a folder, not a checkpoint file."),
            _ => throw new CheckpointException(path, $"is {what}, not a checkpoint file."),
        };
        // What wrote the file is told by its first bytes before its hash is checked: a config.json or an image given
        // as a checkpoint is "not a checkpoint", not "corrupted".
        if (!HasMagicPrefix(bytes))
            throw new CheckpointException(path, "is not a ProGan.Keras checkpoint (a checkpoint-*.ckpt of a run folder, or a generator-*.ckpt from export.fsx).");
        if (bytes.Length < HashLength + Magic.Length + 1)
            throw new CheckpointException(path, "is cut short (too small to be a checkpoint).");
        int length = bytes.Length - HashLength;
        if (!SHA256.HashData(bytes.AsSpan(0, length)).AsSpan().SequenceEqual(bytes.AsSpan(length, HashLength)))
            throw new CheckpointException(path, "is corrupted or cut short (its SHA-256 does not match its content).");
        using var reader = new BinaryReader(new MemoryStream(bytes, 0, length, writable: false), Encoding.UTF8);
        string magic;
        try { magic = reader.ReadString(); }
        catch (Exception e) when (e is EndOfStreamException or IOException or FormatException) { magic = ""; }
        if (magic != Magic)
        {
            if (magic.StartsWith(MagicPrefix, StringComparison.Ordinal))
                throw new CheckpointException(path,
                    $"has checkpoint format {magic[MagicPrefix.Length..]}; this version ({LibraryVersion}) reads format {FormatVersion} only. " +
                    "Load it with the version that wrote it, or train anew.");
            throw new CheckpointException(path, "is not a ProGan.Keras checkpoint.");
        }
        CheckpointHeader? header;
        try { header = JsonSerializer.Deserialize<CheckpointHeader>(reader.ReadString(), Json); }
        catch (Exception e) when (e is JsonException or EndOfStreamException or IOException or NotSupportedException)
        {
            throw new CheckpointException(path, $"has an unreadable header: {e.Message.Split('\n')[0]}");
        }
        if (header?.Architecture is null || header.Position is null)
            throw new CheckpointException(path, "has an empty or incomplete header.");
        var sections = new Dictionary<string, (int Offset, int Length)>();
        try
        {
            while (reader.BaseStream.Position < length)
            {
                string name = reader.ReadString();
                long size = reader.ReadInt64();
                long offset = reader.BaseStream.Position;
                if (size < 0 || offset + size > length) throw new EndOfStreamException($"section '{name}' runs past the end");
                sections[name] = ((int)offset, (int)size);
                reader.BaseStream.Position = offset + size;
            }
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or FormatException)
        {
            throw new CheckpointException(path, $"has a damaged section table: {e.Message.Split('\n')[0]}");
        }
        return new CheckpointContent(path, header, bytes, sections);
    }

    private static byte[] ReadAll(string path)
    {
        try { return File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(path, $"cannot be read: {e.Message.Split('\n')[0]}", e);
        }
    }
}

/// <summary>A verified checkpoint: its header, and a reader for each of its sections.</summary>
public sealed class CheckpointContent
{
    private readonly byte[] bytes;
    private readonly Dictionary<string, (int Offset, int Length)> sections;

    internal CheckpointContent(string path, CheckpointHeader header, byte[] bytes, Dictionary<string, (int, int)> sections)
    {
        Path = path;
        Header = header;
        this.bytes = bytes;
        this.sections = sections;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>The header.</summary>
    public CheckpointHeader Header { get; }

    /// <summary>The names of the sections, in file order.</summary>
    public IReadOnlyCollection<string> Sections => sections.Keys;

    /// <summary>A reader over section <paramref name="name"/>.</summary>
    /// <exception cref="CheckpointException">The file has no such section.</exception>
    public BinaryReader Open(string name) =>
        sections.TryGetValue(name, out var s)
            ? new BinaryReader(new MemoryStream(bytes, s.Offset, s.Length, writable: false), System.Text.Encoding.UTF8)
            : throw new CheckpointException(Path, $"has no '{name}' section (it has {string.Join(", ", sections.Keys)}).");

    /// <summary>
    /// Runs <paramref name="read"/> over section <paramref name="name"/>; a failure while reading (a tensor of another
    /// shape, a section cut short) becomes a <see cref="CheckpointException"/> that names the file and the section.
    /// </summary>
    public void Read(string name, Action<BinaryReader> read)
    {
        using var reader = Open(name);
        try { read(reader); }
        catch (Exception e) when (e is not CheckpointException)
        {
            throw new CheckpointException(Path, $"could not be loaded ({name}): {e.Message.Split('\n')[0]}", e);
        }
    }
}
