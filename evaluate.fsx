// The paper's sliced Wasserstein distance of a trained run, beside the real-vs-real floor:
//   dotnet fsi evaluate.fsx -- --run runs/<run> [--data FOLDER] [--images 1024]
#load "scripts/Bootstrap.fsx"

Bootstrap.run "ProGan.Training.Cli" "evaluate" fsi.CommandLineArgs
