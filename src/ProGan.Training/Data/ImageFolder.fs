// A folder of images read recursively into an ImagePyramid, with classes from subfolders.
namespace ProGan.Training.Data

open System
open System.IO
open System.Security.Cryptography
open System.Text
open System.Threading
open System.Threading.Tasks
open TorchSharp
open ProGan.Training.Basics
open ProGan.Training.Config
open ProGan.Training.Progress
open ProGan.Keras.Serving

/// What reading a folder gave.
type FolderLoad =
    { Images: TrainingImages
      Skipped: SkippedImage list
      /// True when the prepared images came from the on-disk cache.
      FromCache: bool }

/// The files below a data folder: the images to read, and how many others were passed over by extension.
type FolderListing =
    { Images: string list
      /// Extension → count, for files with an image-like extension this library cannot read (svg, heic, avif, …).
      Unsupported: (string * int) list }

/// Reads a folder of images into a training pyramid (reference `dataset_tool.py create_from_images`, decoded by
/// `ImageFiles`): non-square images are centre-cropped, and squares of another size resized to the target resolution
/// with Lanczos-3 (the reference's `create_lsun`); RGBA is composited onto black, grayscale becomes RGB; every level of
/// detail follows by 2×2 averaging. The prepared pyramid is cached on disk, keyed by the file list, sizes and dates,
/// and checked by its SHA-256 on load.
module ImageFolder =

    /// File extensions read (case-insensitive): those of the formats ImageSharp decodes (`ImageFiles.extensions`).
    let extensions = ImageFiles.extensions

    /// Image formats people keep beside those, which are reported rather than passed over in silence.
    let private otherImageExtensions = set [ ".svg"; ".heic"; ".heif"; ".avif"; ".psd"; ".jxl"; ".ico"; ".jp2"; ".exr"; ".hdr" ]

    /// The image files below `folder`, recursively, in a stable order. Unreadable folders are passed over, a folder
    /// reached again through a symbolic link (a cycle, or a second path to the same images) is read once, and run
    /// folders are left out: a run's own samples never become its training data.
    let files (folder: string) =
        let visited = Collections.Generic.HashSet<string>()
        let unsupported = Collections.Generic.Dictionary<string, int>()
        let realPath (dir: DirectoryInfo) =
            match (try dir.ResolveLinkTarget(true) with _ -> null) with
            | null -> dir.FullName
            | target -> target.FullName
        let rec walk (dir: DirectoryInfo) =
            seq {
                if visited.Add(Path.TrimEndingDirectorySeparator(realPath dir)) && not (RunFiles.IsRunFolder dir.FullName) then
                    let entries = try dir.GetFileSystemInfos() with :? IOException | :? UnauthorizedAccessException -> [||]
                    for entry in entries do
                        let extension = entry.Extension.ToLowerInvariant()
                        match entry with
                        | :? DirectoryInfo as sub -> yield! walk sub
                        | file when extensions.Contains extension -> yield file.FullName
                        | _ when otherImageExtensions.Contains extension ->
                            unsupported[extension] <- (match unsupported.TryGetValue extension with | true, n -> n + 1 | _ -> 1)
                        | _ -> ()
            }
        let images = walk (DirectoryInfo folder) |> Seq.sortWith (fun a b -> String.CompareOrdinal(a, b)) |> List.ofSeq
        { Images = images; Unsupported = [ for kv in unsupported |> Seq.sortBy (fun kv -> kv.Key) -> kv.Key, kv.Value ] }

    /// One decoded image, RGBA bytes `[r, r, 4]` (`ImageFiles.readSquare`), as float [C, r, r] in [0, 255]
    /// (`Channels.fromRgba`: grey, RGB composited onto black, or RGBA).
    let prepare (resolution: int) (channels: int) (rgba: byte[]) =
        use scope = torch.NewDisposeScope()
        let r = int64 resolution
        let pixels = (bytesTensor rgba [| r; r; 4L |]).permute(2L, 0L, 1L).to_type(torch.ScalarType.Float32)
        (Channels.fromRgba channels pixels).clamp(scalar 0.0, scalar 255.0).MoveToOuterDisposeScope()

    /// The cache key: the folder, every file's path, size and date, the resolution and the channels. The folder is part of it:
    /// file dates are coarse on some file systems, so two folders of equally named and sized files written in one tick
    /// would otherwise share a key. The version changes with the decoding: v3 is ImageSharp 2.1.13 with Lanczos-3 resizing
    /// (v2, StbImageSharp with box filtering, gave the same pixels for 8-bit PNGs already at the resolution, not for
    /// JPEG, 16-bit PNG or resized images), so a cache of the old decoder is never mixed with the new.
    let private cacheKey (folder: string) (resolution: int) (channels: int) (paths: string list) =
        let text = StringBuilder()
        text.Append(sprintf "v3|%s|%d|%d|" (Path.GetFullPath folder) resolution channels) |> ignore
        for p in paths do
            let info = FileInfo p
            let length, written = (try info.Length, info.LastWriteTimeUtc.Ticks with _ -> -1L, 0L)
            text.Append(Path.GetRelativePath(folder, p)).Append('|').Append(length).Append('|').Append(written).Append('\n') |> ignore
        let digest = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))
        digest.Substring(0, 24).ToLowerInvariant()

    /// Where prepared pyramids are cached: $PROGAN_KERAS_DATA_CACHE, else the user cache folder.
    let private cacheFolder () = UserCache.folder "PROGAN_KERAS_DATA_CACHE" "data"

    /// Decodes and prepares `paths` in parallel, a chunk at a time, handing each chunk's pyramid to `take`, so that
    /// memory stays bounded by one full-size image per thread and one chunk at the resolution; `cancel` is honoured
    /// between chunks. Returns the paths
    /// used, in order, and the skipped ones.
    let private decodeAll (paths: string[]) (resolution: int) (channels: int) (classes: (string[] * (string -> int64)) option)
                          (take: ImagePyramid -> unit) (report: TrainingEvent -> unit) (cancel: CancellationToken) =
        let skipped = Collections.Generic.List<SkippedImage>()
        let used = Collections.Generic.List<string>()
        let mutable finished = 0
        for chunk in Array.chunkBySize 64 paths do
            cancel.ThrowIfCancellationRequested()
            let decoded = Array.zeroCreate chunk.Length
            Parallel.For(0, chunk.Length, fun i -> decoded[i] <- ImageFiles.readSquare resolution chunk[i]) |> ignore
            let firstUsed = used.Count
            let bytes =
                [| for i in 0 .. chunk.Length - 1 do
                     match decoded[i] with
                     | Ok image ->
                         use asFloat = prepare resolution channels image
                         used.Add chunk[i]
                         yield asFloat.round().to_type(torch.ScalarType.Byte)
                     | Error reason -> skipped.Add { Path = chunk[i]; Reason = reason } |]
            if bytes.Length > 0 then
                use stacked = torch.stack(bytes)
                for b in bytes do b.Dispose()
                use pyramid = ImagePyramid.fromBytes "chunk" stacked
                match classes with
                | None -> take pyramid
                | Some(names, classOf) ->
                    let labels = [| for k in firstUsed .. used.Count - 1 -> classOf used[k] |]
                    take (new ImagePyramid(pyramid.Name, pyramid.Levels, labels, names)) // the levels stay the chunk's
            finished <- finished + chunk.Length
            report (Preparing(finished, paths.Length))
        List.ofSeq used, List.ofSeq skipped

    let private tooFew (folder: string) (count: int) (minimum: int) =
        DataException(
            sprintf "The data folder '%s' has %d usable image(s); training needs at least %d (one minibatch). Readable formats: %s."
                folder count minimum ImageFiles.formatNames)

    /// Reports what the walk passed over, and refuses a folder whose images could not fit in memory even prepared.
    let private survey (folder: string) (resolution: int) (report: TrainingEvent -> unit) =
        match FileKind.at folder with
        | Folder -> ()
        | Missing -> raise (DataException(sprintf "--data: the folder '%s' does not exist; pass a folder of %s images." folder (ImageFiles.formatNames.Replace(", ", "/"))))
        | _ -> raise (DataException(sprintf "--data: '%s' is a file, not a folder; pass the folder that holds the images." folder))
        let listing = files folder
        if not listing.Unsupported.IsEmpty then
            let counts = listing.Unsupported |> List.map (fun (e, n) -> sprintf "%d %s" n e)
            report (Warning(sprintf "Ignored %s file(s) in '%s': this library reads %s. Convert them to PNG to use them."
                                (String.Join(", ", counts)) folder ImageFiles.formatNames))
        listing

    /// The classes of a labelled folder (`--labels folders`): its immediate subfolders in name order, and the class of
    /// each image by the subfolder it is in.
    let private classesOf (folder: string) (images: string list) (report: TrainingEvent -> unit) =
        let classOf (path: string) =
            match Path.GetRelativePath(folder, path).Split([| Path.DirectorySeparatorChar; Path.AltDirectorySeparatorChar |]) with
            | parts when parts.Length >= 2 -> Some parts[0]
            | _ -> None
        match images |> List.tryFind (classOf >> Option.isNone) with
        | Some loose ->
            raise (DataException(sprintf "--labels folders: '%s' is not in a class subfolder of '%s'; put every image in a subfolder named after its class." loose folder))
        | None -> ()
        let names = images |> List.choose classOf |> List.distinct |> List.sortWith (fun a b -> String.CompareOrdinal(a, b)) |> Array.ofList
        if names.Length < 2 then
            raise (DataException(sprintf "--labels folders: '%s' has %d class subfolder(s); a conditional run needs at least two." folder names.Length))
        // A class folder with no image is no class; a class of one image teaches the networks little of it: both are
        // likely mistakes, said before the work begins.
        let empty =
            Directory.GetDirectories folder |> Array.map Path.GetFileName
            |> Array.filter (fun d -> not (Array.contains d names) && not (RunFiles.IsRunFolder (Path.Combine(folder, d))))
            |> Array.sort
        if empty.Length > 0 then
            report (Warning(sprintf "--labels folders: class folder(s) %s of '%s' hold no usable image, so they are no class; the classes are %s."
                                (String.Join(", ", empty)) folder (String.Join(", ", names))))
        let counts = images |> List.choose classOf |> List.countBy id
        match counts |> List.filter (fun (_, n) -> n = 1) |> List.map fst |> List.sort with
        | [] -> ()
        | single ->
            report (Warning(sprintf "--labels folders: class(es) %s of '%s' have one image each; a conditional run learns little of a class from one image." (String.Join(", ", single)) folder))
        let index = names |> Array.mapi (fun i n -> n, int64 i) |> dict
        names, (fun path -> index[(classOf path).Value])

    /// Prepares the images of `folder` at `resolution` into a data set at `out` (the work of prepare.fsx); returns its
    /// index. At least `minimum` images must be usable.
    let prepareInto (folder: string) (resolution: int) (channels: int) (labelled: bool) (minimum: int) (out: string) (report: TrainingEvent -> unit) (cancel: CancellationToken) =
        let listing = survey folder resolution report
        let classes = if labelled then Some(classesOf folder listing.Images report) else None
        use writer = new DatasetWriter(out, resolution, channels)
        let used, skipped = decodeAll (Array.ofList listing.Images) resolution channels classes writer.Append report cancel
        if used.Length < max 1 minimum then raise (tooFew folder used.Length minimum)
        writer.Finish(Path.GetFullPath folder, [| for p in used -> Path.GetRelativePath(folder, p) |], Array.ofList skipped)

    /// Reads `folder` at `resolution`; `minimum` is the fewest usable images accepted (one minibatch). The images are
    /// prepared once into a data set in the cache folder (checked by SHA-256 at every load, prepared again when
    /// damaged) and read from there a minibatch at a time; where the cache cannot be written they are held in memory.
    let load (folder: string) (resolution: int) (channels: int) (labelled: bool) (minimum: int) (report: TrainingEvent -> unit) (cancel: CancellationToken) =
        let listing = survey folder resolution report
        let classes = if labelled then Some(classesOf folder listing.Images report) else None
        let cached = Path.Combine(cacheFolder (), cacheKey folder resolution channels listing.Images + (if labelled then "-labelled" else ""))
        let fromCache =
            if not (PreparedDataset.isDataset cached) then None
            else
                try Some(PreparedDataset.openFor cached resolution channels true)
                with DataException reason ->
                    report (Warning(sprintf "The prepared-data cache '%s' is damaged (%s); preparing the images again." cached reason))
                    (try Directory.Delete(cached, true) with :? IOException | :? UnauthorizedAccessException -> ())
                    None
        match fromCache with
        | Some data ->
            if data.Count < minimum then
                (data :> IDisposable).Dispose()
                raise (tooFew folder data.Count minimum)
            { Images = data; Skipped = List.ofArray data.Index.Skipped; FromCache = true }
        | None ->
            let writer =
                try Some(new DatasetWriter(cached, resolution, channels))
                with :? IOException | :? UnauthorizedAccessException as e ->
                    report (Warning(sprintf "Could not cache the prepared images in '%s' (%s); holding them in memory, and the next run prepares them again." (cacheFolder ()) (e.Message.Split('\n')[0])))
                    None
            match writer with
            | Some writer ->
                use writer = writer
                let used, skipped = decodeAll (Array.ofList listing.Images) resolution channels classes writer.Append report cancel
                if used.Length < max 1 minimum then raise (tooFew folder used.Length minimum)
                writer.Finish(Path.GetFullPath folder, [| for p in used -> Path.GetRelativePath(folder, p) |], Array.ofList skipped) |> ignore
                { Images = PreparedDataset.openFor cached resolution channels false; Skipped = skipped; FromCache = false }
            | None ->
                MemoryEstimate.refuseAbove (MemoryEstimate.available ())
                    { Parameters = 0L; Activations = 0L; Data = MemoryEstimate.dataBytes (int64 listing.Images.Length) channels resolution }
                let parts = Collections.Generic.List<ImagePyramid>()
                let keep (p: ImagePyramid) = parts.Add(new ImagePyramid(folder, p.Levels |> Array.map (fun l -> l.clone()), p.Labels, p.ClassNames))
                let used, skipped = decodeAll (Array.ofList listing.Images) resolution channels classes keep report cancel
                if used.Length < max 1 minimum then
                    for p in parts do (p :> IDisposable).Dispose()
                    raise (tooFew folder used.Length minimum)
                let levels = Array.init parts[0].Levels.Length (fun level -> torch.cat([| for p in parts -> p.Levels[level] |], 0L))
                for p in parts do (p :> IDisposable).Dispose()
                let labels = parts |> Seq.collect (fun p -> p.Labels) |> Array.ofSeq
                { Images = new ImagePyramid(folder, levels, labels, (match classes with Some(names, _) -> names | None -> [||])); Skipped = skipped; FromCache = false }

    /// One warning line for the skipped files: the count and the first few paths with reasons.
    let summarize (skipped: SkippedImage list) =
        match skipped with
        | [] -> None
        | _ ->
            let first = skipped |> List.truncate 3 |> List.map (fun s -> sprintf "%s (%s)" s.Path s.Reason)
            Some(sprintf "Skipped %d unusable file(s), e.g. %s%s" skipped.Length (String.Join("; ", first)) (if skipped.Length > 3 then "; …" else ""))
