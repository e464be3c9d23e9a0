// Finds the library the notebooks load, its Release build in src/ProGan.Training/bin/Release/net10.0, and builds it
// when it is missing or older than its sources, so that a notebook opened cold runs top to bottom — the same build,
// found the same way, as the scripts' (scripts/Bootstrap.fsx). It runs in its own submission before preamble.fsx (the
// first cell's `#!fsharp` lines split them), because the preamble's `#r` lines are resolved before any of its code runs.
#load "../scripts/Bootstrap.fsx"

Bootstrap.ensureBuilt ()
