/// Makes TorchSharp loadable before any test runs: F# code can reach `torch` before any ProGan.Keras type, and F# has
/// no module initializers, so the test framework's start is this assembly's one entry point.
namespace ProGan.Training.Tests

open Xunit.Abstractions
open Xunit.Sdk

type Startup(sink: IMessageSink) =
    inherit XunitTestFramework(sink)
    do ProGan.Training.Basics.TensorSyntax.ensureTorch ()

module private Registration =
    [<assembly: Xunit.TestFramework("ProGan.Training.Tests.Startup", "ProGan.Training.Tests")>]
    do ()
