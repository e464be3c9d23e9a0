namespace ProGan.Keras.Serving;

/// <summary>
/// A checkpoint file is bad: missing, not a file, unreadable, cut short, corrupted (its SHA-256 does not match), of
/// another format version, or not a checkpoint at all. The message is one line that names the file.
/// </summary>
public sealed class CheckpointException : Exception
{
    /// <summary>Creates the error for <paramref name="path"/>; <paramref name="problem"/> completes "Checkpoint 'path' …".</summary>
    public CheckpointException(string path, string problem, Exception? inner = null)
        : base($"Checkpoint '{path}' {problem}", inner)
    {
        Path = path;
        Problem = problem;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>What is wrong with it, as the end of a sentence that starts with the file.</summary>
    public string Problem { get; }
}

/// <summary>A folder given as a run folder is not one, or holds no checkpoint; the message is one line that names it.</summary>
public sealed class InvalidRunFolderException : Exception
{
    /// <summary>Creates the error.</summary>
    public InvalidRunFolderException(string message) : base(message) { }
}
