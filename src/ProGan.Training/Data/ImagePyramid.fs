// Training images in memory, every level of detail at once.
namespace ProGan.Training.Data

open System
open System.Security.Cryptography
open TorchSharp
open ProGan.Training.Basics

/// Training images held in memory, every level a uint8 tensor [N, C, r, r] (4² first), with their classes when the
/// set is labelled.
type ImagePyramid(name: string, levels: torch.Tensor[], labels: int64[], classNames: string[]) =
    inherit TrainingImages()
    do
        if levels.Length = 0 then invalidArg "levels" "An image pyramid needs at least one level."
        if labels.Length <> 0 && int64 labels.Length <> levels[0].shape[0] then
            invalidArg "labels" (sprintf "%d labels for %d images." labels.Length levels[0].shape[0])


    let hashes =
        levels |> Array.map (fun level ->
            lazy
                (use hash = IncrementalHash.CreateHash HashAlgorithmName.SHA256
                 // A few images at a time: a data set may exceed the 2 GiB of one managed array.
                 for start in 0L .. 256L .. level.shape[0] - 1L do
                     use chunk = level.narrow(0L, start, min 256L (level.shape[0] - start)).contiguous()
                     hash.AppendData(chunk.bytes.ToArray())
                 Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant()))

    override _.Name = name
    override _.Count = int levels[0].shape[0]
    override _.Resolution = int levels[levels.Length - 1].shape[2]
    override _.Channels = int levels[0].shape[1]
    override _.LevelHash(level) = hashes[level].Value
    override _.GatherBytes(level, indices) =
        use index = torch.tensor(indices)
        levels[level].index_select(0L, index)
    override _.Labels = labels
    override _.ClassNames = classNames

    /// An unlabelled set.
    new(name: string, levels: torch.Tensor[]) = new ImagePyramid(name, levels, [||], [||])
    override _.Dispose() = for l in levels do l.Dispose()

    /// Levels of detail, 4² first, as uint8 [N, 3, r, r].
    member _.Levels = levels

module ImagePyramid =

    /// Builds every level of detail from the final-resolution images (float in [0, 255], NCHW): each lower level is the
    /// 2×2 average of the one above, computed in floating point and stored rounded to bytes, as the reference does.
    let fromFloat (name: string) (images: torch.Tensor) =
        let resolution = int images.shape[2]
        if images.dim() <> 4L || not (List.contains (int images.shape[1]) Channels.supported) || images.shape[3] <> int64 resolution || resolution < 4 || (resolution &&& (resolution - 1)) <> 0 then
            invalidArg "images" (sprintf "Expected [N, C, r, r] with C of %A and r a power of two ≥ 4; got %A." Channels.supported images.shape)
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

