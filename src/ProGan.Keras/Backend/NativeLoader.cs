using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using ProGan.Keras.IO;
using TorchSharp;

namespace ProGan.Keras.Backend;

/// <summary>
/// Makes TorchSharp's native library loadable on systems whose libstdc++ is older than the one it was built against
/// (Debian 12). Called by <see cref="TorchBackend.Initialize"/>.
/// </summary>
/// <remarks>
/// Strategy: try the plain load of <c>libLibTorchSharp.so</c>; only when that fails, write a copy whose
/// <c>GLIBCXX_3.4.32</c> requirement is weak into a per-version cache folder, next to symbolic links to the very
/// native files TorchSharp will load itself (its RUNPATH is <c>$ORIGIN</c>), and load that copy first. The loader
/// then reuses it, by soname, when TorchSharp asks for <c>LibTorchSharp</c>. The NuGet cache is never modified.
/// Why only this one requirement is safe to weaken is in <see cref="ElfVersionPatcher"/>. The neighbours must be the
/// very files TorchSharp loads itself: next to a different copy of libtorch, the process loads libtorch twice and
/// aborts at start ("Tried to register multiple backend fallbacks for the same dispatch key").
/// </remarks>
internal static class NativeLoader
{
    internal const string LibraryFile = "libLibTorchSharp.so";
    internal const string MissingVersion = "GLIBCXX_3.4.32";

    /// <summary>What the loader did, for diagnostics.</summary>
    internal sealed record Outcome(string Library, bool Patched, string Trace);

    internal static Outcome Load()
    {
        var trace = new StringBuilder();
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
            return new Outcome("(TorchSharp's own loader)", false, "Not Linux: nothing to do.");

        string? original = FindTorchSharpNative(trace);
        if (original is null)
        {
            // No native file next to TorchSharp (e.g. a custom layout): leave it to TorchSharp's own probing.
            trace.AppendLine("libLibTorchSharp.so not found next to TorchSharp; leaving the load to TorchSharp.");
            return new Outcome("(TorchSharp's own loader)", false, trace.ToString());
        }

        trace.AppendLine($"Plain load of {original}");
        try
        {
            NativeLibrary.Load(original);
            trace.AppendLine("  succeeded: nothing to patch.");
            return new Outcome(original, false, trace.ToString());
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            trace.AppendLine($"  failed: {e.Message}");
        }

        string patched;
        try
        {
            patched = PreparePatchedCopy(original, trace);
            NativeLibrary.Load(patched);
        }
        catch (Exception e) when (e is not InvalidOperationException)
        {
            throw new InvalidOperationException(
                "TorchSharp's native library could not be loaded, neither as shipped nor with its " +
                $"{MissingVersion} requirement made weak. Install a libstdc++ from GCC 13 or newer, or check that " +
                "the libtorch backend package (libtorch-cpu-linux-x64 or a CUDA one) is restored.\n" +
                $"What was tried:\n{trace}  patched load failed: {e.Message}", e);
        }
        trace.AppendLine($"Loaded patched copy {patched}");
        return new Outcome(patched, true, trace.ToString());
    }

    /// <summary>Finds the <c>libLibTorchSharp.so</c> that belongs to the loaded TorchSharp assembly.</summary>
    private static string? FindTorchSharpNative(StringBuilder trace)
    {
        string rid = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? "linux-arm64" : "linux-x64";
        string managed = Path.GetDirectoryName(typeof(torch).Assembly.Location) ?? AppContext.BaseDirectory;
        var candidates = new[]
        {
            Path.Combine(managed, "runtimes", rid, "native"),                 // build output of an app or a test
            managed,                                                          // RID-specific publish
            Path.Combine(managed, "..", "..", "runtimes", rid, "native"),     // TorchSharp.dll inside the NuGet cache
            Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native"),
            AppContext.BaseDirectory,
        };
        foreach (var dir in candidates)
        {
            string path = Path.GetFullPath(Path.Combine(dir, LibraryFile));
            trace.AppendLine($"Looking for {path}");
            if (File.Exists(path)) return path;
        }
        return null;
    }

