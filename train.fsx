// Progressive growing of GANs, from F#:  dotnet fsi train.fsx -- --help
// With no arguments it trains on the embedded procedural shapes, 4² → 32², in about ten minutes on two CPU cores.
#load "scripts/Bootstrap.fsx"

Bootstrap.run Bootstrap.Train fsi.CommandLineArgs
