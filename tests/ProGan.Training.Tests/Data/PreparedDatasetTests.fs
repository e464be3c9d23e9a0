/// Data sets bigger than memory: prepared once on disk, read a minibatch at a time (issue: prepared multi-resolution data).
module ProGan.Training.Tests.Data.PreparedDatasetTests

open System
open System.Diagnostics
open System.IO
open Xunit
open TorchSharp
open ProGan.Training.Config
open ProGan.Training.Progress
open ProGan.Training.Data
open ProGan.Training.Runs
open ProGan.Training.Loop
open ProGan.Training.Commands
open ProGan.Training.Tests.Fixtures

/// Runs prepare.fsx's entry point in this process; returns the exit code, stderr and stdout.
let private prepare (args: string list) = runCommand Cli.prepare args

[<Fact>]
let ``a prepared data set gives the minibatches of the in-memory images, and trains`` () =
    use root = new TempFolder()
    let dataset = root.File "shapes"
    let code, err, out = prepare [ "--procedural"; "64"; "--seed"; "1"; "--resolution"; "8"; "--out"; dataset ]
    Assert.True((code = 0), err)
    Assert.Contains("64 images at 8²", out)
    let code, err, out = prepare [ "--check"; dataset ]
    Assert.True((code = 0), err)
    Assert.Contains("every file matches its SHA-256", out)
    use inMemory = Procedural.pyramid 64 8 3 1
    use onDisk = PreparedDataset.openFor dataset 8 3 true
    Assert.Equal(inMemory.ContentHash, onDisk.ContentHash)
    for shown in [ 0L; 16L; 72L; 100L ] do
        for level in [ 0; 1 ] do
            let draw = Minibatch.draw 5UL shown level 8 64 true
            use a = Minibatch.gather inMemory draw
            use b = Minibatch.gather onDisk draw
            Assert.True(a.equal(b).all().item<bool>(), sprintf "minibatch at %d images, level %d" shown level)
    // Training reads it as --data, and records the same images as the procedural run would.
    use run = new TempFolder()
    train { tiny with DataFolder = dataset } run.Path false (Some 16L) |> ignore
    Assert.Equal(inMemory.ContentHash, (RunFolder.readManifest (RunFolder run.Path)).DataSha256)

[<Fact>]
let ``a damaged, too small or missing data set is one line that names the file and the fix`` () =
    use root = new TempFolder()
    let dataset = root.File "shapes"
    Assert.Equal(0, (fun (c, _, _) -> c) (prepare [ "--procedural"; "16"; "--resolution"; "16"; "--out"; dataset ]))
    let level = Path.Combine(dataset, "level-0016.bin")
    let refused (e: exn) (expected: string) =
        let _, line = (CommandLine.describe e).Value
        Assert.Contains(expected, line)
        Assert.DoesNotContain("\n", line)
    // Prepared at 16², asked for 32².
    refused (Assert.ThrowsAny<exn>(fun () -> PreparedDataset.openFor dataset 32 3 false |> ignore)) "below the run's 32²; prepare it at --resolution 32"
    // Cut short: the length is checked at every open.
    let bytes = File.ReadAllBytes level
    File.WriteAllBytes(level, bytes[.. bytes.Length - 100])
    refused (Assert.ThrowsAny<exn>(fun () -> PreparedDataset.openFor dataset 16 3 false |> ignore)) "level-0016.bin' has"
    // Changed content: --check finds it, by SHA-256.
    File.WriteAllBytes(level, Array.create bytes.Length 7uy)
    let code, err, _ = prepare [ "--check"; dataset ]
    Assert.Equal(2, code)
    Assert.Contains("level-0016.bin' does not match its SHA-256", err)
    // Not a data set at all; an empty folder of images; an existing --out.
    let code, err, _ = prepare [ "--info"; root.Path ]
    Assert.Equal(2, code)
    Assert.Contains("dataset.json", err)
    let empty = root.File "empty"
    Directory.CreateDirectory empty |> ignore
    let code, err, _ = prepare [ "--data"; empty; "--resolution"; "8"; "--out"; root.File "nothing" ]
    Assert.Equal(2, code)
    Assert.Contains("has 0 usable image(s)", err)
    Assert.Empty(Directory.GetFileSystemEntries(root.Path, "nothing*")) // no data set, no staging folder
    let code, err, _ = prepare [ "--procedural"; "16"; "--resolution"; "16"; "--out"; dataset ]
    Assert.Equal(2, code)
    Assert.Contains("already exists", err)
    // An --out where nothing can be created: one line naming the option and the folder, and nothing left anywhere.
    for out, expected in [ "/proc/a-data-set", "--out: nothing can be created in the folder '/proc'"
                           "/proc/no-such/a-data-set", "--out: the folder '/proc/no-such' does not exist" ] do
        let code, err, _ = prepare [ "--procedural"; "16"; "--resolution"; "8"; "--out"; out ]
        Assert.Equal(2, code)
        Assert.StartsWith("error: " + expected, err)
        Assert.Equal(1, err.Trim().Split('\n').Length)

