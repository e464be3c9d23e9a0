/// Every command fed bad values, as a hostile user would (issue: 21 failures a hostile user found): each must end with
/// exit code 2 and one line on stderr naming the problem — no stack trace — and write nothing into an existing folder.
module ProGan.Training.Tests.Commands.HostileInputTests

open System
open System.IO
open Xunit
open ProGan.Training.Config
open ProGan.Training.Runs
open ProGan.Training.Commands
open ProGan.Training.Tests.Fixtures

/// Runs a command's entry point in this process; returns the exit code and stderr.
let private invoke (entry: string[] -> int) (args: string list) =
    let code, err, _ = runCommand entry args
    code, err

/// Asserts exit code 2 and exactly one line on stderr, `error: …` containing `expected`, with no stack trace.
let private refused (entry: string[] -> int) (args: string list) (expected: string) =
    let code, err = invoke entry args
    let lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries)
    Assert.True(code = 2 && lines.Length = 1 && lines[0].StartsWith "error: " && lines[0].Contains expected,
                sprintf "%A → exit %d, stderr:\n%s(expected one line with '%s')" args code err expected)
    Assert.DoesNotContain("   at ", err)

/// A folder holding a user's files, and a snapshot of them to compare with afterwards.
type private UserFolder() =
    let folder = new TempFolder()
    do
        File.WriteAllText(folder.File "notes.tmp", "a")
        File.WriteAllText(folder.File "report.tmpl", "b")
        File.WriteAllText(folder.File "thesis.tmp.docx", "c")
        File.WriteAllText(folder.File "config.json", """{"my":1}""")
        File.WriteAllText(folder.File "log.csv", "mine")
    let snapshot () = Directory.GetFiles folder.Path |> Array.sort |> Array.map (fun f -> Path.GetFileName f, File.ReadAllText f)
    let before = snapshot ()
    member _.Path = folder.Path
    member _.AssertUntouched() = Assert.Equal<(string * string)[]>(before, snapshot ())
    interface IDisposable with
        member _.Dispose() = (folder :> IDisposable).Dispose()

[<Fact>]
let ``train: every bad option value is one line and exit code 2, and nothing is written`` () =
    use user = new UserFolder()
    use scratch = new TempFolder()
    let fresh = scratch.File "new-run" // a run folder that a refused run must not leave behind
    let tiny = [ "--resolution"; "8"; "--out"; fresh ]
    let cases =
        [ [ "--frobnicate"; "1" ], "Unknown option --frobnicate"
          [ "--mirrror" ], "did you mean --mirror?"
          [ "--resolution=8" ], "write --resolution 8"
          [ "--resolution"; "48" ], "power of two"
          [ "--seed"; "3000000000" ], "--seed must be at most 2147483647"
          [ "--stop-after"; "-5" ], "--stop-after must be at least 1"
          [ "--stop-after"; "abc" ], "--stop-after expects a whole number"
          [ "--data"; "" ], "--data needs a folder"
          [ "--data"; "/etc/passwd" ], "is a file, not a folder"
          [ "--data"; "/no/such/folder" ], "does not exist"
          [ "--out"; "" ], "--out needs a folder name"
          [ "--out"; "/etc/hostname" ], "is a file, not a folder"
          [ "--out"; "/dev/null" ], "is a file, not a folder"
          [ "--out"; "/etc/hostname/run" ], "cannot create the folder"
          [ "--out"; "/proc/no-such-run" ], "cannot create the folder"
          [ "--init-from"; "/no/such/run" ], "--init-from: '/no/such/run' does not exist"
          [ "--d-repeats"; "0" ], "--d-repeats 0 is invalid; it must be from 1 to 16"
          [ "--out"; user.Path ], "is not empty and is not a run folder"
          [ "--device"; "tpu" ], "--device expects cpu, cuda or cuda:N"
          [ "--lr"; "Infinity" ], "--lr must be a finite number"
          [ "--gp-weight"; "Infinity" ], "--gp-weight must be a finite number"
          [ "--lr"; "fast" ], "--lr expects a number"
          [ "--metrics"; "fid" ], "--metrics fid is invalid"
          [ "--threads"; "100000" ], "--threads must be at most"
          [ "--resume"; "/no/such/run" ], "does not exist"
          [ "--resume"; user.Path ], "is not a run folder"
          [ "--resume"; user.Path; "--lr"; "0.1" ], "--lr cannot be combined with it"
          tiny @ [ "--latent-size"; "2000000000" ], "most of it is the networks"
          tiny @ [ "--fmap-base"; "100000"; "--fmap-max"; "100000" ], "GiB of memory is available"
          tiny @ [ "--procedural-images"; "100000000" ], "most of it is the training images"
          [ "--preset"; "paper"; "--resolution"; "2048"; "--out"; fresh ], "GiB of memory is available"
          [ "--resolution"; "2048"; "--out"; fresh ], "the cpu preset's feature maps (fmap_base 512" ]
    let cases =
        if TorchSharp.torch.cuda.is_available () then cases
        else cases @ [ [ "--device"; "cuda" ], "no CUDA device is available" ]
    for args, expected in cases do
        refused Cli.main args expected
        user.AssertUntouched()
        Assert.False(Directory.Exists fresh, sprintf "%A left %s behind" args fresh)

