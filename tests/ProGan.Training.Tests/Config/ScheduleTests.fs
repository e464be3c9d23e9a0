module ProGan.Training.Tests.Config.ScheduleTests

open System
open Xunit
open ProGan.Training.Config
open ProGan.Training.Tests.Fixtures

/// The reference's `TrainingSchedule` (train.py), written independently in floating point on kimg.
let referenceLod (config: TrainingConfig) (shown: int64) =
    let kimg = float shown / 1000.0
    let train, transition = float config.StabiliseImages / 1000.0, float config.FadeImages / 1000.0
    let phaseDur = train + transition
    let phaseIdx = if phaseDur > 0.0 then floor (kimg / phaseDur) else 0.0
    let phaseKimg = kimg - phaseIdx * phaseDur
    let resolutionLog2 = log (float config.Architecture.Resolution) / log 2.0
    let lod = resolutionLog2 - 2.0 - phaseIdx - (if transition > 0.0 then max (phaseKimg - train) 0.0 / transition else 0.0)
    let lod = max lod 0.0
    lod, int (2.0 ** (resolutionLog2 - floor lod))

[<Fact>]
let ``alpha and resolution match the reference formula at and around every phase boundary`` () =
    let config = { TrainingConfig.cpu 64 with StabiliseImages = 6000; FadeImages = 4000; StabiliseImagesAt = [||] }
    let boundaries = [ for k in 0L .. 5L do yield k * 10_000L; yield k * 10_000L + 6_000L ]
    for b in boundaries do
        for shown in [ b - 1L; b; b + 1L; b + 2000L ] |> List.filter (fun s -> s >= 0L) do
            let p = Schedule.at config shown
            let lod, resolution = referenceLod config shown
            Assert.Equal(resolution, p.Resolution)
            Assert.Equal(lod, p.Lod, 9)
            Assert.Equal(1.0 - (lod - floor lod), p.Alpha, 9)
            Assert.Equal((lod <> floor lod), (p.Phase = FadeIn))

[<Fact>]
let ``the schedule stabilises 4², fades and stabilises each level, then stays at the final level`` () =
    let config = { TrainingConfig.cpu 16 with StabiliseImages = 100; FadeImages = 50; StabiliseImagesAt = [||] }
    let at n = let p = Schedule.at config n in p.Resolution, p.Phase, p.Alpha
    Assert.Equal((4, Stabilise, 1.0), at 0L)
    Assert.Equal((4, Stabilise, 1.0), at 100L)
    Assert.Equal((8, FadeIn, 0.5), at 125L)
    Assert.Equal((8, Stabilise, 1.0), at 150L)
    Assert.Equal((16, FadeIn, 0.2), at 260L)
    Assert.Equal((16, Stabilise, 1.0), at 10_000L)
    Assert.Equal(400L, TrainingConfig.totalImages config)
    Assert.True(Schedule.isDone config 400L)
    Assert.False(Schedule.isDone config 399L)

[<Fact>]
let ``phase index changes exactly when lod crosses an integer`` () =
    let config = { tiny with StabiliseImages = 10; FadeImages = 10 }
    let changes =
        [ 0L .. 40L ] |> List.pairwise
        |> List.filter (fun (a, b) -> (Schedule.at config a).PhaseIndex <> (Schedule.at config b).PhaseIndex)
        |> List.map snd
    Assert.Equal<int64 list>([ 11L; 20L ], changes)

[<Fact>]
let ``per-resolution phase lengths: each phase as long as its entry says, and equal entries change nothing`` () =
    let config =
        { TrainingConfig.cpu 32 with
            StabiliseImages = 100; FadeImages = 50
            StabiliseImagesAt = [| { Resolution = 4; Images = 300 }; { Resolution = 16; Images = 200 } |]
            FadeImagesAt = [| { Resolution = 32; Images = 20 } |] }
    // Phases by hand: 4² stabilise 300, 8² fade 50, 8² stabilise 100, 16² fade 50, 16² stabilise 200, 32² fade 20, 32² stabilise 100.
    Assert.Equal<int64[]>([| 300L; 50L; 100L; 50L; 200L; 20L; 100L |], TrainingConfig.phaseImages config)
    Assert.Equal(820L, TrainingConfig.growthImages config)
    let at n = let p = Schedule.at config n in p.Resolution, p.Phase, p.Alpha, p.PhaseIndex
    Assert.Equal((4, Stabilise, 1.0, 0), at 300L)
    Assert.Equal((8, FadeIn, 0.5, 1), at 325L)
    Assert.Equal((8, Stabilise, 1.0, 2), at 350L)
    Assert.Equal((16, FadeIn, 0.2, 3), at 460L)
    Assert.Equal((16, Stabilise, 1.0, 4), at 700L)
    Assert.Equal((32, FadeIn, 0.25, 5), at 705L)
    Assert.Equal((32, Stabilise, 1.0, 6), at 720L)
    Assert.Equal((32, Stabilise, 1.0, 6), at 100_000L)
    // Each level begins where it starts fading in: 8² after the 300-image 4² phase, 16² at 300 + 50 + 100, 32² at 700.
    Assert.Equal<int64 list>([ 0L; 300L; 450L; 700L ], [ for level in 0..3 -> Schedule.levelStart config level ])
    Assert.Equal(0L, Schedule.levelStart { config with Growing = false } 3)
    // Entries equal to the defaults give the uniform schedule, position for position.
    let uniform = { TrainingConfig.cpu 32 with StabiliseImages = 100; FadeImages = 50; StabiliseImagesAt = [||] }
    let same = { uniform with StabiliseImagesAt = [| for r in [ 4; 8; 16; 32 ] -> { Resolution = r; Images = 100 } |]
                              FadeImagesAt = [| { Resolution = 8; Images = 50 } |] }
    for n in 0L .. 5L .. 700L do Assert.Equal(Schedule.at uniform n, Schedule.at same n)

[<Fact>]
let ``a per-resolution phase length outside the run is refused by name`` () =
    let check config expected =
        let e = Assert.Throws<ArgumentException>(fun () -> TrainingConfig.validate config |> ignore)
        Assert.Contains(expected, e.Message)
    let config = TrainingConfig.cpu 32
    check { config with FadeImagesAt = [| { Resolution = 4; Images = 10 } |] } "FadeImagesAt = 4 is invalid; it must be a resolution of the run that fades in, a power of two from 8 to 32"
    check { config with StabiliseImagesAt = [| { Resolution = 64; Images = 10 } |] } "StabiliseImagesAt = 64 is invalid"
    check { config with StabiliseImagesAt = [| { Resolution = 8; Images = 0 } |] } "StabiliseImagesAt = 0 is invalid; it must be ≥ 1"
