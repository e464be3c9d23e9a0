/// Faults training must survive (issue: reliability): kills, bad checkpoints, NaNs, a second process, a full disk.
module ProGan.Training.Tests.Loop.ReliabilityTests

open System
open System.Diagnostics
open System.IO
open Xunit
open TorchSharp
open ProGan.Training.Basics
open ProGan.Training.Config
open ProGan.Training.Progress
open ProGan.Training.Data
open ProGan.Training.Runs
open ProGan.Training.Loop
open ProGan.Training.Output
open ProGan.Training.Tests.Fixtures

/// The tiny configuration as command-line flags for the `progan` executable.
let private tinyFlags =
    [ "--resolution"; "8"; "--latent-size"; "8"; "--fmap-base"; "32"; "--fmap-max"; "8"; "--stabilise-images"; "64"
      "--fade-images"; "64"; "--minibatch"; "8"; "--tick-images"; "16"; "--log-images"; "16"; "--procedural-images"; "64" ]

/// The `progan` executable built beside this test assembly's configuration.
let private progan =
    let testBin = Path.TrimEndingDirectorySeparator AppContext.BaseDirectory // …/tests/ProGan.Training.Tests/bin/<Configuration>/net10.0
    let configuration = DirectoryInfo(testBin).Parent.Name
    let rec root (d: DirectoryInfo) = if File.Exists(Path.Combine(d.FullName, "ProGan.Keras.sln")) then d.FullName else root d.Parent
    Path.Combine(root (DirectoryInfo testBin), "src", "ProGan.Cli", "bin", configuration, "net10.0", "progan.dll")

