module ProGan.Training.Tests.Commands.CliTests

open Xunit
open ProGan.Training.Basics
open ProGan.Training.Config
open ProGan.Training.Progress
open ProGan.Training.Commands
open ProGan.Training.Tests
/// What train.fsx makes of the arguments: parsed, then planned (reading nothing but a run folder's config.json).
let private plan (args: string list) = TrainCommand.plan (CommandLine.parse TrainCommand.command args)

let private error (args: string list) =
    let e = Assert.Throws<UsageException>(fun () -> plan args |> ignore)
    e.Message

[<Fact>]
let ``bad arguments give one line that names them`` () =
    Assert.Equal("Unknown option --bogus; --help lists the options.", error [ "--bogus"; "1" ])
    Assert.StartsWith("--resolution must be a power of two ≥ 8", error [ "--resolution"; "48" ])
    Assert.StartsWith("--resolution must be a power of two ≥ 8", error [ "--resolution"; "4" ])
    Assert.Equal("--data: the folder '/no/such' does not exist.", error [ "--data"; "/no/such" ])
    Assert.Equal("--lr expects a number; got 'fast'.", error [ "--lr"; "fast" ])
    Assert.Equal("--out needs a value (FOLDER).", error [ "--out" ])
    Assert.Contains("multiple of the minibatch-stddev group size 4", error [ "--minibatch"; "6" ])
    Assert.StartsWith("--ema-beta 1.5 is invalid; it must be in [0, 1)", error [ "--ema-beta"; "1.5" ])
    Assert.Contains("--penalty-interval 0 is invalid; it must be from 1", error [ "--penalty-interval"; "0" ])
    Assert.Equal("--d-repeats 0 is invalid; it must be from 1 to 16.", error [ "--d-repeats"; "0" ])
    Assert.Equal(16, (plan [ "--penalty-interval"; "16" ]).Config.PenaltyInterval)
    Assert.Contains("--lr-decay 1.5 is invalid; it must be in [0, 1]", error [ "--lr-decay"; "1.5" ])
    Assert.Equal(0.5, (plan [ "--lr-decay"; "0.5" ]).Config.LearningRateDecay)
    Assert.Equal("--precision takes float32, bfloat16 or auto; got 'float16'.", error [ "--precision"; "float16" ])
    Assert.Equal(BFloat16, (plan [ "--precision"; "bfloat16" ]).Config.Precision)
    Assert.Equal(Float32, (plan []).Config.Precision)
    Assert.Equal("--channels-last-from 12 is invalid; it must be a resolution (4, 8, 16, …), or 0 for none.", error [ "--channels-last-from"; "12" ])
    Assert.Equal((32, 0, 64), ((plan []).Config.ChannelsLastFrom, (plan [ "--channels-last-from"; "0" ]).Config.ChannelsLastFrom, (plan [ "--channels-last-from"; "64" ]).Config.ChannelsLastFrom))
    // --init-from names itself: a path that is not there, a file that is not a checkpoint (a run's config.json).
    Assert.Equal("--init-from: '/no/such.ckpt' does not exist; pass a run folder or one of its checkpoint-*.ckpt files.", error [ "--init-from"; "/no/such.ckpt" ])
    let config = System.IO.Path.GetTempFileName()
    System.IO.File.WriteAllText(config, "{\"Architecture\": {}}")
    try Assert.Equal(sprintf "--init-from: '%s' is not a checkpoint; pass a run folder or one of its checkpoint-*.ckpt files." config, error [ "--init-from"; config ])
    finally System.IO.File.Delete config
    for message in [ error [ "--bogus"; "1" ]; error [ "--minibatch"; "6" ] ] do
        Assert.DoesNotContain("\n", message)

