// The entry points of the scripts and of the `progan` executable: one function per command.
namespace ProGan.Training.Commands

open ProGan.Training.Basics

/// The entry points of the scripts (`train.fsx`, `generate.fsx`, `evaluate.fsx`, `prepare.fsx`) and of the `progan` executable: each
/// makes TorchSharp loadable, then runs its command and returns the process exit code.
module Cli =

    /// TorchSharp loaded; every convolution of a command is the library's, so where oneDNN is right only with aligned
    /// channels the command takes that path (`CpuConvolutions.UseAlignedChannelsWhereRight`).
    let private ensureTorch () =
        ensureTorch ()
        ProGan.Keras.Backend.CpuConvolutions.UseAlignedChannelsWhereRight() |> ignore

    /// Training, once the run folder is known not to be locked: kept out of `main`, whose compiled code would
    /// otherwise call into ProGan.Keras and so run its module initializer (the native load) before the lock check.
    [<System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)>]
    let private train (argv: string[]) : int =
        ensureTorch ()
        TrainCommand.run argv

    /// train.fsx and `progan`.
    let main (argv: string[]) : int =
        match TrainCommand.refuseIfLocked argv with
        | Some code -> code
        | None -> train argv

    /// generate.fsx.
    let generate (argv: string[]) : int =
        ensureTorch ()
        GenerateCommand.run argv

    /// evaluate.fsx.
    let evaluate (argv: string[]) : int =
        ensureTorch ()
        EvaluateCommand.run argv

    /// prepare.fsx.
    let prepare (argv: string[]) : int =
        ensureTorch ()
        PrepareCommand.run argv

    /// export.fsx.
    let export (argv: string[]) : int =
        ensureTorch ()
        ExportCommand.run argv
