using System.Runtime.InteropServices;

namespace ProGan.Keras.IO;

/// <summary>What a path is on disk, after following symbolic links.</summary>
public enum PathKind
{
    /// <summary>Nothing there (or it cannot be examined).</summary>
    Missing,
    /// <summary>A regular file.</summary>
    Regular,
    /// <summary>A folder.</summary>
    Folder,
    /// <summary>A FIFO, a device, a socket: never to be read by name.</summary>
    Special,
}

/// <summary>
/// The kind of a path, so that a file is opened only when it is a regular file: .NET reports FIFOs and devices as
/// ordinary files, and opening a FIFO blocks until a writer appears.
/// </summary>
public static class PathKinds
{
    private const int AtCurrentDirectory = -100;
    private const uint TypeAndSize = 0x1u | 0x200u; // STATX_TYPE | STATX_SIZE

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int Statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);

    /// <summary>
    /// The kind of <paramref name="path"/>, its length (regular files) and, for a special file, what it is ("a FIFO").
    /// On Linux from <c>statx</c> (whose layout is the same on every architecture: <c>stx_mode</c> at byte 28,
    /// <c>stx_size</c> at 40); elsewhere from .NET, which cannot tell special files apart.
    /// </summary>
    public static (PathKind Kind, long Length, string What) Of(string path)
    {
        if (OperatingSystem.IsLinux())
        {
            var buffer = new byte[256];
            if (Statx(AtCurrentDirectory, path, 0, TypeAndSize, buffer) != 0) return (PathKind.Missing, 0, "missing");
            return (BitConverter.ToUInt16(buffer, 28) & 0xF000) switch
            {
                0x8000 => (PathKind.Regular, BitConverter.ToInt64(buffer, 40), "a file"),
                0x4000 => (PathKind.Folder, 0, "a folder"),
                0x1000 => (PathKind.Special, 0, "a FIFO"),
                0x2000 => (PathKind.Special, 0, "a character device"),
                0x6000 => (PathKind.Special, 0, "a block device"),
                0xC000 => (PathKind.Special, 0, "a socket"),
                _ => (PathKind.Special, 0, "not a regular file"),
            };
        }
        if (Directory.Exists(path)) return (PathKind.Folder, 0, "a folder");
        if (File.Exists(path)) return (PathKind.Regular, new FileInfo(path).Length, "a file");
        return (PathKind.Missing, 0, "missing");
    }

    /// <summary>Whether <paramref name="path"/> is a regular file (after links).</summary>
    public static bool IsRegular(string path) => Of(path).Kind == PathKind.Regular;
}