[<Fact>]
let ``generate and evaluate: every bad option value is one line and exit code 2`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 16L) |> ignore
    use user = new UserFolder()
    for args, expected in
        [ [ "--count"; "1" ], "--run FOLDER is required"
          [ "--run"; "" ], "--run needs a run folder"
          [ "--run"; "/no/such/run" ], "does not exist"
          [ "--run"; user.Path ], "is not a run folder"
          [ "--run"; run.Path; "--count"; "0" ], "--count must be at least 1"
          [ "--run"; run.Path; "--steps"; "1" ], "--steps must be at least 2"
          [ "--run"; run.Path; "--out"; "" ], "--out needs a folder name"
          [ "--run"; run.Path; "--out"; "/etc/hostname" ], "is a file, not a folder"
          [ "--run"; run.Path; "--out"; user.Path ], "which generate.fsx did not write; choose a new or empty folder, or add --force"
          [ "--run"; run.Path; "--out"; "/proc/no-such/samples" ], "--out: the folder '/proc/no-such' does not exist"
          [ "--run"; run.Path; "--checkpoint"; "/tmp" ], "is a folder, not a checkpoint file"
          [ "--run"; run.Path; "--checkpoint"; "nope.ckpt" ], "does not exist"
          [ "--run"; run.Path; "--interpolate"; "1" ], "--interpolate expects two seeds"
          [ "--run"; run.Path; "--video"; "--seeds"; "1" ], "--seeds needs at least two seeds"
          [ "--run"; run.Path; "--video"; "--seeds"; "1,x" ], "--seeds expects a whole number"
          [ "--run"; run.Path; "--video"; "--frames"; "0" ], "--frames must be at least 1"
          [ "--run"; run.Path; "--video"; "--frames"; "2000" ], "a video holds at most 3000"
          [ "--run"; run.Path; "--video"; "--fps"; "0" ], "--fps must be at least 1"
          [ "--run"; run.Path; "--class"; "cats" ], "the run is not conditional"
          [ "--run"; run.Path; "--frob" ], "Unknown option --frob" ] do
        refused Cli.generate args expected
    for args, expected in
        [ [ "--run"; run.Path; "--images"; "10" ], "--images must be at least 16"
          [ "--run"; run.Path; "--data"; "/etc/passwd" ], "is a file, not a folder"
          [ "--run"; run.Path; "--data"; "/no/such/folder" ], "does not exist"
          [ "--run"; "/no/such/run" ], "does not exist"
          [ "--run"; run.Path; "--all-checkpoints"; "--checkpoint"; "x.ckpt" ], "leave --checkpoint out"
          [ "--imgs"; "10" ], "did you mean --images?" ] do
        refused Cli.evaluate args expected
    user.AssertUntouched()

[<Fact>]
let ``export: every bad option value is one line and exit code 2`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 16L) |> ignore
    use user = new UserFolder()
    for args, expected in
        [ [], "--run FOLDER is required"
          [ "--run"; "/no/such/run" ], "does not exist"
          [ "--run"; user.Path ], "is not a run folder"
          [ "--run"; run.Path; "--resolution"; "2" ], "--resolution must be at least 4"
          [ "--run"; run.Path; "--resolution"; "6" ], "--resolution 6: resolution must be a power of two from 4 to 8"
          [ "--run"; run.Path; "--resolution"; "8" ], "--resolution 8: the checkpoint was trained up to 4² straight-through"
          [ "--run"; run.Path; "--checkpoint"; "/tmp" ], "is a folder, not a checkpoint file"
          [ "--run"; run.Path; "--out"; "/tmp" ], "--out: '/tmp' is a folder; name the file to write"
          [ "--run"; run.Path; "--out"; "/proc/nope/g.onnx" ], "--out: the folder '/proc/nope' does not exist; create it first"
          [ "--run"; run.Path; "--out"; "/proc/g.onnx" ], "--out: nothing can be created in the folder '/proc'"
          [ "--run"; run.Path; "--out"; user.Path + "/config.json" ], "exists and is not an ONNX model written by this library"
          [ "--run"; run.Path; "--format"; "checkpoint"; "--out"; user.Path + "/log.csv" ], "exists and is not a generator checkpoint written by this library"
          [ "--run"; run.Path; "--format"; "png" ], "--format png: the formats are onnx and checkpoint"
          [ "--run"; run.Path; "--format"; "checkpoint"; "--resolution"; "4" ], "a checkpoint export holds every level"
          [ "--run"; run.Path; "--resolutoin"; "4" ], "did you mean --resolution?" ] do
        refused Cli.export args expected
    user.AssertUntouched()
    // A damaged checkpoint: one line naming the file and its SHA-256.
    let checkpoint = List.head (checkpoints run.Path)
    let bytes = File.ReadAllBytes checkpoint
    bytes[bytes.Length / 2] <- bytes[bytes.Length / 2] ^^^ 0xFFuy
    File.WriteAllBytes(checkpoint, bytes)
    refused Cli.export [ "--run"; run.Path ] "SHA-256"

