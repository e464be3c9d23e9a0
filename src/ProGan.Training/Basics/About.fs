// The library's name and version, as commands and the files they write state them.
/// The library's name and version, as the commands and the files they write state them.
module ProGan.Training.Basics.About

open System.Reflection

/// The informational version of this build (`0.1.0`), without source-control metadata.
let version =
    let assembly = typeof<FileKind>.Assembly
    match assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>() with
    | null -> string (assembly.GetName().Version)
    | a -> a.InformationalVersion.Split('+')[0]

/// `ProGan.Keras 0.1.0`.
let product = "ProGan.Keras " + version
