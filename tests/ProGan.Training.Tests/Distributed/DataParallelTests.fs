module ProGan.Training.Tests.Distributed.DataParallelTests

open System
open System.Diagnostics
open System.IO
open TorchSharp
open Xunit
open ProGan.Training.Distributed
open ProGan.Training.Progress
open ProGan.Training.Runs
open ProGan.Training.Tests.Fixtures

let private world rank size = { Rank = rank; Size = size }

[<Fact>]
let ``the slices of P processes deal out whole minibatch-stddev groups: each process's own [G, M/P] groups are groups of the whole`` () =
    let groupSize, total = 4, 24 // M = 6 groups of 4
    // The layer's groups over a batch of n: sample i is in group i mod (n / G).
    let groupsOf (samples: int64[]) =
        let m = samples.Length / groupSize
        samples |> Array.mapi (fun i s -> i % m, s) |> Array.groupBy fst |> Array.map (snd >> Array.map snd >> Set.ofArray) |> Set.ofArray
    let whole = groupsOf (Array.init total int64)
    for size in [ 1; 2; 3; 6 ] do
        let slices = [ for rank in 0 .. size - 1 -> World.slice (world rank size) groupSize total ]
        // Disjoint and complete: every sample trained on by exactly one process.
        Assert.Equal<int64>(Array.init total int64, slices |> Seq.collect (fun s -> s.Indices) |> Seq.sort |> Array.ofSeq)
        let local = slices |> List.map (fun s -> groupsOf s.Indices) |> Set.unionMany
        Assert.Equal<Set<Set<int64>>>(whole, local)

[<Fact>]
let ``a minibatch that does not split into whole groups is refused with the sizes that would`` () =
    let e = Assert.Throws<ArgumentException>(fun () -> World.slice (world 0 4) 4 8 |> ignore)
    Assert.Contains("A minibatch of 8 images does not split over 4 processes into whole minibatch-stddev groups of 4; use a minibatch that is a multiple of 16", e.Message)

[<Fact>]
let ``the world size comes from the launcher's environment: mpirun, PMI, or Slurm's PMIx`` () =
    let envOf (pairs: (string * string) list) = fun name -> pairs |> List.tryFind (fst >> (=) name) |> Option.map snd |> Option.toObj
    Assert.Equal(Some 4, World.launchedSize (envOf [ "OMPI_COMM_WORLD_SIZE", "4" ]))
    Assert.Equal(Some 2, World.launchedSize (envOf [ "PMI_SIZE", "2" ]))
    Assert.Equal(Some 8, World.launchedSize (envOf [ "PMIX_RANK", "3"; "SLURM_NTASKS", "8" ]))
    Assert.Equal(None, World.launchedSize (envOf [ "SLURM_NTASKS", "8" ])) // an sbatch script's own shell, not a rank
    Assert.Equal(None, World.launchedSize (envOf [ "OMPI_COMM_WORLD_SIZE", "1" ]))
    Assert.Equal(None, World.launchedSize (envOf []))

[<Fact>]
let ``gradients are averaged through one fused buffer: each becomes the mean over processes, the extra figures come back summed`` () =
    use layer = torch.nn.Linear(3L, 2L)
    for p in layer.parameters() do p.grad <- torch.ones(p.shape) * 2.0f
    let mutable calls = 0
    // Another process whose gradients are all 4 and whose figures are 10, 20: the all-reduce adds them.
    let allReduce (buffer: torch.Tensor) =
        calls <- calls + 1
        Assert.Equal<int64>([| 6L + 2L + 2L |], buffer.shape) // weight 2×3, bias 2, two figures: one buffer
        use other = torch.cat([| torch.ones(8L) * 4.0f; torch.tensor([| 10.0f; 20.0f |]) |], 0L)
        buffer.add_(other) |> ignore
    let sums = GradientAverage(world 0 2, allReduce).Average(layer.parameters(), [| 1.0f; 2.0f |])
    Assert.Equal(1, calls)
    Assert.Equal<float32>([| 11.0f; 22.0f |], sums)
    for p in layer.parameters() do Assert.All(p.grad.data<float32>().ToArray(), fun g -> Assert.Equal(3.0f, g))

