using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Backend;

/// <summary>
/// The one entry point that makes TorchSharp usable, and the device the library computes on.
/// </summary>
/// <remarks>
/// <see cref="Initialize"/> runs automatically the first time any ProGan.Keras type is used (a module initializer), so C#
/// code never calls it by hand. Code that may touch <c>TorchSharp.torch</c> before any ProGan.Keras type — F# scripts,
/// notebooks, F# programs (F# has no module initializers) — calls it once at its entry point. It is idempotent and
/// thread-safe.
/// </remarks>
public static class TorchBackend
{
    private static readonly Lazy<string> Loaded = new(LoadOnce, LazyThreadSafetyMode.ExecutionAndPublication);
    private static Device? device;

    /// <summary>
    /// Loads TorchSharp's native backend, patching a cached copy only where the system needs it, and checks its CPU
    /// convolutions (<see cref="CpuConvolutions"/>).
    /// </summary>
    /// <returns>A description of what was loaded (the patched copy's path, or that nothing was patched).</returns>
    public static string Initialize() => Loaded.Value;

    /// <summary>True when the native library had to be patched on this machine.</summary>
    public static bool WasPatched { get; private set; }

    /// <summary>
    /// The device models and tensors are created on: the <c>PROGAN_DEVICE</c> environment variable when set
    /// (<c>cpu</c>, <c>cuda</c>, <c>cuda:1</c>), otherwise CUDA when TorchSharp sees a GPU, otherwise the CPU.
    /// Settable at run time to override.
    /// </summary>
    public static Device Device
    {
        get
        {
            Initialize();
            return device ??= DefaultDevice();
        }
        set => device = value ?? throw new ArgumentNullException(nameof(value));
    }

    private static Device DefaultDevice()
    {
        string? requested = Environment.GetEnvironmentVariable("PROGAN_DEVICE");
        if (!string.IsNullOrWhiteSpace(requested))
        {
            try { return torch.device(requested.Trim()); }
            catch (Exception e)
            {
                throw new ArgumentException(
                    $"PROGAN_DEVICE='{requested}' is not a device TorchSharp knows; use 'cpu', 'cuda' or 'cuda:N'.", e);
            }
        }
        return torch.cuda.is_available() ? torch.CUDA : torch.CPU;
    }

    private static string LoadOnce()
    {
        var outcome = NativeLoader.Load();
        WasPatched = outcome.Patched;
        // Touch TorchSharp now so that any remaining load failure surfaces here, with the trace attached.
        try
        {
            _ = torch.__version__;
            using var probe = torch.zeros(1);
        }
        catch (Exception e) when (e is not InvalidOperationException)
        {
            throw new InvalidOperationException($"TorchSharp failed to start after the native load.\n{outcome.Trace}", e);
        }
        CpuConvolutions.Apply();
        return outcome.Patched ? $"patched copy: {outcome.Library}" : $"as shipped: {outcome.Library}";
    }
}

internal static class ModuleInit
{
    /// <summary>Every use of the library first makes TorchSharp loadable.</summary>
    /// <remarks>A library module initializer is deliberate here: no user call can be relied on to come first.</remarks>
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Run() => TorchBackend.Initialize();
}
