// report.html: one self-contained page per run.
namespace ProGan.Training.Runs

open System
open System.Collections.Concurrent
open System.IO
open System.Text.Json
open SixLabors.ImageSharp
open SixLabors.ImageSharp.Formats.Jpeg
open SixLabors.ImageSharp.PixelFormats
open SixLabors.ImageSharp.Processing
open ProGan.Keras.IO
open ProGan.Training.Basics
open ProGan.Training.Config
open ProGan.Training.Data

/// report.html: one self-contained page per run — configuration, the schedule drawn as phases, the loss, gradient
/// penalty and metric curves (uPlot, inlined with its licence), the sample grid of every tick under a slider, the
/// phase-end grids and the final interpolation strip. Built from the run folder's own files alone, so any process
/// can rewrite it: training at every tick and at the end, `evaluate.fsx -- --all-checkpoints` after adding metrics.
module RunReport =

    /// Tick grids a page holds at most: evenly spaced ones, the newest always among them (a paper-length run has
    /// hundreds of ticks; the files stay in the run folder).
    let maxTickGrids = 48

    /// Widest grid inlined, in pixels; wider ones are shrunk by averaging blocks of pixels.
    let maxGridWidth = 420

    /// Widest strip inlined (an interpolation strip is one long row).
    let maxStripWidth = 1300

    let private jpegQuality = 88

    let private resource (name: string) =
        use stream = typeof<RunFolder>.Assembly.GetManifestResourceStream(name)
        if isNull stream then failwithf "The resource %s is missing from the library's build." name
        use reader = new StreamReader(stream)
        reader.ReadToEnd()

    let private page =
        lazy
            ((resource "report.html")
                .Replace("/*@UPLOT_CSS@*/", resource "uPlot.min.css")
                .Replace("/*@UPLOT_JS@*/", resource "uPlot.iife.min.js" + "\n/* uPlot: MIT licence */\n/*\n" + resource "uPlot.LICENSE" + "\n*/"))

    /// Pictures already encoded, by file, size and time: every tick's page holds the earlier ticks' grids again.
    let private encoded = ConcurrentDictionary<struct (string * int64 * DateTime), string>()

    /// A picture file as a data URI at most `maxWidth` pixels wide: the PNG itself, or a JPEG of it (shrunk by an
    /// integer factor where wider), whichever is smaller — grids of low resolutions enlarged by nearest neighbour are
    /// flat blocks that PNG holds in a fraction of JPEG's size, and detailed ones the other way round. None when the
    /// file is missing or cannot be decoded.
    let private picture (maxWidth: int) (path: string) =
        match FileKind.at path with
        | Regular length ->
            let key = struct (path, length, File.GetLastWriteTimeUtc path)
            match encoded.TryGetValue key with
            | true, uri -> Some uri
            | _ ->
                // Bounded: a long run's page shows other ticks as it grows.
                if encoded.Count > 4 * maxTickGrids then encoded.Clear()
                try
                    let file = File.ReadAllBytes path
                    use image = Image.Load<Rgb24>(ImageFiles.configuration, file)
                    let k = (image.Width + maxWidth - 1) / maxWidth
                    // An integer factor, so that each pixel is the mean of a k×k block (the box filter) and the
                    // nearest-neighbour cells of a low-resolution grid stay flat.
                    let w, h = image.Width / k, image.Height / k
                    if k > 1 then image.Mutate(fun x -> x.Crop(Rectangle(0, 0, w * k, h * k)).Resize(w, h, KnownResamplers.Box) |> ignore)
                    use jpeg = new MemoryStream()
                    image.SaveAsJpeg(jpeg, JpegEncoder(Quality = Nullable jpegQuality))
                    let uri =
                        if k = 1 && int64 file.Length <= jpeg.Length then "data:image/png;base64," + Convert.ToBase64String file
                        else "data:image/jpeg;base64," + Convert.ToBase64String(jpeg.ToArray())
                    encoded[key] <- uri
                    Some uri
                with e when not (e :? OutOfMemoryException) -> None
        | _ -> None

    /// `count` evenly spaced items of a list, its last always among them.
    let evenlySpaced (count: int) (items: 'T list) =
        let n = List.length items
        if n <= count then items
        else
            let wanted = set [ for k in 0 .. count - 1 -> int (round (float k * float (n - 1) / float (count - 1))) ]
            items |> List.indexed |> List.filter (fun (i, _) -> wanted.Contains i) |> List.map snd

    /// A finite number, or JSON's null.
    let private value (x: float) = if Double.IsFinite x then Nullable x else Nullable()

    /// The configuration as (dotted name, value) rows.
    let private settings (config: TrainingConfig) =
        let rec walk (prefix: string) (e: JsonElement) =
            match e.ValueKind with
            | JsonValueKind.Object -> [ for p in e.EnumerateObject() do yield! walk (prefix + p.Name + ".") p.Value ]
            | _ -> [ prefix.TrimEnd('.'), e.GetRawText().Trim('"') ]
        walk "" (JsonSerializer.SerializeToElement config)

    /// The phases as boxes, and the resolution (log₂) over images shown at every phase boundary: straight between
    /// boundaries, flat while a level stabilises and rising with α while the next fades in (`Schedule.at`).
    let private schedule (config: TrainingConfig) (now: int64) =
        let total = TrainingConfig.totalImages config
        let boundaries =
            let lengths = TrainingConfig.phaseImages config
            let rec next i at acc = if at >= total || i >= lengths.Length then List.rev (total :: acc) else next (i + 1) (at + lengths[i]) (at :: acc)
            next 0 0L [] |> List.distinct
        let phases =
            [ for a, b in List.pairwise boundaries ->
                let p = Schedule.at config ((a + b) / 2L)
                {| start = a; ``end`` = b; resolution = p.Resolution; phase = string p.Phase |} ]
        let level (shown: int64) = Math.Log2(float config.Architecture.Resolution) - (Schedule.at config shown).Lod
        let xs = (now :: boundaries) |> List.filter (fun x -> x <= total) |> List.distinct |> List.sort
        {| phases = phases; total = total; now = now
           images = xs; level = xs |> List.map level
           trained = xs |> List.map (fun x -> if x <= now then value (level x) else Nullable()) |}

    /// The page's data from the run folder's files.
    let private model (folder: RunFolder) (config: TrainingConfig) =
        let rows = RunLog.read folder Int64.MaxValue
        let now = rows |> List.tryLast |> Option.map (fun r -> r.ImagesShown) |> Option.defaultValue 0L
        let wall = rows |> List.tryLast |> Option.map (fun r -> TimeSpan.FromSeconds(Math.Round r.WallSeconds)) |> Option.defaultValue TimeSpan.Zero
        let ticks = folder.TickGrids()
        let shownTicks = evenlySpaced maxTickGrids ticks
        let position = Schedule.at config now
        let label (shown: int64) =
            let p = Schedule.at config shown
            sprintf "%s images · %d² %O%s" (shown.ToString("N0", Globalization.CultureInfo.InvariantCulture)) p.Resolution p.Phase
                (if p.Phase = FadeIn then sprintf " α %.2f" p.Alpha else "")
        let checkpoints = MetricsLog.read folder
        {| name = Path.GetFileName folder.Path
           summary =
            sprintf "%s · %s of %s images · %d² %O · %s wall time · %s · page written %s UTC"
                (TrainingData.describe config) (now.ToString("N0", Globalization.CultureInfo.InvariantCulture))
                ((TrainingConfig.totalImages config).ToString("N0", Globalization.CultureInfo.InvariantCulture))
                position.Resolution position.Phase (wall.ToString("c")) About.product (DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm"))
           config = settings config |> List.map (fun (k, v) -> [| k; v |])
           schedule = schedule config now
           log =
            {| images = rows |> List.map (fun r -> r.ImagesShown)
               dLoss = rows |> List.map (fun r -> value r.DLoss)
               gLoss = rows |> List.map (fun r -> value r.GLoss)
               gradientPenalty = rows |> List.map (fun r -> value r.GradientPenalty)
               swd = rows |> List.map (fun r -> value r.Swd)
               msSsim = rows |> List.map (fun r -> value r.MsSsim)
               fd = rows |> List.map (fun r -> value r.FdResNet18)
               kid = rows |> List.map (fun r -> value r.Kid)
               precision = rows |> List.map (fun r -> value r.Precision)
               recall = rows |> List.map (fun r -> value r.Recall) |}
           checkpoints =
            {| images = checkpoints |> List.map (fun r -> r.ImagesShown)
               swd = checkpoints |> List.map (fun r -> value r.Swd)
               swdReal = checkpoints |> List.map (fun r -> value r.SwdRealVsReal)
               msSsim = checkpoints |> List.map (fun r -> value r.MsSsim)
               msSsimReal = checkpoints |> List.map (fun r -> value r.MsSsimReal)
               fd = checkpoints |> List.map (fun r -> value r.FdResNet18)
               fdReal = checkpoints |> List.map (fun r -> value r.FdResNet18RealVsReal)
               precision = checkpoints |> List.map (fun r -> value r.Precision)
               recall = checkpoints |> List.map (fun r -> value r.Recall)
               recallReal = checkpoints |> List.map (fun r -> value r.RecallRealVsReal) |}
           ticks =
            [ for shown, path in shownTicks do
                match picture maxGridWidth path with
                | Some src -> {| images = shown; label = label shown; src = src |}
                | None -> () ]
           omittedTicks = ticks.Length - shownTicks.Length
           phaseGrids =
            [ for index, resolution, phase, path in folder.PhaseGrids() do
                match picture maxGridWidth path with
                | Some src -> {| label = sprintf "phase %d: end of %d² %s" (index + 1) resolution phase; src = src |}
                | None -> () ]
           interpolation = picture maxStripWidth folder.Interpolation |> Option.toObj
           reals = picture maxGridWidth folder.Reals |> Option.toObj |}

    /// The page of a run, as text.
    let html (folder: RunFolder) (config: TrainingConfig) =
        // The default encoder escapes '<', so no "</script>" can end the data block early.
        page.Force().Replace("/*@DATA@*/", JsonSerializer.Serialize(model folder config))

    /// Writes report.html (atomically).
    let write (folder: RunFolder) (config: TrainingConfig) =
        let text = html folder config
        AtomicFile.WriteAllText(folder.Report, text)