/// Trains the tiny configuration for `steps` steps in the processes of `mpirun`, and on rank 0 also in one process,
/// printing how far the processes' weights are from each other and from the single process's.
let private equivalenceScript (bin: string) (steps: int) =
    let r name = sprintf "#r \"%s\"" (Path.Combine(bin, name))
    String.Join("\n",
        [ r "TorchSharp.dll"; r "ProGan.Keras.dll"; r "ProGan.Keras.Serving.dll"; r "ProGan.Training.dll"
          "open TorchSharp"
          "open ProGan.Training.Config"
          "open ProGan.Training.Data"
          "open ProGan.Training.Distributed"
          "open ProGan.Training.Loop"
          "ProGan.Keras.Backend.TorchBackend.Initialize() |> ignore"
          "let world = Mpi.init ()"
          "let plain ="
          "    { TrainingConfig.cpu 8 with"
          "        Architecture = (TrainingConfig.cpu 8).Architecture.With(latentSize = 8, fmapBase = 32, fmapMax = 8)"
          "        Loss = WganGp; R1Weight = 0.0; PenaltyInterval = 1; StabiliseImages = 64; StabiliseImagesAt = [||]; FadeImages = 64"
          "        Minibatch = [| 8 |]; LearningRate = 0.003; EmaBeta = 0.99; EmaRampup = 0.0; ProceduralImages = 64; Threads = 1 }"
          "let flatten (m: torch.nn.Module) = torch.cat([| for p in m.parameters() -> p.detach().flatten() |], 0L)"
          "let data = Procedural.pyramid 64 8 3 1"
          "let nets (t: Trainer) = [ \"G\", t.State.Generator :> torch.nn.Module; \"D\", t.State.Discriminator :> torch.nn.Module; \"EMA\", t.State.Ema :> torch.nn.Module ]"
          "for name, config in [ \"plain\", plain; \"augmented\", { plain with Augment = Augmentation.all } ] do"
          "    let parallel' = new Trainer(config, data, torch.CPU, world)"
          sprintf "    for _ in 1 .. %d do parallel'.Step() |> ignore" steps
          "    for net, m in nets parallel' do"
          "        let mine = flatten m"
          "        let sums = mine.data<float32>().ToArray()"
          "        Mpi.allReduceSum sums sums.Length"
          "        let spread = [| (mine - torch.tensor(sums) / float32 world.Size).abs().max().item<float32>() |]"
          "        Mpi.allReduceSum spread 1 // every rank's, summed: rank 0 alone prints (the ranks' lines would interleave)"
          "        if world.IsRoot then printfn \"spread %s-%s %g\" name net spread[0]"
          "    if world.IsRoot then"
          "        let single = new Trainer(config, data, torch.CPU)"
          sprintf "        for _ in 1 .. %d do single.Step() |> ignore" steps
          "        for (net, a), (_, b) in List.zip (nets parallel') (nets single) do"
          "            let x, y = flatten a, flatten b"
          "            printfn \"difference %s-%s %g %g\" name net ((x - y).abs().max().item<float32>()) (y.abs().max().item<float32>())"
          "Mpi.finalize ()" ])

/// `mpirun` on the PATH, or None.
let private mpirun () =
    (Environment.GetEnvironmentVariable "PATH" |> Option.ofObj |> Option.defaultValue "").Split(Path.PathSeparator)
    |> Array.map (fun folder -> Path.Combine(folder, "mpirun"))
    |> Array.tryFind File.Exists

