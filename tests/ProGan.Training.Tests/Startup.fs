/// Makes TorchSharp loadable before any test runs: F# code can reach `torch` before any ProGan.Keras type, and F# has
/// no module initializers, so the test framework's start is this assembly's one entry point. The tests run the commands
/// in this process, and each command takes the aligned-channels path where the CPU needs it
/// (`CpuConvolutions.UseAlignedChannelsWhereRight`): taken here, before any test, so that no test sees the path change
/// between two runs it compares.
namespace ProGan.Training.Tests

open Xunit.Abstractions
open Xunit.Sdk

type Startup(sink: IMessageSink) =
    inherit XunitTestFramework(sink)
    do
        ProGan.Training.Basics.TensorSyntax.ensureTorch ()
        ProGan.Keras.Backend.CpuConvolutions.UseAlignedChannelsWhereRight() |> ignore

module private Registration =
    [<assembly: Xunit.TestFramework("ProGan.Training.Tests.Startup", "ProGan.Training.Tests")>]
    do ()
