namespace ProGan.Training

open System
open System.IO
open System.Runtime.InteropServices

/// What a path is on disk, after following symbolic links. .NET reports FIFOs and devices as ordinary files, and
/// opening a FIFO blocks until a writer appears, so every file this library reads by name is checked first.
type FileKind =
    | Missing
    | Regular of length: int64
    | Folder
    /// A FIFO, a device, a socket: never read.
    | Special of what: string

module FileKind =

    [<DllImport("libc", EntryPoint = "statx", SetLastError = true)>]
    extern int private statx(int dirfd, string path, int flags, uint32 mask, byte[] buffer)

    let private atCurrentDirectory = -100
    let private typeAndSize = 0x1u ||| 0x200u // STATX_TYPE | STATX_SIZE

    /// The kind of `path`. On Linux from `statx` (whose layout is the same on every architecture: `stx_mode` at byte
    /// 28, `stx_size` at 40); elsewhere from .NET, which cannot tell special files apart.
    let at (path: string) =
        if OperatingSystem.IsLinux() then
            let buffer = Array.zeroCreate<byte> 256
            if statx(atCurrentDirectory, path, 0, typeAndSize, buffer) <> 0 then Missing
            else
                match int (BitConverter.ToUInt16(buffer, 28)) &&& 0xF000 with
                | 0x8000 -> Regular(BitConverter.ToInt64(buffer, 40))
                | 0x4000 -> Folder
                | 0x1000 -> Special "a FIFO"
                | 0x2000 -> Special "a character device"
                | 0x6000 -> Special "a block device"
                | 0xC000 -> Special "a socket"
                | _ -> Special "not a regular file"
        elif Directory.Exists path then Folder
        elif File.Exists path then Regular(FileInfo(path).Length)
        else Missing

    /// Whether `path` is a regular file (after links).
    let isRegular (path: string) = match at path with Regular _ -> true | _ -> false
