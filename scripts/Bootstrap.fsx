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

let private library = Path.Combine(binaries, "ProGan.Training.dll")

let private upToDate () =
    File.Exists library
    && (let built = File.GetLastWriteTimeUtc library
        Directory.EnumerateFiles(Path.Combine(root, "src"), "*", SearchOption.AllDirectories)
        |> Seq.filter (fun f -> not (f.Contains "/bin/" || f.Contains "/obj/"))
        |> Seq.append [ Path.Combine(root, "Directory.Packages.props"); Path.Combine(root, "Directory.Build.props") ]
        |> Seq.forall (fun f -> File.GetLastWriteTimeUtc f <= built))

/// Builds the library in Release when a source is newer than the build (the first time, NuGet restores TorchSharp and
/// libtorch: a few minutes and about 1 GB).
let build () =
    if not (upToDate ()) then
        eprintfn "Building ProGan.Keras (Release)%s…" (if File.Exists library then "" else "; the first build restores TorchSharp and libtorch and takes a few minutes")
        let info = ProcessStartInfo("dotnet", [ "build"; project; "-c"; "Release"; "--nologo"; "-v"; "q"; "-clp:ErrorsOnly;NoSummary" ])
        info.WorkingDirectory <- root
        use p = Process.Start info
        p.WaitForExit()
        if p.ExitCode <> 0 then
            eprintfn "error: the build failed (dotnet build %s -c Release exited with %d); see the messages above." project p.ExitCode
            exit p.ExitCode

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

/// Builds if needed, then calls `typeName.methodName(args)` of the library and exits with its return code.
let run (typeName: string) (methodName: string) (args: string[]) =
    build ()
    resolveNativeLibraries ()
    let assembly = Assembly.LoadFrom library
    let method = assembly.GetType(typeName, throwOnError = true).GetMethod(methodName)
    let code =
        try method.Invoke(null, [| box args |]) :?> int
        with :? TargetInvocationException as e when not (isNull e.InnerException) ->
            Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw()
            1
    exit code