[<Fact>]
let ``--precision auto picks bfloat16 only for a CPU with bfloat16 arithmetic and a network wide enough, and says why`` () =
    let wide = (plan [ "--fmap-base"; "1024"; "--fmap-max"; "128" ]).Config // 64 maps at 32²
    let preset = (plan []).Config // 32 maps at 32²
    let choose features device config = TrainingConfig.autoPrecision features device config
    let cpu, cuda = TorchSharp.DeviceType.CPU, TorchSharp.DeviceType.CUDA
    Assert.Equal(BFloat16, fst (choose [ "avx512_bf16" ] cpu wide))
    Assert.Equal(BFloat16, fst (choose [ "bf16" ] cpu wide))
    Assert.Equal(Float32, fst (choose [] cpu wide))
    Assert.Contains("no bfloat16 arithmetic", snd (choose [] cpu wide))
    Assert.Equal(BFloat16, fst (choose [ "avx512_bf16"; "amx_bf16" ] cpu preset))
    Assert.Contains("with 32 feature maps at 32²", snd (choose [ "avx512_bf16"; "amx_bf16" ] cpu preset))
    // The size counts maps × side at the final level: the preset's 64 maps at 8² are below it, its 64 at 16² reach it.
    Assert.Equal(Float32, fst (choose [ "avx512_bf16" ] cpu (plan [ "--resolution"; "8" ]).Config))
    Assert.Contains("with 64 feature maps at 8²", snd (choose [ "avx512_bf16" ] cpu (plan [ "--resolution"; "8" ]).Config))
    Assert.Equal(BFloat16, fst (choose [ "avx512_bf16" ] cpu (plan [ "--resolution"; "16" ]).Config))
    // On the command line: chosen after every other setting (--fmap-base after it still counts), noted for the
    // run's first lines, and the last --precision wins.
    let features = List.ofSeq (ProGan.Keras.Models.MixedPrecision.CpuBFloat16Features())
    let auto = plan [ "--precision"; "auto"; "--fmap-base"; "1024"; "--fmap-max"; "128"; "--device"; "cpu" ]
    let expected, why = choose features cpu wide
    Assert.Equal(expected, auto.Config.Precision)
    Assert.Equal<string list>([ sprintf "--precision auto: %s — %s." (Precision.name expected) why ], auto.Notes)
    let last = plan [ "--precision"; "auto"; "--precision"; "float32"; "--fmap-base"; "1024"; "--fmap-max"; "128" ]
    Assert.Equal(Float32, last.Config.Precision)
    Assert.Empty(last.Notes)
    Assert.Equal(BFloat16, (plan [ "--precision"; "float32"; "--precision"; "bfloat16" ]).Config.Precision)

[<Fact>]
let ``defaults train the cpu preset to 32² on the embedded data, and every setting can be overridden`` () =
    let args = plan []
    Assert.Equal(32, args.Config.Architecture.Resolution)
    Assert.Equal("", args.Config.DataFolder)
    Assert.Equal((TrainingConfig.cpu 32).StabiliseImages, args.Config.StabiliseImages)
    // The preset the quality study chose: 12k-image phases, the final level 80k, 152k images in all, the logistic
    // loss with R1 on every 16th minibatch, minibatches of 8 at a learning rate of 0.012, EMA β = 0.999 warmed up
    // over 5 % of the images shown.
    Assert.Equal(152_000L, TrainingConfig.totalImages args.Config)
    Assert.Equal((Logistic, 1.0, 16), (args.Config.Loss, args.Config.R1Weight, args.Config.PenaltyInterval))
    Assert.Equal<int[]>([| 8 |], args.Config.Minibatch)
    Assert.Equal(0.012, args.Config.LearningRate)
    Assert.Equal((0.999, 0.05), (args.Config.EmaBeta, args.Config.EmaRampup))
    Assert.Empty((plan [ "--stabilise-images"; "500" ]).Config.StabiliseImagesAt)
    let custom = plan [ "--preset"; "paper"; "--resolution"; "64"; "--lr"; "0.002"; "--minibatch"; "16,8"; "--latent-size"; "256"; "--mirror"; "--seed"; "9" ]
    Assert.Equal(64, custom.Config.Architecture.Resolution)
    Assert.Equal(0.002, custom.Config.LearningRate)
    Assert.Equal<int[]>([| 16; 8 |], custom.Config.Minibatch)
    Assert.Equal(256, custom.Config.Architecture.LatentSize)
    Assert.Equal(512, custom.Config.Architecture.FmapMax) // from the paper preset
    Assert.True(custom.Config.Mirror)
    Assert.Equal(9, custom.Config.Seed)
    let phases = plan [ "--stabilise-images"; "4:24000,16:12000"; "--fade-images"; "32:6000" ]
    Assert.Equal<ResolutionImages[]>([| { Resolution = 4; Images = 24000 }; { Resolution = 16; Images = 12000 } |], phases.Config.StabiliseImagesAt)
    Assert.Equal<ResolutionImages[]>([| { Resolution = 32; Images = 6000 } |], phases.Config.FadeImagesAt)
    Assert.Contains("--fade-images 4 is invalid", error [ "--fade-images"; "4:100" ])

