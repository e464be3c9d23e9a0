/// TensorBoard event files read back by a reader written here, independently of TorchSharp's writer: TFRecord framing
/// with masked CRC-32C, and the few fields of `Event` and `Summary` the run writes.
module ProGan.Training.Tests.Runs.TensorBoardTests

open System
open System.IO
open Xunit
open ProGan.Training.Config
open ProGan.Training.Progress
open ProGan.Training.Runs
open ProGan.Training.Commands
open ProGan.Training.Tests.Fixtures

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit from its table.
let private crcTable =
    Array.init 256 (fun n ->
        let mutable c = uint32 n
        for _ in 0..7 do c <- if c &&& 1u <> 0u then 0x82F63B78u ^^^ (c >>> 1) else c >>> 1
        c)

let crc32c (bytes: byte[]) (offset: int) (count: int) =
    let mutable c = 0xFFFFFFFFu
    for i in offset .. offset + count - 1 do c <- crcTable[int ((c ^^^ uint32 bytes[i]) &&& 0xFFu)] ^^^ (c >>> 8)
    c ^^^ 0xFFFFFFFFu

/// TFRecord's mask: rotate right by 15 bits and add a constant.
let masked (crc: uint32) = ((crc >>> 15) ||| (crc <<< 17)) + 0xa282ead8u

/// What the tests look at in a `Summary.Value`.
type Value =
    { Tag: string
      Simple: float32 option
      /// (width, height, encoded bytes) of an `Image`.
      Image: (int * int * byte[]) option
      Histogram: bool
      Text: bool }

/// What the tests look at in an `Event`.
type Event =
    { WallTime: float
      Step: int64
      FileVersion: string
      Values: Value list }

/// The protocol-buffer fields of a message: (field number, wire type, varint value or 8/4-byte value, bytes).
let private fields (data: byte[]) =
    let mutable i = 0
    let varint () =
        let mutable result, shift, go = 0UL, 0, true
        while go do
            let b = data[i]
            i <- i + 1
            result <- result ||| (uint64 (b &&& 0x7Fuy) <<< shift)
            shift <- shift + 7
            go <- b &&& 0x80uy <> 0uy
        result
    [ while i < data.Length do
        let key = varint ()
        let number, wire = int (key >>> 3), int (key &&& 7UL)
        match wire with
        | 0 -> yield number, wire, varint (), [||]
        | 1 -> yield number, wire, BitConverter.ToUInt64(data, i), [||]; i <- i + 8
        | 5 -> yield number, wire, uint64 (BitConverter.ToUInt32(data, i)), [||]; i <- i + 4
        | 2 ->
            let length = int (varint ())
            yield number, wire, 0UL, data[i .. i + length - 1]
            i <- i + length
        | _ -> failwithf "wire type %d at byte %d" wire i ]

let private value (data: byte[]) =
    let all = fields data
    let bytesOf n = all |> List.tryPick (fun (f, w, _, b) -> if f = n && w = 2 then Some b else None)
    { Tag = bytesOf 1 |> Option.map Text.Encoding.UTF8.GetString |> Option.defaultValue ""
      Simple = all |> List.tryPick (fun (f, w, v, _) -> if f = 2 && w = 5 then Some(BitConverter.Int32BitsToSingle(int v)) else None)
      Image =
        bytesOf 4 |> Option.map (fun image ->
            let f = fields image
            let int' n = f |> List.pick (fun (k, _, v, _) -> if k = n then Some(int v) else None)
            int' 2, int' 1, f |> List.pick (fun (k, _, _, b) -> if k = 4 then Some b else None))
      Histogram = (bytesOf 5).IsSome
      Text = (bytesOf 8).IsSome }

/// The events of a file; fails on a record whose length or data do not match their masked CRC-32C.
let readEvents (path: string) =
    let bytes = File.ReadAllBytes path
    let rec next offset acc =
        if offset = bytes.Length then List.rev acc
        else
            Assert.True(bytes.Length - offset >= 16, sprintf "%s: a record cut short at byte %d" path offset)
            let length = int (BitConverter.ToUInt64(bytes, offset))
            Assert.Equal(masked (crc32c bytes offset 8), BitConverter.ToUInt32(bytes, offset + 8))
            Assert.Equal(masked (crc32c bytes (offset + 12) length), BitConverter.ToUInt32(bytes, offset + 12 + length))
            let f = fields bytes[offset + 12 .. offset + 12 + length - 1]
            let event =
                { WallTime = f |> List.tryPick (fun (n, _, v, _) -> if n = 1 then Some(BitConverter.UInt64BitsToDouble v) else None) |> Option.defaultValue 0.0
                  Step = f |> List.tryPick (fun (n, _, v, _) -> if n = 2 then Some(int64 v) else None) |> Option.defaultValue 0L
                  FileVersion = f |> List.tryPick (fun (n, _, _, b) -> if n = 3 then Some(Text.Encoding.UTF8.GetString b) else None) |> Option.defaultValue ""
                  Values =
                    f |> List.tryPick (fun (n, _, _, b) -> if n = 5 then Some b else None)
                      |> Option.map (fun summary -> [ for n, _, _, b in fields summary do if n = 1 then yield value b ])
                      |> Option.defaultValue [] }
            next (offset + 16 + length) (event :: acc)
    next 0 []

