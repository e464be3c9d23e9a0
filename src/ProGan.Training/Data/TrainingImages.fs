// What every source of training images offers: levels, classes, gathering a minibatch.
namespace ProGan.Training.Data

open System
open TorchSharp
open ProGan.Training.Basics

/// The data cannot be used: the message is one line that names the folder or file and says what to do.
exception DataException of string
    with override this.Message = this.Data0

/// Training images at every level of detail, as the reference's `dataset_tool.py` prepares them: the final resolution
/// down to 4² by repeated 2×2 averaging, stored as bytes (NCHW, 1, 3 or 4 channels, 0–255). Held in memory (`ImagePyramid`) or on
/// disk and read a minibatch at a time (`PreparedDataset`); training sees only this.
[<AbstractClass>]
type TrainingImages() =
    /// Where the images came from (a folder, a prepared data set, or the procedural set's description).
    abstract Name: string
    /// Number of images.
    abstract Count: int
    /// The final resolution.
    abstract Resolution: int
    /// Channels per image: 1 (grayscale), 3 (RGB) or 4 (RGBA).
    abstract Channels: int
    /// SHA-256 (hex) of the bytes of level `level` (0 → 4²), images in order: equal exactly when two sets hold the
    /// same images at that level.
    abstract LevelHash: level: int -> string
    /// The bytes of images `indices` at `level`, as uint8 [n, C, r, r] on the CPU.
    abstract GatherBytes: level: int * indices: int64[] -> torch.Tensor
    /// The class of every image (index into `ClassNames`), or empty for an unlabelled set.
    abstract Labels: int64[]
    /// The classes' names, in index order (empty for an unlabelled set).
    abstract ClassNames: string[]
    abstract Dispose: unit -> unit

    /// Levels of detail, 4² … final.
    member this.LevelCount = Numerics.BitOperations.Log2(uint32 this.Resolution) - 1

    /// SHA-256 of the final-resolution bytes.
    member this.ContentHash = this.LevelHash(this.LevelCount - 1)

    /// The images at `indices` of `level`, mapped from bytes to [−1, 1], on `device`.
    member this.Gather(level: int, indices: int64[], device: torch.Device) =
        use bytes = this.GatherBytes(level, indices)
        use scope = torch.NewDisposeScope()
        bytes.``to``(device).to_type(torch.ScalarType.Float32).div_(scalar 127.5).sub_(scalar 1.0).MoveToOuterDisposeScope()

    interface IDisposable with
        member this.Dispose() = this.Dispose()