/// Starts `progan` with the arguments and environment variables; output is captured (plain mode).
let private startWith (environment: (string * string) list) (args: string list) =
    let info = ProcessStartInfo("dotnet", progan :: args, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    for name, value in environment do info.Environment[name] <- value
    let p = Process.Start info
    let output = Text.StringBuilder()
    let started = new Threading.ManualResetEventSlim(false)
    p.OutputDataReceived.Add(fun e ->
        if not (isNull e.Data) then
            lock output (fun () -> output.AppendLine e.Data |> ignore)
            if e.Data.StartsWith "training from" then started.Set())
    p.ErrorDataReceived.Add(fun e -> if not (isNull e.Data) then lock output (fun () -> output.AppendLine e.Data |> ignore))
    p.BeginOutputReadLine()
    p.BeginErrorReadLine()
    p, started, output

/// Starts `progan` with the arguments; output is captured (plain mode).
let private start (args: string list) = startWith [] args

let private runToEnd (args: string list) =
    let p, _, output = start args
    Assert.True(p.WaitForExit 120_000, "progan did not finish")
    p.WaitForExit()
    Assert.True(p.ExitCode = 0, sprintf "progan exited with %d:\n%O" p.ExitCode output)
    string output

[<Fact>]
let ``killed at chosen moments and resumed, a run ends exactly where an uninterrupted run ends`` () =
    use whole = new TempFolder()
    use killed = new TempFolder()
    runToEnd ([ "--out"; whole.Path ] @ tinyFlags) |> ignore
    // Each attempt is killed (SIGKILL: no handler runs) the moment its own output shows it has reached a point of the
    // run, not after a delay: a log row (the tick's grid and checkpoint write follow it), a checkpoint (a step follows),
    // the start of training (the first step and prefetch after a resume), a row again. The schedule, 192 images in
    // 16-image ticks, is far from done at each, so every kill lands mid-run on a machine of any speed or load.
    let number (pattern: string) (line: string) =
        let m = Text.RegularExpressions.Regex.Match(line, pattern)
        if m.Success then Some(int64 m.Groups[1].Value) else None
    let row = number @"^\[\s*(\d+)/192\]"
    let moments : (string * (int64 -> string -> bool)) list =
        [ "after the row at 48 images", fun _ line -> row line = Some 48L
          "after a checkpoint", fun from line -> number @"^checkpoint checkpoint-(\d+)\.ckpt$" line |> Option.exists (fun n -> n > from)
          "as training starts", fun _ line -> line.StartsWith "training from"
          // A resume may start between rows (a checkpoint a stop wrote mid-tick): the first row 32 or more images on.
          "after the row 32 images on", fun from line -> row line |> Option.exists (fun n -> n >= from + 32L) ]
    let startedAt = Collections.Generic.List<int64>()
    let earlier = Text.StringBuilder() // every attempt's output, for the message of a failure
    for attempt, (moment, reached) in List.indexed moments do
        let args = if attempt = 0 then [ "--out"; killed.Path ] @ tinyFlags else [ "--resume"; killed.Path ]
        let info = ProcessStartInfo("dotnet", progan :: args, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
        use p = Process.Start info
        let output = Text.StringBuilder()
        use fired = new Threading.ManualResetEventSlim(false)
        let from = ref -1L // the images the attempt started from, once it says
        p.OutputDataReceived.Add(fun e ->
            if not (isNull e.Data) then
                lock output (fun () -> output.AppendLine e.Data |> ignore)
                number @"^training from (\d+) of" e.Data |> Option.iter (fun n -> from.Value <- n)
                if from.Value >= 0L && not fired.IsSet && reached from.Value e.Data then
                    (try p.Kill true with _ -> ())
                    fired.Set())
        p.ErrorDataReceived.Add(fun e -> if not (isNull e.Data) then lock output (fun () -> output.AppendLine e.Data |> ignore))
        p.BeginOutputReadLine()
        p.BeginErrorReadLine()
        // Generous: the limit is for a run that hangs, not a measure of speed.
        let landed = fired.Wait(TimeSpan.FromMinutes 5.0)
        if not landed then (try p.Kill true with _ -> ())
        p.WaitForExit()
        earlier.AppendLine(sprintf "--- attempt %d (%s):" attempt moment).Append(string output) |> ignore
        Assert.True(landed, sprintf "attempt %d never got %s:\n%O" attempt moment earlier)
        Assert.DoesNotContain("finished at", string output) // the kill landed before the end
        startedAt.Add from.Value
        Assert.False(checkpoints killed.Path |> List.exists (fun f -> (try Checkpoint.readHeader f |> ignore; false with _ -> true)),
                     "a checkpoint under its final name was incomplete")
    // Every resume continued from a checkpoint the attempts before it wrote: the comparison below is of a run that
    // was killed and resumed, not of one that started over.
    let output = runToEnd [ "--resume"; killed.Path ]
    let resumedAt = output.Split('\n') |> Array.pick (fun line -> number @"^training from (\d+) of" (line.TrimEnd '\r'))
    Assert.Equal(0L, startedAt[0])
    Assert.True((Seq.skip 1 startedAt |> List.ofSeq) @ [ resumedAt ] |> List.forall (fun n -> n >= 32L) && resumedAt < 192L,
                sprintf "started at %A, then %d" (List.ofSeq startedAt) resumedAt)
    Assert.Contains("finished at 192 images", output)
    // Bit-for-bit the same EMA generator and the same losses after the last resume point.
    Assert.Equal<byte[]>(File.ReadAllBytes(whole.File "final.png"), File.ReadAllBytes(killed.File "final.png"))
    let lastRow folder = logRows folder |> List.last
    Assert.Equal((lastRow whole.Path).DLoss, (lastRow killed.Path).DLoss)
    Assert.Equal(192L, (lastRow killed.Path).ImagesShown)

[<Fact>]
let ``a checkpoint being written when the process died is ignored and cleaned up`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 48L) |> ignore
    let newest = List.head (checkpoints run.Path)
    let bytes = File.ReadAllBytes newest
    File.WriteAllBytes(ProGan.Keras.IO.AtomicFile.TemporaryPath(checkpointAt run.Path 56L), bytes[.. bytes.Length / 3]) // a half-written next one
    let position, events = train tiny run.Path true (Some 64L)
    Assert.Contains(events, fun e -> match e with Info text -> text.StartsWith("Resumed from " + Path.GetFileName newest) | _ -> false)
    Assert.Equal(64L, position.ImagesShown)
    Assert.Empty(Directory.GetFiles(run.Path, "*.tmp"))

[<Fact>]
let ``a non-finite loss rolls back to the last good checkpoint and stops, saving nothing non-finite`` () =
    use run = new TempFolder()
    let config = { tiny with TickImages = 16 }
    let poison (trainer: Trainer) =
        if trainer.ImagesShown >= 40L then
            use _ = torch.no_grad()
            (trainer.State.Generator.parameters() |> Seq.head).fill_(scalar Double.NaN) |> ignore
    let e =
        Assert.Throws<TrainingFailedException>(fun () ->
            TrainingRun.run
                { Config = config; Folder = run.Path; Resume = false; StopAfterImages = None
                  Report = ignore; OnStep = poison; Cancel = Threading.CancellationToken.None } |> ignore)
    Assert.Contains("non-finite", e.Message)
    Assert.Contains("Rolled back to checkpoint-000000000032.ckpt (32 images)", e.Message)
    Assert.Contains("--resume", e.Message)
    // Every checkpoint on disk holds finite weights only.
    use data = Procedural.pyramid 64 8 3 1
    for path in checkpoints run.Path do
        use trainer = new Trainer(tiny, data, torch.CPU)
        trainer.Load path |> ignore
        Assert.Equal(None, trainer.NonFiniteWeights())
    Assert.True(logRows run.Path |> List.forall (fun r -> r.ImagesShown <= 32L))

[<Fact>]
let ``with retries allowed, each non-finite loss is retried at half the last learning rate and the run completes`` () =
    use run = new TempFolder()
    let mutable poisoned = 0
    // Twice before the next tick: the second retry rolls back to the same checkpoint and must go lower still.
    let poisonOnce (trainer: Trainer) =
        if trainer.ImagesShown >= 40L && poisoned < 2 then
            poisoned <- poisoned + 1
            use _ = torch.no_grad()
            (trainer.State.Generator.parameters() |> Seq.head).fill_(scalar Double.PositiveInfinity) |> ignore
    let events = Collections.Generic.List<TrainingEvent>()
    let position =
        TrainingRun.run
            { Config = { tiny with NonFiniteRetries = 2; TickImages = 16 }; Folder = run.Path; Resume = false
              StopAfterImages = None; Report = events.Add; OnStep = poisonOnce; Cancel = Threading.CancellationToken.None }
    Assert.True(Schedule.isDone tiny position.ImagesShown)
    Assert.Contains(events, fun e -> match e with Warning text -> text.Contains("retrying with learning rate 0.0015 (retry 1 of 2)") | _ -> false)
    Assert.Contains(events, fun e -> match e with Warning text -> text.Contains("retrying with learning rate 0.00075 (retry 2 of 2)") | _ -> false)

[<Fact>]
let ``a second process on the same run folder is refused, and the lock goes with its holder`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 8L) |> ignore
    let holder = RunLock.acquire (RunFolder run.Path)
    let e = Assert.Throws<RunLockedException>(fun () -> train tiny run.Path true (Some 16L) |> ignore)
    Assert.Contains("in use by another training process", e.Message)
    Assert.Contains(sprintf "pid %d" Environment.ProcessId, e.Message)
    holder.Dispose()
    let position, _ = train tiny run.Path true (Some 16L)
    Assert.Equal(16L, position.ImagesShown)

[<Fact>]
let ``a resume while another process holds the lock is refused before anything heavy is loaded`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 8L) |> ignore
    use holder = RunLock.acquire (RunFolder run.Path)
    let clock = Stopwatch.StartNew()
    // LD_DEBUG=libs: glibc's loader names every library it initialises, so the output shows whether libtorch was
    // loaded (ProGan.Keras's module initializer loads it on the first call into that assembly).
    let p, _, output = startWith [ "LD_DEBUG", "libs" ] [ "--resume"; run.Path ]
    Assert.True(p.WaitForExit 60_000)
    p.WaitForExit()
    let elapsed = clock.Elapsed
    Assert.Equal(3, p.ExitCode)
    Assert.Contains(sprintf "is in use by another training process (pid %d" Environment.ProcessId, string output)
    Assert.DoesNotContain("libtorch", string output)
    // The issue measured 28 s (the refusal came after the native libraries were loaded) and asks for under 2 s.
    // Measured with `dotnet progan.dll` on 2 cores at a load of 20, 10 runs each: 0.12–0.32 s without the native
    // load, 1.2–1.9 s with it.
    Assert.True(elapsed < TimeSpan.FromSeconds 2.0, sprintf "took %O" elapsed)

[<Fact>]
let ``a checkpoint that cannot be written stops the run and leaves the previous one intact`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 32L) |> ignore
    let previous = List.head (checkpoints run.Path)
    let before = File.ReadAllBytes previous
    // The next checkpoint's temporary path is taken by a folder: the write fails as on a full disk.
    Directory.CreateDirectory(ProGan.Keras.IO.AtomicFile.TemporaryPath(checkpointAt run.Path 48L)) |> ignore
    let e = Assert.Throws<CheckpointWriteException>(fun () -> train tiny run.Path true (Some 64L) |> ignore)
    Assert.Contains(Path.GetFileName(checkpointAt run.Path 48L), e.Message)
    Assert.Equal<byte[]>(before, File.ReadAllBytes previous)
    Assert.Equal(previous, List.head (checkpoints run.Path))

