using System.Runtime.InteropServices;
using ProGan.Keras.Backend;

namespace ProGan.Keras.Tests.Backend;

public class HostAllocatorTests
{
    /// <summary>glibc's <c>struct mallinfo2</c> (2.33+): hblks/hblkhd count the blocks served by mmap.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public nuint Arena, OrdBlks, SmBlks, HBlks, HBlkHd, UsmBlks, FsmBlks, UordBlks, FordBlks, KeepCost;
    }

    [DllImport("libc", EntryPoint = "mallinfo2")]
    private static extern MallInfo2 Mallinfo2();

    [Fact]
    public void After_tuning_large_tensors_come_from_the_heap_and_freed_memory_is_reused()
    {
        if (!OperatingSystem.IsLinux()) return; // glibc only; elsewhere the call is a documented no-op
        Assert.True(HostAllocator.RetainFreedMemory());
        Assert.True(HostAllocator.RetainFreedMemory()); // idempotent
        const long Floats = 12L << 20; // 48 MiB: above glibc's largest mmap threshold (32 MiB)
        var start = Mallinfo2();
        var heap = new List<ulong>();
        for (int step = 0; step < 30; step++)
        {
            using var a = torch.ones(Floats);
            using var b = torch.ones(Floats / 2);
            var now = Mallinfo2();
            Assert.Equal(start.HBlkHd, now.HBlkHd); // not one byte more mmapped
            heap.Add((ulong)now.Arena >> 20);
        }
        // Steps that allocate the same shapes settle: the heap grows for a few (glibc fits the 64-byte-aligned blocks
        // around small allocations made in between), then is reused as it is.
        Assert.True(heap[0] >= 72, $"the first step's 72 MiB are not in the heap ({heap[0]} MiB)");
        Assert.True(heap[^10..].All(h => h == heap[^1]), $"heap MiB by step: {string.Join(" ", heap)}");
    }
}
