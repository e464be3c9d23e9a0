// Where the library caches what it computed once (prepared images, image features): one rule for every cache.
/// Where the library caches what it computed once and can compute again: a folder an environment variable names, else
/// `$XDG_CACHE_HOME/progan-keras/<kind>`, else `~/.cache/progan-keras/<kind>` (the XDG base-directory convention).
module ProGan.Training.Basics.UserCache

open System
open System.IO

/// The cache folder of `kind` (`data`, `features`), or the folder `$variable` names.
let folder (variable: string) (kind: string) =
    match Environment.GetEnvironmentVariable variable with
    | null | "" ->
        let xdg = Environment.GetEnvironmentVariable "XDG_CACHE_HOME"
        let root = if String.IsNullOrEmpty xdg then Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".cache") else xdg
        Path.Combine(root, "progan-keras", kind)
    | given -> given
