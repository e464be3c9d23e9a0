namespace ProGan.Keras.IO;

/// <summary>
/// Where a command may write: the user-facing rule that a file or folder named by an option such as <c>--out</c> is
/// replaced only when this library wrote it (or the user says <c>--force</c>), checked before the work begins. The
/// write itself goes through <see cref="AtomicFile"/> (the layer package's atomic write); this half lives with the
/// file formats that say what "written by this library" means (<see cref="Serving.CheckpointFile.IsCheckpointFile"/>,
/// <see cref="Serving.Onnx.OnnxExport.IsExport"/>), and with <see cref="PathKinds"/>.
/// </summary>
public static class OutputTargets
{
    /// <summary>
    /// The rule of every command that writes a file: it replaces only a file that it wrote itself
    /// (<paramref name="isOwn"/> says so of the file there), unless <paramref name="force"/>; it writes into an
    /// existing folder it can write; it never writes over a folder or a special file. Called before the work begins,
    /// so that a refusal costs nothing; the write itself then goes through <see cref="AtomicFile.Write"/>.
    /// </summary>
    /// <param name="path">The file to write.</param>
    /// <param name="option">The option that named it, as the user types it (<c>--out</c>), for the message.</param>
    /// <param name="what">What the command writes there (<c>an ONNX model</c>), for the message.</param>
    /// <param name="isOwn">Whether an existing file at the (full) path is one this library wrote in its place.</param>
    /// <param name="force">The user asked to replace whatever file is there (<c>--force</c>).</param>
    /// <exception cref="OutputRefusedException">The path cannot be written without losing something; one line naming
    /// the option, the path and the fix.</exception>
    public static void CheckTarget(string path, string option, string what, Func<string, bool> isOwn, bool force)
    {
        ArgumentNullException.ThrowIfNull(isOwn);
        string full = Path.GetFullPath(path);
        CheckParent(full, option);
        var (kind, _, kindWhat) = PathKinds.Of(full);
        switch (kind)
        {
            case PathKind.Missing: return;
            case PathKind.Folder:
                throw new OutputRefusedException($"{option}: '{path}' is a folder; name the file to write ({what}).");
            case PathKind.Special:
                throw new OutputRefusedException($"{option}: '{path}' is {kindWhat}; name a new file for {what}.");
            default:
                if (force || isOwn(full)) return;
                throw new OutputRefusedException(
                    $"{option}: '{path}' exists and is not {what} written by this library, so it is left as it is; name another file, or add --force to replace it.");
        }
    }

    /// <summary>
    /// The same rule for a command that writes a folder of files: the folder may be missing (it is created in an
    /// existing, writable folder), empty, or hold only what <paramref name="isOwn"/> says the command wrote there
    /// (each entry's full path); anything else is refused unless <paramref name="force"/> (whose option
    /// <paramref name="forceHint"/> names; null where the command has none). Returns the full path.
    /// </summary>
    /// <exception cref="OutputRefusedException">One line naming the option, the path and the fix.</exception>
    public static string CheckFolderTarget(string path, string option, string what, Func<string, bool> isOwn, bool force, string? forceHint = "add --force to write among them")
    {
        ArgumentNullException.ThrowIfNull(isOwn);
        string full = Path.GetFullPath(path);
        var (kind, _, kindWhat) = PathKinds.Of(full);
        switch (kind)
        {
            case PathKind.Missing:
                CheckParent(full, option);
                return full;
            case PathKind.Folder:
                if (force) return full;
                var foreign = Directory.EnumerateFileSystemEntries(full).FirstOrDefault(e => !isOwn(e));
                if (foreign is null) return full;
                throw new OutputRefusedException(
                    $"{option}: '{path}' holds '{Path.GetFileName(foreign)}', which {what} did not write; choose a new or empty folder{(forceHint is null ? "" : ", or " + forceHint)}.");
            default:
                throw new OutputRefusedException($"{option}: '{path}' is {kindWhat}, not a folder; name a new or empty folder for {what}.");
        }
    }

    /// <summary>Refuses a path whose folder does not exist, is not a folder, or cannot be written.</summary>
    private static void CheckParent(string full, string option)
    {
        string parent = Path.GetDirectoryName(full) ?? full;
        var (parentKind, _, parentWhat) = PathKinds.Of(parent);
        if (parentKind == PathKind.Missing)
            throw new OutputRefusedException($"{option}: the folder '{parent}' does not exist; create it first, or name a path in an existing folder.");
        if (parentKind != PathKind.Folder)
            throw new OutputRefusedException($"{option}: '{parent}' is {parentWhat}, not a folder; name a path in an existing folder.");
        if (!CanCreateIn(parent))
            throw new OutputRefusedException($"{option}: nothing can be created in the folder '{parent}' (read-only, full, or not yours); name a path in a folder you can write.");
    }

    /// <summary>
    /// Whether a file can be created in <paramref name="folder"/>, found out by creating (and at once deleting) one:
    /// the permission bits do not answer for root, for read-only mounts or for <c>/proc</c>.
    /// </summary>
    public static bool CanCreateIn(string folder)
    {
        string probe = Path.Combine(folder, $".progan-probe-{Environment.ProcessId}{AtomicFile.TemporarySuffix}");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }
}

/// <summary>
/// A command refused to write where it was asked, because something there is not its own to replace (see
/// <see cref="OutputTargets.CheckTarget"/>): the message is one line that names the option, the path and the fix.
/// </summary>
public sealed class OutputRefusedException(string message) : IOException(message);
