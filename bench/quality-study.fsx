// Quality per CPU-minute: which settings give the best images for the wall time a two-core machine has?
//
//   dotnet fsi bench/quality-study.fsx -- [--data FOLDER] [--minutes M] [--only NAME,NAME…] [--images N] [--runs FOLDER]
//                                          [--metrics swd,ms-ssim,fd,kid,pr]
//
// Each setting below trains as `dotnet fsi train.fsx` would, in its own process, for a wall-clock budget
// (`--stop-after-minutes`, training continued at the final resolution once grown), with a checkpoint every few
// thousand images. `evaluate.fsx --all-checkpoints` then scores every checkpoint with the paper's multi-scale SWD
// (§5; ×10³, the average over 16² and 32²) against the real-vs-real floor of the same data, and with the --metrics
// given (default: all — MS-SSIM, FD-ResNet18, KID, precision/recall, each beside its floor), and the rows — wall time,
// images, resolution, SWD, floor, ratio, MS-SSIM, FD, … — are appended to bench/results/quality-<data>.csv. The last
// lines print each setting's SWD ratio (and FD ratio where measured) at the final resolution at given minutes.
//
// Runs train one after another with all cores (on a shared machine the minutes measure the machine as much as the
// setting: compare rows of one invocation). Run folders go to --runs (default: a temporary folder), never the repo.
open System
open System.Diagnostics
open System.Globalization
open System.IO

let root = Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, ".."))

/// The settings compared, each as the train.fsx arguments it adds to the default command. The first is the preset
/// as it is, so that every row has its baseline in the same invocation.
let settings =
    [ "cpu", []
      "wgan-gp", [ "--loss"; "wgan-gp"; "--r1"; "0"; "--penalty-interval"; "1" ]
      "wgan-gp-lazy-4", [ "--loss"; "wgan-gp"; "--r1"; "0"; "--penalty-interval"; "4" ]
      "r1-every-minibatch", [ "--penalty-interval"; "1" ]
      "r1-0.1", [ "--r1"; "0.1" ]
      "ema-0.99", [ "--ema-beta"; "0.99"; "--ema-rampup"; "0" ]
      "ema-0.999-no-rampup", [ "--ema-rampup"; "0" ]
      "lr-0.008", [ "--lr"; "0.008" ]
      "lr-0.008-ema-0.99", [ "--lr"; "0.008"; "--ema-beta"; "0.99"; "--ema-rampup"; "0" ] // the preset of commit 1a9321f
      "lr-0.016", [ "--lr"; "0.016" ]
      "minibatch-4", [ "--minibatch"; "4" ]
      "minibatch-16", [ "--minibatch"; "16" ]
      "minibatch-16-lr-0.003", [ "--minibatch"; "16"; "--lr"; "0.003"; "--ema-beta"; "0.99"; "--ema-rampup"; "0" ] // the preset of commit d5765d8
      "minibatch-32", [ "--minibatch"; "32" ]
      "fmap-128", [ "--fmap-base"; "1024"; "--fmap-max"; "128" ]
      "phases-3k", [ "--stabilise-images"; "3000"; "--fade-images"; "3000" ]
      "phases-24k", [ "--stabilise-images"; "24000"; "--fade-images"; "24000" ]
      "phases-low-24k", [ "--stabilise-images"; "4:24000,8:24000,16:24000"; "--fade-images"; "8:24000,16:24000,32:6000" ]
      "augment", [ "--augment"; "color,translation" ]
      "mirror", [ "--mirror" ]
      "lr-decay-0.5", [ "--total-images"; "0"; "--lr-decay"; "0.5" ] // the preset's 152k images, the rate falling over the last 76k
      "lr-decay-0.5-380k", [ "--total-images"; "380000"; "--lr-decay"; "0.5" ] // ~30 minutes, the rate falling from 190k
      "mirror-lr-decay-0.5-380k", [ "--mirror"; "--total-images"; "380000"; "--lr-decay"; "0.5" ]
      "fmap-128-lr-decay-0.5-175k", [ "--fmap-base"; "1024"; "--fmap-max"; "128"; "--total-images"; "175000"; "--lr-decay"; "0.5" ] // its ~30 minutes
      // Mixed precision (--precision bfloat16): the preset, and the wide network with the decay at its bfloat16 30-minute count.
      "bf16", [ "--precision"; "bfloat16" ]
      "fmap-128-lr-decay-0.5-bf16-200k", [ "--fmap-base"; "1024"; "--fmap-max"; "128"; "--total-images"; "200000"; "--lr-decay"; "0.5"; "--precision"; "bfloat16" ]
      "data-8k", [ "--procedural-images"; "8192" ]
      // The preset with other seeds (weights, latents, minibatches): the spread of one setting's ratio between runs.
      "seed-2", [ "--seed"; "2" ]
      "seed-3", [ "--seed"; "3" ] ]

