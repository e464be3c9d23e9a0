/// What a run may write where, and what it trains on (issue: data loss and wrong data, items 1–5).
module ProGan.Training.Tests.Runs.RunFolderTests

open System
open System.IO
open Xunit
open ProGan.Keras.IO
open ProGan.Training.Config
open ProGan.Training.Progress
open ProGan.Training.Data
open ProGan.Training.Runs
open ProGan.Training.Commands
open ProGan.Training.Tests.Fixtures

/// Eight small solid-colour PNGs in `folder`, their red channel from `shade`.
let private images (folder: string) (shade: int) =
    Directory.CreateDirectory folder |> ignore
    for i in 0..7 do
        writePng (Path.Combine(folder, sprintf "%d.png" i)) 8 8 3 (solid 8 8 [| byte (shade + i * 20); 40uy; 90uy |])

[<Fact>]
let ``a folder that holds anything but a run is never trained into, and nothing in it changes`` () =
    use user = new TempFolder()
    let files = [ "notes.tmp", "a"; "report.tmpl", "b"; "thesis.tmp.docx", "c"; "config.json", """{"my":1}""" ]
    for name, text in files do File.WriteAllText(user.File name, text)
    let e = Assert.Throws<RunFolderException>(fun () -> train tiny user.Path false (Some 8L) |> ignore)
    Assert.Contains("is not empty and is not a run folder", e.Message)
    for name, text in files do Assert.Equal(text, File.ReadAllText(user.File name))
    Assert.Equal(files.Length, Directory.GetFileSystemEntries(user.Path).Length)

[<Fact>]
let ``a run folder's sweep removes only the temporary files a run writes`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 16L) |> ignore
    let foreign = [ "notes.tmp"; "thesis.tmp.docx"; "report.tmpl"; "checkpoint-1.ckpt.tmp" ]
    for name in foreign do File.WriteAllText(run.File name, "mine")
    let own = AtomicFile.TemporaryPath(RunFolder(run.Path).TickGrid 24L)
    File.WriteAllText(own, "half a png")
    train tiny run.Path true (Some 24L) |> ignore
    for name in foreign do Assert.Equal("mine", File.ReadAllText(run.File name))
    Assert.False(File.Exists own, "a stray temporary file of the run's own survived")

[<Fact>]
let ``a new run in a run folder is refused and points to --resume`` () =
    use run = new TempFolder()
    train tiny run.Path false (Some 8L) |> ignore
    let e = Assert.Throws<RunFolderException>(fun () -> train tiny run.Path false (Some 8L) |> ignore)
    Assert.Contains("--resume", e.Message)

[<Fact>]
let ``a run folder inside its data folder is refused, and run folders are left out of a data walk`` () =
    use data = new TempFolder()
    images data.Path 0
    let config = { tiny with DataFolder = data.Path; Minibatch = [| 4 |]; Architecture = tiny.Architecture.With(minibatchGroupSize = 4) }
    let inside = data.File "run1"
    let e = Assert.Throws<RunFolderException>(fun () -> train config inside false (Some 4L) |> ignore)
    Assert.Contains("inside the data folder", e.Message)
    Assert.False(Directory.Exists inside)
    // A run folder that got there some other way (moved in by hand) is not read as data.
    use other = new TempFolder()
    train config (Path.Combine(other.Path, "run")) false (Some 8L) |> ignore
    Directory.Move(Path.Combine(other.Path, "run"), data.File "moved-run")
    Assert.Equal(8, (ImageFolder.files data.Path).Images.Length)

[<Fact>]
let ``resuming on other images is refused, and a moved data folder can be named`` () =
    use root = new TempFolder()
    use cache = new TempFolder()
    Environment.SetEnvironmentVariable("PROGAN_KERAS_DATA_CACHE", cache.Path)
    try
        let original, moved, other = root.File "a", root.File "b", root.File "c"
        images original 0
        images other 100
        let config = { tiny with DataFolder = original; Minibatch = [| 4 |] }
        let run = root.File "run"
        train config run false (Some 8L) |> ignore
        // Same images, new place: resume with --data names it, and config.json follows.
        Directory.Move(original, moved)
        let plan = TrainCommand.plan (CommandLine.parse TrainCommand.command [ "--resume"; run; "--data"; moved ])
        Assert.Equal(moved, plan.Config.DataFolder)
        train plan.Config run true (Some 12L) |> ignore
        Assert.Equal(moved, (RunFolder.readConfig (RunFolder run)).DataFolder)
        // Other images: refused before a step, naming both.
        let e = Assert.Throws<DataException>(fun () -> train { plan.Config with DataFolder = other } run true (Some 16L) |> ignore)
        Assert.Contains("is not the data this run was trained on", e.Message)
        Assert.Equal(moved, (RunFolder.readConfig (RunFolder run)).DataFolder) // nothing of the refused resume was kept
        // Images added to the folder the run trains on change it too.
        writePng (Path.Combine(moved, "extra.png")) 8 8 3 (solid 8 8 [| 1uy; 2uy; 3uy |])
        Assert.Throws<DataException>(fun () -> train plan.Config run true (Some 16L) |> ignore) |> ignore
    finally
        Environment.SetEnvironmentVariable("PROGAN_KERAS_DATA_CACHE", null)