[<Fact>]
let ``export and generate replace only what they wrote: a user's file is refused, kept, and replaced only with --force`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 16L) |> ignore
    use scratch = new TempFolder()
    let precious = scratch.File "precious"
    File.WriteAllText(precious, "a user's file")
    refused Cli.export [ "--run"; run.Path; "--out"; precious ] ("--out: '" + precious + "' exists and is not an ONNX model written by this library, so it is left as it is; name another file, or add --force")
    Assert.Equal("a user's file", File.ReadAllText precious)
    Assert.Empty(Directory.GetFiles(scratch.Path, "*.tmp"))
    // Its own export is replaced without a word; a user's file only when asked.
    let model = scratch.File "g.onnx"
    for _ in 1..2 do Assert.Equal(0, (fun (c, _, _) -> c) (runCommand Cli.export [ "--run"; run.Path; "--out"; model ]))
    for _ in 1..2 do Assert.Equal(0, (fun (c, _, _) -> c) (runCommand Cli.export [ "--run"; run.Path; "--format"; "checkpoint"; "--out"; scratch.File "g.ckpt" ]))
    refused Cli.export [ "--run"; run.Path; "--format"; "checkpoint"; "--out"; model ] "is not a generator checkpoint written by this library"
    Assert.Equal(0, (fun (c, _, _) -> c) (runCommand Cli.export [ "--run"; run.Path; "--out"; precious; "--force" ]))
    Assert.NotEqual<string>("a user's file", File.ReadAllText precious)
    // generate writes among its own files again, and among a user's only with --force, which leaves theirs alone.
    let out = scratch.File "samples"
    for _ in 1..2 do Assert.Equal(0, (fun (c, _, _) -> c) (runCommand Cli.generate [ "--run"; run.Path; "--count"; "2"; "--out"; out ]))
    File.WriteAllText(Path.Combine(out, "mine.txt"), "keep")
    refused Cli.generate [ "--run"; run.Path; "--count"; "2"; "--out"; out ] "holds 'mine.txt', which generate.fsx did not write"
    Assert.Equal(0, (fun (c, _, _) -> c) (runCommand Cli.generate [ "--run"; run.Path; "--count"; "2"; "--out"; out; "--force" ]))
    Assert.Equal("keep", File.ReadAllText(Path.Combine(out, "mine.txt")))

