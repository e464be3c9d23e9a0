namespace ProGan.Training

open System
open System.IO
open System.Security.Cryptography
open System.Text
open System.Threading.Tasks
open StbImageSharp
open TorchSharp

/// A file that could not be used, and why.
type SkippedImage = { Path: string; Reason: string }

/// What reading a folder gave.
type FolderLoad =
    { Pyramid: ImagePyramid
      Skipped: SkippedImage list
      /// True when the prepared pyramid came from the on-disk cache.
      FromCache: bool }

/// Reads a folder of images into a training pyramid (reference `dataset_tool.py create_from_images`, with the
/// decoding done by StbImageSharp): RGBA is composited onto a background colour, grayscale becomes RGB, non-square
/// images are centre-cropped, then box-filtered to the target resolution; every level of detail follows by 2×2
/// averaging. The prepared pyramid is cached on disk, keyed by the file list, sizes and dates.
module ImageFolder =

    /// File extensions read (case-insensitive).
    let extensions = set [ ".png"; ".jpg"; ".jpeg"; ".bmp"; ".gif"; ".tga" ]

    /// Images larger than this many pixels are skipped rather than decoded (an 8000×8000 RGBA image alone would take 256 MB).
    let maxPixels = 32L * 1024L * 1024L

    /// The image files below `folder`, recursively, in a stable order. Unreadable folders are passed over, and a
    /// folder reached again through a symbolic link (a cycle, or a second path to the same images) is read once.
    let files (folder: string) =
        let visited = Collections.Generic.HashSet<string>()
        let realPath (dir: DirectoryInfo) =
            match (try dir.ResolveLinkTarget(true) with _ -> null) with
            | null -> dir.FullName
            | target -> target.FullName
        let rec walk (dir: DirectoryInfo) =
            seq {
                if visited.Add(Path.TrimEndingDirectorySeparator(realPath dir)) then
                    let entries = try dir.GetFileSystemInfos() with :? IOException | :? UnauthorizedAccessException -> [||]
                    for entry in entries do
                        match entry with
                        | :? DirectoryInfo as sub -> yield! walk sub
                        | file when extensions.Contains(file.Extension.ToLowerInvariant()) -> yield file.FullName
                        | _ -> ()
            }
        walk (DirectoryInfo folder)
        |> Seq.sortWith (fun a b -> String.CompareOrdinal(a, b))
        |> List.ofSeq

    /// Decodes one file to RGBA bytes, or says why it cannot be used.
    let decode (path: string) : Result<ImageResult, string> =
        try
            let info = FileInfo path
            if info.Length = 0L then Error "empty file"
            else
                let bytes = File.ReadAllBytes path
                match ImageInfo.FromStream(new MemoryStream(bytes)) |> Option.ofNullable with
                | None -> Error "not a readable image"
                | Some header when int64 header.Width * int64 header.Height > maxPixels ->
                    Error(sprintf "too large (%d×%d pixels; at most %d)" header.Width header.Height maxPixels)
                | Some header when header.Width < 1 || header.Height < 1 -> Error "no pixels"
                | Some _ ->
                    let image = ImageResult.FromMemory(bytes, ColorComponents.RedGreenBlueAlpha)
                    if isNull image || isNull image.Data || image.Data.Length < image.Width * image.Height * 4 then Error "truncated image"
                    else Ok image
        with e -> Error(sprintf "unreadable (%s)" (e.Message.Split('\n')[0]))

    /// One decoded image as float RGB [3, r, r] in [0, 255]: composited onto `background`, centre-cropped, resized.
    let prepare (resolution: int) (background: float32 * float32 * float32) (image: ImageResult) =
        use scope = torch.NewDisposeScope()
        let h, w = int64 image.Height, int64 image.Width
        let rgba = (bytesTensor image.Data [| h; w; 4L |]).permute(2L, 0L, 1L).to_type(torch.ScalarType.Float32)
        let r, g, b = background
        let bg = torch.tensor([| r; g; b |]).view(3L, 1L, 1L).mul_(scalar 255.0)
        let alpha = rgba.narrow(0L, 3L, 1L).div(scalar 255.0)
        let rgb = torch.lerp(bg.expand(3L, h, w), rgba.narrow(0L, 0L, 3L), alpha)
        let side = min h w
        let square = rgb.narrow(1L, (h - side) / 2L, side).narrow(2L, (w - side) / 2L, side).unsqueeze(0L)
        let sized =
            if side >= int64 resolution then torch.nn.functional.adaptive_avg_pool2d(square, [| int64 resolution; int64 resolution |])
            else torch.nn.functional.interpolate(square, size = [| int64 resolution; int64 resolution |], mode = torch.InterpolationMode.Bilinear, align_corners = false)
        sized.squeeze(0L).clamp(scalar 0.0, scalar 255.0).MoveToOuterDisposeScope()

    /// The cache key: every file's path, size and date, the resolution and the background.
    let cacheKey (folder: string) (resolution: int) (background: float32 * float32 * float32) (paths: string list) =
        let text = StringBuilder()
        text.Append(sprintf "v1|%d|%A|" resolution background) |> ignore
        for p in paths do
            let info = FileInfo p
            text.Append(Path.GetRelativePath(folder, p)).Append('|').Append(info.Length).Append('|').Append(info.LastWriteTimeUtc.Ticks).Append('\n') |> ignore
        let digest = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))
        digest.Substring(0, 24).ToLowerInvariant()

    /// Where prepared pyramids are cached: $PROGAN_KERAS_DATA_CACHE, else the user cache folder.
    let cacheFolder () =
        match Environment.GetEnvironmentVariable "PROGAN_KERAS_DATA_CACHE" with
        | null | "" ->
            let xdg = Environment.GetEnvironmentVariable "XDG_CACHE_HOME"
            let root = if String.IsNullOrEmpty xdg then Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".cache") else xdg
            Path.Combine(root, "progan-keras", "data")
        | folder -> folder

    /// Reads `folder` at `resolution`; `minimum` is the fewest usable images accepted (one minibatch).
    /// `progress` is told (done, total) while decoding.
    let load (folder: string) (resolution: int) (background: float32 * float32 * float32) (minimum: int) (progress: int -> int -> unit) =
        if not (Directory.Exists folder) then
            invalidArg "data" (sprintf "The data folder '%s' does not exist; pass --data with a folder of png/jpg/bmp/gif/tga images." folder)
        let paths = files folder
        let key = cacheKey folder resolution background paths
        let cachePath = Path.Combine(cacheFolder (), key + ".bin")
        let skippedPath = cachePath + ".skipped"
        let fail count =
            invalidArg "data"
                (sprintf "The data folder '%s' has %d usable image(s); training needs at least %d (one minibatch). Readable formats: %s."
                    folder count minimum (String.Join(", ", extensions)))
        match ImagePyramid.tryLoad cachePath with
        | Some pyramid ->
            let skipped =
                if File.Exists skippedPath then
                    File.ReadAllLines skippedPath |> Array.map (fun l -> let i = l.IndexOf('\t') in { Path = l[.. i - 1]; Reason = l[i + 1 ..] }) |> List.ofArray
                else []
            if pyramid.Count < minimum then fail pyramid.Count
            { Pyramid = pyramid; Skipped = skipped; FromCache = true }
        | None ->
            let skipped = Collections.Concurrent.ConcurrentBag<SkippedImage>()
            let prepared = Array.zeroCreate<torch.Tensor> paths.Length
            let pathArray = Array.ofList paths
            let mutable done' = 0
            // Decode in chunks so memory stays bounded by one chunk of full-size images.
            for chunk in Array.chunkBySize 64 [| 0 .. pathArray.Length - 1 |] do
                let decoded = Array.zeroCreate chunk.Length
                Parallel.For(0, chunk.Length, fun i -> decoded[i] <- decode pathArray[chunk[i]]) |> ignore
                for i in 0 .. chunk.Length - 1 do
                    match decoded[i] with
                    | Ok image ->
                        // Stored as bytes at once: a float copy of every image would take 4× the memory until the end.
                        use asFloat = prepare resolution background image
                        prepared[chunk[i]] <- asFloat.round().to_type(torch.ScalarType.Byte)
                    | Error reason -> skipped.Add { Path = pathArray[chunk[i]]; Reason = reason }
                done' <- done' + chunk.Length
                progress done' pathArray.Length
            let usable = prepared |> Array.filter (isNull >> not)
            if usable.Length < minimum then fail usable.Length
            use stacked = torch.stack(usable)
            for t in usable do t.Dispose()
            let pyramid = ImagePyramid.fromBytes folder stacked
            let skippedList = skipped |> Seq.sortBy (fun s -> s.Path) |> List.ofSeq
            try
                ImagePyramid.save cachePath pyramid
                File.WriteAllLines(skippedPath, skippedList |> List.map (fun s -> s.Path + "\t" + s.Reason))
            with _ -> () // a cache that cannot be written (full disk, read-only, …) only costs time
            // Reload from the bytes written, so a cached and a fresh run see exactly the same data.
            let pyramid =
                match ImagePyramid.tryLoad cachePath with
                | Some fromDisk -> (pyramid :> IDisposable).Dispose(); fromDisk
                | None -> pyramid
            { Pyramid = pyramid; Skipped = skippedList; FromCache = false }

    /// One warning line for the skipped files: the count and the first few paths with reasons.
    let summarize (skipped: SkippedImage list) =
        match skipped with
        | [] -> None
        | _ ->
            let first = skipped |> List.truncate 3 |> List.map (fun s -> sprintf "%s (%s)" s.Path s.Reason)
            Some(sprintf "Skipped %d unusable file(s), e.g. %s%s" skipped.Length (String.Join("; ", first)) (if skipped.Length > 3 then "; …" else ""))