[<Fact>]
let ``training verifies every level file against dataset.json, and a set without its dataset.json is named as one`` () =
    use root = new TempFolder()
    let dataset = root.File "shapes"
    Assert.Equal(0, (fun (c, _, _) -> c) (prepare [ "--procedural"; "16"; "--resolution"; "8"; "--out"; dataset ]))
    let level = Path.Combine(dataset, "level-0008.bin")
    let index = Path.Combine(dataset, "dataset.json")
    let refusedToTrain (expected: string list) =
        use run = new TempFolder()
        let e = Assert.ThrowsAny<exn>(fun () -> train { tiny with DataFolder = dataset; Minibatch = [| 4 |] } run.Path false (Some 8L) |> ignore)
        let code, line = (CommandLine.describe e).Value
        Assert.Equal(2, code)
        for part in expected do Assert.Contains(part, line)
        Assert.DoesNotContain("\n", line)
    // A same-length change of a level file: its size is right, its SHA-256 is not.
    let bytes = File.ReadAllBytes level
    let changed = Array.copy bytes
    changed[changed.Length / 2] <- changed[changed.Length / 2] ^^^ 0xFFuy
    File.WriteAllBytes(level, changed)
    refusedToTrain [ "level-0008.bin' does not match its SHA-256 in dataset.json"; "prepare.fsx --check " + dataset ]
    File.WriteAllBytes(level, bytes)
    // A changed SHA-256 in dataset.json is the same mismatch, seen from the other side.
    let text = File.ReadAllText index
    let recorded = (PreparedDataset.readIndex dataset).Levels[1].Sha256
    File.WriteAllText(index, text.Replace(recorded, String('0', recorded.Length)))
    refusedToTrain [ "level-0008.bin' does not match its SHA-256 in dataset.json" ]
    File.WriteAllText(index, text)
    use run = new TempFolder()
    let _, events = train { tiny with DataFolder = dataset; Minibatch = [| 4 |] } run.Path false (Some 8L)
    Assert.Contains(events, fun e -> match e with Info t -> t.StartsWith "Verified the prepared data set against its SHA-256s" | _ -> false)
    // dataset.json deleted: the level files are named as a prepared set that lost its index, by train and prepare.
    File.Delete index
    refusedToTrain [ "holds the level-*.bin files of a prepared data set, but its dataset.json is missing"; "prepare the data set again" ]
    let code, err, _ = prepare [ "--check"; dataset ]
    Assert.Equal(2, code)
    Assert.Contains("its dataset.json is missing", err)

[<Fact>]
let ``a data set larger than the memory allowed for data trains with resident memory bounded by what a step touches`` () =
    use root = new TempFolder()
    let dataset = root.File "large"
    let resolution, perChunk, chunks = 64, 1024, 20 // 20,480 images: 319 MB over all levels, over twice the allowance
    do
        use writer = new DatasetWriter(dataset, resolution, 3)
        use g = new torch.Generator(3UL)
        for _ in 1 .. chunks do
            use bytes = torch.randint(0L, 256L, [| int64 perChunk; 3L; int64 resolution; int64 resolution |], generator = g, dtype = torch.ScalarType.Byte)
            use pyramid = ImagePyramid.fromBytes "random" bytes
            writer.Append pyramid
        writer.Finish("random bytes", [||], [||]) |> ignore
    let size = Directory.GetFiles dataset |> Array.sumBy (fun f -> FileInfo(f).Length)
    let allowance = 150L <<< 20
    Assert.True(size > 2L * allowance, sprintf "the data set is only %d MB" (size >>> 20))
    let config =
        { tiny with
            Architecture = tiny.Architecture.With(resolution = resolution, fmapBase = 256, fmapMax = 8)
            DataFolder = dataset; Minibatch = [| 16 |] }
    let rss () =
        GC.Collect()
        GC.WaitForPendingFinalizers()
        use p = Process.GetCurrentProcess()
        p.WorkingSet64
    /// Resident memory after 40 steps at 64² on `data`.
    let trainOn (data: TrainingImages) =
        use trainer = new Trainer(config, data, torch.CPU)
        trainer.JumpTo(int64 (config.Architecture.LevelCount - 1) * int64 (config.StabiliseImages + config.FadeImages)) // 64² stabilise
        for _ in 1..40 do trainer.Step() |> ignore
        Assert.Equal(64, trainer.Position.Resolution)
        rss ()
    // The model's footprint, measured: the same steps on 64 images held in memory.
    let footprint =
        use g = new torch.Generator(4UL)
        use bytes = torch.randint(0L, 256L, [| 64L; 3L; int64 resolution; int64 resolution |], generator = g, dtype = torch.ScalarType.Byte)
        use small = ImagePyramid.fromBytes "random" bytes
        trainOn small
    use data = PreparedDataset.openFor dataset resolution 3 false
    let resident = trainOn data
    Assert.True(resident < footprint + allowance,
                sprintf "resident memory %d MB reading a %d MB data set; the model alone took %d MB, allowance %d MB"
                    (resident >>> 20) (size >>> 20) (footprint >>> 20) (allowance >>> 20))
