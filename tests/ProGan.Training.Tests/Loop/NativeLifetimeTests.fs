/// Native handles live as long as libtorch reads them (issue: random `c10::Scalar` faults of long runs): no Scalar or
/// Tensor of a training step, of any loss or option, or of a whole run's upkeep (samples, checkpoints, metrics, report)
/// is left to the finalizer, which a GC on another thread runs while libtorch may still read it. `FinalizerAudit`
/// sees TorchSharp's own temporaries too; the assembly runs its tests one at a time, so the count is this test's.
module ProGan.Training.Tests.Loop.NativeLifetimeTests

open System
open Xunit
open TorchSharp
open ProGan.Keras.Backend
open ProGan.Training.Config
open ProGan.Training.Data
open ProGan.Training.Loop
open ProGan.Training.Tests.Fixtures

let private audit (work: unit -> unit) =
    let struct (scalars, tensors) = FinalizerAudit.Measure(fun () -> work ())
    scalars, tensors

/// Every loss and option a step can take, each trained through a stabilise and a fade-in phase.
let options : obj[] seq =
    [ "cpu preset (logistic, lazy R1)", { tiny with Loss = Logistic; R1Weight = 10.0; PenaltyInterval = 4 }
      "wgan-gp", tiny
      "lsgan", { tiny with Loss = Lsgan; R1Weight = 0.0 }
      "hinge", { tiny with Loss = Hinge; R1Weight = 0.0 }
      "DiffAugment", { tiny with Augment = Augmentation.all }
      "mirror", { tiny with Mirror = true }
      "bfloat16", { tiny with Precision = BFloat16 }
      "AC-GAN", { tiny with Labels = ShapeClasses; Architecture = tiny.Architecture.With(labelSize = 2) } ]
    |> Seq.map (fun (name, config) -> [| box name; box config |])

[<Theory>]
[<MemberData(nameof options)>]
let ``A training step leaves no Scalar and no Tensor to the finalizer`` (name: string) (config: TrainingConfig) =
    let config = { config with StabiliseImages = 32; FadeImages = 32 }
    let data = TrainingData.load config ignore Threading.CancellationToken.None
    use trainer = new Trainer(config, data, torch.CPU)
    trainer.Step() |> ignore // the first step builds what later steps reuse
    let phases = Collections.Generic.HashSet<Phase>()
    let left = audit (fun () -> for _ in 1 .. 10 do (phases.Add trainer.Position.Phase |> ignore; trainer.Step() |> ignore))
    Assert.True(phases.Count = 2, sprintf "%s: the steps covered %A, not both phases" name (List.ofSeq phases))
    Assert.Equal((0L, 0L), left)

/// TensorBoard's summaries are TorchSharp's code, whose temporaries nobody can keep alive: they run with the GC held
/// off (`GcFence`) and are finalized after, so the audit leaves them out.
[<Fact>]
let ``A whole run with its samples, checkpoints, metrics and report leaves no Scalar to the finalizer`` () =
    use folder = new TempFolder()
    let scalars, _ = audit (fun () -> train { measured with TensorBoard = false } folder.Path false None |> ignore)
    Assert.Equal(0L, scalars)