[<Fact>]
let ``export of a run whose newest checkpoint is damaged names the newest good one; a FIFO among checkpoints is mentioned`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 64L) |> ignore
    let newest, older = match checkpoints run.Path with n :: o :: _ -> n, o | _ -> failwith "two checkpoints expected"
    let bytes = File.ReadAllBytes newest
    bytes[bytes.Length / 2] <- bytes[bytes.Length / 2] ^^^ 0xFFuy
    File.WriteAllBytes(newest, bytes)
    let fifo = run.File "checkpoint-999999999999.ckpt"
    use mkfifo = Diagnostics.Process.Start("mkfifo", [ fifo ])
    mkfifo.WaitForExit()
    let code, err = invoke Cli.export [ "--run"; run.Path ]
    Assert.Equal(2, code)
    Assert.Contains("warning: passed over checkpoint-999999999999.ckpt: named like checkpoints, but a FIFO.", err)
    Assert.Contains(sprintf "The newest good checkpoint is %s: pass --checkpoint %s." (Path.GetFileName older) (Path.GetFileName older), err)
    Assert.Equal(0, fst (invoke Cli.export [ "--run"; run.Path; "--checkpoint"; Path.GetFileName older ]))

[<Fact>]
let ``generate --video of a run without sample grids writes the rest and says why there is no time-lapse`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 16L) |> ignore
    for grid in Directory.GetFiles(run.Path, "fakes-*.png") do File.Delete grid
    use out = new TempFolder()
    let code, err = invoke Cli.generate [ "--run"; run.Path; "--out"; out.Path; "--count"; "1"; "--video"; "--seeds"; "1,2"; "--frames"; "2" ]
    Assert.Equal(0, code)
    Assert.Equal(sprintf "warning: '%s' has no sample grids (fakes-*.png; training writes one every tick, --tick-images), so there is no training time-lapse." run.Path, err.Trim())
    Assert.True(File.Exists(out.File "interpolation-loop.gif"))
    Assert.False(File.Exists(out.File "training.gif"))

[<Fact>]
let ``resuming a run whose config.json was edited by hand names what is wrong`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 16L) |> ignore
    let config = RunFolder(run.Path).Config
    let original = File.ReadAllText config
    let without (field: string) =
        let node = Text.Json.Nodes.JsonNode.Parse(original).AsObject()
        node.Remove field |> ignore
        node.ToJsonString()
    for text, expected in
        [ "{}", "lacks Architecture"
          "null", "not a training configuration"
          "[1, 2]", "not a training configuration"
          """{"foo": 1}""", "lacks Architecture"
          "not json", "is not valid JSON"
          without "DataFolder", "lacks DataFolder"
          without "Minibatch", "lacks Minibatch"
          original.Replace("\"Seed\": 1", "\"Seed\": \"one\""), "wrong type"
          original.Replace("\"LearningRate\": 0.003", "\"LearningRate\": -1"), "LearningRate"
          original.Replace("\"StabiliseImages\": 64", "\"StabiliseImages\": 1e20"), "$.StabiliseImages"
          original.Replace("\"FmapMax\": 8", "\"FmapMax\": 1e20"), "$.Architecture.FmapMax"
          original.Replace("\"FmapMax\": 8", "\"FmapMax\": 2000000000").Replace("\"FmapBase\": 32", "\"FmapBase\": 2000000000"), "GiB of memory is available" ] do
        File.WriteAllText(config, text)
        refused Cli.main [ "--resume"; run.Path ] expected
    // A run from before a field was added reads as what it did (Precision: float32), and resumes.
    File.WriteAllText(config, without "Precision")
    Assert.Equal(Float32, (RunFolder.readConfig (RunFolder run.Path)).Precision)
    File.WriteAllText(config, without "ChannelsLastFrom") // NCHW throughout, as every run before the field
    Assert.Equal(0, (RunFolder.readConfig (RunFolder run.Path)).ChannelsLastFrom)
    File.WriteAllText(config, original)
    // Garbage in log.csv is passed over, not a crash.
    File.AppendAllText(RunFolder(run.Path).Log, "abc\n\u0000\u0000\u0000\n")
    let position, _ = train tiny run.Path true (Some 24L)
    Assert.Equal(24L, position.ImagesShown)
    Assert.All(logRows run.Path, fun r -> Assert.True(r.ImagesShown > 0L))