[<Fact>]
let ``bad files in the middle of a data set are skipped, never a crash`` () =
    use dir = new TempFolder()
    for i in 0..7 do
        writePng (dir.File(sprintf "good-%d.png" i)) 8 8 3 (solid 8 8 [| byte (i * 30); 0uy; 0uy |])
    writePng (dir.File "tiny-1x1.png") 1 1 3 [| 0uy; 0uy; 255uy |]
    // A PNG whose header claims 8000×8000: refused from the header alone, never decoded. The header's CRC is made
    // right, as a crafted file's would be; with the CRC left wrong ImageSharp refuses the header as damaged.
    let header = File.ReadAllBytes(dir.File "good-0.png")
    let huge = Array.copy header
    let bigEndian (v: int) = [| byte (v >>> 24); byte (v >>> 16); byte (v >>> 8); byte v |]
    Array.blit (bigEndian 8000) 0 huge 16 4
    Array.blit (bigEndian 8000) 0 huge 20 4
    File.WriteAllBytes(dir.File "huge-bad-crc.png", huge)
    Array.blit (bigEndian (int (crc huge[12 .. 28]))) 0 huge 29 4 // IHDR: type and 13 bytes of data, then the CRC
    File.WriteAllBytes(dir.File "huge.png", huge)
    Directory.CreateDirectory(dir.File "folder.png") |> ignore
    Directory.CreateDirectory(dir.File "sub") |> ignore
    File.CreateSymbolicLink(dir.File "sub/loop", dir.Path) |> ignore // a directory cycle
    File.WriteAllBytes(dir.File "zero.jpg", [||])
    let result = ImageFolder.load dir.Path 8 3 false 1 ignore Threading.CancellationToken.None
    Assert.Equal(9, result.Images.Count) // eight good ones and the 1×1, upsampled
    let reasons = result.Skipped |> List.map (fun s -> Path.GetFileName s.Path, s.Reason) |> Map.ofList
    Assert.StartsWith("too large (8000×8000", reasons["huge.png"])
    Assert.StartsWith("truncated or damaged (CRC Error", reasons["huge-bad-crc.png"])
    Assert.Equal("empty file", reasons["zero.jpg"])