/// Every (folder relative to tensorboard/, event) of a run, files in name order (the order TensorBoard reads them).
let private runEvents (run: string) =
    let root = Path.Combine(run, "tensorboard")
    [ for path in Directory.GetFiles(root, "events.out.tfevents.*", SearchOption.AllDirectories) |> Array.sort do
        let events = readEvents path
        Assert.Equal("brain.Event:2", (List.head events).FileVersion)
        for e in events do yield Path.GetRelativePath(root, Path.GetDirectoryName path), e ]

/// (step, value) of each scalar tagged `tag` in folder `folder`, in file order.
let private scalars (events: (string * Event) list) (folder: string) (tag: string) =
    [ for f, e in events do
        if f = folder then
            for v in e.Values do
                if v.Tag = tag && v.Simple.IsSome then yield e.Step, float v.Simple.Value ]

/// The log.csv column behind each scalar, and how much log.csv's rounding may move it (`RunLog`'s formats).
let private columns : (string * (LogRow -> float) * (float -> float)) list =
    let significant6 (x: float) = 1e-5 * abs x + 1e-12
    [ "loss/D", (fun r -> r.DLoss), significant6
      "loss/G", (fun r -> r.GLoss), significant6
      "loss/gradient_penalty", (fun r -> r.GradientPenalty), significant6
      "schedule/resolution", (fun r -> float r.Resolution), (fun _ -> 0.0)
      "schedule/alpha", (fun r -> r.Alpha), (fun _ -> 5e-5)
      "train/images_per_second", (fun r -> r.ImagesPerSecond), (fun x -> 0.005 + 1e-6 * abs x)
      "train/wall_seconds", (fun r -> r.WallSeconds), (fun x -> 0.005 + 1e-6 * abs x)
      "metrics/swd_x1e3", (fun r -> r.Swd), (fun x -> 5e-4 + 1e-6 * abs x)
      "metrics/ms_ssim", (fun r -> r.MsSsim), (fun _ -> 5e-6) ]

/// Each scalar of log.csv's columns is there once per row that has it, at the row's images shown, with its value.
let private assertScalarsAreTheLog (run: string) (events: (string * Event) list) =
    let rows = logRows run
    Assert.NotEmpty rows
    for tag, column, tolerance in columns do
        let expected = rows |> List.filter (fun r -> not (Double.IsNaN(column r)))
        let logged = scalars events "." tag
        Assert.True(List.map (fun (r: LogRow) -> r.ImagesShown) expected = List.map fst logged,
                    sprintf "%s: steps %A, log.csv rows %A" tag (List.map fst logged) (expected |> List.map (fun r -> r.ImagesShown)))
        for r, (_, v) in List.zip expected logged do
            Assert.True(abs (v - column r) <= tolerance (column r), sprintf "%s at %d: %g in TensorBoard, %g in log.csv" tag r.ImagesShown v (column r))

[<Fact>]
let ``the event files are TFRecords with valid checksums whose scalars are log.csv's, step for step`` () =
    let run = finishedRun.Force()
    let events = runEvents run
    assertScalarsAreTheLog run events
    // D's loss is the sum of its weighted terms (Appendix A.1): W + λ·GP + ε_drift·drift, as add_scalars' three series.
    let d = scalars events "." "loss/D"
    let terms = [ for name in [ "adversarial"; "gradient_penalty"; "drift" ] -> scalars events ("D_loss_terms_" + name) "D_loss_terms" ]
    for i, (step, total) in List.indexed d do
        let parts = terms |> List.map (fun t -> List.item i t)
        Assert.True(parts |> List.forall (fun (s, _) -> s = step))
        Assert.True(abs (List.sumBy snd parts - total) <= 1e-4 * (1.0 + abs total), sprintf "terms at %d: %A, D loss %g" step parts total)
    Assert.Equal(List.length d, scalars events "." "train/learning_rate" |> List.length)
    // The sample grid of every tick, as the PNG of the grid in the run folder.
    let images tag = [ for _, e in events do for v in e.Values do if v.Tag = tag && v.Image.IsSome then yield e.Step, v.Image.Value ]
    let ticks = RunFolder(run).TickGrids()
    Assert.Equal<int64 list>(List.map fst ticks, images "samples" |> List.map fst)
    for (_, path), (_, (width, height, png)) in List.zip ticks (images "samples") do
        let file = SixLabors.ImageSharp.Image.Identify(File.ReadAllBytes path)
        Assert.Equal((file.Width, file.Height), (width, height))
        Assert.Equal<byte[]>([| 137uy; 80uy; 78uy; 71uy |], png[0..3])
    Assert.Equal(RunFolder(run).PhaseGrids().Length, images "phase_end" |> List.length)
    Assert.Single(images "reals") |> ignore
    // Weight histograms of both networks at the end of every phase, and the configuration as text.
    let histogramSteps prefix =
        [ for _, e in events do if e.Values |> List.exists (fun v -> v.Histogram && v.Tag.StartsWith(prefix: string)) then yield e.Step ] |> List.distinct
    let phaseEnds = List.length (RunFolder(run).PhaseGrids()) + 1 // and the end of the run
    Assert.Equal(phaseEnds, List.length (histogramSteps "G/"))
    Assert.Equal(phaseEnds, List.length (histogramSteps "D/"))
    Assert.Contains(events, fun (_, e) -> e.Values |> List.exists (fun v -> v.Tag = "config/text_summary" && v.Text))
    // Wall times are seconds since 1970, as TensorBoard reads them.
    let now = float (DateTimeOffset.UtcNow.ToUnixTimeSeconds())
    for _, e in events do
        if not e.Values.IsEmpty then Assert.InRange(e.WallTime, now - 3600.0, now + 60.0)

