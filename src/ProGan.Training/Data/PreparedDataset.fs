// A data set prepared on disk (level files + dataset.json), streamed and verified.
namespace ProGan.Training.Data

open System
open System.IO
open System.Security.Cryptography
open System.Text.Json
open ProGan.Keras.IO
open ProGan.Training.Basics

/// A file of a data folder that could not be used, and why.
type SkippedImage = { Path: string; Reason: string }

/// One level of a prepared data set: its file and the SHA-256 of its bytes.
[<CLIMutable>]
type DatasetLevel =
    { Resolution: int
      File: string
      Bytes: int64
      Sha256: string }

/// `dataset.json`: what a prepared data set holds (reference `dataset_tool.py`'s multi-resolution TFRecords, here one
/// plain file of uint8 [count, C, r, r] per level, so that a minibatch is a few positioned reads).
[<CLIMutable>]
type DatasetIndex =
    { /// Always `progan-keras-dataset`.
      Format: string
      Version: int
      Count: int
      Resolution: int
      Channels: int
      /// The folder (or description) the images came from.
      Source: string
      /// The source files, relative to `Source`, in image order (empty for generated images).
      Files: string[]
      /// Files of the source that could not be used, and why.
      Skipped: SkippedImage[]
      /// 4² first.
      Levels: DatasetLevel[]
      /// The class of every image, or empty for an unlabelled set.
      Labels: int64[]
      /// The classes' names in index order, or empty.
      ClassNames: string[] }

/// Training images in a prepared data set on disk, read a minibatch at a time: each image is one positioned read
/// (`pread`) through the OS page cache, so neither managed nor native memory ever holds the whole set, and what the
/// page cache keeps is the OS's to reclaim.
/// Why positioned reads, not memory-mapped views: on Linux 6.x file systems with large folios (ext4 here), a fault
/// on a mapped file maps its whole folio, so a view gathering 960 random 64² images of a 319 MB set grew the process's
/// resident set by 245 MB (RssFile), where positioned reads leave it flat; both read from the same page cache.
type PreparedDataset(folder: string, index: DatasetIndex) =
    inherit TrainingImages()
    let files =
        index.Levels |> Array.map (fun l -> File.OpenHandle(Path.Combine(folder, l.File), FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess))

    /// The index file of every data set.
    static member IndexFile = "dataset.json"
    /// The `Format` of every index.
    static member Format = "progan-keras-dataset"
    /// The data-set format this version writes and reads.
    static member Version = 1

    /// The folder.
    member _.Folder = folder
    /// What `dataset.json` says.
    member _.Index = index

    override _.Name = index.Source
    override _.Count = index.Count
    override _.Resolution = index.Resolution
    override _.Channels = index.Channels
    override _.Labels = index.Labels
    override _.ClassNames = index.ClassNames
    override _.LevelHash(level) = index.Levels[level].Sha256

    /// SHA-256 of a level's file as it is on disk now (`LevelHash` is what dataset.json recorded).
    member _.HashOnDisk(level: int) =
        use stream = File.OpenRead(Path.Combine(folder, index.Levels[level].File))
        Convert.ToHexString(SHA256.HashData stream).ToLowerInvariant()
    override _.GatherBytes(level, indices) =
        let r = int64 index.Levels[level].Resolution
        let perImage = int64 index.Channels * r * r
        let buffer = Array.zeroCreate<byte> (indices.Length * int perImage)
        for k, i in Array.indexed indices do
            if i < 0L || i >= int64 index.Count then raise (ArgumentOutOfRangeException("indices", i, sprintf "The data set has %d images." index.Count))
            let target = buffer.AsSpan(k * int perImage, int perImage)
            if RandomAccess.Read(files[level], target, i * perImage) <> int perImage then
                raise (DataException(sprintf "'%s' ended before image %d; check the data set with prepare.fsx --check." (Path.Combine(folder, index.Levels[level].File)) i))
        bytesTensor buffer [| int64 indices.Length; int64 index.Channels; r; r |]
    override _.Dispose() = for f in files do f.Dispose()