[<SkippableFact>]
let ``two processes under mpirun train as one process on the whole minibatch, with and without DiffAugment: equal weights on every rank, and within float rounding of one process`` () =
    Skip.If((mpirun ()).IsNone, "mpirun is not on the PATH (apt-get install openmpi-bin); data-parallel training is not exercised")
    use folder = new TempFolder()
    let script = Path.Combine(folder.Path, "equivalence.fsx")
    // 12 steps of 8 images: the whole 4² stabilise phase and into 8²'s fade-in, a gradient penalty in every step.
    File.WriteAllText(script, equivalenceScript (Path.TrimEndingDirectorySeparator AppContext.BaseDirectory) 12)
    let info = ProcessStartInfo((mpirun ()).Value, [ "-np"; "2"; "--oversubscribe"; "dotnet"; "fsi"; "--nologo"; script ],
                                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    // Open MPI refuses to run as root unless told; CI containers run as root.
    info.Environment["OMPI_ALLOW_RUN_AS_ROOT"] <- "1"
    info.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] <- "1"
    info.Environment["OMP_NUM_THREADS"] <- "1"
    use p = Process.Start info
    let errors = p.StandardError.ReadToEndAsync()
    let output = p.StandardOutput.ReadToEnd()
    Assert.True(p.WaitForExit 300_000, "mpirun did not finish in 5 minutes")
    Assert.True((p.ExitCode = 0), sprintf "mpirun exited with %d:\n%s\n%s" p.ExitCode output errors.Result)
    // fsi may put terminal escapes before a line: the figures are picked out wherever they are.
    let figures (kind: string) =
        Text.RegularExpressions.Regex.Matches(output, kind + @" ((?:plain|augmented)-(?:G|D|EMA))((?: [-+.0-9e]+)+)")
        |> Seq.map (fun m -> Array.append [| kind; m.Groups[1].Value |] (m.Groups[2].Value.Trim().Split(' ')))
        |> Array.ofSeq
    let spreads = figures "spread"
    Assert.Equal(6, spreads.Length) // G, D and EMA, over both ranks, without and with DiffAugment
    // The all-reduce gives every rank the same sums, so every rank takes exactly the same step.
    Assert.All(spreads, fun l -> Assert.Equal(0.0, float l[2]))
    let differences = figures "difference"
    Assert.Equal(6, differences.Length)
    // Against one process on the same minibatch: only the order of float32 sums differs (two means of 4 averaged, not
    // one mean of 8), 1 ulp per gradient, which Adam's division by √v can grow to ~1e-6 of the weights over 12 steps.
    for l in differences do
        let difference, largest = float l[2], float l[3]
        Assert.True(difference <= 1e-5 * largest, sprintf "%s differs from one process's by %g (weights up to %g)" l[1] difference largest)

/// The `progan` executable built beside the tests.
let private progan =
    let testBin = Path.TrimEndingDirectorySeparator AppContext.BaseDirectory
    let configuration = DirectoryInfo(testBin).Parent.Name
    let rec root (d: DirectoryInfo) = if File.Exists(Path.Combine(d.FullName, "ProGan.Keras.sln")) then d.FullName else root d.Parent
    Path.Combine(root (DirectoryInfo testBin), "src", "ProGan.Cli", "bin", configuration, "net10.0", "progan.dll")

/// Starts `mpirun ARGUMENTS`, collecting its output (both streams, as lines arrive); `temp` is its TMPDIR.
let private startMpirun (temp: string) (arguments: string list) =
    let info = ProcessStartInfo((mpirun ()).Value, arguments,
                                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    Directory.CreateDirectory temp |> ignore
    info.Environment["TMPDIR"] <- temp
    info.Environment["OMPI_ALLOW_RUN_AS_ROOT"] <- "1"
    info.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] <- "1"
    info.Environment["OMP_NUM_THREADS"] <- "1"
    let p = Process.Start info
    let output = Text.StringBuilder()
    let add (line: string) = if not (isNull line) then lock output (fun () -> output.AppendLine line |> ignore)
    p.OutputDataReceived.Add(fun e -> add e.Data)
    p.ErrorDataReceived.Add(fun e -> add e.Data)
    p.BeginOutputReadLine()
    p.BeginErrorReadLine()
    p, (fun () -> lock output (fun () -> output.ToString()))

/// Disposes of `p`, first ending it and its processes where it still runs (a failed test leaves no job behind).
let private ending (p: Process) =
    { new IDisposable with
        member _.Dispose() =
            try if not p.HasExited then p.Kill true with _ -> ()
            p.Dispose() }

/// Starts `mpirun -np 2 dotnet progan ARGS`, collecting its output; the processes' temporary files go to `temp`.
let private startTwo (temp: string) (args: string list) =
    startMpirun temp ([ "-np"; "2"; "--oversubscribe"; "-x"; "TMPDIR"; "dotnet"; progan ] @ args)

/// The process of `folder`'s run with `rank` under mpirun (from its environment), or None.
let private rankProcess (folder: string) (rank: int) =
    Directory.GetDirectories "/proc"
    |> Array.choose (fun d -> match Int32.TryParse(Path.GetFileName d) with | true, pid -> Some pid | _ -> None)
    |> Array.tryFind (fun pid ->
        try
            File.ReadAllText(sprintf "/proc/%d/cmdline" pid).Contains folder
            && File.ReadAllText(sprintf "/proc/%d/environ" pid).Split('\000') |> Array.contains (sprintf "OMPI_COMM_WORLD_RANK=%d" rank)
        with _ -> false)

