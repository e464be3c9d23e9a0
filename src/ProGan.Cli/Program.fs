module ProGan.Cli.Program

[<EntryPoint>]
let main argv = ProGan.Training.Cli.main argv