/// Sends a signal with the system's `kill`.
let private signal (name: string) (pid: int) =
    use k = Process.Start("kill", [ "-" + name; string pid ])
    k.WaitForExit()

/// Waits (up to a minute) until the run has logged its first row, so that a stop has a row to end on however slowly a
/// loaded machine takes the first steps (a fixed delay after "training from" failed here under a load of 8 on 2 cores).
let private waitForFirstRow (folder: string) =
    let deadline = DateTime.UtcNow.AddSeconds 60.0
    while List.isEmpty (logRows folder) && DateTime.UtcNow < deadline do
        Threading.Thread.Sleep 50

/// The images shown in a "stopped at N images" line, and that N's checkpoint exists in the run folder.
let private stoppedWithCheckpoint (output: string) (folder: string) =
    let m = Text.RegularExpressions.Regex.Match(output, @"stopped at (\d+) images")
    Assert.True(m.Success, sprintf "no 'stopped at' line in:\n%s" output)
    let shown = int64 m.Groups[1].Value
    Assert.True(File.Exists(checkpointAt folder shown), sprintf "no checkpoint at %d images" shown)
    // A signal stops after any step (8 images), rows are logged every 16: the log ends at the stop or one interval
    // before it, never after it.
    let last = (logRows folder |> List.last).ImagesShown
    Assert.True(last <= shown && shown - last < 16L, sprintf "last log row at %d images, stopped at %d" last shown)

/// Whether this process started with SIGINT ignored (`SigIgn` in /proc/self/status, bit 1 for signal 2), as a job
/// started with `&` by a non-interactive shell does: children inherit the disposition, and .NET then never sees it.
let private sigintIgnored () =
    try
        File.ReadLines "/proc/self/status"
        |> Seq.tryFind (fun line -> line.StartsWith "SigIgn:")
        |> Option.exists (fun line -> (Convert.ToUInt64(line.Substring(7).Trim(), 16) &&& 2UL) <> 0UL)
    with _ -> false

[<SkippableFact>]
let ``SIGTERM and SIGINT finish the step, write a checkpoint and exit with 128 + the signal`` () =
    for name, code in [ "TERM", 143; "INT", 130 ] do
        Skip.If(name = "INT" && sigintIgnored (),
                "SIGTERM passed; SIGINT is ignored in this test process (a job started with & by a non-interactive shell), so progan inherits that and cannot see it: run the suite in the foreground")
        use run = new TempFolder()
        let p, started, output = start ([ "--out"; run.Path ] @ tinyFlags @ [ "--stabilise-images"; "100000" ])
        Assert.True(started.Wait 60_000, "progan did not start")
        waitForFirstRow run.Path
        signal name p.Id
        Assert.True(p.WaitForExit 60_000, sprintf "SIG%s did not stop progan" name)
        p.WaitForExit()
        Assert.Equal(code, p.ExitCode)
        stoppedWithCheckpoint (string output) run.Path