[<Fact>]
let ``a damaged data cache is detected by its SHA-256 and prepared again`` () =
    use data = new TempFolder()
    use cache = new TempFolder()
    Environment.SetEnvironmentVariable("PROGAN_KERAS_DATA_CACHE", cache.Path)
    try
        images data.Path 0
        let load () =
            let events = Collections.Generic.List<TrainingEvent>()
            let result = ImageFolder.load data.Path 8 3 false 1 events.Add Threading.CancellationToken.None
            result, List.ofSeq events
        let first, _ = load ()
        let top = Directory.GetFiles(cache.Path, "level-0008.bin", SearchOption.AllDirectories) |> Array.exactlyOne
        let index = Path.Combine(Path.GetDirectoryName top, "dataset.json")
        let bytes, indexText = File.ReadAllBytes top, File.ReadAllText index
        (first.Images :> IDisposable).Dispose()
        let damages =
            [ "zeroed pixels", (fun () -> let c = Array.copy bytes in Array.fill c (c.Length - 3 * 64) (3 * 64) 0uy; File.WriteAllBytes(top, c))
              "0xFF everywhere", (fun () -> File.WriteAllBytes(top, Array.create bytes.Length 0xFFuy))
              "cut short", (fun () -> File.WriteAllBytes(top, bytes[.. bytes.Length / 2]))
              "a garbage index", (fun () -> File.WriteAllText(index, "\u0000garbage")) ]
        for what, damage in damages do
            damage ()
            let again, events = load ()
            Assert.False(again.FromCache, what)
            Assert.Contains(events, fun e -> match e with Warning text -> text.Contains "is damaged" | _ -> false)
            Assert.Equal(first.Images.ContentHash, again.Images.ContentHash)
            (again.Images :> IDisposable).Dispose()
            Assert.Equal<byte[]>(bytes, File.ReadAllBytes top) // rebuilt as it was
            Assert.Equal(indexText, File.ReadAllText index)
    finally
        Environment.SetEnvironmentVariable("PROGAN_KERAS_DATA_CACHE", null)

[<Fact>]
let ``rows of an attempt that died before its first checkpoint are not kept`` () =
    use run = new TempFolder()
    let config = { tiny with TickImages = 1000 }
    train config run.Path false (Some 40L) |> ignore
    // As if the process had died before any checkpoint: rows on disk, no checkpoint.
    for c in checkpoints run.Path do File.Delete c
    Assert.NotEmpty(logRows run.Path)
    train config run.Path true (Some 64L) |> ignore
    let shown = logRows run.Path |> List.map (fun r -> r.ImagesShown)
    Assert.Equal<int64 list>(List.sort shown |> List.distinct, shown)
    Assert.Equal(64L, List.last shown)

[<Fact>]
let ``a failed start leaves no trace of itself`` () =
    use data = new TempFolder()
    File.WriteAllText(data.File "broken.png", "not an image")
    use root = new TempFolder()
    let run = root.File "run"
    Assert.Throws<DataException>(fun () -> train { tiny with DataFolder = data.Path } run false (Some 8L) |> ignore) |> ignore
    Assert.False(Directory.Exists run, "the run folder made for the failed start is still there")
    // An empty folder given by the user stays, emptied of what the run wrote.
    let empty = root.File "empty"
    Directory.CreateDirectory empty |> ignore
    Assert.Throws<DataException>(fun () -> train { tiny with DataFolder = data.Path } empty false (Some 8L) |> ignore) |> ignore
    Assert.Empty(Directory.GetFileSystemEntries empty)

[<Fact>]
let ``config.json keeps the option names as strings: typed options read from them, written back byte for byte, an unknown one refused by name`` () =
    use run = new TempFolder()
    let folder = RunFolder run.Path
    let write (config: TrainingConfig) = RunFolder.writeConfig folder config
    let text () = File.ReadAllText folder.Config
    write { TrainingConfig.cpu 32 with Augment = [ Color; Cutout ]; Precision = BFloat16; Loss = Hinge; R1Weight = 0.0; Labels = ShapeClasses
                                       Architecture = (TrainingConfig.cpu 32).Architecture.With(labelSize = 2) }
    let written = text ()
    // The strings the command line takes, as config.json has always held them (runs before the options were typed read as they did).
    for field, value in [ "Loss", "hinge"; "Augment", "color,cutout"; "Precision", "bfloat16"; "Labels", "shapes" ] do
        Assert.Contains(sprintf "\"%s\": \"%s\"" field value, written)
    let read = RunFolder.readConfig folder
    Assert.Equal((Hinge, [ Color; Cutout ], BFloat16, ShapeClasses), (read.Loss, read.Augment, read.Precision, read.Labels))
    write read
    Assert.Equal(written, text ())
    // A resume that continues as configured leaves the file alone (its text compared, not parsed again).
    let past = DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc)
    File.SetLastWriteTimeUtc(folder.Config, past)
    write read
    Assert.Equal(past, File.GetLastWriteTimeUtc folder.Config)
    write { read with Threads = 1 }
    Assert.Contains("\"Threads\": 1", text ())
    write read
    // Before, an unknown loss was read as WGAN-GP; now it is refused in one line that names the field and the names allowed.
    for field, bad, says in [ "Loss", "wgan", "Loss must be one of \"wgan-gp\", \"lsgan\", \"logistic\", \"hinge\""
                              "Augment", "color,rotate", "Augment names 'rotate'"
                              "Precision", "float16", "Precision must be one of \"float32\", \"bfloat16\""
                              "Labels", "classes", "Labels must be one of" ] do
        let current = Text.RegularExpressions.Regex.Match(written, sprintf "\"%s\": \"[^\"]*\"" field).Value
        File.WriteAllText(folder.Config, written.Replace(current, sprintf "\"%s\": \"%s\"" field bad))
        let e = Assert.Throws<RunFolderException>(fun () -> RunFolder.readConfig folder |> ignore)
        Assert.Contains(says, e.Message)
        Assert.DoesNotContain("\n", e.Message)

