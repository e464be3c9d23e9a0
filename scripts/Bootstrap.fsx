// Builds the F# training library on first use and runs a function of it, so that `dotnet fsi train.fsx` works on a
// fresh clone with no separate set-up step. Shared by train.fsx and the other scripts.
module Bootstrap

open System
open System.Diagnostics
open System.IO
open System.Reflection

/// The repository root (this file lives in scripts/).
let root = Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, ".."))

let private project = Path.Combine(root, "src", "ProGan.Training", "ProGan.Training.fsproj")

/// The folder the scripts and notebooks load the library from.
let binaries = Path.Combine(root, "src", "ProGan.Training", "bin", "Release", "net10.0")

/// The library the scripts run and the notebooks reference (`notebooks/preamble.fsx` names the same folder in its `#r` lines).
let library = Path.Combine(binaries, "ProGan.Training.dll")

/// The newest source of the projects the library is built from (build outputs excluded), and the shared props.
let private newestSource () =
    [ "ProGan.Keras"; "ProGan.Keras.Serving"; "ProGan.Training" ]
    |> Seq.collect (fun p -> Directory.EnumerateFiles(Path.Combine(root, "src", p), "*", SearchOption.AllDirectories))
    |> Seq.filter (fun f ->
        let parts = Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar)
        not (Array.contains "bin" parts || Array.contains "obj" parts))
    |> Seq.append [ Path.Combine(root, "Directory.Packages.props"); Path.Combine(root, "Directory.Build.props") ]
    |> Seq.map File.GetLastWriteTimeUtc
    |> Seq.fold max DateTime.MinValue

/// Whether the Release build exists and is newer than every source.
let upToDate () = File.Exists library && newestSource () <= File.GetLastWriteTimeUtc library

/// Builds the library in Release (the first time, NuGet restores TorchSharp and libtorch: a few minutes and about
/// 1 GB); `Error` carries the build's exit code and what it printed.
let private tryBuild () =
    let info = ProcessStartInfo("dotnet", [ "build"; project; "-c"; "Release"; "--nologo"; "-v"; "q"; "-clp:ErrorsOnly;NoSummary" ],
                                WorkingDirectory = root, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    use p =
        try Process.Start info
        with e -> failwithf "Could not start `dotnet` to build the library (%s). Install the .NET 10 SDK (README, Quick start)." e.Message
    let errors = p.StandardError.ReadToEndAsync()
    let output = p.StandardOutput.ReadToEnd()
    p.WaitForExit()
    if p.ExitCode = 0 then Ok() else Error(p.ExitCode, output + errors.Result)

let private announce () =
    eprintfn "Building ProGan.Keras (Release)%s…" (if File.Exists library then "" else "; the first build restores TorchSharp and libtorch and takes a few minutes")

/// Runs `action` holding the build lock: processes started together (`mpirun -np N dotnet fsi train.fsx`) build one
/// at a time — two builds of one project at once collide — so the first builds and the others find the build current.
let private exclusively (action: unit -> unit) =
    let path = Path.Combine(root, "src", "ProGan.Training", "obj", "bootstrap.lock")
    Directory.CreateDirectory(Path.GetDirectoryName path) |> ignore
    let rec take () =
        try new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)
        with :? IOException ->
            Threading.Thread.Sleep 500
            take ()
    use _ = take ()
    action ()

/// For the scripts: builds when a source is newer than the build; a failed build ends the process with its exit code.
let build () =
    if not (upToDate ()) then
        exclusively (fun () ->
            if not (upToDate ()) then
                announce ()
                match tryBuild () with
                | Ok() -> ()
                | Error(code, printed) ->
                    eprintf "%s" printed
                    eprintfn "error: the build failed (dotnet build %s -c Release exited with %d); see the messages above." project code
                    exit code)

/// For the notebooks: the same, but a failed build is an exception, which the notebook shows in its first cell.
let ensureBuilt () =
    if not (upToDate ()) then
        announce ()
        match tryBuild () with
        | Ok() -> printfn "Built %s" (Path.GetRelativePath(root, library))
        | Error(code, printed) ->
            failwithf "The library did not build (exit %d). Run `dotnet build src/ProGan.Training -c Release` in %s and fix what it reports:\n%s" code root printed

/// Native libraries of the library's dependencies (SkiaSharp for the plots, libtorch) live in runtimes/<rid>/native of
/// the build output; an assembly loaded with LoadFrom does not get the host's deps.json probing, so point at them.
let private resolveNativeLibraries () =
    let rid =
        if OperatingSystem.IsWindows() then "win-x64"
        elif OperatingSystem.IsMacOS() then "osx-arm64"
        else "linux-x64"
    let native = Path.Combine(binaries, "runtimes", rid, "native")
    Runtime.Loader.AssemblyLoadContext.Default.add_ResolvingUnmanagedDll(fun _ name ->
        [ name; "lib" + name + ".so"; name + ".so"; "lib" + name + ".dylib"; name + ".dll" ]
        |> List.map (fun file -> Path.Combine(native, file))
        |> List.tryFind File.Exists
        |> Option.map Runtime.InteropServices.NativeLibrary.Load
        |> Option.defaultValue 0n)

/// The commands of the library's entry module, `ProGan.Training.Commands.Cli`: one case per script.
type Command =
    | Train
    | Prepare
    | Generate
    | Evaluate
    | Export

/// The entry module's function for each command. The library is built after this script is compiled, so it cannot
/// be referenced with `#r` here; this is the one place that names it.
let private entryPoint command =
    let name =
        match command with
        | Train -> "main"
        | Prepare -> "prepare"
        | Generate -> "generate"
        | Evaluate -> "evaluate"
        | Export -> "export"
    "ProGan.Training.Commands.Cli", name

/// Builds if needed, then runs `command` with `args` and exits with its return code.
let run (command: Command) (args: string[]) =
    build ()
    resolveNativeLibraries ()
    let typeName, methodName = entryPoint command
    let assembly = Assembly.LoadFrom library
    let method = assembly.GetType(typeName, throwOnError = true).GetMethod(methodName)
    let code =
        try method.Invoke(null, [| box args |]) :?> int
        with :? TargetInvocationException as e when not (isNull e.InnerException) ->
            Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw()
            1
    exit code