    /// <summary>
    /// Writes (once per TorchSharp build) the patched library and links to its native neighbours into a cache folder,
    /// atomically, and returns the patched library's path.
    /// </summary>
    private static string PreparePatchedCopy(string original, StringBuilder trace)
    {
        var source = new FileInfo(original);
        var neighbourDirs = NeighbourDirectories(source.DirectoryName!);
        string key = Hash($"{source.FullName}|{source.Length}|{source.LastWriteTimeUtc.Ticks}|{string.Join('|', neighbourDirs)}");
        string folder = Path.Combine(CacheRoot(trace), $"torchsharp-{typeof(torch).Assembly.GetName().Version}-{key}");
        string target = Path.Combine(folder, LibraryFile);
        if (File.Exists(target))
        {
            trace.AppendLine($"Reusing patched copy in {folder}");
            return target;
        }

        // Links first, the library last: a library under its final name means the folder is complete. Processes that
        // prepare the same folder at once make identical links; the one that opens the temporary file first writes the
        // library, and the others wait for it.
        Directory.CreateDirectory(folder);
        foreach (var dir in neighbourDirs)
            foreach (var file in Directory.EnumerateFiles(dir, "*.so*"))
            {
                string link = Path.Combine(folder, Path.GetFileName(file));
                if (Path.GetFileName(file) == LibraryFile || File.Exists(link)) continue;
                try { File.CreateSymbolicLink(link, file); }
                catch (IOException) when (File.Exists(link)) { }
            }
        byte[] bytes = File.ReadAllBytes(original);
        int changed = ElfVersionPatcher.MarkVersionWeak(bytes, MissingVersion);
        trace.AppendLine($"Marked {changed} {MissingVersion} requirement(s) weak in a copy.");
        try
        {
            AtomicFile.WriteAllBytes(target, bytes);
            trace.AppendLine($"Wrote patched copy to {folder}");
        }
        catch (IOException e) when (WrittenByAnother(target))
        {
            // Several processes started at once (mpirun -np N on a fresh install): the temporary file is held by the one
            // writing it, the others wait for its identical copy.
            trace.AppendLine($"Another process was writing the patched copy ({e.Message.Split('\n')[0]}); using its copy in {folder}");
        }
        return target;
    }

    /// <summary>Whether <paramref name="target"/> exists, or appears within a minute (another process writing it).</summary>
    private static bool WrittenByAnother(string target)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!File.Exists(target))
        {
            if (waited.Elapsed > TimeSpan.FromMinutes(1)) return false;
            Thread.Sleep(50);
        }
        return true;
    }

    /// <summary>
    /// The folders whose native files the patched copy must see: its own, and, when TorchSharp is used straight from the
    /// NuGet cache (F# Interactive), the libtorch backend package's native folder.
    /// </summary>
    private static List<string> NeighbourDirectories(string nativeDir)
    {
        var dirs = new List<string> { nativeDir };
        if (Directory.EnumerateFiles(nativeDir, "libtorch_cpu.so").Any()) return dirs;
        // .../packages/torchsharp/<v>/runtimes/<rid>/native → .../packages/libtorch-*/<v>/runtimes/<rid>/native
        var rid = Path.GetFileName(Path.GetDirectoryName(nativeDir)!);
        var packages = Path.GetFullPath(Path.Combine(nativeDir, "..", "..", "..", "..", ".."));
        if (!Directory.Exists(packages)) return dirs;
        string libtorchVersion = torchVersionOfBinding();
        foreach (var package in Directory.EnumerateDirectories(packages, "libtorch-*"))
        {
            string native = Path.Combine(package, libtorchVersion, "runtimes", rid, "native");
            if (Directory.Exists(native)) dirs.Add(native);
        }
        return dirs;

        static string torchVersionOfBinding() =>
            typeof(torch).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "LibTorchPackageVersion")?.Value ?? "2.10.0";
    }

    /// <summary>
    /// The first writable folder of: <c>$PROGAN_KERAS_NATIVE_CACHE</c>, <c>$XDG_CACHE_HOME/progan-keras</c>,
    /// <c>~/.cache/progan-keras</c>, the temporary folder — each with <c>native/</c> below it. A cache folder that cannot
    /// be written (a read-only home, a container's odd <c>XDG_CACHE_HOME</c>) only moves the copy elsewhere.
    /// </summary>
    private static string CacheRoot(StringBuilder trace)
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var candidates = new[]
        {
            Environment.GetEnvironmentVariable("PROGAN_KERAS_NATIVE_CACHE"),
            string.IsNullOrEmpty(xdg) ? null : Path.Combine(xdg, "progan-keras"),
            string.IsNullOrEmpty(home) ? null : Path.Combine(home, ".cache", "progan-keras"),
            Path.Combine(Path.GetTempPath(), "progan-keras"),
        };
        var tried = new List<string>();
        foreach (var root in candidates.Where(c => !string.IsNullOrEmpty(c)))
        {
            string native = Path.Combine(root!, "native");
            try
            {
                Directory.CreateDirectory(native);
                string probe = Path.Combine(native, $".probe-{Environment.ProcessId}");
                File.WriteAllBytes(probe, []);
                File.Delete(probe);
                return native;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                trace.AppendLine($"Cache folder {native} is not writable: {e.Message}");
                tried.Add(native);
            }
        }
        throw new InvalidOperationException(
            $"No writable folder for TorchSharp's patched native library; tried {string.Join(", ", tried)}. " +
            "Set PROGAN_KERAS_NATIVE_CACHE to a writable folder.");
    }

    private static string Hash(string text) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16].ToLowerInvariant();
}