/// Starts `progan` with the arguments and waits (up to two minutes) until a line of its output contains `ready`.
let private startUntil (args: string list) (ready: string) =
    let p, _, output = start args
    let deadline = DateTime.UtcNow.AddMinutes 2.0
    while not ((lock output (fun () -> string output)).Contains ready) && not p.HasExited && DateTime.UtcNow < deadline do
        Threading.Thread.Sleep 100
    Assert.True((string output).Contains ready, sprintf "progan %A never printed '%s':\n%O" args ready output)
    p, output

[<Fact>]
let ``SIGTERM stops prepare within seconds, leaving neither the data set nor its temporary folder`` () =
    use root = new TempFolder()
    let dataset = root.File "big"
    // Enough images that it is still preparing when the signal comes (the issue's case: 40 s in, still running 15 s
    // after SIGTERM); progress lines show from the start.
    let p, output = startUntil [ "prepare"; "--procedural"; "2000000"; "--resolution"; "32"; "--out"; dataset ] "preparing images"
    signal "TERM" p.Id
    Assert.True(p.WaitForExit 20_000, sprintf "prepare was still running 20 s after SIGTERM:\n%O" output)
    p.WaitForExit()
    Assert.Equal(143, p.ExitCode)
    Assert.Contains(sprintf "stopped by SIGTERM: nothing was written under '%s'" dataset, string output)
    Assert.Contains("/s, ", string output) // the progress line's rate and time left
    Assert.Empty(Directory.GetFileSystemEntries root.Path)

