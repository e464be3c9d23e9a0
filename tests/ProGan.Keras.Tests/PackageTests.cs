using System.Diagnostics;
using System.Reflection;
using ProGan.Keras.Backend;

namespace ProGan.Keras.Tests;

/// <summary>
/// The library as a user gets it: `dotnet pack`, then the samples (a C# project and an F# script) built outside the
/// repository against a local folder feed, with no manual step — the native fix included.
/// </summary>
public sealed class PackageTests : IDisposable
{
    private readonly string work = Path.Combine(Path.GetTempPath(), "progan-package-" + Guid.NewGuid().ToString("N")[..8]);
    // A unique version, so the NuGet cache never serves an older build of the same number.
    private readonly string version = LibraryVersion() + "-test" + DateTime.UtcNow.ToString("yyyyMMddHHmmss");

    private static string LibraryVersion() =>
        typeof(TorchBackend).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion.Split('+')[0];

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(dir.FullName, "ProGan.Keras.sln"))) dir = dir.Parent!;
        return dir.FullName;
    }

    private static (int code, string output) Dotnet(string workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet", args)
        {
            WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(5)), $"dotnet {string.Join(' ', args)} timed out");
        return (process.ExitCode, stdout + stderr.Result);
    }

    private string Pack()
    {
        string feed = Path.Combine(work, "feed");
        var (code, output) = Dotnet(RepositoryRoot(), "pack", "src/ProGan.Keras", "-c", "Release", "-o", feed, $"-p:PackageVersion={version}", "--nologo");
        Assert.True(code == 0, output);
        Assert.True(File.Exists(Path.Combine(feed, $"ProGan.Keras.{version}.nupkg")), output);
        Assert.True(File.Exists(Path.Combine(feed, $"ProGan.Keras.{version}.snupkg")), output);
        return feed;
    }

    [Fact]
    public void The_packed_library_trains_the_samples_outside_the_repository()
    {
        string feed = Pack();
        string root = RepositoryRoot();

        // C#: the sample project, copied out of the tree, restored from the folder feed.
        string app = Path.Combine(work, "app");
        Directory.CreateDirectory(app);
        foreach (var file in Directory.GetFiles(Path.Combine(root, "samples", "Dcgan")))
            File.Copy(file, Path.Combine(app, Path.GetFileName(file)));
        File.WriteAllText(Path.Combine(app, "nuget.config"),
            $"""<?xml version="1.0" encoding="utf-8"?><configuration><packageSources><add key="progan-local" value="{feed}" /></packageSources></configuration>""");
        var (code, output) = Dotnet(app, "run", $"-p:ProGanKerasVersion={version}", "--", "20");
        Assert.True(code == 0, output);
        Assert.Contains("finite losses: True", output);
        Assert.Contains("generator parameters changed: True", output);
        Assert.Contains("discriminator parameters changed: True", output);

        // F#: the script, with `#r "nuget: ProGan.Keras, …"` against the same feed.
        string script = File.ReadAllText(Path.Combine(root, "samples", "dcgan.fsx"))
            .Replace("nuget: ../artifacts/packages", "nuget: " + feed)
            .Replace("ProGan.Keras, " + LibraryVersion(), "ProGan.Keras, " + version);
        Assert.Contains(version, script);
        File.WriteAllText(Path.Combine(work, "dcgan.fsx"), script);
        (code, output) = Dotnet(work, "fsi", "dcgan.fsx");
        Assert.True(code == 0, output);
        Assert.Contains("finite losses: true", output);
        Assert.Contains("parameters changed: true", output);
    }

    public void Dispose()
    {
        try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        string cached = Path.Combine(Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"), "progan.keras", version);
        try { if (Directory.Exists(cached)) Directory.Delete(cached, recursive: true); } catch (IOException) { }
    }
}
