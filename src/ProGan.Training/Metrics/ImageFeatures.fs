// ResNet-18's 512-d pooled features of images (ONNX, run by ONNX Runtime), and the reals' features cached per data set.
namespace ProGan.Training.Metrics

open System
open System.Collections.Concurrent
open System.IO
open System.Security.Cryptography
open System.Threading
open Microsoft.ML.OnnxRuntime
open Microsoft.ML.OnnxRuntime.Tensors
open TorchSharp
open ProGan.Training.Basics

/// The feature network of FD-ResNet18, KID and precision/recall: ImageNet-trained ResNet-18 (He et al. 2016) as
/// ML.NET ships it in the NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 0.24.0 (a CNTK export, opset 8), run
/// by ONNX Runtime. Two graphs of that package, used as they are:
///  - `ResNetPrepOnnx/ResNetPreprocess.onnx`: `OriginalInput` [1, 3, 224, 224] RGB in 0–255 → `PreprocessedInput`:
///    the channels reordered to BGR and a per-pixel ImageNet mean image subtracted (channel means B 103.1, G 115.9,
///    R 123.2; no division by a standard deviation — Caffe's ResNet recipe);
///  - `ResNet18Onnx/ResNet18.onnx`: `Input247` [1, 3, 224, 224] → `Pooling395_Output_0` [1, 512, 1, 1], the 7×7
///    global average pool after the last residual block (what ML.NET's featurizer outputs; no classifier follows).
/// Images ([−1, 1], 1, 3 or 4 channels) are mapped to 0–255 RGB (gray repeated; RGBA composited onto black, as a
/// 3-channel run sees its data), resized to 224² bilinearly (antialiased when shrinking), and fed one at a time: both
/// graphs fix the batch at 1, and batching an edited copy measured no faster on 2 cores.
/// Not Inception-v3: distances in this space are not comparable with published FID/KID/precision/recall values.
type ImageFeatures private (options: SessionOptions, prep: InferenceSession, network: InferenceSession) =

    /// The package the graphs come from, restored by the build (`PackageDownload` in ProGan.Training.fsproj) and
    /// copied beside the library under `DnnImageModels/`.
    static member Package = "Microsoft.ML.DnnImageFeaturizer.ResNet18 0.24.0"
    /// How results name the feature space.
    static member Name = "ResNet-18 (ImageNet; ML.NET's ONNX export), 512-d average-pool features"
    /// The graphs' input side.
    static member InputSize = 224
    /// Features per image.
    static member Dimensions = 512
    static member PrepInput = "OriginalInput"
    static member PrepOutput = "PreprocessedInput"
    static member NetworkInput = "Input247"
    static member NetworkOutput = "Pooling395_Output_0"

    /// The folder of the two graphs: $PROGAN_KERAS_FEATURE_MODELS, else `DnnImageModels` beside this library.
    static member ModelFolder =
        match Environment.GetEnvironmentVariable "PROGAN_KERAS_FEATURE_MODELS" with
        | null | "" -> Path.Combine(Path.GetDirectoryName(typeof<ImageFeatures>.Assembly.Location), "DnnImageModels")
        | folder -> folder

    /// Loads the two graphs from `folder`, ONNX Runtime running each on `threads` threads (at least 1) without
    /// spinning (the machine is shared with training and other work). The one set of session options both sessions
    /// are made with is kept, and disposed, with them.
    static member Load(folder: string, threads: int) =
        let path (relative: string) =
            let path = Path.Combine(folder, relative)
            if not (File.Exists path) then
                raise (FileNotFoundException(
                    sprintf "The feature network '%s' is missing: build src/ProGan.Training (its restore downloads %s and copies its .onnx files there), or set PROGAN_KERAS_FEATURE_MODELS to a folder holding %s." path ImageFeatures.Package relative, path))
            path
        let prepPath = path (Path.Combine("ResNetPrepOnnx", "ResNetPreprocess.onnx"))
        let networkPath = path (Path.Combine("ResNet18Onnx", "ResNet18.onnx"))
        // Whatever was made before a failure (a corrupt or foreign graph) is disposed before the error goes on.
        let made = Collections.Generic.Stack<IDisposable>()
        try
            let options = new SessionOptions(IntraOpNumThreads = max 1 threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL)
            made.Push options
            options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0")
            options.GraphOptimizationLevel <- GraphOptimizationLevel.ORT_ENABLE_ALL
            let session (path: string) = let s = new InferenceSession(path, options) in made.Push s; s
            let prep = session prepPath
            let network = session networkPath
            for session, input, output in [ prep, ImageFeatures.PrepInput, ImageFeatures.PrepOutput; network, ImageFeatures.NetworkInput, ImageFeatures.NetworkOutput ] do
                if not (session.InputMetadata.ContainsKey input && session.OutputMetadata.ContainsKey output) then
                    failwithf "The feature network in '%s' is not the expected graph (no input '%s' or output '%s'); restore %s." folder input output ImageFeatures.Package
            new ImageFeatures(options, prep, network)
        with _ ->
            for d in made do d.Dispose()
            reraise ()

    /// The shared networks loaded so far, by their thread count: one per process, unless its thread count changes.
    static member val private shared = ConcurrentDictionary<int, Lazy<ImageFeatures>>() with get

    /// The threads the shared network runs on: torch's intra-op threads, which `--threads` sets — the trainer
    /// (`TrainingConfig.Threads`, or its share of the cores among the ranks on one machine) for the phase ends'
    /// `--metrics`, `evaluate.fsx --threads` for an evaluation —, so that ONNX Runtime uses the cores the rest of the
    /// process was given, not all of the machine's beside it.
    static member SharedThreads = max 1 (torch.get_num_threads())

    /// The network on `SharedThreads` threads, loaded once per process and thread count (on first use; about a second).
    static member Shared =
        ImageFeatures.shared.GetOrAdd(ImageFeatures.SharedThreads, fun threads -> lazy ImageFeatures.Load(ImageFeatures.ModelFolder, threads)).Force()

    /// The threads ONNX Runtime runs each graph on (intra-op; one graph runs at a time), as its session options say.
    member _.Threads = options.IntraOpNumThreads

    /// Images [N, C, H, W] in [−1, 1] as the graphs' input: [N, 3, 224, 224] float32 RGB in 0–255, on the CPU.
    static member ToInput(images: torch.Tensor) =
        use scope = torch.NewDisposeScope()
        let x = images.cpu().to_type(torch.ScalarType.Float32).add(scalar 1.0).mul(scalar 127.5).clamp(scalar 0.0, scalar 255.0)
        let rgb =
            match int x.shape[1] with
            | 1 -> x.expand(-1L, 3L, -1L, -1L)
            | 3 -> x
            | 4 -> x.narrow(1L, 0L, 3L) * x.narrow(1L, 3L, 1L).div(scalar 255.0)
            | c -> invalidArg "images" (sprintf "Images of 1, 3 or 4 channels have features; these have %d." c)
        let size = int64 ImageFeatures.InputSize
        let sized =
            if x.shape[2] = size && x.shape[3] = size then rgb
            else
                let shrinking = x.shape[2] > size || x.shape[3] > size
                torch.nn.functional.interpolate(rgb, size = [| size; size |], mode = torch.InterpolationMode.Bilinear, align_corners = false, antialias = shrinking)
        sized.clamp(scalar 0.0, scalar 255.0).contiguous().MoveToOuterDisposeScope()

    /// The features [N, 512] (float32, CPU) of images [N, C, H, W] in [−1, 1]; `stepped` is called with the images
    /// done after each, and `cancel` is seen between images.
    member _.ExtractStepping(images: torch.Tensor, cancel: CancellationToken, stepped: int -> unit) =
        let n = int images.shape[0]
        let side = ImageFeatures.InputSize
        let perImage = 3 * side * side
        let shape = [| 1; 3; side; side |]
        let features = Array.zeroCreate<float32> (n * ImageFeatures.Dimensions)
        let chunk = 64
        for first in 0 .. chunk .. n - 1 do
            let count = min chunk (n - first)
            let pixels =
                use part = images.narrow(0L, int64 first, int64 count)
                use input = ImageFeatures.ToInput part
                input.data<float32>().ToArray()
            for i in 0 .. count - 1 do
                cancel.ThrowIfCancellationRequested()
                let image = DenseTensor<float32>(Memory<float32>(pixels, i * perImage, perImage), ReadOnlySpan<int>(shape))
                use prepared = prep.Run([ NamedOnnxValue.CreateFromTensor(ImageFeatures.PrepInput, image) ])
                let bgr = Seq.head(prepared).AsTensor<float32>()
                use pooled = network.Run([ NamedOnnxValue.CreateFromTensor(ImageFeatures.NetworkInput, bgr) ], [ ImageFeatures.NetworkOutput ])
                let values = Seq.head(pooled).AsTensor<float32>() :?> DenseTensor<float32>
                values.Buffer.Span.CopyTo(features.AsSpan((first + i) * ImageFeatures.Dimensions, ImageFeatures.Dimensions))
                stepped (first + i + 1)
        torch.tensor(features :> Collections.Generic.IList<float32>, ReadOnlySpan<int64>([| int64 n; int64 ImageFeatures.Dimensions |]))

    /// The features [N, 512] of images [N, C, H, W] in [−1, 1].
    member this.Extract(images: torch.Tensor) = this.ExtractStepping(images, CancellationToken.None, ignore)

    interface IDisposable with
        member _.Dispose() =
            prep.Dispose()
            network.Dispose()
            options.Dispose()

