namespace ProGan.Training

open System
open System.IO

/// Another process is training in the same run folder.
exception RunLockedException of folder: string * holder: string
    with override this.Message =
            sprintf "The run folder '%s' is in use by another training process (%s). Wait for it to finish, stop it, or choose another --out folder." this.folder this.holder

/// One training process per run folder: `run.lock`, held open with an exclusive OS lock (flock on Linux) for the
/// whole run. The OS drops the lock when the process dies, however it dies, so a crash never leaves it stuck.
module RunLock =

    let file (folder: string) = Path.Combine(folder, "run.lock")

    /// Takes the lock or raises RunLockedException naming the holder; dispose to release.
    let acquire (folder: string) : IDisposable =
        Directory.CreateDirectory folder |> ignore
        let path = file folder
        // The lock file itself stays in place (deleting it would race with a waiting process); who holds it is
        // written beside it, since the locked file cannot be read by others.
        let stream =
            try new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)
            with :? IOException ->
                let holder = try File.ReadAllText(path + ".holder") with _ -> "unknown process"
                raise (RunLockedException(folder, holder))
        try
            File.WriteAllText(path + ".holder", sprintf "pid %d on %s since %s" Environment.ProcessId Environment.MachineName (DateTime.UtcNow.ToString "u"))
            stream :> IDisposable
        with _ ->
            stream.Dispose()
            reraise ()
