using System.Runtime;

namespace ProGan.Keras.Backend;

/// <summary>
/// Runs TorchSharp code that makes Scalars and Tensors of its own which no caller can keep alive (its TensorBoard
/// writer's histogram and image summaries) with garbage collection held off, so that none of them can be finalized
/// while libtorch still reads it (see <see cref="Scalars"/>); they are collected after.
/// </summary>
/// <remarks>
/// A no-GC region (<see cref="GC.TryStartNoGCRegion(long)"/>) of <see cref="Budget"/> bytes: the runtime may collect
/// once as it starts, between native calls. Work that allocates more than the budget ends the region early, and the
/// rest of it runs as it would without the fence. Regions are process-wide, so fences are taken one at a time; a fence
/// within a fence runs inside the outer one. For rare work (a tick's summaries), not for training steps: those keep
/// their own Scalars alive and need no fence.
/// </remarks>
public static class GcFence
{
    /// <summary>Managed bytes the fenced work may allocate before the region ends (16 MiB).</summary>
    public const long Budget = 16L << 20;

    private static readonly object Gate = new();
    [ThreadStatic] private static int depth;

    /// <summary>Runs <paramref name="work"/> with garbage collection held off.</summary>
    public static void Run(Action work)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (depth > 0) { work(); return; }
        lock (Gate)
        {
            bool started = GCSettings.LatencyMode != GCLatencyMode.NoGCRegion && GC.TryStartNoGCRegion(Budget);
            depth++;
            try { work(); }
            finally
            {
                depth--;
                if (started && GCSettings.LatencyMode == GCLatencyMode.NoGCRegion) GC.EndNoGCRegion();
            }
        }
    }
}
