// The paper's sliced Wasserstein distance of a trained run beside the real-vs-real floor, and its MS-SSIM beside the
// real images':  dotnet fsi evaluate.fsx -- --run runs/<run> [--data FOLDER] [--images 1024]
// --all-checkpoints measures every kept checkpoint into metrics.csv, metrics.png and the run's report.html.
#load "scripts/Bootstrap.fsx"

Bootstrap.run Bootstrap.Evaluate fsi.CommandLineArgs
