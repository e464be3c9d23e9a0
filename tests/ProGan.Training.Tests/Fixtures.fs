/// Test fixtures: temporary folders, image files written by the tests themselves, tiny configurations.
module ProGan.Training.Tests.Fixtures

open System
open System.IO
open System.IO.Compression
open SixLabors.ImageSharp
open SixLabors.ImageSharp.Formats.Jpeg
open SixLabors.ImageSharp.Formats.Png
open SixLabors.ImageSharp.PixelFormats
open ProGan.Training.Config
open ProGan.Training.Progress
open ProGan.Training.Data
open ProGan.Training.Runs
open ProGan.Training.Loop
open ProGan.Training.Commands
/// A fresh temporary folder, deleted on dispose.
type TempFolder() =
    let path = Path.Combine(Path.GetTempPath(), "progan-tests-" + Guid.NewGuid().ToString("N"))
    do Directory.CreateDirectory path |> ignore
    member _.Path = path
    member _.File(name: string) = Path.Combine(path, name)
    interface IDisposable with
        member _.Dispose() = try Directory.Delete(path, true) with _ -> ()

/// A solid-colour image as interleaved bytes.
let solid (w: int) (h: int) (pixel: byte[]) = Array.init (w * h * pixel.Length) (fun i -> pixel[i % pixel.Length])

/// Interleaved bytes of `channels` channels (1 grey, 3 RGB, 4 RGBA) as an image of that pixel type.
let private image (w: int) (h: int) (channels: int) (data: byte[]) : Image =
    match channels with
    | 1 -> Image.LoadPixelData<L8>(data, w, h)
    | 4 -> Image.LoadPixelData<Rgba32>(data, w, h)
    | _ -> Image.LoadPixelData<Rgb24>(data, w, h)

/// An 8-bit PNG of `channels` channels (1 grey, 3 RGB, 4 RGBA) from interleaved bytes.
let writePng (path: string) (w: int) (h: int) (channels: int) (data: byte[]) =
    use img = image w h channels data
    let colorType = match channels with 1 -> PngColorType.Grayscale | 4 -> PngColorType.RgbWithAlpha | _ -> PngColorType.Rgb
    img.Save(path, PngEncoder(ColorType = Nullable colorType, BitDepth = Nullable PngBitDepth.Bit8))

/// A JPEG (quality 95) of interleaved RGB bytes.
let writeJpg (path: string) (w: int) (h: int) (data: byte[]) =
    use img = image w h 3 data
    img.Save(path, JpegEncoder(Quality = Nullable 95))

/// The width, height and interleaved RGB bytes of an image file's contents.
let readRgb (bytes: byte[]) =
    use img = Image.Load<Rgb24>(bytes)
    let data = Array.zeroCreate<byte> (img.Width * img.Height * 3)
    img.CopyPixelDataTo(Span<byte> data)
    img.Width, img.Height, data

let private crcTable =
    Array.init 256 (fun n ->
        let mutable c = uint32 n
        for _ in 0..7 do c <- if c &&& 1u <> 0u then 0xEDB88320u ^^^ (c >>> 1) else c >>> 1
        c)

/// The CRC-32 of PNG chunks (over the chunk type and data).
let crc (bytes: byte[]) =
    let mutable c = 0xFFFFFFFFu
    for b in bytes do c <- crcTable[int ((c ^^^ uint32 b) &&& 0xFFu)] ^^^ (c >>> 8)
    c ^^^ 0xFFFFFFFFu

/// A palette (colour type 3) PNG with a tRNS chunk, written byte by byte, independently of any image library: `indices` are w·h palette entries.
let writePalettePng (path: string) (w: int) (h: int) (palette: (byte * byte * byte) list) (alphas: byte list) (indices: byte[]) =
    let bigEndian (v: int) = [| byte (v >>> 24); byte (v >>> 16); byte (v >>> 8); byte v |]
    let chunk (kind: string) (data: byte[]) =
        let body = Array.append (Text.Encoding.ASCII.GetBytes kind) data
        Array.concat [ bigEndian data.Length; body; bigEndian (int (crc body)) ]
    let raw = [| for y in 0 .. h - 1 do yield 0uy; yield! indices[y * w .. y * w + w - 1] |]
    use compressed = new MemoryStream()
    do
        use z = new ZLibStream(compressed, CompressionLevel.Optimal, true)
        z.Write(raw, 0, raw.Length)
    let ihdr = Array.concat [ bigEndian w; bigEndian h; [| 8uy; 3uy; 0uy; 0uy; 0uy |] ]
    let plte = palette |> List.collect (fun (r, g, b) -> [ r; g; b ]) |> Array.ofList
    File.WriteAllBytes(path,
        Array.concat [ [| 137uy; 80uy; 78uy; 71uy; 13uy; 10uy; 26uy; 10uy |]
                       chunk "IHDR" ihdr; chunk "PLTE" plte; chunk "tRNS" (Array.ofList alphas)
                       chunk "IDAT" (compressed.ToArray()); chunk "IEND" [||] ])

