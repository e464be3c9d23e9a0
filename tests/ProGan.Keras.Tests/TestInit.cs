using System.Runtime.CompilerServices;
using ProGan.Keras.Backend;

namespace ProGan.Keras.Tests;

internal static class TestInit
{
    /// <summary>Tests may touch <c>torch</c> before any library type; make the backend loadable first.</summary>
    [ModuleInitializer]
    internal static void Run() => TorchBackend.Initialize();
}