[<Fact>]
let ``log.csv and metrics.csv of before FD-ResNet18, KID and precision/recall still read, those figures as NaN`` () =
    use run = new TempFolder()
    let folder = RunFolder run.Path
    // log.csv of 13 columns (before fd_resnet18,kid,precision,recall), then a row of today's 17.
    File.WriteAllLines(folder.Log,
        [ "images_shown,resolution,phase,alpha,d_loss,g_loss,gradient_penalty,images_per_s,wall_s,swd_x1e3,ms_ssim,d_adversarial,d_drift"
          "16,4,stabilise,1,0.5,0.25,0.01,100,1.5,12.5,0.2,-0.1,0.01" ])
    match RunLog.read folder Int64.MaxValue with
    | [ old ] ->
        Assert.Equal(12.5, old.Swd)
        Assert.True(Double.IsNaN old.FdResNet18 && Double.IsNaN old.Kid && Double.IsNaN old.Precision && Double.IsNaN old.Recall)
        RunLog.append folder [ { old with ImagesShown = 32L; FdResNet18 = 151.6; Kid = 0.0059; Precision = 0.21; Recall = 0.24 } ]
    | rows -> failwithf "%A" rows
    match RunLog.read folder Int64.MaxValue with
    | [ _; now ] -> Assert.Equal<float list>([ 151.6; 0.0059; 0.21; 0.24 ], [ now.FdResNet18; now.Kid; now.Precision; now.Recall ])
    | rows -> failwithf "%A" rows
    // The log is read by its header's names: columns in another order land in their own figures, and the log of
    // older columns was rewritten under today's header when a row was appended.
    Assert.Equal(RunLog.header, File.ReadLines(folder.Log) |> Seq.head)
    File.WriteAllLines(folder.Log, [ "phase,images_shown,d_class_accuracy,resolution,alpha,g_loss,d_loss"; "fade-in,48,0.75,8,0.5,0.25,1.5" ])
    match RunLog.read folder Int64.MaxValue with
    | [ row ] ->
        Assert.Equal((48L, 8, "fade-in", 0.5, 1.5, 0.25, 0.75), (row.ImagesShown, row.Resolution, row.Phase, row.Alpha, row.DLoss, row.GLoss, row.ClassAccuracy))
        Assert.True(Double.IsNaN row.GradientPenalty && Double.IsNaN row.Swd)
    | rows -> failwithf "%A" rows
    // metrics.csv of 8 columns: the SWD and MS-SSIM read, the rest NaN, never shifted into other columns.
    File.WriteAllLines(folder.Metrics,
        [ "images_shown,resolution,phase,images,swd_x1e3,swd_real_x1e3,ms_ssim,ms_ssim_real"; "100,32,stabilise,1024,21.7,10.7,0.091,0.0998" ])
    match MetricsLog.read folder with
    | [ row ] ->
        Assert.Equal<float list>([ 21.7; 10.7; 0.091; 0.0998 ], [ row.Swd; row.SwdRealVsReal; row.MsSsim; row.MsSsimReal ])
        Assert.True([ row.FdResNet18; row.FdResNet18RealVsReal; row.Kid; row.KidRealVsReal; row.Precision; row.PrecisionRealVsReal; row.Recall; row.RecallRealVsReal ]
                    |> List.forall Double.IsNaN)
        let measured = { row with FdResNet18 = 151.6; FdResNet18RealVsReal = 16.7; Recall = 0.24 }
        MetricsLog.write folder [ measured ]
        match MetricsLog.read folder with
        | [ back ] ->
            Assert.Equal<float list>([ 21.7; 151.6; 16.7; 0.24 ], [ back.Swd; back.FdResNet18; back.FdResNet18RealVsReal; back.Recall ])
            Assert.True(Double.IsNaN back.Kid && Double.IsNaN back.Precision)
        | rows -> failwithf "%A" rows
    | rows -> failwithf "%A" rows