[<Fact>]
let ``--help shows each option once with its value, as the parser reads it, and marks exactly those --resume takes`` () =
    // --help and -h print the usage on stdout and exit 0 before anything is parsed: a bad option beside them included.
    let code, err, usage = Fixtures.runCommand TrainCommand.run [ "--help" ]
    Assert.Equal((0, ""), (code, err))
    Assert.StartsWith(About.product + ": ", usage)
    Assert.Equal((0, "", usage), Fixtures.runCommand TrainCommand.run [ "--no-such-option"; "-h" ])
    // The option lines read back from the text: `  --name VALUE   help`, a switch without VALUE.
    let shown =
        [ for line in usage.Split('\n') do
            let m = System.Text.RegularExpressions.Regex.Match(line.TrimEnd('\r'), @"^  (--[a-z0-9-]+)(?: (\S+))? +(\S.*)$")
            if m.Success then m.Groups[1].Value, m.Groups[2].Value, m.Groups[3].Value ]
    Assert.Equal<string list>([ for f in TrainCommand.flags -> f.Name ] @ [ "--help" ], [ for name, _, _ in shown -> name ])
    Assert.Equal(List.length shown, shown |> List.distinctBy (fun (name, _, _) -> name) |> List.length)
    let parseError args = Assert.Throws<UsageException>(fun () -> CommandLine.parse TrainCommand.command args |> ignore).Message
    // What --resume accepts besides the run folder: these five, and --help says so on their lines and no other.
    let resumable = [ "--data"; "--stop-after"; "--stop-after-minutes"; "--device"; "--threads" ]
    let refusal name =
        sprintf "--resume continues a run with its own config.json; %s cannot be combined with it (allowed: %s)." name (System.String.Join(", ", resumable))
    for name, value, help in shown |> List.filter (fun (name, _, _) -> name <> "--help") do
        // The VALUE shown is the one the parser asks for, and an option shown without one takes none.
        if value = "" then
            try CommandLine.parse TrainCommand.command [ name; "--seed"; "3" ] |> ignore
            with UsageException m -> Assert.Fail(sprintf "--help shows %s without a value, but: %s" name m)
        else Assert.Equal(sprintf "%s needs a value (%s)." name value, parseError [ name ])
        if name <> "--resume" then
            let withResume = [ "--resume"; "run"; name ] @ (if value = "" then [] else [ "1" ])
            let refused = try CommandLine.parse TrainCommand.command withResume |> ignore; None with UsageException m -> Some m
            let marked = help.EndsWith " (also with --resume)"
            if List.contains name resumable then Assert.True((marked, refused) = (true, None), sprintf "%s: marked %b, refused %A" name marked refused)
            else Assert.True((marked, refused) = (false, Some(refusal name)), sprintf "%s: marked %b, refused %A" name marked refused)
    // A refused combination: exit code 2 and that one line, before any run folder is read.
    Assert.Equal((2, sprintf "error: %s (--help lists the options)%s" (refusal "--lr") System.Environment.NewLine, ""),
                 Fixtures.runCommand TrainCommand.run [ "--resume"; "/no/such/run"; "--lr"; "0.1" ])

[<Fact>]
let ``the paper preset is valid as it is, and runs past growth to its total`` () =
    let paper = (plan [ "--preset"; "paper"; "--resolution"; "1024" ]).Config
    Assert.Equal(15_000_000L, TrainingConfig.totalImages paper)
    Assert.Equal(10_200_000L, TrainingConfig.growthImages paper)
    Assert.Equal(1024, (Schedule.at paper 14_000_000L).Resolution)
    Assert.StartsWith("--total-images 1000 is invalid", error [ "--total-images"; "1000"; "--resolution"; "16" ])

[<Fact>]
let ``--stop-after-minutes stops the run with a checkpoint of where it stands, exit code 0`` () =
    Assert.StartsWith("--stop-after-minutes must be a number of minutes above 0", error [ "--stop-after-minutes"; "0" ])
    Assert.Equal(Some(System.TimeSpan.FromSeconds 90.0), (plan [ "--stop-after-minutes"; "1.5" ]).StopAfter)
    use run = new Fixtures.TempFolder()
    let folder = run.File "budget"
    // The cpu preset at 8² shows 56,000 images: far more than two seconds' worth on any machine.
    let clock = System.Diagnostics.Stopwatch.StartNew()
    let code = TrainCommand.run [| "--resolution"; "8"; "--out"; folder; "--stop-after-minutes"; "0.035"; "--no-tensorboard" |]
    Assert.Equal(0, code)
    Assert.True(clock.Elapsed.TotalSeconds < 60.0, sprintf "took %O" clock.Elapsed)
    let newest = Fixtures.checkpoints folder |> List.head
    let shown = (Fixtures.logRows folder |> List.last).ImagesShown
    Assert.Equal(Fixtures.checkpointAt folder shown, newest)
    Assert.InRange(shown, 1L, TrainingConfig.growthImages (TrainingConfig.cpu 8) - 1L)

[<Fact>]
let ``in a command's process the library's convolutions match float64, on the path the start-up check left them`` () =
    // This process took the commands' path at start (Startup.fs): on a CPU whose oneDNN is wrong at uneven channel
    // counts, oneDNN with aligned channels; the training tests of this assembly all run on it.
    Assert.InRange(ProGan.Keras.Backend.CpuConvolutions.WorstError TorchSharp.torch.float32, 0.0, ProGan.Keras.Backend.CpuConvolutions.Tolerance)
    Assert.InRange(ProGan.Keras.Backend.CpuConvolutions.WorstError TorchSharp.torch.bfloat16, 0.0, ProGan.Keras.Backend.CpuConvolutions.BFloat16Tolerance)
