using ProGan.Keras.IO;

namespace ProGan.Keras.Serving;

/// <summary>
/// The names in a run folder that a trained model is loaded from: the manifest that marks the folder as a run, and
/// the checkpoints. (The training library's <c>RunFolder</c> owns every other name, and takes these from here.)
/// </summary>
public static class RunFiles
{
    /// <summary><c>run.json</c>: marks a folder as a run of this library.</summary>
    public const string Manifest = "run.json";

    /// <summary>The file name of the checkpoint after <paramref name="imagesShown"/> images (names sort by images shown).</summary>
    public static string CheckpointName(long imagesShown) => $"checkpoint-{imagesShown:D12}{CheckpointFile.Extension}";

    /// <summary>The pattern every checkpoint name matches.</summary>
    public const string CheckpointPattern = "checkpoint-*" + CheckpointFile.Extension;

    /// <summary>Whether <paramref name="folder"/> is marked as a run folder.</summary>
    public static bool IsRunFolder(string folder) => File.Exists(System.IO.Path.Combine(folder, Manifest));

    /// <summary>
    /// The checkpoints of a run folder, newest first (regular files only: a FIFO under a checkpoint's name would block
    /// a reader).
    /// </summary>
    /// <summary>
    /// Files of a run folder named like checkpoints that are not regular files (a FIFO, a device, a folder), which
    /// <see cref="Checkpoints"/> passes over: for a warning, so that nothing is skipped without a word.
    /// </summary>
    public static IReadOnlyList<string> NotCheckpoints(string folder) =>
        Directory.Exists(folder)
            ? Directory.GetFileSystemEntries(folder, CheckpointPattern).Where(f => !PathKinds.IsRegular(f)).Order(StringComparer.Ordinal).ToArray()
            : [];

    /// <summary>
    /// The checkpoints of a run folder, newest first (regular files only: a FIFO under a checkpoint's name would block
    /// a reader).
    /// </summary>
    public static IReadOnlyList<string> Checkpoints(string folder) =>
        Directory.Exists(folder)
            ? Directory.GetFiles(folder, CheckpointPattern).Where(PathKinds.IsRegular).OrderByDescending(f => f, StringComparer.Ordinal).ToArray()
            : [];
}
