// The entry points of the scripts and of the `progan` executable: one function per command.
namespace ProGan.Training.Commands

open ProGan.Training.Basics

/// The entry points of the scripts (`train.fsx`, `generate.fsx`, `evaluate.fsx`, `prepare.fsx`) and of the `progan` executable: each
/// makes TorchSharp loadable, then runs its command and returns the process exit code.
module Cli =

    /// train.fsx and `progan`.
    let main (argv: string[]) : int =
        match TrainCommand.refuseIfLocked argv with
        | Some code -> code
        | None ->
            ensureTorch ()
            TrainCommand.run argv

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
