// Samples and latent interpolation from a trained run:  dotnet fsi generate.fsx -- --run runs/<run> --count 64 --seed 7
// Add --interpolate 1,2 for a spherical interpolation strip between two seeds' latents (and its frames).
// Add --video for a latent walk through --seeds 1,2,3,4 and the run's training time-lapse (GIF; MP4 with ffmpeg), and
// one latent drawn at every resolution the run has.
#load "scripts/Bootstrap.fsx"

Bootstrap.run Bootstrap.Generate fsi.CommandLineArgs