let args = fsi.CommandLineArgs |> Array.skip 1 |> List.ofArray
let rec option name (rest: string list) =
    match rest with
    | n :: v :: _ when n = name -> Some v
    | _ :: tail -> option name tail
    | [] -> None

let data = option "--data" args |> Option.map Path.GetFullPath
let minutes = option "--minutes" args |> Option.map (fun m -> Double.Parse(m, CultureInfo.InvariantCulture)) |> Option.defaultValue 10.0
let images = option "--images" args |> Option.defaultValue "1024"
/// evaluate.fsx's --metrics; SWD is the study's ranking, so it is always measured.
let metrics =
    option "--metrics" args |> Option.map (fun m -> if m.Split(',') |> Array.contains "swd" then m else "swd," + m)
    |> Option.defaultValue "swd,ms-ssim,fd,kid,pr"
/// --only's names in the order given: the runs train in that order, so a cut-short study has the first ones.
let only = option "--only" args |> Option.map (fun s -> s.Split(',') |> List.ofArray |> List.distinct)
let runs = option "--runs" args |> Option.defaultWith (fun () -> Path.Combine(Path.GetTempPath(), "progan-quality-study"))
let chosen =
    match only with
    | Some names -> names |> List.choose (fun n -> settings |> List.tryFind (fun (name, _) -> name = n))
    | None -> settings
match only with
| Some names when names.Length <> chosen.Length ->
    eprintfn "error: --only names a setting that is not in the table; the settings are %s." (String.Join(", ", settings |> List.map fst))
    exit 2
| _ -> ()
let dataName = data |> Option.map Path.GetFileName |> Option.defaultValue "procedural"
let stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss")
let results = Path.Combine(root, "bench", "results", sprintf "quality-%s.csv" dataName)

/// Runs `dotnet fsi SCRIPT -- ARGS` in the repository root; the child's output goes to `log`.
let fsi (script: string) (arguments: string list) (log: string) =
    let info = ProcessStartInfo("dotnet", [ "fsi"; script; "--" ] @ arguments)
    info.WorkingDirectory <- root
    info.RedirectStandardOutput <- true
    info.RedirectStandardError <- true
    use p = new Process(StartInfo = info)
    use out = new StreamWriter(log, append = true)
    let write (e: DataReceivedEventArgs) = if not (isNull e.Data) then lock out (fun () -> out.WriteLine e.Data)
    p.OutputDataReceived.Add write
    p.ErrorDataReceived.Add write
    p.Start() |> ignore
    p.BeginOutputReadLine()
    p.BeginErrorReadLine()
    p.WaitForExit()
    p.ExitCode

let number (s: string) = Double.Parse(s, CultureInfo.InvariantCulture)

/// (images shown, wall seconds) of log.csv's rows.
let wallClock (run: string) =
    File.ReadLines(Path.Combine(run, "log.csv")) |> Seq.skip 1
    |> Seq.choose (fun line -> match line.Split(',') with
                               | cols when cols.Length >= 9 -> Some(int64 cols[0], number cols[8])
                               | _ -> None)
    |> Array.ofSeq

/// Wall seconds at `shown` images, interpolated between the log rows around it.
let wallAt (rows: (int64 * float)[]) (shown: int64) =
    match rows |> Array.tryFindIndex (fun (s, _) -> s >= shown) with
    | Some 0 -> snd rows[0]
    | Some i ->
        let (s0, w0), (s1, w1) = rows[i - 1], rows[i]
        w0 + (w1 - w0) * float (shown - s0) / float (max 1L (s1 - s0))
    | None -> snd rows[rows.Length - 1]

/// The columns; FD-ResNet18, KID and precision/recall (each beside its floor) came later, so a file with the first
/// thirteen gains the new ones, empty in its old rows.
let header =
    "study,data,setting,arguments,images_shown,wall_s,resolution,images,swd_x1e3,swd_real_x1e3,ratio,ms_ssim,ms_ssim_real,"
    + "fd_resnet18,fd_resnet18_real,fd_ratio,kid,kid_real,precision,precision_real,recall,recall_real"