/// `run` resumed by two processes from its checkpoint at `from` to a stop at `target`: they exit 0, say where they
/// resumed, and log the target; returns their output.
let private resumeTwo (temp: string) (run: string) (from: int64) (target: int64) =
    let resumed, output = startTwo temp [ "--resume"; run; "--stop-after"; string target ]
    use _ = ending resumed
    Assert.True(resumed.WaitForExit 240_000, sprintf "the resumed run did not stop:\n%s" (output ()))
    resumed.WaitForExit()
    Assert.True((resumed.ExitCode = 0), sprintf "exit %d:\n%s" resumed.ExitCode (output ()))
    Assert.Contains(sprintf "Resumed from checkpoint-%012d.ckpt at %d images" from from, output ())
    Assert.Equal(target, (List.last (logRows run)).ImagesShown)
    output ()

[<SkippableFact>]
let ``train under mpirun: rank 0 alone writes, SIGTERM to the other rank stops both after one step with a checkpoint, two ranks resume it, and so does one`` () =
    Skip.If((mpirun ()).IsNone, "mpirun is not on the PATH (apt-get install openmpi-bin); data-parallel training is not exercised")
    use folder = new TempFolder()
    let run = Path.Combine(folder.Path, "run")
    let temp = Path.Combine(folder.Path, "tmp")
    let p, output = startTwo temp [ "--resolution"; "8"; "--stabilise-images"; "100000"; "--log-images"; "32"; "--out"; run ]
    use _ = ending p
    // Wait for a few log rows, then stop rank 1 alone.
    let deadline = DateTime.UtcNow.AddMinutes 4.0
    while File.Exists(Path.Combine(run, "log.csv")) |> not || File.ReadAllLines(Path.Combine(run, "log.csv")).Length < 3 do
        Assert.True(DateTime.UtcNow < deadline && not p.HasExited, sprintf "no log rows:\n%s" (output ()))
        Threading.Thread.Sleep 200
    let rank1 = rankProcess run 1
    Assert.True(rank1.IsSome, "rank 1's process was not found")
    (use kill = Process.Start("kill", [ "-TERM"; string rank1.Value ]) in kill.WaitForExit())
    Assert.True(p.WaitForExit 240_000, sprintf "the ranks did not stop:\n%s" (output ()))
    p.WaitForExit() // the output is read to its end
    let text = output ()
    // Both stopped after the same step: rank 0 logged it, wrote its checkpoint, and said so; rank 1 exited 143.
    let rows = logRows run
    let last = (List.last rows).ImagesShown
    Assert.Equal<string list>([ Path.Combine(run, sprintf "checkpoint-%012d.ckpt" last) ], checkpoints run |> List.take 1)
    Assert.Contains(sprintf "stopped at %d images" last, text)
    Assert.Contains("Exit code:    143", text) // mpirun names rank 1's exit by SIGTERM
    // Rank 0 alone wrote and spoke: one header, one run folder, no state files left behind.
    Assert.Equal(1, Text.RegularExpressions.Regex.Matches(text, "2 processes \\(MPI\\)").Count)
    Assert.Empty(Directory.GetFiles(temp, "progan-state-*"))
    // Two ranks resume it where it stopped, rank 0's checkpoint shared with rank 1, and go on to a stop of their own.
    let target = last + 64L
    let resumedOutput = resumeTwo temp run last target
    Assert.Equal(Path.Combine(run, sprintf "checkpoint-%012d.ckpt" target), List.head (checkpoints run))
    Assert.DoesNotContain("continues in", resumedOutput)
    Assert.Equal(2, (RunFolder.readManifest (RunFolder run)).Processes)
    // One process resumes it too, told that the steps stay the same up to rounding.
    let position, events = train (RunFolder.readConfig (RunFolder run)) run true (Some(target + 16L))
    Assert.Equal(target + 16L, position.ImagesShown)
    Assert.Contains(events, fun e ->
        match e with
        | Warning text -> text.StartsWith "The run trained in 2 processes and continues in 1: the minibatch of every step is kept"
        | _ -> false)
    Assert.Equal(1, (RunFolder.readManifest (RunFolder run)).Processes)

