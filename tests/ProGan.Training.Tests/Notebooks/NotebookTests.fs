/// The Polyglot notebooks, run top to bottom in the real .NET Interactive kernel (NotebookKernel: the pinned
/// `dotnet interactive` tool over its stdio protocol), one kernel per notebook and one submission per code cell, as
/// VS Code runs them. With PROGAN_NOTEBOOK_OUTPUTS=write, each cell's outputs are written back into the notebook from
/// the kernel's own events, so what GitHub and VS Code show is what the kernel produced.
module ProGan.Training.Tests.Notebooks.NotebookTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json.Nodes
open System.Text.RegularExpressions
open Xunit
open Xunit.Abstractions
open ProGan.Training.Tests.Notebooks.NotebookKernel

let private root =
    let rec up (d: DirectoryInfo) = if File.Exists(Path.Combine(d.FullName, "ProGan.Keras.sln")) then d.FullName else up d.Parent
    up (DirectoryInfo AppContext.BaseDirectory)

let private notebooks = Path.Combine(root, "notebooks")

/// The kernel tool, restored once for the run (`dotnet tool restore` from .config/dotnet-tools.json).
let private kernelTool = lazy (NotebookKernel.restore root)

let private codeCells (notebook: JsonNode) =
    notebook["cells"].AsArray()
    |> Seq.filter (fun c -> string c["cell_type"] = "code")
    |> List.ofSeq

let private source (cell: JsonNode) = cell["source"].AsArray() |> Seq.map string |> String.concat ""

/// The longest a cell may run (the training cells take about a minute on two cores).
let private cellTimeout = TimeSpan.FromMinutes 5.0

/// Why the library the notebooks load would be built by their first cell (Bootstrap.fsx's rule, which setup.fsx runs),
/// or None when it is current. The test project's build makes it (BuildNotebookLibrary in its .fsproj), so a notebook
/// test never builds it inside the kernel, where the build would count against a cell's time and run beside other tests.
let private libraryStale () =
    if Bootstrap.upToDate () then None
    else
        let library = Path.GetRelativePath(root, Bootstrap.library)
        Some(
            if File.Exists Bootstrap.library then
                sprintf "%s (%s) is older than a source of ProGan.Keras, ProGan.Keras.Serving or ProGan.Training" library ((File.GetLastWriteTimeUtc Bootstrap.library).ToString "u")
            else sprintf "%s does not exist" library
            + "; the notebooks' first cell would build it. Build the tests (dotnet build tests/ProGan.Training.Tests), which builds it, then run them.")

/// Runs a notebook in a fresh kernel; returns each code cell's result and the kernel's time in all (start included).
/// A cell that fails fails the test with its number and the kernel's error; no kernel tool skips it with the reason.
let run (name: string) =
    match kernelTool.Force() with
    | Error reason -> Skip.If(true, reason)
    | Ok() -> ()
    libraryStale () |> Option.iter (fun reason -> Assert.Fail reason)
    let path = Path.Combine(notebooks, name)
    let notebook = JsonNode.Parse(File.ReadAllText path)
    let cells = codeCells notebook
    let watch = Stopwatch.StartNew()
    let results =
        use kernel = new Kernel(notebooks)
        [| for i, cell in List.indexed cells do
               let result = kernel.Submit(source cell, cellTimeout)
               match result.Error with
               | Some error -> failwithf "%s: code cell %d of %d failed in the .NET Interactive kernel:\n%s\n--- the cell:\n%s" name (i + 1) cells.Length error (source cell)
               | None -> yield result |]
    if Environment.GetEnvironmentVariable "PROGAN_NOTEBOOK_OUTPUTS" = "write" then
        for i, cell in List.indexed cells do
            cell["outputs"] <- toIpynb (i + 1) results[i]
            cell["execution_count"] <- JsonValue.Create(i + 1)
        File.WriteAllText(path, notebook.ToJsonString(Text.Json.JsonSerializerOptions(WriteIndented = true, Encoder = Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping)) + "\n")
    results, watch.Elapsed.TotalSeconds

/// The first number a pattern's group captures in a cell's output.
let private number (pattern: string) (output: string) =
    let m = Regex.Match(output, pattern)
    Assert.True(m.Success, sprintf "no match for %s in:\n%s" pattern output)
    Double.Parse(m.Groups[1].Value.TrimEnd('.', ','), Globalization.CultureInfo.InvariantCulture)

/// How varied the showcase model's samples must be against the data (Diversity.ratio; the training guard warns below
/// Diversity.collapseRatio). The committed model: 1.00 for its samples, 0.62 for its interpolation strip.
let private variedRatio = 0.5

/// The HTML a cell displayed (its formatted values and `display` calls, final state of updated displays).
let private html (cell: CellResult) = String.concat "\n" (cell.Shown "text/html")

/// How many PNG images a cell showed inline.
let private pngs (cell: CellResult) = Regex.Matches(html cell, "<img src=\"data:image/png;base64,").Count