[<Fact>]
let ``SIGTERM stops generate --count between batches, keeping the images written and saying how many`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 16L) |> ignore
    let out = run.File "many"
    let p, output = startUntil [ "generate"; "--run"; run.Path; "--count"; "2000000"; "--out"; out ] "generating images"
    Assert.Contains("--count 2000000: writing 2000000 PNG files into", string output)
    signal "TERM" p.Id
    Assert.True(p.WaitForExit 30_000, sprintf "generate was still running 30 s after SIGTERM:\n%O" output)
    p.WaitForExit()
    Assert.Equal(143, p.ExitCode)
    let m = Text.RegularExpressions.Regex.Match(string output, @"stopped by SIGTERM after (\d+) of 2000000 images; the \d+ written are kept in ")
    Assert.True(m.Success, string output)
    let written = Directory.GetFiles(out, "sample-seed7-*.png").Length
    Assert.Equal(int m.Groups[1].Value, written)
    Assert.True(written > 0 && written < 2_000_000)
    Assert.Empty(Directory.GetFiles(out, "*.tmp"))

[<Fact>]
let ``SIGTERM stops evaluate within seconds, writes nothing and says how far it got`` () =
    use run = new TempFolder()
    // 4096 real images and 2048 per set on the CPU: seconds of work per checkpoint, so the signal comes mid-way.
    train { tiny with ProceduralImages = 4096 } run.Path false None |> ignore
    let folder = RunFolder run.Path
    let checkpointCount = (checkpoints run.Path).Length
    // Results of an earlier evaluation, which an interrupted one must not replace.
    File.WriteAllText(folder.Swd, "earlier")
    File.WriteAllText(folder.Metrics, "earlier")
    let evaluate = [ "evaluate"; "--run"; run.Path; "--images"; "2048"; "--device"; "cpu" ]
    // One checkpoint: signalled once its real images are being rendered (the first line the command prints).
    // Every checkpoint: signalled once the table's header is out, while the first checkpoint is evaluated.
    for extra, ready, expected in
        [ [], "Rendering 4096 procedural images", @"stopped by SIGTERM before the evaluation of checkpoint-\d{12}\.ckpt was finished; swd\.json is left as it was\."
          [ "--all-checkpoints" ], "SWD ×10³", sprintf @"stopped by SIGTERM after (\d+) of %d checkpoints; metrics\.csv, metrics\.png and report\.html are left as they were" checkpointCount ] do
        let p, output = startUntil (evaluate @ extra) ready
        signal "TERM" p.Id
        Assert.True(p.WaitForExit 60_000, sprintf "evaluate was still running 60 s after SIGTERM:\n%O" output)
        p.WaitForExit()
        Assert.Equal(143, p.ExitCode)
        let m = Text.RegularExpressions.Regex.Match(string output, expected)
        Assert.True(m.Success, sprintf "no '%s' in:\n%O" expected output)
        if m.Groups.Count > 1 then Assert.True(int m.Groups[1].Value < checkpointCount, string output)
        Assert.Equal("earlier", File.ReadAllText folder.Swd)
        Assert.Equal("earlier", File.ReadAllText folder.Metrics)
        Assert.False(File.Exists folder.MetricsChart)
        Assert.Empty(Directory.GetFiles(run.Path, "*.tmp"))

/// Whether `strace` can run a traced child here with the options the export test gives it (installed, ptrace allowed).
let private straceWorks () =
    try
        use p = Process.Start(ProcessStartInfo("strace", [ "-f"; "-qq"; "--seccomp-bpf"; "-e"; "trace=fsync"; "-e"; "inject=fsync:delay_enter=1"; "-o"; "/dev/null"; "true" ],
                                               RedirectStandardError = true, UseShellExecute = false))
        p.WaitForExit 10_000 && p.ExitCode = 0
    with _ -> false

[<SkippableFact>]
let ``SIGTERM in the middle of an export's write leaves the complete model and no temporary file`` () =
    Skip.IfNot(straceWorks (), "needs strace, allowed to trace a child, to hold the export inside its write")
    use run = new TempFolder()
    train tiny run.Path false (Some 16L) |> ignore
    let out = run.File "model.onnx"
    let temporary = ProGan.Keras.IO.AtomicFile.TemporaryPath out
    // strace delays the write's fsync by 10 s: the temporary file exists and is not renamed yet when the signal comes.
    let info = ProcessStartInfo("strace", [ "-f"; "-qq"; "--seccomp-bpf"; "-e"; "trace=fsync"; "-e"; "inject=fsync:delay_enter=10000000"; "-o"; "/dev/null"
                                            "dotnet"; progan; "export"; "--run"; run.Path; "--out"; out ],
                                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    use tracer = Process.Start info
    let output = Text.StringBuilder()
    tracer.OutputDataReceived.Add(fun e -> if not (isNull e.Data) then lock output (fun () -> output.AppendLine e.Data |> ignore))
    tracer.ErrorDataReceived.Add(fun e -> if not (isNull e.Data) then lock output (fun () -> output.AppendLine e.Data |> ignore))
    tracer.BeginOutputReadLine()
    tracer.BeginErrorReadLine()
    let deadline = DateTime.UtcNow.AddMinutes 2.0
    while not (File.Exists temporary) && not tracer.HasExited && DateTime.UtcNow < deadline do
        Threading.Thread.Sleep 20
    Assert.True(File.Exists temporary, sprintf "the export never began its write:\n%O" output)
    // The traced export is strace's only child.
    let child = File.ReadAllText(sprintf "/proc/%d/task/%d/children" tracer.Id tracer.Id).Split(' ', StringSplitOptions.RemoveEmptyEntries) |> Array.exactlyOne |> int
    signal "TERM" child
    Assert.True(tracer.WaitForExit 60_000, sprintf "export was still running 60 s after SIGTERM:\n%O" output)
    tracer.WaitForExit()
    Assert.False(File.Exists temporary, sprintf "the temporary file was left behind:\n%O" output)
    Assert.Contains(sprintf "stopped by SIGTERM while %s was being written; the write was finished first, so it is complete." out, string output)
    Assert.True(ProGan.Keras.Serving.Onnx.OnnxExport.IsExport out, "no complete model")
    Assert.Equal(143, tracer.ExitCode) // strace exits as its child did

[<Fact>]
let ``a run whose parent process is killed stops with a checkpoint instead of training on as an orphan`` () =
    use run = new TempFolder()
    let log = Path.Combine(Path.GetTempPath(), Path.GetFileName run.Path + ".log") // outside the run folder, which must stay empty
    let args = String.Join(" ", [ progan; "--out"; run.Path ] @ tinyFlags @ [ "--stabilise-images"; "100000" ])
    // `; true` keeps the shell alive as the parent (a shell would otherwise exec its last command).
    use shell = Process.Start("sh", [ "-c"; sprintf "dotnet %s > %s 2>&1; true" args log ])
    let children () =
        try File.ReadAllText(sprintf "/proc/%d/task/%d/children" shell.Id shell.Id).Split(' ', StringSplitOptions.RemoveEmptyEntries) |> Array.map int
        with _ -> [||]
    let deadline = DateTime.UtcNow.AddSeconds 60.0
    while (not (File.Exists log) || not ((File.ReadAllText log).Contains "training from")) && DateTime.UtcNow < deadline do
        Threading.Thread.Sleep 100
    waitForFirstRow run.Path
    let child = children () |> Array.exactlyOne
    shell.Kill() // SIGKILL to the parent alone
    let alive () = Directory.Exists(sprintf "/proc/%d" child) && not ((try File.ReadAllText(sprintf "/proc/%d/stat" child) with _ -> "").Contains ") Z ")
    let deadline = DateTime.UtcNow.AddSeconds 60.0
    while alive () && DateTime.UtcNow < deadline do
        Threading.Thread.Sleep 100
    Assert.False(alive (), "the orphan kept training")
    stoppedWithCheckpoint (File.ReadAllText log) run.Path
    File.Delete log

[<Fact>]
let ``an unwritable cache folder moves TorchSharp's patched library elsewhere instead of failing`` () =
    let info = ProcessStartInfo("dotnet", [ progan; "--help" ], RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    info.Environment["XDG_CACHE_HOME"] <- "/etc/hostname/cache" // below a file: not creatable, even by root
    info.Environment["HOME"] <- "/etc/hostname"
    info.Environment.Remove "PROGAN_KERAS_NATIVE_CACHE" |> ignore
    use p = Process.Start info
    let err = p.StandardError.ReadToEndAsync()
    let out = p.StandardOutput.ReadToEnd()
    p.WaitForExit()
    Assert.True(p.ExitCode = 0, sprintf "exit %d:\n%s\n%s" p.ExitCode out err.Result)
    Assert.Contains("--resume", out)

[<Fact>]
let ``special files are never opened: a FIFO named as a checkpoint, a link to /dev/zero named as an image`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 16L) |> ignore
    use fifo = Process.Start("mkfifo", [ checkpointAt run.Path 999_999L ])
    fifo.WaitForExit()
    let position, _ = train tiny run.Path true (Some 24L) // would block forever opening the FIFO
    Assert.Equal(24L, position.ImagesShown)
    use data = new TempFolder()
    for i in 0..3 do
        writePng (data.File(sprintf "%d.png" i)) 8 8 3 (solid 8 8 [| byte (i * 50); 0uy; 0uy |])
    File.CreateSymbolicLink(data.File "zero.png", "/dev/zero") |> ignore
    let clock = Stopwatch.StartNew()
    let result = ImageFolder.load data.Path 8 3 false 1 ignore Threading.CancellationToken.None
    Assert.True(clock.Elapsed < TimeSpan.FromSeconds 10.0, "the link to /dev/zero was read")
    Assert.Equal(4, result.Images.Count)
    Assert.Equal("a character device, not a regular file", (result.Skipped |> List.exactlyOne).Reason)

