// What a path is on disk (file, folder, FIFO, device, missing), before anything opens it.
namespace ProGan.Training.Basics

open ProGan.Keras.IO

/// What a path is on disk, after following symbolic links. .NET reports FIFOs and devices as ordinary files, and
/// opening a FIFO blocks until a writer appears, so every file this library reads by name is checked first.
type FileKind =
    | Missing
    | Regular of length: int64
    | Folder
    /// A FIFO, a device, a socket: never read.
    | Special of what: string

module FileKind =

    /// The kind of `path` (`PathKinds.Of`: `statx` on Linux).
    let at (path: string) =
        match PathKinds.Of path with
        | struct (PathKind.Regular, length, _) -> Regular length
        | struct (PathKind.Folder, _, _) -> Folder
        | struct (PathKind.Special, _, what) -> Special what
        | _ -> Missing

    /// Whether `path` is a regular file (after links).
    let isRegular (path: string) = PathKinds.IsRegular path