/// A tiny configuration: 4² → 8², tiny channels, a few hundred images, the paper's loss (WGAN-GP, penalty every
/// minibatch: the tests of its terms and logs hold it; the other losses and lazy regularisation are tested by name),
/// and a learning rate and EMA of its own, so the tests' numbers do not move when the cpu preset's do.
let tiny =
    { TrainingConfig.cpu 8 with
        Architecture = (TrainingConfig.cpu 8).Architecture.With(latentSize = 8, fmapBase = 32, fmapMax = 8)
        Loss = WganGp
        R1Weight = 0.0
        PenaltyInterval = 1
        StabiliseImages = 64
        StabiliseImagesAt = [||]
        FadeImages = 64
        Minibatch = [| 8 |]
        LearningRate = 0.003
        EmaBeta = 0.99
        EmaRampup = 0.0
        TickImages = 48
        LogImages = 16
        ProceduralImages = 64
        Threads = 0 }

/// Runs training quietly with a hook after every step, collecting the events.
let trainWith (onStep: Trainer -> unit) (config: TrainingConfig) (folder: string) (resume: bool) (stopAfter: int64 option) =
    let events = Collections.Generic.List<TrainingEvent>()
    let position =
        TrainingRun.run
            { Config = config; Folder = folder; Resume = resume; StopAfterImages = stopAfter; Report = events.Add; OnStep = onStep
              Cancel = Threading.CancellationToken.None }
    position, List.ofSeq events

/// Runs training quietly, collecting the events.
let train (config: TrainingConfig) (folder: string) (resume: bool) (stopAfter: int64 option) = trainWith ignore config folder resume stopAfter

/// The rows of a run folder's log.csv.
let logRows (folder: string) = RunLog.read (RunFolder folder) Int64.MaxValue

/// The checkpoints of a run folder, newest first.
let checkpoints (folder: string) = RunFolder(folder).Checkpoints()

/// The path of the checkpoint after `shown` images in a run folder.
let checkpointAt (folder: string) (shown: int64) = RunFolder(folder).Checkpoint shown

/// Every image of one level of detail as uint8 [N, 3, r, r].
let levelBytes (images: TrainingImages) (level: int) = images.GatherBytes(level, Array.init images.Count int64)

/// The configuration of `finishedRun`: `tiny` with both phase-end metrics.
let measured = { tiny with Metrics = "swd,ms-ssim"; MetricImages = 16 }

/// A tiny finished run with every artefact a run and `evaluate.fsx -- --all-checkpoints` leave (metrics at phase
/// ends, metrics.csv, the report page, TensorBoard logs), trained once and shared by the tests that only read it;
/// removed when the test process exits.
let finishedRun =
    lazy
        (let folder = new TempFolder()
         AppDomain.CurrentDomain.ProcessExit.Add(fun _ -> (folder :> IDisposable).Dispose())
         train measured folder.Path false None |> ignore
         let code = EvaluateCommand.run [| "--run"; folder.Path; "--all-checkpoints"; "--images"; "16" |]
         if code <> 0 then failwithf "evaluate.fsx --all-checkpoints exited with %d" code
         folder.Path)

/// Runs a command's entry point in this process as `dotnet fsi script.fsx -- args` would; returns the exit code, stderr
/// and stdout.
let runCommand (entry: string[] -> int) (args: string list) =
    let err, out = new StringWriter(), new StringWriter()
    let oldErr, oldOut = Console.Error, Console.Out
    Console.SetError err
    Console.SetOut out
    try
        let code = entry (Array.ofList ("script.fsx" :: "--" :: args))
        code, string err, string out
    finally
        Console.SetError oldErr
        Console.SetOut oldOut

/// The newest checkpoints of two run folders hold the same state byte for byte: G, D, the EMA generator, both Adam
/// states and the noise generator (the header's time stamp aside).
let assertSameState (a: string) (b: string) =
    let sectionBytes (path: string) (name: string) =
        use reader = (ProGan.Keras.Serving.CheckpointFile.Read path).Open name
        use copy = new MemoryStream()
        reader.BaseStream.CopyTo copy
        copy.ToArray()
    let newest folder = List.head (checkpoints folder)
    Xunit.Assert.Equal((Checkpoint.readHeader (newest a)).ImagesShown, (Checkpoint.readHeader (newest b)).ImagesShown)
    for name in [ ProGan.Keras.Serving.CheckpointSection.Generator; ProGan.Keras.Serving.CheckpointSection.Discriminator
                  ProGan.Keras.Serving.CheckpointSection.Ema; ProGan.Keras.Serving.CheckpointSection.GeneratorOptimizer
                  ProGan.Keras.Serving.CheckpointSection.DiscriminatorOptimizer; ProGan.Keras.Serving.CheckpointSection.NoiseRandom ] do
        Xunit.Assert.True((sectionBytes (newest a) name = sectionBytes (newest b) name), sprintf "section %s differs" name)
