// Samples and latent interpolation from a trained run:  dotnet fsi generate.fsx -- --run runs/<run> --count 64 --seed 7
// Add --interpolate 1,2 for a spherical interpolation strip between two seeds' latents (and its frames).
#load "scripts/Bootstrap.fsx"

Bootstrap.run "ProGan.Training.Cli" "generate" fsi.CommandLineArgs