let featureColumns = 9
if not (File.Exists results) then File.WriteAllText(results, header + "\n")
else
    match File.ReadAllLines results |> List.ofArray with
    | first :: rows when first <> header ->
        File.WriteAllLines(results, header :: (rows |> List.map (fun row -> row + String.replicate featureColumns ",")))
    | _ -> ()

let summary = Collections.Generic.List<string * (int * float * float * float option) list>()
for name, extra in chosen do
    let run = Path.Combine(runs, sprintf "%s-%s-%s" stamp dataName name)
    let log = run + ".log"
    Directory.CreateDirectory runs |> ignore
    let trainArgs =
        [ yield "--out"; yield run
          match data with Some d -> yield! [ "--data"; d ] | None -> ()
          // Past growth, train on at the final resolution until the budget; a checkpoint every 16k images there (about 2½ minutes at 32²; each is scored, so fewer keep the study short).
          yield! [ "--total-images"; "100000000"; "--stop-after-minutes"; string minutes; "--tick-images"; "4:100000,8:100000,16:100000,32:16000"
                   "--keep-checkpoints"; "1000"; "--no-tensorboard" ]
          yield! extra ]
    printfn "%s: training %.0f min (%s)…" name minutes (String.Join(" ", extra))
    let trained = fsi "train.fsx" trainArgs log
    if trained <> 0 then eprintfn "%s: train.fsx exited with %d; see %s" name trained log
    else
        printfn "%s: scoring its checkpoints…" name
        let scored = fsi "evaluate.fsx" [ "--run"; run; "--all-checkpoints"; "--images"; images; "--metrics"; metrics ] log
        if scored <> 0 then eprintfn "%s: evaluate.fsx exited with %d; see %s" name scored log
        else
            let clock = wallClock run
            let rows =
                File.ReadLines(Path.Combine(run, "metrics.csv")) |> Seq.skip 1
                |> Seq.map (fun line ->
                    let c = line.Split(',')
                    let column i = if i < c.Length then c[i] else ""
                    let shown, swd, floor = int64 c[0], number c[4], number c[5]
                    let fdRatio =
                        match column 8, column 9 with
                        | "", _ | _, "" -> None
                        | fd, fdFloor -> Some(number fd / number fdFloor)
                    let wall = wallAt clock shown
                    let features =
                        [ column 8; column 9; fdRatio |> Option.map (sprintf "%.3f") |> Option.defaultValue ""
                          column 10; column 11; column 12; column 13; column 14; column 15 ]
                    sprintf "%s,%s,%s,\"%s\",%d,%.1f,%s,%s,%s,%s,%.3f,%s,%s,%s" stamp dataName name (String.Join(" ", extra)) shown wall c[1] c[3]
                        c[4] c[5] (swd / floor) c[6] c[7] (String.Join(",", features)), (int c[1], wall, swd / floor, fdRatio))
                |> List.ofSeq
            File.AppendAllLines(results, rows |> List.map fst)
            let top = rows |> List.map (fun (_, (r, _, _, _)) -> r) |> List.max
            let final = rows |> List.map snd |> List.filter (fun (r, _, _, _) -> r = top)
            summary.Add(name, final)

let marks = [ 3.0; 5.0; 10.0; 20.0; 30.0 ] |> List.filter (fun m -> m <= minutes + 0.01)
/// Each setting's ratio (SWD's or FD's) at the last checkpoint before each minute mark.
let table title (ratio: int * float * float * float option -> float option) =
    printfn ""
    printfn "%s ÷ floor at the final resolution (%s, %s images per set), by training minutes:" title dataName images
    printfn "%-14s %s" "setting" (String.Join("", marks |> List.map (sprintf "%8.0f min")))
    for name, final in summary do
        let at (m: float) =
            final |> List.filter (fun (_, wall, _, _) -> wall <= m * 60.0) |> List.tryLast |> Option.bind ratio
            |> Option.map (sprintf "%12.2f") |> Option.defaultValue (sprintf "%12s" "–")
        printfn "%-14s %s" name (String.Join("", marks |> List.map at))
table "SWD" (fun (_, _, swd, _) -> Some swd)
if summary |> Seq.exists (fun (_, final) -> final |> List.exists (fun (_, _, _, fd) -> fd.IsSome)) then
    table "FD-ResNet18" (fun (_, _, _, fd) -> fd)
printfn "Rows: %s" results
