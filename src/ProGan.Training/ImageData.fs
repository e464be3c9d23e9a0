namespace ProGan.Training

open System
open System.IO
open TorchSharp

/// A training set prepared as the reference's `dataset_tool.py` does: every image at every level of detail, from the
/// final resolution down to 4² by repeated 2×2 averaging, stored as bytes (NCHW, RGB, 0–255).
type ImagePyramid(name: string, levels: torch.Tensor[]) =
    do
        ensureTorch ()
        if levels.Length = 0 then invalidArg "levels" "An image pyramid needs at least one level."

    /// Where the images came from (a folder, or the procedural set's description).
    member _.Name = name
    /// Number of images.
    member _.Count = int levels[0].shape[0]
    /// The final resolution.
    member _.Resolution = int levels[levels.Length - 1].shape[2]
    /// Levels of detail, 4² first, as uint8 [N, 3, r, r].
    member _.Levels = levels

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

module ImagePyramid =

    /// Builds every level of detail from the final-resolution images (float in [0, 255], NCHW): each lower level is the
    /// 2×2 average of the one above, computed in floating point and stored rounded to bytes, as the reference does.
    let fromFloat (name: string) (images: torch.Tensor) =
        ensureTorch ()
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

    let private magic = "PGKDATA1"

    /// Writes the final-resolution bytes to `path` atomically (temporary file, then rename).
    let save (path: string) (pyramid: ImagePyramid) =
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath path)) |> ignore
        let top = pyramid.Levels[pyramid.Levels.Length - 1]
        let temp = path + ".tmp-" + string Environment.ProcessId
        do
            use w = new BinaryWriter(File.Create temp)
            w.Write magic
            w.Write pyramid.Name
            w.Write pyramid.Count
            w.Write pyramid.Resolution
            // One image at a time: a data set may exceed the 2 GiB of one managed array.
            for i in 0L .. top.shape[0] - 1L do
                use image = top[i].contiguous()
                w.Write(image.data<byte>().ToArray())
        File.Move(temp, path, true)

    /// Reads a file written by `save`; None when it is missing or unreadable (the caller then rebuilds it).
    let tryLoad (path: string) =
        try
            if not (File.Exists path) then None
            else
                use r = new BinaryReader(File.OpenRead path)
                if r.ReadString() <> magic then None
                else
                    let name = r.ReadString()
                    let count, resolution = r.ReadInt32(), r.ReadInt32()
                    let perImage = 3 * resolution * resolution
                    if r.BaseStream.Length - r.BaseStream.Position <> int64 count * int64 perImage then None
                    else
                        ensureTorch ()
                        use top = torch.empty([| int64 count; 3L; int64 resolution; int64 resolution |], dtype = torch.ScalarType.Byte)
                        for i in 0L .. int64 count - 1L do
                            use image = bytesTensor (r.ReadBytes perImage) [| 3L; int64 resolution; int64 resolution |]
                            top[i].copy_(image) |> ignore
                        Some(fromBytes name top)
        with :? IOException | :? EndOfStreamException -> None
