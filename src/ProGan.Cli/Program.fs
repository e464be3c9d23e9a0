module ProGan.Cli.Program

open ProGan.Training.Commands

/// `progan [options]` trains (train.fsx); `progan prepare|generate|evaluate|export [options]` runs that script's
/// command, so that each can run as its own process (signals, exit codes) without `dotnet fsi`.
[<EntryPoint>]
let main argv =
    match List.ofArray argv with
    | "prepare" :: _ -> Cli.prepare argv[1..]
    | "generate" :: _ -> Cli.generate argv[1..]
    | "evaluate" :: _ -> Cli.evaluate argv[1..]
    | "export" :: _ -> Cli.export argv[1..]
    | _ -> Cli.main argv