/// Writes a prepared data set a chunk of images at a time: every level goes to its own file while its SHA-256 is
/// computed; the folder is built under a temporary name and renamed at the end, so a data set under its final name is
/// always complete.
type DatasetWriter(path: string, resolution: int, channels: int) =
    let final = Path.GetFullPath path
    // One staging folder per process: two processes preparing the same data set (two runs on one --data) never touch
    // each other's; one left by a process that died is removed.
    let staging = sprintf "%s.%d%s" final Environment.ProcessId AtomicFile.TemporarySuffix
    do
        let parent = Path.GetDirectoryName final
        if Directory.Exists parent then
            for stale in Directory.GetDirectories(parent, Path.GetFileName final + ".*" + AtomicFile.TemporarySuffix) do
                let pid = Path.GetFileName(stale).Substring(Path.GetFileName(final).Length + 1).Replace(AtomicFile.TemporarySuffix, "")
                let alive = match Int32.TryParse pid with | true, p -> (try not (Diagnostics.Process.GetProcessById(p).HasExited) with _ -> false) | _ -> true
                if not alive then (try Directory.Delete(stale, true) with :? IOException | :? UnauthorizedAccessException -> ())
        Directory.CreateDirectory staging |> ignore
    let resolutions = [| for level in 0 .. Numerics.BitOperations.Log2(uint32 resolution) - 2 -> 4 <<< level |]
    let fileName (r: int) = sprintf "level-%04d.bin" r
    let streams = resolutions |> Array.map (fun r -> new FileStream(Path.Combine(staging, fileName r), FileMode.Create, FileAccess.Write, FileShare.None))
    let hashes = resolutions |> Array.map (fun _ -> IncrementalHash.CreateHash HashAlgorithmName.SHA256)
    let mutable count = 0
    let labels = Collections.Generic.List<int64>()
    let mutable classNames : string[] = [||]

    /// Images written so far.
    member _.Count = count

    /// Appends the images of a pyramid (of this data set's resolution).
    member _.Append(images: ImagePyramid) =
        if images.Resolution <> resolution || images.Channels <> channels then
            invalidArg "images" (sprintf "Expected %d² images of %d channel(s); got %d² of %d." resolution channels images.Resolution images.Channels)
        for level, r in Array.indexed resolutions do
            let l = images.Levels[level]
            for start in 0L .. 256L .. l.shape[0] - 1L do
                use chunk = l.narrow(0L, start, min 256L (l.shape[0] - start)).contiguous()
                // Straight from the tensor's memory: no managed copy, so a long preparation makes no garbage per chunk.
                streams[level].Write(Span<byte>.op_Implicit chunk.bytes)
                hashes[level].AppendData(Span<byte>.op_Implicit chunk.bytes)
        if images.Labels.Length > 0 then
            labels.AddRange images.Labels
            classNames <- images.ClassNames
        count <- count + images.Count

    /// Writes `dataset.json`, flushes every file to the disk and moves the data set to its final name.
    member _.Finish(source: string, files: string[], skipped: SkippedImage[]) =
        if count = 0 then invalidOp "A data set needs at least one image."
        let levels =
            [| for level, r in Array.indexed resolutions ->
                streams[level].Flush(true)
                { Resolution = r; File = fileName r; Bytes = streams[level].Length
                  Sha256 = Convert.ToHexString(hashes[level].GetHashAndReset()).ToLowerInvariant() } |]
        for s in streams do s.Dispose()
        let index =
            { Format = PreparedDataset.Format; Version = PreparedDataset.Version; Count = count; Resolution = resolution; Channels = channels
              Source = source; Files = files; Skipped = skipped; Levels = levels
              Labels = labels.ToArray(); ClassNames = classNames }
        AtomicFile.WriteAllText(Path.Combine(staging, PreparedDataset.IndexFile), JsonSerializer.Serialize(index, JsonSerializerOptions(WriteIndented = true)))
        try Directory.Move(staging, final)
        with :? IOException when Directory.Exists final && File.Exists(Path.Combine(final, PreparedDataset.IndexFile)) ->
            () // another process prepared the same images first: its data set stands, ours is removed on dispose
        index

    interface IDisposable with
        member _.Dispose() =
            for s in streams do s.Dispose()
            for h in hashes do h.Dispose()
            if Directory.Exists staging then (try Directory.Delete(staging, true) with :? IOException | :? UnauthorizedAccessException -> ())