[<SkippableFact>]
let ``two ranks stopped and resumed end exactly where two uninterrupted ranks end`` () =
    Skip.If((mpirun ()).IsNone, "mpirun is not on the PATH (apt-get install openmpi-bin); data-parallel training is not exercised")
    use folder = new TempFolder()
    let temp = Path.Combine(folder.Path, "tmp")
    let complete (p: Process, output: unit -> string) =
        use _ = ending p
        Assert.True(p.WaitForExit 240_000, sprintf "mpirun did not finish:\n%s" (output ()))
        p.WaitForExit()
        Assert.True((p.ExitCode = 0), sprintf "exit %d:\n%s" p.ExitCode (output ()))
    // 4² stabilise, 8² fade-in and stabilise: 192 images, 24 steps; the interrupted run stops in the fade-in.
    let run (name: string) (extra: string list) =
        let out = Path.Combine(folder.Path, name)
        complete (startTwo temp ([ "--resolution"; "8"; "--stabilise-images"; "64"; "--fade-images"; "64"; "--no-tensorboard"; "--out"; out ] @ extra))
        out
    let whole = run "whole" []
    let interrupted = run "interrupted" [ "--stop-after"; "96" ]
    Assert.Equal(96L, (List.last (logRows interrupted)).ImagesShown)
    complete (startTwo temp [ "--resume"; interrupted ])
    assertSameState whole interrupted

[<SkippableFact>]
let ``a rank killed outright ends the job within seconds, mpirun naming the rank`` () =
    Skip.If((mpirun ()).IsNone, "mpirun is not on the PATH (apt-get install openmpi-bin); data-parallel training is not exercised")
    use folder = new TempFolder()
    let run = Path.Combine(folder.Path, "run")
    let temp = Path.Combine(folder.Path, "tmp")
    let temp = Path.Combine(folder.Path, "tmp") // a state file a killed rank leaves stays here
    let p, output = startTwo temp [ "--resolution"; "8"; "--stabilise-images"; "100000"; "--log-images"; "32"; "--out"; run ]
    use _ = ending p
    let deadline = DateTime.UtcNow.AddMinutes 4.0
    while not (output().Contains "training from") do
        Assert.True(DateTime.UtcNow < deadline && not p.HasExited, sprintf "training did not start:\n%s" (output ()))
        Threading.Thread.Sleep 200
    let rank1 = rankProcess run 1
    Assert.True(rank1.IsSome, "rank 1's process was not found")
    Process.GetProcessById(rank1.Value).Kill() // SIGKILL: no handler runs
    let killed = Stopwatch.StartNew()
    Assert.True(p.WaitForExit 60_000, sprintf "rank 0 went on after rank 1 was killed:\n%s" (output ()))
    p.WaitForExit()
    Assert.True(killed.Elapsed.TotalSeconds < 30.0, sprintf "the job took %.0f s to end" killed.Elapsed.TotalSeconds)
    Assert.Contains("process rank 1", output ())
    Assert.Contains("signal 9", output ())
    Assert.NotEqual(0, p.ExitCode)

/// Whether process `pid` has ended: gone, or a zombie that its parent has not reaped yet.
let private ended (pid: int) =
    try
        let stat = File.ReadAllText(sprintf "/proc/%d/stat" pid)
        stat.Substring(stat.LastIndexOf ')' + 2, 1) = "Z"
    with _ -> true

[<SkippableFact>]
let ``SIGTERM to mpirun itself started with --mca odls_base_sigkill_timeout 10: every rank ends by itself after the same step, before the SIGKILL, rank 0 writes the checkpoint, and two ranks resume it`` () =
    Skip.If((mpirun ()).IsNone, "mpirun is not on the PATH (apt-get install openmpi-bin); data-parallel training is not exercised")
    use folder = new TempFolder()
    let run = Path.Combine(folder.Path, "run")
    let temp = Path.Combine(folder.Path, "tmp")
    // Open MPI 4.1's mpirun, given SIGTERM, sends its processes SIGCONT, sleeps `odls_base_sigkill_timeout` seconds,
    // sends SIGTERM, sleeps as long again, sends SIGKILL and exits (1 s by default: too short for a checkpoint).
    // mpirun reads none of their output meanwhile: few log rows, lest rank 0 block on a full terminal buffer.
    let timeout = 10
    let p, output =
        startMpirun temp [ "-np"; "2"; "--oversubscribe"; "--mca"; "odls_base_sigkill_timeout"; string timeout; "-x"; "TMPDIR"
                           "dotnet"; progan; "--resolution"; "8"; "--stabilise-images"; "100000"; "--log-images"; "1024"; "--no-tensorboard"
                           "--out"; run ]
    use _ = ending p
    let deadline = DateTime.UtcNow.AddMinutes 4.0
    while not (output().Contains "training from") do
        Assert.True(DateTime.UtcNow < deadline && not p.HasExited, sprintf "training did not start:\n%s" (output ()))
        Threading.Thread.Sleep 200
    let ranks = [ for rank in 0 .. 1 -> match rankProcess run rank with Some pid -> pid | None -> failwithf "rank %d's process was not found" rank ]
    Threading.Thread.Sleep 1000 // a few steps
    (use kill = Process.Start("kill", [ "-TERM"; string p.Id ]) in kill.WaitForExit())
    let signalled = Stopwatch.StartNew()
    while not (List.forall ended ranks) && signalled.Elapsed.TotalSeconds < 60.0 do Threading.Thread.Sleep 100
    let endedAfter = signalled.Elapsed.TotalSeconds
    // The SIGTERM reaches them `timeout` s after mpirun's, the SIGKILL `timeout` s later: they ended in between, each
    // of its own accord (rank 0 could not have passed the agreed stop's all-reduce without rank 1).
    Assert.True(endedAfter > float timeout - 1.0 && endedAfter < float (2 * timeout) - 1.0,
                sprintf "the ranks ended %.1f s after mpirun's SIGTERM; expected between %d and %d s:\n%s" endedAfter timeout (2 * timeout) (output ()))
    Assert.True(p.WaitForExit 60_000, sprintf "mpirun did not exit:\n%s" (output ()))
    p.WaitForExit() // the output is read to its end
    let text = output ()
    let last = (List.last (logRows run)).ImagesShown
    Assert.Equal<string list>([ Path.Combine(run, sprintf "checkpoint-%012d.ckpt" last) ], checkpoints run |> List.take 1)
    Assert.Contains(sprintf "stopped at %d images" last, text)
    // Two ranks resume it where it stopped.
    resumeTwo temp run last (last + 16L) |> ignore

