// run.lock: one process trains in a run folder at a time.
namespace ProGan.Training.Runs

open System
open System.IO

/// Another process is training in the same run folder.
exception RunLockedException of folder: string * holder: string
    with override this.Message =
            sprintf "The run folder '%s' is in use by another training process (%s). Wait for it to finish, stop it, or choose another --out folder." this.folder this.holder

/// One training process per run folder: `run.lock`, held with an exclusive OS lock (flock on Linux) for the whole run.
/// The OS drops the lock when the process dies, however it dies, so a crash never leaves it stuck.
module RunLock =

    /// Whether an open failed because another process holds the file's lock: .NET gives Windows'
    /// ERROR_SHARING_VIOLATION as the HResult there, and flock's errno EWOULDBLOCK (11 on Linux, 35 on macOS) on Unix.
    let private heldByAnother (e: IOException) =
        e.HResult = int 0x80070020u || (not (OperatingSystem.IsWindows()) && (e.HResult = 11 || e.HResult = 35))

    /// Takes the lock or raises RunLockedException naming the holder; dispose to release. A folder where the lock
    /// file cannot even be opened for writing (read-only, permissions) is reported as that, not as in use.
    let acquire (folder: RunFolder) : IDisposable =
        // The lock file itself stays in place (deleting it would race with a waiting process); who holds it is
        // written beside it, since the locked file cannot be read by others.
        let stream =
            try new FileStream(folder.Lock, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)
            with
            | :? IOException as e when heldByAnother e ->
                let holder = try File.ReadAllText folder.LockHolder with _ -> "unknown process"
                raise (RunLockedException(folder.Path, holder))
            | :? IOException | :? UnauthorizedAccessException as e ->
                raise (RunFolderException(sprintf "Cannot open '%s' for writing (%s); the run folder must be writable." folder.Lock (e.Message.Split('\n')[0])))
        try
            File.WriteAllText(folder.LockHolder, sprintf "pid %d on %s since %s" Environment.ProcessId Environment.MachineName (DateTime.UtcNow.ToString "u"))
            stream :> IDisposable
        with _ ->
            stream.Dispose()
            reraise ()
