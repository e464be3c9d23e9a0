// A multi-resolution data set on disk, prepared once and read from disk by training (reference dataset_tool.py):
//   dotnet fsi prepare.fsx -- --data FOLDER --resolution 64 --out DATASET     then     dotnet fsi train.fsx -- --data DATASET
#load "scripts/Bootstrap.fsx"

Bootstrap.run Bootstrap.Prepare fsi.CommandLineArgs
