module ProGan.Cli.Program

open ProGan.Training.Commands

/// `progan [options]` trains (train.fsx); `progan prepare|generate|evaluate|export [options]` runs that script's
/// command, so that each can run as its own process (signals, exit codes) without `dotnet fsi`.
[<EntryPoint>]
let main argv =
    match List.ofArray argv with
    | "prepare" :: _ -> ProGan.Training.Commands.Cli.prepare argv[1..]
    | "generate" :: _ -> ProGan.Training.Commands.Cli.generate argv[1..]
    | "evaluate" :: _ -> ProGan.Training.Commands.Cli.evaluate argv[1..]
    | "export" :: _ -> ProGan.Training.Commands.Cli.export argv[1..]
    | _ -> ProGan.Training.Commands.Cli.main argv
