// Added to C# projects by the ProGan.Keras package (buildTransitive/ProGan.Keras.targets).
namespace ProGan.Keras.Generated
{
    internal static class ProGanKerasModuleInitializer
    {
        /// <summary>Makes TorchSharp loadable before any code of this assembly runs.</summary>
#pragma warning disable CA2255
        [System.Runtime.CompilerServices.ModuleInitializer]
#pragma warning restore CA2255
        internal static void Run() => global::ProGan.Keras.Backend.TorchBackend.Initialize();
    }
}
