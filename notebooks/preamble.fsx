// What every notebook starts with, after setup.fsx has found or built the library: the library's Release build,
// TorchSharp made loadable, .NET Interactive formatters for the library's values, and helpers the notebooks share.
#r "../src/ProGan.Training/bin/Release/net10.0/TorchSharp.dll"
#r "../src/ProGan.Training/bin/Release/net10.0/ProGan.Keras.dll"
#r "../src/ProGan.Training/bin/Release/net10.0/ProGan.Keras.Serving.dll"
#r "../src/ProGan.Training/bin/Release/net10.0/ScottPlot.dll"
#r "../src/ProGan.Training/bin/Release/net10.0/ProGan.Training.dll"

open System
open System.IO
open TorchSharp
open Microsoft.DotNet.Interactive.Formatting
open ProGan.Keras.Models
open ProGan.Training.Config
open ProGan.Training.Output

// Loads TorchSharp, patched where the system libstdc++ is too old (F# can reach `torch` before any library type).
ProGan.Training.Basics.TensorSyntax.ensureTorch ()

// Rich output (NotebookFormatters): an image tensor shows as a PNG grid, a model or a pair of models as a Keras-style
// summary, a network as its pairs and its highest model's summary, a training configuration as a table, a chart as a PNG.
let private html (show: 'T -> string) = Formatter.Register<'T>(Action<'T, TextWriter>(fun value writer -> writer.Write(show value)), "text/html")
html NotebookFormatters.tensorHtml
html (fun (m: GeneratorModel) -> NotebookFormatters.summaryHtml m)
html (fun (m: DiscriminatorModel) -> NotebookFormatters.summaryHtml m)
html (fun (p: ModelPair<GeneratorModel>) -> NotebookFormatters.pairHtml p)
html (fun (p: ModelPair<DiscriminatorModel>) -> NotebookFormatters.pairHtml p)
html (fun (n: ProgressiveGenerator) -> NotebookFormatters.networkHtml n)
html (fun (n: ProgressiveDiscriminator) -> NotebookFormatters.networkHtml n)
html (fun (c: TrainingConfig) -> NotebookFormatters.recordHtml c)
html (NotebookFormatters.plotHtml 900 450)

/// The largest absolute difference between two tensors.
let maxDiff (a: torch.Tensor) (b: torch.Tensor) = (a - b).abs().max().item<float32>()

/// Shows a PNG file inline.
let showPng (path: string) =
    Microsoft.DotNet.Interactive.Kernel.display (Microsoft.DotNet.Interactive.Kernel.HTML(NotebookFormatters.imgTag (File.ReadAllBytes path))) |> ignore
