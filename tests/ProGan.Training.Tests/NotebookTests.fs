/// The Polyglot notebooks, run top to bottom: the .NET Interactive kernel is not available here, so each notebook's
/// F# cells are joined into one script (display calls mapped to printing) and run with `dotnet fsi`. With
/// PROGAN_NOTEBOOK_OUTPUTS=write, each cell's printed text and images are written back into the notebook as outputs.
module ProGan.Training.Tests.NotebookTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json.Nodes
open System.Text.RegularExpressions
open Xunit

let private root =
    let rec up (d: DirectoryInfo) = if File.Exists(Path.Combine(d.FullName, "ProGan.Keras.sln")) then d.FullName else up d.Parent
    up (DirectoryInfo AppContext.BaseDirectory)

let private notebooks = Path.Combine(root, "notebooks")

/// What .NET Interactive gives a cell that this script must stand in for: `HTML` and `display`.
let private prelude = """
type HtmlOutput = { Html: string }
let HTML (html: string) = { Html = html }
let display (value: obj) =
    match value with
    | :? HtmlOutput as h -> printfn "<<<html>>>%s<<<end>>>" h.Html
    | v -> printfn "%A" v
"""

let private cellMarker i = sprintf "<<<cell %d>>>" i

let private codeCells (notebook: JsonNode) =
    notebook["cells"].AsArray()
    |> Seq.filter (fun c -> string c["cell_type"] = "code")
    |> List.ofSeq

let private source (cell: JsonNode) = cell["source"].AsArray() |> Seq.map string |> String.concat ""

/// Runs a notebook; returns the output of each code cell.
let run (name: string) =
    let path = Path.Combine(notebooks, name)
    let notebook = JsonNode.Parse(File.ReadAllText path)
    let cells = codeCells notebook
    let script =
        String.concat "\n"
            [ yield prelude
              for i, cell in List.indexed cells do
                  yield sprintf "printfn \"%s\"" (cellMarker i)
                  yield source cell ]
    let scriptPath = Path.Combine(notebooks, ".run-" + Path.GetFileNameWithoutExtension name + ".fsx")
    File.WriteAllText(scriptPath, script)
    try
        let info = ProcessStartInfo("dotnet", [ "fsi"; scriptPath ], WorkingDirectory = notebooks, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
        use p = Process.Start info
        let errors = p.StandardError.ReadToEndAsync()
        let output = p.StandardOutput.ReadToEnd()
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes 5.0), name + " timed out")
        Assert.True(p.ExitCode = 0, sprintf "%s failed (exit %d):\n%s\n%s" name p.ExitCode output errors.Result)
        let parts = Regex.Split(output, @"<<<cell (\d+)>>>\r?\n")
        let outputs = Array.create cells.Length ""
        for k in 1 .. 2 .. parts.Length - 2 do outputs[int parts[k]] <- parts[k + 1]
        if Environment.GetEnvironmentVariable "PROGAN_NOTEBOOK_OUTPUTS" = "write" then
            for i, cell in List.indexed cells do
                let items = JsonArray()
                for piece in Regex.Split(outputs[i], @"(<<<html>>>.*?<<<end>>>\r?\n)") do
                    if piece.StartsWith "<<<html>>>" then
                        let html = piece.Substring(10, piece.IndexOf("<<<end>>>") - 10)
                        items.Add(JsonNode.Parse(sprintf """{"output_type":"display_data","data":{"text/html":%s},"metadata":{}}""" (Text.Json.JsonSerializer.Serialize html)))
                    elif piece.Trim() <> "" then
                        items.Add(JsonNode.Parse(sprintf """{"output_type":"stream","name":"stdout","text":%s}""" (Text.Json.JsonSerializer.Serialize piece)))
                cell["outputs"] <- items
                cell["execution_count"] <- JsonValue.Create(i + 1)
            File.WriteAllText(path, notebook.ToJsonString(Text.Json.JsonSerializerOptions(WriteIndented = true, Encoder = Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping)) + "\n")
        outputs
    finally
        File.Delete scriptPath

/// The first number a pattern's group captures in a cell's output.
let private number (pattern: string) (output: string) =
    let m = Regex.Match(output, pattern)
    Assert.True(m.Success, sprintf "no match for %s in:\n%s" pattern output)
    Double.Parse(m.Groups[1].Value.TrimEnd('.', ','), Globalization.CultureInfo.InvariantCulture)

/// How varied the showcase model's samples must be against the data (Diversity.ratio; the training guard warns below
/// Diversity.collapseRatio). The committed model: 1.00 for its samples, 0.62 for its interpolation strip.
let private variedRatio = 0.5

[<Fact>]
let ``every notebook runs top to bottom and shows what it says`` () =
    // The notebooks load the library from its Release build, as their first cell says.
    let build = Process.Start(ProcessStartInfo("dotnet", [ "build"; Path.Combine(root, "src", "ProGan.Training"); "-c"; "Release"; "--nologo"; "-v"; "q" ], UseShellExecute = false, RedirectStandardOutput = true))
    build.StandardOutput.ReadToEnd() |> ignore
    build.WaitForExit()
    Assert.Equal(0, build.ExitCode)
    let layers = run "01-custom-layers.ipynb"
    Assert.Matches(@"max \|layer − formula\| = \d", layers[1])
    Assert.Contains("α = 1.5 is refused", layers[2])
    Assert.Matches(@"max \|weight-scaled − plain with c·w\| = \d", layers[4])
    let growing = run "02-growing-models.ipynb"
    Assert.Contains("<<<html>>><img src=\"data:image/png;base64,", growing[3])
    // The trained model's blend: an image, and α = 0 exactly the 16² image upsampled.
    Assert.Contains("<<<html>>><img", growing[4])
    Assert.True(number @"α = 0 is the 16² image upsampled: max \|.*\| = (\S+)" growing[4] < 1e-5, growing[4])
    let training = run "03-training.ipynb"
    Assert.Contains("finished at 8000 images, 16²", training[2])
    Assert.Contains("<<<html>>><img", training[4])
    let interpolation = run "04-latent-interpolation.ipynb"
    Assert.Contains("32² straight-through", interpolation[1])
    // A collapsed model fails here: its samples must vary about as the data does, and the strip change end to end.
    Assert.Equal(2, Regex.Matches(interpolation[2], "<<<html>>><img").Count)
    let diversity = number @"diversity: (\S+)" interpolation[2]
    Assert.True(diversity >= variedRatio, sprintf "the showcase samples vary %.2f× as much as the data (at least %.2f expected)" diversity variedRatio)
    Assert.Contains("<<<html>>><img", interpolation[3])
    let change = number @"\(ratio (\S+)\)" interpolation[3]
    Assert.True(change >= variedRatio, sprintf "the interpolation changes %.2f× the distance between real images end to end (at least %.2f expected)" change variedRatio)
    Assert.True(number @"first frame vs seed 3: (\S+)," interpolation[4] < 1e-4 && number @"last frame vs seed 11: (\S+)" interpolation[4] < 1e-4, interpolation[4])

/// The SHA-256 of the committed showcase model (README, "The showcase model", has the command that makes it).
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
