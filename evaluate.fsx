// The paper's sliced Wasserstein distance of a trained run beside the real-vs-real floor, its MS-SSIM beside the real
// images', and FD-ResNet18 (a Fréchet distance in ResNet-18's features, not FID), KID and precision/recall beside
// their real-vs-real floors:  dotnet fsi evaluate.fsx -- --run runs/<run> [--data FOLDER] [--images 1024] [--metrics swd,fd]
// --all-checkpoints measures every kept checkpoint into metrics.csv, metrics.png and the run's report.html; --threads N
// runs torch and the feature network on N threads (0: all cores).
#load "scripts/Bootstrap.fsx"

Bootstrap.run Bootstrap.Evaluate fsi.CommandLineArgs