module PreparedDataset =

    let private fail format = Printf.kprintf (DataException >> raise) format

    /// Whether `path` is a prepared data set (a folder with `dataset.json`).
    let isDataset (path: string) = File.Exists(Path.Combine(path, PreparedDataset.IndexFile))

    /// The bytes of the level files a run at `resolution` reads (what verifying them costs).
    let levelBytes (index: DatasetIndex) (resolution: int) =
        index.Levels |> Array.filter (fun l -> l.Resolution <= resolution) |> Array.sumBy (fun l -> l.Bytes)

    /// Whether `path` holds the level files of a prepared data set (`level-*.bin`), with or without its index.
    let hasLevelFiles (path: string) =
        FileKind.at path = Folder && Directory.EnumerateFiles(path, "level-*.bin").GetEnumerator().MoveNext()

    /// Reads `dataset.json`, refusing a foreign or other-version index, and naming a folder of level files whose index
    /// is gone as the broken prepared set it is.
    let readIndex (path: string) =
        let file = Path.Combine(path, PreparedDataset.IndexFile)
        if FileKind.at file = Missing && hasLevelFiles path then
            fail "'%s' holds the level-*.bin files of a prepared data set, but its dataset.json is missing (they cannot be read without it); prepare the data set again with prepare.fsx." path
        let index =
            try JsonSerializer.Deserialize<DatasetIndex>(File.ReadAllText file)
            with :? JsonException | :? IOException | :? UnauthorizedAccessException as e ->
                fail "'%s' is not readable (%s); prepare the data set again with prepare.fsx." file (e.Message.Split('\n')[0])
        let wellFormed =
            not (isNull (box index)) && index.Format = PreparedDataset.Format && index.Count >= 1 && index.Channels >= 1
            && not (isNull index.Levels) && not (isNull index.Files) && not (isNull index.Skipped) && not (isNull index.Source)
            && not (isNull index.Labels) && not (isNull index.ClassNames)
            && (index.Labels.Length = 0 || (index.Labels.Length = index.Count && index.Labels |> Array.forall (fun l -> l >= 0L && l < int64 index.ClassNames.Length)))
            && index.Levels.Length >= 1
            && (index.Levels |> Array.mapi (fun i l -> not (isNull (box l)) && l.Resolution = (4 <<< i) && not (isNull l.File) && not (isNull l.Sha256)) |> Array.forall id)
            && index.Levels[index.Levels.Length - 1].Resolution = index.Resolution
        if not wellFormed then
            fail "'%s' is not a ProGan.Keras data set index (or is damaged); prepare the data set again with prepare.fsx." file
        if index.Version <> PreparedDataset.Version then
            fail "'%s' is a data set of format %d; this version reads format %d. Prepare it again with prepare.fsx." path index.Version PreparedDataset.Version
        index

    /// SHA-256 of a file, read in blocks.
    let private hashFile (path: string) =
        use stream = File.OpenRead path
        Convert.ToHexString(SHA256.HashData stream).ToLowerInvariant()

    /// The problems of a data set's level files: missing, of the wrong length, or (with `hashes`) of other content
    /// (each file read once, streamed through SHA-256).
    let problems (path: string) (index: DatasetIndex) (hashes: bool) =
        [ for l in index.Levels do
            let file = Path.Combine(path, l.File)
            let expected = int64 index.Count * int64 index.Channels * int64 l.Resolution * int64 l.Resolution
            match FileKind.at file with
            | Regular length when length <> expected ->
                yield sprintf "'%s' has %d bytes where %d images at %d² take %d (cut short or overwritten)" file length index.Count l.Resolution expected
            | Regular _ when hashes && hashFile file <> l.Sha256 -> yield sprintf "'%s' does not match its SHA-256 in dataset.json (changed on disk)" file
            | Regular _ -> ()
            | _ -> yield sprintf "'%s' is missing" file ]

    /// Opens a prepared data set for training at `resolution` with `channels` (`verify`: check every level's SHA-256
    /// too; lengths are always checked). A set that cannot serve the run is refused with one line naming the file and
    /// the fix.
    let openFor (path: string) (resolution: int) (channels: int) (verify: bool) =
        let index = readIndex path
        if index.Channels <> channels then
            fail "The data set '%s' has %d channel(s), the run %d; prepare it with --channels %d, or train with --channels %d." path index.Channels channels channels index.Channels
        if index.Resolution < resolution then
            fail "The data set '%s' is prepared at %d², below the run's %d²; prepare it at --resolution %d or more." path index.Resolution resolution resolution
        // A set prepared at a higher resolution serves the run's levels: its first ones; only those are read, so
        // only those are checked.
        let levels = index.Levels |> Array.filter (fun l -> l.Resolution <= resolution)
        match problems path { index with Levels = levels } verify with
        | [] -> ()
        | first :: _ -> fail "%s; see every damaged file with prepare.fsx --check %s, and prepare the data set again." first path
        new PreparedDataset(Path.GetFullPath path, { index with Resolution = resolution; Levels = levels })

    /// Writes training images held in memory (the procedural set, say) as a prepared data set at `path`.
    let save (path: string) (source: string) (images: ImagePyramid) =
        use writer = new DatasetWriter(path, images.Resolution, images.Channels)
        writer.Append images
        writer.Finish(source, [||], [||])

    /// What a data set holds, in a few lines.
    let describe (path: string) (index: DatasetIndex) =
        String.Join(Environment.NewLine,
            [ yield sprintf "%s: %d images at %d² (%d channels), prepared from %s" path index.Count index.Resolution index.Channels index.Source
              for l in index.Levels do
                  yield sprintf "  %5d²  %s  %8.1f MiB  SHA-256 %s" l.Resolution l.File (float l.Bytes / 1048576.0) l.Sha256
              if index.Skipped.Length > 0 then yield sprintf "  %d source file(s) skipped" index.Skipped.Length ])
