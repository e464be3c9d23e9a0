// Finds the library the notebooks load, its Release build in src/ProGan.Training/bin/Release/net10.0, and builds it
// when it is missing or older than its sources, so that a notebook opened cold runs top to bottom. It runs in its own
// submission before preamble.fsx (the first cell's `#!fsharp` lines split them), because the preamble's `#r` lines
// are resolved before any of its code runs.
module Setup

open System
open System.Diagnostics
open System.IO

let private root = Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, ".."))
let private library = Path.Combine(root, "src", "ProGan.Training", "bin", "Release", "net10.0", "ProGan.Training.dll")

/// The newest source of the three projects the notebooks load (outputs excluded).
let private newestSource () =
    [ "ProGan.Keras"; "ProGan.Keras.Serving"; "ProGan.Training" ]
    |> Seq.collect (fun p -> Directory.EnumerateFiles(Path.Combine(root, "src", p), "*", SearchOption.AllDirectories))
    |> Seq.filter (fun f ->
        let parts = Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar)
        not (Array.contains "bin" parts || Array.contains "obj" parts)
        && Array.contains (Path.GetExtension f) [| ".cs"; ".fs"; ".csproj"; ".fsproj"; ".proto" |])
    |> Seq.map File.GetLastWriteTimeUtc
    |> Seq.fold max DateTime.MinValue

let private build () =
    printfn "Building the library the notebooks load (dotnet build src/ProGan.Training -c Release; a few minutes the first time)..."
    let info = ProcessStartInfo("dotnet", [ "build"; Path.Combine(root, "src", "ProGan.Training"); "-c"; "Release"; "--nologo"; "-v"; "q" ],
                                WorkingDirectory = root, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    use p =
        try Process.Start info
        with e -> failwithf "Could not start `dotnet` to build the library (%s). Install the .NET 10 SDK (README, Quick start) and reopen the notebook." e.Message
    let errors = p.StandardError.ReadToEndAsync()
    let output = p.StandardOutput.ReadToEnd()
    p.WaitForExit()
    if p.ExitCode <> 0 then
        failwithf "The library did not build (exit %d). Run `dotnet build src/ProGan.Training -c Release` in %s and fix what it reports:\n%s%s"
            p.ExitCode root output errors.Result
    printfn "Built %s" (Path.GetRelativePath(root, library))

if not (File.Exists library) || newestSource () > File.GetLastWriteTimeUtc library then build ()