[<Fact>]
let ``log.csv names D's terms: adversarial and drift beside the penalty, summing to D's loss; older logs read with them as NaN`` () =
    let run = finishedRun.Force()
    let weights = TrainingConfig.lossWeights tiny
    let rows = logRows run
    Assert.NotEmpty(rows)
    for r in rows do
        // Appendix A.1: D's loss = W + λ·GP + ε_drift·E[D(real)²], every step penalised in the tiny run.
        let sum = r.Adversarial + weights.Lambda * r.GradientPenalty + weights.EpsilonDrift * r.Drift
        Assert.True(abs (sum - r.DLoss) <= 1e-4 * (1.0 + abs r.DLoss), sprintf "at %d: W %g, GP %g, drift %g, D %g" r.ImagesShown r.Adversarial r.GradientPenalty r.Drift r.DLoss)
        Assert.True(r.Drift >= 0.0)
    // A log from before the terms were logged (11 columns) and from before MS-SSIM (10) still reads.
    use old = new TempFolder()
    File.WriteAllText(Path.Combine(old.Path, "log.csv"),
        "images_shown,resolution,phase,alpha,d_loss,g_loss,gradient_penalty,images_per_s,wall_s,swd_x1e3,ms_ssim\n16,4,stabilise,1,0.5,0.25,0.125,10,1,,\n32,4,stabilise,1,0.5,0.25,0.125,10,2,\n")
    let oldRows = logRows old.Path
    Assert.Equal<int64 list>([ 16L; 32L ], oldRows |> List.map (fun r -> r.ImagesShown))
    Assert.All(oldRows, fun r -> Assert.True(Double.IsNaN r.Adversarial && Double.IsNaN r.Drift && r.DLoss = 0.5))

[<Fact>]
let ``a resumed run repeats no step: events after the checkpoint it resumes from, and a torn record, are dropped`` () =
    use run = new TempFolder()
    let config = { tiny with KeepCheckpoints = 10 }
    train config run.Path false (Some 112L) |> ignore
    // A crash after 112 images whose last checkpoints were lost: the run resumes from 48 (a tick), so everything
    // logged from 49 to 112 is logged again. A record half-written at the moment of the crash ends the file.
    for checkpoint in checkpoints run.Path do
        if checkpoint <> checkpointAt run.Path 48L then File.Delete checkpoint
    Assert.Contains(scalars (runEvents run.Path) "." "loss/D", fun (step, _) -> step > 48L)
    let main = Directory.GetFiles(Path.Combine(run.Path, "tensorboard"), "events.out.tfevents.*") |> Array.exactlyOne
    File.AppendAllText(main, "\u0040\u0000\u0000\u0000\u0000\u0000\u0000\u0000torn")
    train config run.Path true None |> ignore
    let events = runEvents run.Path
    // Per folder and tag, steps only rise from file to file: nothing is there twice, nothing goes back.
    for (folder, tag), steps in
        [ for f, e in events do for v in e.Values do yield (f, v.Tag), e.Step ] |> List.groupBy fst |> List.map (fun (k, l) -> k, List.map snd l) do
        Assert.True(List.pairwise steps |> List.forall (fun (a, b) -> a < b), sprintf "%s/%s steps %A" folder tag steps)
    assertScalarsAreTheLog run.Path events
    Assert.Contains(events, fun (_, e) -> e.Step = 48L && e.Values |> List.exists (fun v -> v.Tag = "resumed/text_summary"))

[<Fact>]
let ``--no-tensorboard writes no event files and says so in config.json`` () =
    let plan = TrainCommand.plan (CommandLine.parse TrainCommand.command [ "--no-tensorboard" ])
    Assert.False plan.Config.TensorBoard
    Assert.True (TrainCommand.plan (CommandLine.parse TrainCommand.command [])).Config.TensorBoard
    use run = new TempFolder()
    train { tiny with TensorBoard = false } run.Path false (Some 16L) |> ignore
    Assert.False(Directory.Exists(run.File "tensorboard"))
    Assert.False((RunFolder.readConfig (RunFolder run.Path)).TensorBoard)
    Assert.True(File.Exists(run.File "report.html"))