[<Fact>]
let ``generation holds one batch at a time: any count of samples and frames, a grid of at most 256`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 16L) |> ignore
    use loaded = Generation.load run.Path None
    let out = run.File "many"
    let grid, count = Generation.writeSamples loaded out 300 7
    Assert.Equal(300, count)
    Assert.Equal(300, Directory.GetFiles(out, "sample-seed7-*.png").Length)
    let width (png: string) = (SixLabors.ImageSharp.Image.Identify png).Width
    Assert.Equal(16 * 65 + 1, width grid) // 256 images: 16 columns of 64-pixel cells and 1-pixel gaps
    let strip, frames = Generation.writeInterpolation loaded out 1 2 100
    Assert.Equal(100, frames)
    Assert.Equal(100, Directory.GetFiles(out, "interpolation-1-2-frame*.png").Length)
    Assert.Equal(Generation.maxStripFrames * 65 + 1, width strip)

[<Fact>]
let ``a sample grid that cannot be written stops the run with one line that says what is kept and how to go on`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 16L) |> ignore
    // The next tick's grid path is taken by a folder: the write fails as on a full disk.
    Directory.CreateDirectory(ProGan.Keras.IO.AtomicFile.TemporaryPath(RunFolder(run.Path).TickGrid 48L)) |> ignore
    let e = Assert.Throws<TrainingFailedException>(fun () -> train tiny run.Path true (Some 64L) |> ignore)
    Assert.Contains("Could not write", e.Message)
    Assert.Contains("fakes-000000048.png", e.Message)
    Assert.Contains("Training stopped; the newest checkpoint, checkpoint-000000000016.ckpt, is intact", e.Message)
    Assert.Contains("--resume " + run.Path, e.Message)
    Assert.DoesNotContain("\n", e.Message)

