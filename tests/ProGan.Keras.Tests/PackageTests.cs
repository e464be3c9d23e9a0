using System.Diagnostics;
using System.Reflection;
using System.Text.RegularExpressions;
using ProGan.Keras.Backend;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace ProGan.Keras.Tests;

/// <summary>Both packages (ProGan.Keras and ProGan.Keras.Serving), packed once into a local folder feed.</summary>
public sealed class PackageFeed : IDisposable
{
    public string Work { get; } = Path.Combine(Path.GetTempPath(), "progan-package-" + Guid.NewGuid().ToString("N")[..8]);

    // A unique version, so the NuGet cache never serves an older build of the same number.
    public string Version { get; } = LibraryVersion() + "-test" + DateTime.UtcNow.ToString("yyyyMMddHHmmss");

    public static readonly string[] Packages = ["ProGan.Keras", "ProGan.Keras.Serving"];

    private readonly Lazy<string> feed;

    public PackageFeed() => feed = new Lazy<string>(Pack);

    /// <summary>The feed folder, packed on first use.</summary>
    public string Feed => feed.Value;

    public static string LibraryVersion() =>
        typeof(TorchBackend).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion.Split('+')[0];

    public static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(dir.FullName, "ProGan.Keras.sln"))) dir = dir.Parent!;
        return dir.FullName;
    }

    public static (int code, string output) Run(string workingDirectory, string program, params string[] args)
    {
        var info = new ProcessStartInfo(program, args)
        {
            WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(5)), $"{program} {string.Join(' ', args)} timed out");
        return (process.ExitCode, $"{program} {string.Join(' ', args)}:\n{stdout}{stderr.Result}");
    }

    public static (int code, string output) Dotnet(string workingDirectory, params string[] args) => Run(workingDirectory, "dotnet", args);

    private string Pack()
    {
        string feed = Path.Combine(Work, "feed");
        foreach (var package in Packages)
        {
            var (code, output) = Dotnet(RepositoryRoot(), "pack", $"src/{package}", "-c", "Release", "-o", feed, $"-p:PackageVersion={Version}", "--nologo");
            Assert.True(code == 0, output);
            Assert.True(File.Exists(Path.Combine(feed, $"{package}.{Version}.nupkg")), output);
            Assert.True(File.Exists(Path.Combine(feed, $"{package}.{Version}.snupkg")), output);
        }
        return feed;
    }

    /// <summary>A project folder outside the repository whose nuget.config points at the feed.</summary>
    public string ConsumerFolder(string name)
    {
        string folder = Path.Combine(Work, name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "nuget.config"),
            $"""<?xml version="1.0" encoding="utf-8"?><configuration><packageSources><add key="progan-local" value="{Feed}" /></packageSources></configuration>""");
        return folder;
    }

    public void Dispose()
    {
        try { Directory.Delete(Work, recursive: true); } catch (IOException) { }
        string cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        foreach (var package in Packages)
        {
            string cached = Path.Combine(cache, package.ToLowerInvariant(), Version);
            try { if (Directory.Exists(cached)) Directory.Delete(cached, recursive: true); } catch (IOException) { }
        }
    }
}

/// <summary>
/// The libraries as a user gets them: `dotnet pack`, then the samples, the snippets of docs/trained-model.md and a trained run used
/// from projects outside the repository against a local folder feed, with no manual step — the native fix included.
/// </summary>
public sealed class PackageTests(PackageFeed packages) : IClassFixture<PackageFeed>
{
    private static string RepositoryRoot() => PackageFeed.RepositoryRoot();

    private static (int code, string output) Dotnet(string workingDirectory, params string[] args) => PackageFeed.Dotnet(workingDirectory, args);

    /// <summary>The page that shows a trained model used from C#, F#, Python and the browser.</summary>
    public const string TrainedModelPage = "docs/trained-model.md";

    /// <summary>The fenced code block after <c>&lt;!-- snippet: name --&gt;</c> in a documentation page (a path from the repository root).</summary>
    public static string DocSnippet(string page, string name)
    {
        string text = File.ReadAllText(Path.Combine(RepositoryRoot(), page));
        var match = Regex.Match(text, $@"<!-- snippet: {Regex.Escape(name)} -->\s*```[a-z]*\n(.*?)```", RegexOptions.Singleline);
        Assert.True(match.Success, $"{page} has no snippet '{name}'");
        return match.Groups[1].Value;
    }

    [Fact]
    public void The_packed_library_trains_the_samples_outside_the_repository()
    {
        string root = RepositoryRoot();

        // C#: the sample project, copied out of the tree, restored from the folder feed.
        string app = packages.ConsumerFolder("dcgan");
        foreach (var file in Directory.GetFiles(Path.Combine(root, "samples", "Dcgan")))
            File.Copy(file, Path.Combine(app, Path.GetFileName(file)));
        var (code, output) = Dotnet(app, "run", $"-p:ProGanKerasVersion={packages.Version}", "--", "20");
        Assert.True(code == 0, output);
        Assert.Contains("finite losses: True", output);
        Assert.Contains("generator parameters changed: True", output);
        Assert.Contains("discriminator parameters changed: True", output);

        // F#: the script, with `#r "nuget: ProGan.Keras, …"` against the same feed.
        string script = File.ReadAllText(Path.Combine(root, "samples", "dcgan.fsx"))
            .Replace("nuget: ../artifacts/packages", "nuget: " + packages.Feed)
            .Replace("ProGan.Keras, " + PackageFeed.LibraryVersion(), "ProGan.Keras, " + packages.Version);
        Assert.Contains(packages.Version, script);
        File.WriteAllText(Path.Combine(packages.Work, "dcgan.fsx"), script);
        (code, output) = Dotnet(packages.Work, "fsi", "dcgan.fsx");
        Assert.True(code == 0, output);
        Assert.Contains("finite losses: true", output);
        Assert.Contains("parameters changed: true", output);
    }

