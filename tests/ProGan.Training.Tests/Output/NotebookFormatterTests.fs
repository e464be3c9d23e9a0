/// What the notebooks show for the library's values (NotebookFormatters, registered by notebooks/preamble.fsx).
module ProGan.Training.Tests.Output.NotebookFormatterTests

open System.Text.RegularExpressions
open Microsoft.FSharp.Reflection
open TorchSharp
open Xunit
open ProGan.Keras.Models
open ProGan.Training.Config
open ProGan.Training.Output
let private pngCount (html: string) = Regex.Matches(html, "<img src=\"data:image/png;base64,").Count

let private small = ProGanConfig.Paper.With(resolution = 16, latentSize = 16, fmapBase = 64, fmapMax = 16)

[<Fact>]
let ``an image tensor shows as one PNG grid with its shape`` () =
    use images = torch.rand([| 5L; 3L; 8L; 8L |]) * 2.0 - 1.0
    let html = NotebookFormatters.tensorHtml images
    Assert.Equal(1, pngCount html)
    Assert.Contains("[5, 3, 8, 8]", html)
    let png = NotebookFormatters.imageGridPng images
    Assert.Equal<byte[]>([| 0x89uy; byte 'P'; byte 'N'; byte 'G' |], png[0..3])

[<Fact>]
let ``any other tensor shows its values, not a picture`` () =
    use scores = torch.tensor([| 1.5f; -2.0f |])
    let html = NotebookFormatters.tensorHtml scores
    Assert.Equal(0, pngCount html)
    Assert.Contains("1.5", html)

[<Fact>]
let ``a model summary lists every layer called, its output shape, and parameters that add up to the total`` () =
    use g = new ProgressiveGenerator(small)
    for model in [ g[8].StraightThrough; g[8].FadeIn ] do
        use input = NotebookFormatters.sampleInput model
        let rows, output, total = NotebookFormatters.summaryOf model input
        Assert.All(rows, fun r -> Assert.True(r.OutputShape.IsSome, r.Layer + " was not called"))
        Assert.Equal<int64[]>([| 1L; 3L; 8L; 8L |], output)
        // The layers of one model share nothing among themselves, so their parameters are the model's.
        Assert.Equal(total, rows |> List.sumBy (fun r -> r.Parameters))
    let html = NotebookFormatters.pairHtml g[8]
    Assert.Contains("to_rgb_low (WeightScaledConv2D)", html)
    Assert.Contains("(None, 3, 8, 8)", html)

[<Fact>]
let ``a discriminator summary ends in one score per image`` () =
    use d = new ProgressiveDiscriminator(small)
    use input = NotebookFormatters.sampleInput d[16].FadeIn
    let rows, output, _ = NotebookFormatters.summaryOf d[16].FadeIn input
    Assert.Equal<int64[]>([| 1L; 3L; 16L; 16L |], input.shape)
    Assert.Equal<int64[]>([| 1L; 1L |], output)
    Assert.Contains(rows, fun r -> r.Layer = "fade" && r.OutputShape.IsSome)

[<Fact>]
let ``a training configuration shows every field, its architecture field by field`` () =
    let config = TrainingConfig.cpu 16
    let html = NotebookFormatters.recordHtml config
    for field in FSharpType.GetRecordFields(typeof<TrainingConfig>) do
        if field.Name <> "Architecture" then Assert.Contains(sprintf ">%s<" field.Name, html)
    Assert.Contains(">Architecture.Resolution<", html)
