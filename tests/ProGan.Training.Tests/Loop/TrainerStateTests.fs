module ProGan.Training.Tests.Loop.TrainerStateTests

open System
open Xunit
open ProGan.Training.Config
open ProGan.Training.Loop
open ProGan.Training.Tests.Fixtures

/// `tiny` with a decay, so that the configured rate changes within a level.
let decaying = { tiny with LearningRateDecay = 0.5; LearningRates = [| { Resolution = 4; Rate = 0.002 } |] }

[<Fact>]
let ``the learning rate in use is the level's rate times the decay times the retry scale`` () =
    let total = TrainingConfig.totalImages decaying
    for images in [ 0L; 63L; 64L; 100L; total * 3L / 4L ] do
        let state = TrainerState.start |> TrainerState.jumpTo images |> TrainerState.withRateScale 0.25
        let resolution = (Schedule.at decaying images).Resolution
        let levelRate = if resolution = 4 then 0.002 else decaying.LearningRate
        Assert.Equal(levelRate * TrainingConfig.decayAt decaying images * 0.25, TrainerState.rate decaying state, 15)

[<Fact>]
let ``a new phase is found at its first image and not before, and is gone once entered`` () =
    // tiny: 4² stabilises through its 64th image (the reference's lod holds its last image), then 8² fades in.
    let before = TrainerState.start |> TrainerState.afterStep 64 None
    Assert.Equal(None, TrainerState.newPhase tiny before)
    let after = before |> TrainerState.afterStep 8 None
    match TrainerState.newPhase tiny after with
    | Some position ->
        Assert.Equal(1, position.PhaseIndex)
        Assert.Equal((8, FadeIn), (position.Resolution, position.Phase))
    | None -> failwith "the fade-in after 64 images was not found"
    let entered = TrainerState.enterPhase tiny after
    Assert.Equal(1, entered.OptimizerPhase)
    Assert.Equal(None, TrainerState.newPhase tiny entered)

[<Fact>]
let ``a step without a gradient penalty keeps the last one; a step with one replaces it`` () =
    let penalised = TrainerState.start |> TrainerState.afterStep 8 (Some 0.75)
    Assert.Equal(0.75, (penalised |> TrainerState.afterStep 8 None).LastPenalty)
    Assert.Equal(0.5, (penalised |> TrainerState.afterStep 8 (Some 0.5)).LastPenalty)
    Assert.Equal(24L, (penalised |> TrainerState.afterStep 8 None |> TrainerState.afterStep 8 None).ImagesShown)

[<Fact>]
let ``a checkpoint restores the phase of its position and a retry's lowered rate as the scale`` () =
    let images = 100L // 8² fade-in
    let halved = TrainerState.start |> TrainerState.jumpTo images |> TrainerState.withRateScale 0.125
    let restored = TrainerState.restored decaying images (TrainerState.rate decaying halved) TrainerState.start
    Assert.Equal(images, restored.ImagesShown)
    Assert.Equal(0.125, restored.RateScale, 12)
    Assert.Equal((Schedule.at decaying images).PhaseIndex, restored.OptimizerPhase)
    // A checkpoint written at rate 0 (the decay's end) carries no scale: 1.
    Assert.Equal(1.0, (TrainerState.restored decaying images 0.0 halved).RateScale)

[<Fact>]
let ``a scale outside (0, 1] and a negative position are refused naming the argument`` () =
    for scale in [ 0.0; -0.5; 1.5; nan ] do
        let e = Assert.Throws<ArgumentException>(fun () -> TrainerState.withRateScale scale TrainerState.start |> ignore)
        Assert.Equal("scale", e.ParamName)
    Assert.Equal("images", Assert.Throws<ArgumentException>(fun () -> TrainerState.jumpTo -1L TrainerState.start |> ignore).ParamName)
