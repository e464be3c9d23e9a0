using System.Diagnostics.Tracing;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Backend;

/// <summary>
/// Counts the TorchSharp <see cref="Scalar"/>s and <see cref="Tensor"/>s whose native memory the finalizer frees while
/// a piece of work runs: each one is a native handle nobody disposed, and so one that a GC could free while libtorch
/// still reads it (see <see cref="Scalars"/>). A training step should leave none.
/// </summary>
/// <remarks>
/// Listens to the runtime's own <c>FinalizeObject</c> events (the GC keyword at verbose level, delivered in-process by
/// an <see cref="EventListener"/>), so it sees TorchSharp's internal temporaries too, which no wrapper could. For tests
/// and diagnostics: while it listens, every GC is reported, which costs time.
/// </remarks>
public sealed class FinalizerAudit : EventListener
{
    private const string RuntimeSource = "Microsoft-Windows-DotNETRuntime";
    private const EventKeywords GcKeyword = (EventKeywords)0x1;

    private static readonly ulong ScalarType = (ulong)typeof(Scalar).TypeHandle.Value;
    private static readonly ulong TensorType = (ulong)typeof(Tensor).TypeHandle.Value;
    private static readonly ulong ParameterType = (ulong)typeof(TorchSharp.Modules.Parameter).TypeHandle.Value;

    private long scalars, tensors, gcEnds;

    /// <summary>Scalars finalized since the audit began.</summary>
    public long FinalizedScalars => Interlocked.Read(ref scalars);

    /// <summary>Tensors (and parameters) finalized since the audit began.</summary>
    public long FinalizedTensors => Interlocked.Read(ref tensors);

    /// <summary>Runs <paramref name="work"/> and returns how many Scalars and Tensors it left to the finalizer.</summary>
    /// <remarks>Collects before and after, and waits until the runtime has delivered the events of the last collection.</remarks>
    public static (long Scalars, long Tensors) Measure(Action work)
    {
        using var audit = new FinalizerAudit();
        audit.Settle();
        long s0 = audit.FinalizedScalars, t0 = audit.FinalizedTensors;
        work();
        audit.Settle();
        return (audit.FinalizedScalars - s0, audit.FinalizedTensors - t0);
    }

    /// <summary>Collects, runs the pending finalizers, collects again, and waits (up to 30 s) for those events.</summary>
    public void Settle()
    {
        long target = Interlocked.Read(ref gcEnds) + 2;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Interlocked.Read(ref gcEnds) < target)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("The runtime delivered no GC events within 30 s; is EventPipe disabled (DOTNET_EnableEventPipe=0)?");
            Thread.Sleep(10);
        }
    }

    /// <inheritdoc/>
    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == RuntimeSource) EnableEvents(source, EventLevel.Verbose, GcKeyword);
    }

    /// <inheritdoc/>
    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName is null) return;
        if (e.EventName.StartsWith("GCEnd", StringComparison.Ordinal)) Interlocked.Increment(ref gcEnds);
        else if (e.EventName == "FinalizeObject" && e.Payload is { } payload && e.PayloadNames is { } names)
        {
            var type = payload[names.IndexOf("TypeID")] switch { IntPtr p => (ulong)p, var o => Convert.ToUInt64(o) };
            if (type == ScalarType) Interlocked.Increment(ref scalars);
            else if (type == TensorType || type == ParameterType) Interlocked.Increment(ref tensors);
        }
    }
}
