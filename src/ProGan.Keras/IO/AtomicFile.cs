namespace ProGan.Keras.IO;

/// <summary>
/// Writes a file so that its final name only ever holds complete content: the bytes go to <c>path.tmp</c>, are
/// flushed to the disk (fsync), and the temporary file is then renamed over <c>path</c>. A process killed at any
/// moment leaves either the old file or the new one, plus at most a stray <c>*.tmp</c>, which nothing ever reads.
/// </summary>
/// <remarks>
/// The temporary file is opened exclusively, so two processes writing the same path at once do not interleave: the
/// second fails with an <see cref="IOException"/> instead, and leaves the first one's temporary file alone. On any
/// other failure the temporary file is removed and the file under the final name is left untouched.
/// </remarks>
public static class AtomicFile
{
    /// <summary>The suffix of the temporary file a write goes through.</summary>
    public const string TemporarySuffix = ".tmp";

    /// <summary>The temporary path a write of <paramref name="path"/> goes through.</summary>
    public static string TemporaryPath(string path) => path + TemporarySuffix;

    /// <summary>Writes <paramref name="path"/> atomically with what <paramref name="write"/> puts into the stream.</summary>
    /// <exception cref="IOException">The folder cannot be created or written (full disk, read-only, permissions).</exception>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string temp = TemporaryPath(full);
        bool ours = false; // only a temporary file this call opened is removed: another writer's stays
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                ours = true;
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
            ours = false;
        }
        catch (UnauthorizedAccessException e)
        {
            if (ours) TryDelete(temp);
            throw new IOException($"Could not write '{full}': {e.Message}", e);
        }
        catch
        {
            if (ours) TryDelete(temp);
            throw;
        }
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> atomically.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        Write(path, s => s.Write(copy, 0, copy.Length));
    }

    /// <summary>Writes <paramref name="text"/> (UTF-8) to <paramref name="path"/> atomically.</summary>
    public static void WriteAllText(string path, string text) =>
        WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(text));

    private static void TryDelete(string path)
    {
        try { if (File.Exists(path)) File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