[<SkippableFact>]
let ``an error in one rank alone ends the whole job through MPI_Abort, the error printed and the rank named, and the checkpoint before it is kept and resumes`` () =
    Skip.If((mpirun ()).IsNone, "mpirun is not on the PATH (apt-get install openmpi-bin); data-parallel training is not exercised")
    use folder = new TempFolder()
    let run = Path.Combine(folder.Path, "run")
    let temp = Path.Combine(folder.Path, "tmp")
    let config = { tiny with TensorBoard = false }
    train config run false (Some 32L) |> ignore
    let checkpoint = checkpointAt run 32L
    let bytes = File.ReadAllBytes checkpoint
    let rows = logRows run |> List.map (fun r -> r.ImagesShown)
    // Open MPI's MPMD form: the same resume in two processes, rank 1's TMPDIR a folder that does not exist, so that
    // rank 1 alone fails where it takes rank 0's state through a temporary file; rank 0 waits in the next collective.
    let missing = Path.Combine(folder.Path, "missing", "tmp")
    let command = [ "dotnet"; progan; "--resume"; run; "--stop-after"; "64" ]
    let p, output =
        startMpirun temp ([ "--oversubscribe"; "-np"; "1"; "-x"; "TMPDIR=" + temp ] @ command @ [ ":"; "-np"; "1"; "-x"; "TMPDIR=" + missing ] @ command)
    use _ = ending p
    Assert.True(p.WaitForExit 120_000, sprintf "the job went on after rank 1 failed:\n%s" (output ()))
    p.WaitForExit()
    let text = output ()
    // Rank 1's exit code (a file it could not write), handed to MPI_Abort, is mpirun's.
    Assert.True((p.ExitCode = 4), sprintf "mpirun exited with %d:\n%s" p.ExitCode text)
    Assert.Contains("error: Could not find a part of the path '" + missing, text)
    Assert.Contains("error: process 1 of 2 failed (exit code 4, the error above); ending every process of the job (MPI_Abort).", text)
    Assert.DoesNotContain("stopped at", text)
    // mpirun can exit while rank 0, killed by the abort, is still going away (holding the run's lock): every rank is
    // gone within seconds.
    let gone = Stopwatch.StartNew()
    while (rankProcess run 0).IsSome || (rankProcess run 1).IsSome do
        Assert.True(gone.Elapsed.TotalSeconds < 30.0, sprintf "a rank was still running 30 s after mpirun exited:\n%s" text)
        Threading.Thread.Sleep 100
    // Nothing before the last checkpoint is lost: it is the newest still, byte for byte, with its log, and resumes.
    Assert.Equal(checkpoint, List.head (checkpoints run))
    Assert.Equal<byte[]>(bytes, File.ReadAllBytes checkpoint)
    Assert.Equal<int64 list>(rows, logRows run |> List.map (fun r -> r.ImagesShown))
    let position, events = train config run true (Some 48L)
    Assert.Contains(Info(sprintf "Resumed from %s at 32 images" (Path.GetFileName checkpoint)), events)
    Assert.Equal(48L, position.ImagesShown)