/// The features of real images, kept in memory for the life of the process and on disk in the user's cache, so that
/// the reals of a data set go through the network once however many checkpoints, phase ends or `evaluate.fsx` runs
/// are measured against them.
module RealFeatures =

    let private kept = ConcurrentDictionary<string, float32[] * int64[]>()

    /// The key of a set of reals: the feature network, the SHA-256 of the data's level (`TrainingImages.LevelHash`,
    /// the key of prepared data sets and of their cache), the level, and the SHA-256 of the image indices in order.
    let key (levelHash: string) (level: int) (indices: int64[]) =
        let bytes = Array.zeroCreate<byte> (indices.Length * 8)
        Buffer.BlockCopy(indices, 0, bytes, 0, bytes.Length)
        sprintf "%s|%s|%d|%s" ImageFeatures.Package levelHash level (Convert.ToHexString(SHA256.HashData bytes))

    /// Where features are cached on disk: $PROGAN_KERAS_FEATURE_CACHE, else the user cache folder.
    let cacheFolder () = UserCache.folder "PROGAN_KERAS_FEATURE_CACHE" "features"

    /// The cache file of `key`: rows and columns (two int64), then the float32 features, little-endian.
    let private file (key: string) =
        Path.Combine(cacheFolder (), Convert.ToHexString(SHA256.HashData(Text.Encoding.UTF8.GetBytes key)).Substring(0, 32).ToLowerInvariant() + ".f32")

    /// The features cached on disk under `key`, or None (missing, or not the length its header says: written again).
    let private read (key: string) =
        try
            let bytes = File.ReadAllBytes(file key)
            if bytes.Length < 16 then None
            else
                let rows, columns = BitConverter.ToInt64(bytes, 0), BitConverter.ToInt64(bytes, 8)
                if rows < 1L || columns < 1L || int64 bytes.Length <> 16L + 4L * rows * columns then None
                else
                    let values = Array.zeroCreate<float32> (int (rows * columns))
                    Buffer.BlockCopy(bytes, 16, values, 0, values.Length * 4)
                    Some(values, [| rows; columns |])
        with :? IOException | :? UnauthorizedAccessException -> None

    /// Caches features on disk (atomically); a cache that cannot be written is passed over: they are kept in memory.
    let private write (key: string) (values: float32[]) (shape: int64[]) =
        try
            Directory.CreateDirectory(cacheFolder ()) |> ignore
            let bytes = Array.zeroCreate<byte> (16 + values.Length * 4)
            BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), shape[0]) |> ignore
            BitConverter.TryWriteBytes(bytes.AsSpan(8, 8), shape[1]) |> ignore
            Buffer.BlockCopy(values, 0, bytes, 16, values.Length * 4)
            ProGan.Keras.IO.AtomicFile.WriteAllBytes(file key, ReadOnlySpan<byte>(bytes))
        with :? IOException | :? UnauthorizedAccessException -> ()

    /// Whether features are kept under `key`, in memory or on disk.
    let contains (key: string) =
        kept.ContainsKey key
        || (match read key with
            | Some found -> kept[key] <- found; true
            | None -> false)

    /// The features under `key`, computed by `compute` (a [N, 512] tensor) the first time.
    let getOrCompute (key: string) (compute: unit -> torch.Tensor) : torch.Tensor =
        if contains key then
            let values, shape = kept[key]
            torch.tensor(values :> Collections.Generic.IList<float32>, ReadOnlySpan<int64>(shape))
        else
            let features = compute ()
            let values = features.data<float32>().ToArray()
            kept[key] <- (values, features.shape)
            write key values features.shape
            features

    /// Forgets the sets kept in memory (not on disk).
    let clear () = kept.Clear()