    /// <summary>
    /// A run trained by train.fsx into its 8² fade-in, sampled by generate.fsx, exported by export.fsx; then, outside
    /// the repository, the C# and F# snippets of docs/trained-model.md load it through the ProGan.Keras.Serving package and the
    /// OnnxGenerate sample runs the exported model on ONNX Runtime alone: all three grids are generate.fsx's.
    /// </summary>
    [Fact]
    public void A_trained_run_draws_generate_fsx_images_through_the_package_and_through_ONNX_Runtime()
    {
        string root = RepositoryRoot();
        string run = Path.Combine(packages.Work, "run"), generated = Path.Combine(packages.Work, "generated");
        // 6,000 images stabilise 4², then 1,200 of the 6,000-image fade-in to 8²: α = 0.2.
        var (code, output) = Dotnet(root, "fsi", "train.fsx", "--", "--resolution", "8", "--stabilise-images", "6000", "--fade-images", "6000",
            "--stop-after", "7200", "--out", run);
        Assert.True(code == 0, output);
        (code, output) = Dotnet(root, "fsi", "generate.fsx", "--", "--run", run, "--count", "16", "--seed", "7", "--out", generated);
        Assert.True(code == 0, output);
        string expected = Path.Combine(generated, "samples-seed7.png"), latents = Path.Combine(generated, "latents-seed7.npy");
        Assert.True(File.Exists(latents), output);
        string model = Path.Combine(packages.Work, "generator.onnx");
        (code, output) = Dotnet(root, "fsi", "export.fsx", "--", "--run", run, "--out", model);
        Assert.True(code == 0, output);
        Assert.Contains("8² fade-in, α = 0.2 ", output);

        // C#, the page's snippet as a program of its own.
        string csharp = packages.ConsumerFolder("serving-csharp");
        File.WriteAllText(Path.Combine(csharp, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings><Nullable>enable</Nullable></PropertyGroup>
              <ItemGroup>
                <PackageReference Include="ProGan.Keras.Serving" Version="{packages.Version}" />
                <PackageReference Include="libtorch-cpu-linux-x64" Version="2.10.0" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(csharp, "Program.cs"), DocSnippet(TrainedModelPage, "serving-csharp"));
        string fromCsharp = Path.Combine(packages.Work, "csharp.png");
        (code, output) = Dotnet(csharp, "run", "--", run, fromCsharp);
        Assert.True(code == 0, output);
        Assert.Equal(Pixels(expected), Pixels(fromCsharp));
        Assert.True(File.Exists(Path.ChangeExtension(fromCsharp, ".onnx")), output);

        // F#, the page's script snippet against the same feed.
        string fsharp = DocSnippet(TrainedModelPage, "serving-fsharp")
            .Replace("nuget: ../artifacts/packages", "nuget: " + packages.Feed)
            .Replace("ProGan.Keras.Serving, " + PackageFeed.LibraryVersion(), "ProGan.Keras.Serving, " + packages.Version);
        Assert.Contains(packages.Version, fsharp);
        File.WriteAllText(Path.Combine(packages.Work, "serving.fsx"), fsharp);
        string fromFsharp = Path.Combine(packages.Work, "fsharp.png");
        (code, output) = Dotnet(packages.Work, "fsi", "serving.fsx", run, fromFsharp);
        Assert.True(code == 0, output);
        Assert.Equal(Pixels(expected), Pixels(fromFsharp));

        // ONNX Runtime alone: the sample, copied out of the tree, fed generate.fsx's latents.
        string onnx = Path.Combine(packages.Work, "onnx-sample");
        Directory.CreateDirectory(onnx);
        foreach (var file in Directory.GetFiles(Path.Combine(root, "samples", "OnnxGenerate")))
            File.Copy(file, Path.Combine(onnx, Path.GetFileName(file)));
        string fromOnnx = Path.Combine(packages.Work, "onnx.png");
        (code, output) = Dotnet(onnx, "run", "--", model, "--latents", latents, "--out", fromOnnx);
        Assert.True(code == 0, output);
        Assert.Contains("generator.onnx: 8², fade-in true, α 0.2,", output); // the model's metadata_props
        string assets = File.ReadAllText(Path.Combine(onnx, "obj", "project.assets.json"));
        Assert.DoesNotContain("TorchSharp", assets, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("libtorch", assets, StringComparison.OrdinalIgnoreCase);
        byte[] a = Pixels(expected), b = Pixels(fromOnnx);
        Assert.Equal(a.Length, b.Length);
        // ONNX Runtime's float sums differ from libtorch's by ~1e-6, which can move a pixel across a rounding boundary.
        int differing = a.Zip(b).Count(p => p.First != p.Second);
        Assert.True(a.Zip(b).All(p => Math.Abs(p.First - p.Second) <= 1), "a pixel differs by more than one level");
        Assert.True(differing < a.Length / 1000, $"{differing} of {a.Length} channel values differ");
        Assert.True(b.Distinct().Count() > 16, "the ONNX grid is blank");
    }

    private static byte[] Pixels(string png)
    {
        using var image = Image.Load<Rgb24>(png);
        var data = new byte[image.Width * image.Height * 3];
        image.CopyPixelDataTo(data);
        return data;
    }
}