/// One test per notebook, in one class so that they run one after another (each starts its own kernel).
type Notebooks(output: ITestOutputHelper) =

    let timed name =
        let cells, seconds = run name
        output.WriteLine(sprintf "%s: %.0f s in the kernel (start included); cells: %s" name seconds
                             (cells |> Array.map (fun c -> sprintf "%.1f" c.Seconds) |> String.concat ", "))
        cells

    [<SkippableFact>]
    member _.``01 custom layers: each layer matches its formula`` () =
        let layers = timed "01-custom-layers.ipynb"
        Assert.Matches(@"max \|layer − formula\| = \d", layers[1].Text)
        Assert.Contains("α = 1.5 is refused", layers[2].Text)
        Assert.Matches(@"max \|weight-scaled − plain with c·w\| = \d", layers[4].Text)

    [<SkippableFact>]
    member _.``02 growing models: summaries, shared weights and the fade-in blend`` () =
        let growing = timed "02-growing-models.ipynb"
        // The network's formatter: its pairs, then a Keras-style summary with output shapes and a total.
        Assert.Contains("Total params:", html growing[1])
        Assert.Contains("(None, 3, 32, 32)", html growing[1])
        // A pair: both models, the fade-in one with its low-resolution toRGB.
        Assert.Contains("Generator8FadeIn", html growing[2])
        Assert.Contains("to_rgb_low", html growing[2])
        Assert.Equal(1, pngs growing[4])
        // The trained model's blend: an image, and α = 0 exactly the 16² image upsampled.
        Assert.Equal(1, pngs growing[5])
        Assert.True(number @"α = 0 is the 16² image upsampled: max \|.*\| = (\S+)" growing[5].Text < 1e-5, growing[5].Text)

    [<SkippableFact>]
    member _.``03 training: a configuration table, a run and its loss chart`` () =
        let training = timed "03-training.ipynb"
        Assert.Contains("StabiliseImages", html training[1])
        Assert.Contains("Architecture.Resolution", html training[1])
        Assert.Contains("finished at 8000 images, 16²", training[2].Text)
        // The losses as a chart, not as printed numbers.
        Assert.Equal(1, pngs training[2])
        Assert.Equal(2, pngs training[3])

    [<SkippableFact>]
    member _.``04 latent interpolation: varied samples and a strip that changes end to end`` () =
        let interpolation = timed "04-latent-interpolation.ipynb"
        Assert.Contains("32² straight-through", interpolation[1].Text)
        // A collapsed model fails here: its samples must vary about as the data does, and the strip change end to end.
        Assert.Equal(2, pngs interpolation[2])
        let diversity = number @"diversity: (\S+)" interpolation[2].Text
        Assert.True(diversity >= variedRatio, sprintf "the showcase samples vary %.2f× as much as the data (at least %.2f expected)" diversity variedRatio)
        Assert.Equal(1, pngs interpolation[3])
        let change = number @"\(ratio (\S+)\)" interpolation[3].Text
        Assert.True(change >= variedRatio, sprintf "the interpolation changes %.2f× the distance between real images end to end (at least %.2f expected)" change variedRatio)
        let ends = interpolation[4].Text
        Assert.True(number @"first frame vs seed 3: (\S+)," ends < 1e-4 && number @"last frame vs seed 11: (\S+)" ends < 1e-4, ends)

    [<SkippableFact>]
    member _.``05 own images to ONNX: a folder, a watched run, and ONNX Runtime agreeing with TorchSharp`` () =
        let cells = timed "05-own-images-to-onnx.ipynb"
        Assert.Contains("256 PNG files", cells[1].Text)
        Assert.Equal(1, pngs cells[1])
        Assert.Contains("DataFolder", html cells[2])
        // The watched samples (the display's last update) and the loss chart.
        Assert.Contains("finished at", cells[3].Text)
        Assert.Contains("16² stabilise", html cells[3])
        Assert.Equal(2, pngs cells[3])
        Assert.Contains(".onnx", cells[4].Text)
        // TorchSharp's and ONNX Runtime's images side by side, and the same numbers.
        Assert.Equal(2, pngs cells[6])
        Assert.True(number @"max \|ONNX Runtime − TorchSharp\| = (\S+)" cells[6].Text < 1e-4, cells[6].Text)

[<Fact>]
let ``the library the notebooks load is the test build's and current, so that no notebook builds it`` () =
    Assert.Equal(Path.Combine(root, "src", "ProGan.Training", "bin", "Release", "net10.0", "ProGan.Training.dll"), Bootstrap.library)
    // preamble.fsx references that folder's assemblies.
    Assert.Contains("#r \"../src/ProGan.Training/bin/Release/net10.0/ProGan.Training.dll\"", File.ReadAllText(Path.Combine(notebooks, "preamble.fsx")))
    libraryStale () |> Option.iter (fun reason -> Assert.Fail reason)

/// The SHA-256 of the committed showcase model (docs/notebooks.md, "The showcase model", has the command that makes it).
let private showcaseSha256 = "bf1e12a5444d738fc9d171da3aa25e1c9395a554e133b8937de92482b321c19a"

[<Fact>]
let ``the showcase model is the committed file: under 5 MB, the EMA generator alone, at 32²`` () =
    let path = Path.Combine(notebooks, "models", "procedural-32.ckpt")
    let bytes = File.ReadAllBytes path
    Assert.True(bytes.Length <= 5_000_000, sprintf "%s is %d bytes" path bytes.Length)
    Assert.Equal(showcaseSha256, Convert.ToHexString(Security.Cryptography.SHA256.HashData bytes).ToLowerInvariant())
    let content = ProGan.Keras.Serving.CheckpointFile.Read path
    Assert.Equal<string seq>([ ProGan.Keras.Serving.CheckpointSection.Ema ], content.Sections)
    use generator = ProGan.Keras.Serving.TrainedGenerator.Load path
    Assert.Equal(ProGan.Keras.Serving.GeneratorPosition.StraightThrough 32, generator.Position)
