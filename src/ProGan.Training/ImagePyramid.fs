namespace ProGan.Training

open System
open System.IO
open System.Security.Cryptography
open TorchSharp
open ProGan.Keras.IO

/// A training set prepared as the reference's `dataset_tool.py` does: every image at every level of detail, from the
/// final resolution down to 4² by repeated 2×2 averaging, stored as bytes (NCHW, RGB, 0–255).
type ImagePyramid(name: string, levels: torch.Tensor[]) =
    do if levels.Length = 0 then invalidArg "levels" "An image pyramid needs at least one level."

    let contentHash =
        lazy
            (use hash = IncrementalHash.CreateHash HashAlgorithmName.SHA256
             let top = levels[levels.Length - 1]
             // A few images at a time: a data set may exceed the 2 GiB of one managed array.
             for start in 0L .. 256L .. top.shape[0] - 1L do
                 use chunk = top.narrow(0L, start, min 256L (top.shape[0] - start)).contiguous()
                 hash.AppendData(chunk.bytes.ToArray())
             Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant())

    /// Where the images came from (a folder, or the procedural set's description).
    member _.Name = name
    /// Number of images.
    member _.Count = int levels[0].shape[0]
    /// The final resolution.
    member _.Resolution = int levels[levels.Length - 1].shape[2]
    /// Levels of detail, 4² first, as uint8 [N, 3, r, r].
    member _.Levels = levels
    /// SHA-256 of the final-resolution bytes: equal exactly when two pyramids hold the same images in the same order.
    member _.ContentHash = contentHash.Value

    /// The images at `indices` of `level`, mapped from bytes to [−1, 1], on `device`.
    member _.Gather(level: int, indices: torch.Tensor, device: torch.Device) =
        use scope = torch.NewDisposeScope()
        let batch = levels[level].index_select(0L, indices).``to``(device).to_type(torch.ScalarType.Float32)
        batch.div_(scalar 127.5).sub_(scalar 1.0).MoveToOuterDisposeScope()

    /// A minibatch at `level`, mapped to [−1, 1], on `device`; indices (and mirroring) drawn from `generator`.
    member this.Sample(level: int, count: int, generator: torch.Generator, mirror: bool, device: torch.Device) =
        use scope = torch.NewDisposeScope()
        let indices = torch.randint(int64 levels[0].shape[0], [| int64 count |], generator = generator)
        let batch = this.Gather(level, indices, device)
        let batch =
            if mirror then
                let flip = torch.rand([| int64 count; 1L; 1L; 1L |], generator = generator).lt(scalar 0.5).``to``(device)
                torch.where(flip, batch.flip(3L), batch)
            else batch
        batch.MoveToOuterDisposeScope()

    interface IDisposable with
        member _.Dispose() = for l in levels do l.Dispose()

/// Why a cached pyramid could not be used.
type CacheProblem =
    | NotCached
    | Damaged of reason: string

module ImagePyramid =

    /// Builds every level of detail from the final-resolution images (float in [0, 255], NCHW): each lower level is the
    /// 2×2 average of the one above, computed in floating point and stored rounded to bytes, as the reference does.
    let fromFloat (name: string) (images: torch.Tensor) =
        let resolution = int images.shape[2]
        if images.dim() <> 4L || images.shape[1] <> 3L || images.shape[3] <> int64 resolution || resolution < 4 || (resolution &&& (resolution - 1)) <> 0 then
            invalidArg "images" (sprintf "Expected [N, 3, r, r] with r a power of two ≥ 4; got %A." images.shape)
        use scope = torch.NewDisposeScope()
        let rec build (x: torch.Tensor) acc =
            let level = x.round().clamp(scalar 0.0, scalar 255.0).to_type(torch.ScalarType.Byte)
            let acc = level :: acc
            if x.shape[2] = 4L then acc else build (torch.nn.functional.avg_pool2d(x, [| 2L; 2L |])) acc
        let levels = build (images.to_type(torch.ScalarType.Float32)) [] |> Array.ofList
        for l in levels do l.MoveToOuterDisposeScope() |> ignore
        new ImagePyramid(name, levels)

    /// Builds the pyramid from final-resolution bytes (uint8 [N, 3, r, r]).
    let fromBytes (name: string) (images: torch.Tensor) =
        use asFloat = images.to_type(torch.ScalarType.Float32)
        fromFloat name asFloat

    /// Version 2 closes the file with the SHA-256 of its images, checked on every load.
    let private magic = "PGKDATA2"

    /// Writes the final-resolution bytes to `path` atomically, closed by their SHA-256 (`ContentHash`).
    let save (path: string) (pyramid: ImagePyramid) =
        let top = pyramid.Levels[pyramid.Levels.Length - 1]
        AtomicFile.Write(path, fun stream ->
            use w = new BinaryWriter(stream, Text.Encoding.UTF8, leaveOpen = true)
            w.Write magic
            w.Write pyramid.Name
            w.Write pyramid.Count
            w.Write pyramid.Resolution
            for start in 0L .. 256L .. top.shape[0] - 1L do
                use chunk = top.narrow(0L, start, min 256L (top.shape[0] - start)).contiguous()
                w.Write(chunk.bytes.ToArray())
            w.Write(Convert.FromHexString pyramid.ContentHash))

    /// Reads a file written by `save`, or says why it cannot be used (the caller then rebuilds it).
    let tryLoad (path: string) : Result<ImagePyramid, CacheProblem> =
        if not (File.Exists path) then Error NotCached
        else
            try
                use r = new BinaryReader(File.OpenRead path)
                if r.ReadString() <> magic then Error(Damaged "not a data cache of this version")
                else
                    let name = r.ReadString()
                    let count, resolution = r.ReadInt32(), r.ReadInt32()
                    let perImage = 3L * int64 resolution * int64 resolution
                    let expected = int64 count * perImage + 32L
                    if count < 1 || resolution < 4 || r.BaseStream.Length - r.BaseStream.Position <> expected then
                        Error(Damaged "its length does not match its header")
                    else
                        use top = torch.empty([| int64 count; 3L; int64 resolution; int64 resolution |], dtype = torch.ScalarType.Byte)
                        use hash = IncrementalHash.CreateHash HashAlgorithmName.SHA256
                        let chunkImages = max 1L (min (int64 count) (64L * 1024L * 1024L / perImage))
                        for start in 0L .. chunkImages .. int64 count - 1L do
                            let n = min chunkImages (int64 count - start)
                            let bytes = r.ReadBytes(int (n * perImage))
                            hash.AppendData bytes
                            use chunk = bytesTensor bytes [| n; 3L; int64 resolution; int64 resolution |]
                            top.narrow(0L, start, n).copy_(chunk) |> ignore
                        if not (hash.GetHashAndReset().AsSpan().SequenceEqual(ReadOnlySpan(r.ReadBytes 32))) then
                            Error(Damaged "its SHA-256 does not match its images")
                        else Ok(fromBytes name top)
            with
            | :? IOException | :? EndOfStreamException | :? FormatException | :? OutOfMemoryException | :? UnauthorizedAccessException as e ->
                Error(Damaged(e.Message.Split('\n')[0]))
