// How the notebooks show the library's values as HTML.
namespace ProGan.Training.Output

open System
open System.IO
open System.Net
open System.Text
open Microsoft.FSharp.Reflection
open TorchSharp
open ProGan.Keras.Models
open ProGan.Keras.Serving
open ProGan.Training.Basics

/// How the notebooks show the library's values, as HTML: image tensors as PNG grids, models as a Keras-style
/// `summary()`, configurations as tables, charts as PNGs. Plain functions of a value, so the suite tests them; the
/// notebooks' preamble (notebooks/preamble.fsx) registers them with .NET Interactive's `Formatter`.
module NotebookFormatters =

    /// A PNG of bytes `[H, W, C]` (C = 1, 3 or 4).
    let png (pixels: torch.Tensor) =
        use stream = new MemoryStream()
        ImageGrid.EncodePng(pixels, stream)
        stream.ToArray()

    /// An inline `<img>` of PNG bytes, drawn with hard pixel edges (the images are small).
    let imgTag (png: byte[]) =
        sprintf "<img src=\"data:image/png;base64,%s\" style=\"image-rendering: pixelated; max-width: 100%%\"/>" (Convert.ToBase64String png)

    /// Whether a tensor reads as images in [−1, 1]: `[N, C, H, W]` or `[C, H, W]` with 1, 3 or 4 channels,
    /// floating point, at least 4 pixels a side.
    let private isImage (t: torch.Tensor) =
        let dims = t.shape
        let image (c: int64) h w = (c = 1L || c = 3L || c = 4L) && h >= 4L && w >= 4L
        t.is_floating_point ()
        && (dims.Length = 4 && dims[0] >= 1L && image dims[1] dims[2] dims[3]
            || dims.Length = 3 && image dims[0] dims[1] dims[2])

    /// Images `[N, C, H, W]` (or one `[C, H, W]`) in [−1, 1] as an about square PNG grid, each cell at least 64 pixels.
    let imageGridPng (images: torch.Tensor) =
        use scope = torch.NewDisposeScope()
        let batch = if images.dim () = 3L then images.unsqueeze 0L else images
        let batch = batch.detach().cpu().to_type(torch.ScalarType.Float32).clamp(TensorSyntax.scalar -1.0, TensorSyntax.scalar 1.0)
        png (ImageGrid.Compose(batch, ImageGrid.SquareColumns(int batch.shape[0])))

    let private shapeText (shape: int64[]) = "[" + String.Join(", ", shape) + "]"

    /// A tensor as HTML: images as a PNG grid with their shape beneath; any other tensor as its shape, type and values.
    let tensorHtml (t: torch.Tensor) =
        let caption = sprintf "<div style=\"font-family: monospace; font-size: small\">%s %O</div>" (shapeText t.shape) t.dtype
        if isImage t then imgTag (imageGridPng t) + caption
        else
            let values = if t.numel () <= 1000L then t.cpu().ToString(TorchSharp.TensorStringStyle.Julia) else "(too many values to show)"
            sprintf "<pre>%s</pre>%s" (WebUtility.HtmlEncode values) caption

    /// One row of a model summary: a layer, its type, its output shape for one sample, its parameters.
    type SummaryRow =
        { Layer: string
          Kind: string
          /// None when the forward pass did not call the layer.
          OutputShape: int64[] option
          Parameters: int64 }

    let private count (m: torch.nn.Module) = m.parameters () |> Seq.sumBy (fun p -> p.numel ())

    /// The layers a model calls, in call order, with their output shapes for `input` (one forward pass without
    /// gradients, observed with forward hooks); then the model's parameter count (shared parameters counted once).
    let summaryOf (model: torch.nn.Module<torch.Tensor, torch.Tensor>) (input: torch.Tensor) =
        let layers =
            [ for name, child in model.named_children () do
                match child with
                | :? TorchSharp.Modules.ModuleList<GeneratorBlock> as list ->
                    for i, block in Seq.indexed list do yield sprintf "%s.%d" name i, block :> torch.nn.Module
                | :? TorchSharp.Modules.ModuleList<DiscriminatorBlock> as list ->
                    for i, block in Seq.indexed list do yield sprintf "%s.%d" name i, block :> torch.nn.Module
                | child -> yield name, child ]
        let shapes = Collections.Generic.Dictionary<string, int64[]>()
        let order = ResizeArray<string>()
        let seen name (output: torch.Tensor) =
            if not (shapes.ContainsKey name) then order.Add name
            shapes[name] <- output.shape
        let hooks =
            [ for name, layer in layers do
                match layer with
                | :? torch.nn.Module<torch.Tensor, torch.Tensor> as m ->
                    let h = m.register_forward_hook(fun _ _ output -> seen name output; null)
                    yield fun () -> h.remove ()
                | :? torch.nn.Module<torch.Tensor, torch.Tensor, torch.Tensor> as m ->
                    let h = m.register_forward_hook(fun _ _ _ output -> seen name output; null)
                    yield fun () -> h.remove ()
                | _ -> () ]
        let output =
            try
                use _ = torch.no_grad ()
                use scope = torch.NewDisposeScope()
                (model.call input).shape
            finally
                for remove in hooks do remove ()
        let rank name = match order.IndexOf name with -1 -> Int32.MaxValue | i -> i
        let rows =
            layers
            |> List.sortBy (fst >> rank)
            |> List.map (fun (name, layer) ->
                { Layer = name
                  Kind = layer.GetType().Name
                  OutputShape = (match shapes.TryGetValue name with | true, s -> Some s | _ -> None)
                  Parameters = count layer })
        rows, output, count model

    /// The input a generator or discriminator model takes, for one sample.
    let sampleInput (model: torch.nn.Module<torch.Tensor, torch.Tensor>) =
        match model with
        | :? DiscriminatorModel as d -> torch.zeros([| 1L; 3L; int64 d.Resolution; int64 d.Resolution |])
        | _ ->
            let dense = model.modules () |> Seq.pick (function :? ProGan.Keras.Layers.WeightScaledDense as d -> Some d | _ -> None)
            torch.zeros([| 1L; dense.InFeatures |])

    let private cellStyle = "style=\"text-align: left; padding: 2px 12px 2px 0; font-family: monospace\""
    let private numberStyle = "style=\"text-align: right; padding: 2px 12px 2px 0; font-family: monospace\""

    let private shapeCell (shape: int64[]) = "(None, " + String.Join(", ", shape |> Array.skip 1) + ")"

    /// A model as a Keras-style `summary()` table: layer (type), output shape, parameters, then the total.
    let summaryHtml (model: torch.nn.Module<torch.Tensor, torch.Tensor>) =
        use input = sampleInput model
        let rows, output, total = summaryOf model input
        let sb = StringBuilder()
        sb.AppendFormat("<div><b>Model: \"{0}\"</b><table>", WebUtility.HtmlEncode(model.GetName())) |> ignore
        sb.AppendFormat("<thead><tr><th {0}>Layer (type)</th><th {0}>Output shape</th><th {1}>Param #</th></tr></thead><tbody>", cellStyle, numberStyle) |> ignore
        sb.AppendFormat("<tr><td {0}>input_layer (InputLayer)</td><td {0}>{1}</td><td {2}>0</td></tr>", cellStyle, shapeCell input.shape, numberStyle) |> ignore
        for r in rows do
            sb.AppendFormat("<tr><td {0}>{1} ({2})</td><td {0}>{3}</td><td {4}>{5:N0}</td></tr>", cellStyle, WebUtility.HtmlEncode r.Layer,
                            r.Kind, (match r.OutputShape with Some s -> shapeCell s | None -> "— (not called)"), numberStyle, r.Parameters) |> ignore
        sb.AppendFormat("</tbody></table><div style=\"font-family: monospace\">Output: {0}<br/>Total params: {1:N0}</div></div>", shapeCell output, total) |> ignore
        string sb

    /// Both models of a resolution, straight-through then fade-in.
    let pairHtml (pair: ModelPair<'TModel>) =
        sprintf "<div><b>%d² pair</b> (the two models share every parameter)</div>%s%s" pair.Resolution
            (summaryHtml pair.StraightThrough)
            (match box pair.FadeIn with null -> "<div><i>no fade-in model at 4²: nothing to fade from</i></div>" | _ -> summaryHtml pair.FadeIn)

    /// A whole progressive network: its pairs' parameter counts, then the summary of its highest straight-through model.
    let networkHtml (network: ProgressiveNetwork<'TModel>) =
        let sb = StringBuilder()
        sb.AppendFormat("<div><b>{0}</b>: {1} resolutions, {2:N0} parameters in all<table>", network.GetName(), network.Pairs.Count, count network) |> ignore
        sb.AppendFormat("<thead><tr><th {0}>Resolution</th><th {1}>Straight-through</th><th {1}>Fade-in</th></tr></thead><tbody>", cellStyle, numberStyle) |> ignore
        for pair in network.Pairs do
            sb.AppendFormat("<tr><td {0}>{1}²</td><td {2}>{3:N0}</td><td {2}>{4}</td></tr>", cellStyle, pair.Resolution, numberStyle, count pair.StraightThrough,
                            (match box pair.FadeIn with null -> "—" | _ -> (count pair.FadeIn).ToString "N0")) |> ignore
        sb.Append("</tbody></table></div>").Append(summaryHtml (network.Pairs[network.Pairs.Count - 1].StraightThrough)) |> ignore
        string sb

    let rec private valueText (value: obj) =
        match value with
        | null -> "null"
        | :? string as s -> if s = "" then "\"\"" else s
        | :? float as x -> x.ToString("G6", Globalization.CultureInfo.InvariantCulture)
        | :? Collections.IEnumerable as items -> "[" + String.Join("; ", [ for i in items -> valueText i ]) + "]"
        | v when FSharpType.IsRecord(v.GetType()) ->
            FSharpType.GetRecordFields(v.GetType()) |> Array.map (fun f -> sprintf "%s %s" f.Name (valueText (f.GetValue v))) |> String.concat ", "
        | v -> string v

    /// A record (a `TrainingConfig`) as a table of its fields; a nested architecture (`ProGanConfig`) as its own rows.
    let recordHtml (value: obj) =
        let sb = StringBuilder()
        sb.AppendFormat("<table><thead><tr><th {0}>{1}</th><th {0}>value</th></tr></thead><tbody>", cellStyle, value.GetType().Name) |> ignore
        let row (name: string) (v: obj) =
            sb.AppendFormat("<tr><td {0}>{1}</td><td {0}>{2}</td></tr>", cellStyle, name, WebUtility.HtmlEncode(valueText v)) |> ignore
        for field in FSharpType.GetRecordFields(value.GetType()) do
            match field.GetValue value with
            | :? ProGanConfig as architecture ->
                for p in typeof<ProGanConfig>.GetProperties() do
                    if p.GetIndexParameters().Length = 0 && p.Name <> "EqualityContract" then row (field.Name + "." + p.Name) (p.GetValue architecture)
            | v -> row field.Name v
        sb.Append("</tbody></table>") |> ignore
        string sb

    /// A ScottPlot chart as an inline PNG, `width`×`height`.
    let plotHtml (width: int) (height: int) (plot: ScottPlot.Plot) =
        use image = plot.GetImage(width, height)
        imgTag (image.GetImageBytes(ScottPlot.ImageFormat.Png, 100))