/// The error libtorch raised when a Scalar was freed under it (issue: random native faults), raised by a test's hook.
let private nativeFault () =
    raise (Runtime.InteropServices.ExternalException("Expected false to be true, but got false.\nException raised from toFloat at /pytorch/c10/core/Scalar.h:140"))

let private runWithHook (folder: string) (resume: bool) (onStep: Trainer -> unit) = trainWith onStep tiny folder resume None

[<Fact>]
let ``A native fault in a step rolls back to the newest checkpoint, retries once from there and finishes`` () =
    use folder = new TempFolder()
    let mutable faulted = false
    let _, events = runWithHook folder.Path false (fun t -> if not faulted && t.ImagesShown >= 100L then (faulted <- true; nativeFault ()))
    let warning = events |> List.pick (function Warning w when w.Contains "native error" -> Some w | _ -> None)
    Assert.Contains("rolled back to checkpoint-", warning)
    Assert.Contains("Expected false to be true", warning)
    Assert.DoesNotContain("\n", warning)
    Assert.True(File.Exists(RunFolder(folder.Path).Final), "the run did not finish")
    let shown = logRows folder.Path |> List.map (fun r -> r.ImagesShown)
    Assert.Equal<int64 list>(List.sort shown |> List.distinct, shown) // rows after the checkpoint were dropped, not repeated

[<Fact>]
let ``A native fault that repeats from the same checkpoint stops in one line with the resume command, and the run resumes`` () =
    use folder = new TempFolder()
    let e = Assert.Throws<TrainingFailedException>(fun () -> runWithHook folder.Path false (fun t -> if t.ImagesShown >= 100L then nativeFault ()) |> ignore)
    let message = e.Data0
    Assert.Contains("native error (Expected false to be true, but got false.)", message)
    Assert.Contains(sprintf "--resume %s" folder.Path, message)
    Assert.DoesNotContain("\n", message)
    let kept = checkpoints folder.Path |> List.head
    Assert.Contains(Path.GetFileName kept, message)
    let position, _ = runWithHook folder.Path true ignore
    Assert.True(File.Exists(RunFolder(folder.Path).Final), sprintf "the resumed run did not finish (at %d)" position.ImagesShown)

/// Processes started at once on a fresh install (`mpirun -np N`) all find TorchSharp's native library unpatched: the
/// first writes the patched copy into the cache, and the others, finding its temporary file held, wait for it rather
/// than fail (as rank 0 of a CI run once did). Played deterministically: this test holds the temporary file itself.
[<Fact>]
let ``a process that finds the native library's patched copy being written by another waits for it and trains`` () =
    use folder = new TempFolder()
    let cache name = Path.Combine(folder.Path, name)
    let run (cacheRoot: string) (out: string) = startWith [ "PROGAN_KERAS_NATIVE_CACHE", cacheRoot ] ([ "--out"; out; "--stop-after"; "8" ] @ tinyFlags)
    // A first process on an empty cache writes the copy where every process of this build looks for it.
    let first, _, firstOutput = run (cache "a") (Path.Combine(folder.Path, "run-a"))
    Assert.True(first.WaitForExit 120_000 && (first.WaitForExit(); first.ExitCode = 0), sprintf "the first process failed:\n%O" firstOutput)
    let written = Directory.GetDirectories(Path.Combine(cache "a", "native")) |> Array.exactlyOne
    let library = Path.Combine(written, "libLibTorchSharp.so")
    Assert.True(File.Exists library, sprintf "no patched copy in %s" written)
    // A second cache in which another writer holds the temporary file: the process must wait, then use its copy.
    let waiting = Path.Combine(cache "b", "native", Path.GetFileName written)
    Directory.CreateDirectory waiting |> ignore
    let target = Path.Combine(waiting, "libLibTorchSharp.so")
    let held = new FileStream(ProGan.Keras.IO.AtomicFile.TemporaryPath target, FileMode.Create, FileAccess.Write, FileShare.None)
    let second, _, secondOutput = run (cache "b") (Path.Combine(folder.Path, "run-b"))
    try
        Threading.Thread.Sleep 4000
        Assert.False(second.HasExited, sprintf "the process did not wait for the other writer:\n%O" secondOutput)
        File.Copy(library, target + ".other")
        File.Move(target + ".other", target) // the other writer's rename
    finally
        held.Dispose()
    Assert.True(second.WaitForExit 120_000, "the waiting process did not finish")
    second.WaitForExit()
    Assert.True((second.ExitCode = 0), sprintf "exit %d:\n%O" second.ExitCode secondOutput)
    Assert.Contains("training from 0 of", string secondOutput)
