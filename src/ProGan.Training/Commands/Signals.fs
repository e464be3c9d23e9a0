// SIGINT, SIGTERM, SIGHUP and a dead parent turned into one cancellation.
namespace ProGan.Training.Commands

open System
open System.Runtime.InteropServices
open System.Threading

module private Posix =
    [<DllImport("libc", EntryPoint = "getppid")>]
    extern int getppid()

/// Why a run was asked to stop.
type StopReason =
    | Interrupted
    | Terminated
    | HungUp
    | ParentExited

/// Turns the ways a process is asked to stop — SIGINT (Ctrl+C), SIGTERM (`docker stop`, systemd, cluster schedulers),
/// SIGHUP (a closed terminal), and the death of the parent process — into one cancellation: the run finishes its
/// step, writes a checkpoint and exits. A second SIGINT, SIGTERM or SIGHUP ends the process at once.
/// `dotnet fsi train.fsx` runs the script in a child of the `dotnet` launcher: the launcher forwards SIGTERM to it and
/// ignores SIGINT (a terminal's Ctrl+C reaches the whole process group), and when the launcher is killed outright the
/// child notices that its parent is gone and stops as if terminated, rather than train on as an orphan.
type StopSignals() =
    let cancel = new CancellationTokenSource()
    let mutable reason = None

    let stop (why: StopReason) =
        lock cancel (fun () ->
            if reason.IsNone then
                reason <- Some why
                cancel.Cancel())

    let registrations =
        [ for signal, why in [ PosixSignal.SIGINT, Interrupted; PosixSignal.SIGTERM, Terminated; PosixSignal.SIGHUP, HungUp ] ->
            PosixSignalRegistration.Create(signal, fun context ->
                // The first request finishes the step gracefully; a second one gets the default action (exit).
                if reason.IsNone then
                    context.Cancel <- true
                    stop why) ]

    /// Polls the parent's pid: on Linux a child whose parent died is re-parented (to init or a subreaper).
    let watcher =
        if OperatingSystem.IsLinux() then
            let parent = Posix.getppid ()
            let thread =
                Thread((fun () ->
                    while not cancel.IsCancellationRequested do
                        if Posix.getppid () <> parent then stop ParentExited
                        cancel.Token.WaitHandle.WaitOne 500 |> ignore),
                       IsBackground = true, Name = "parent watch")
            thread.Start()
            Some thread
        else None

    /// Cancelled when the process is asked to stop.
    member _.Token = cancel.Token

    /// Why, once asked.
    member _.Reason = reason

    /// The signal, in words, for the line a stopped command prints.
    member _.Name =
        match reason with
        | Some Interrupted -> "SIGINT (Ctrl+C)"
        | Some Terminated -> "SIGTERM"
        | Some HungUp -> "SIGHUP"
        | Some ParentExited -> "its parent process exiting"
        | None -> "no signal"

    /// The exit code of a run stopped this way: 128 + the signal's number, as a shell reports a process it killed.
    member _.ExitCode =
        match reason with
        | Some Interrupted -> 130
        | Some HungUp -> 129
        | Some Terminated | Some ParentExited -> 143
        | None -> 0

    interface IDisposable with
        member _.Dispose() =
            for r in registrations do r.Dispose()
            cancel.Cancel()
            watcher |> Option.iter (fun t -> t.Join 1000 |> ignore)
            cancel.Dispose()
