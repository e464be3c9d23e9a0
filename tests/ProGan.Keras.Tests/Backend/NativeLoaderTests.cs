using System.Runtime.InteropServices;
using ProGan.Keras.Backend;

namespace ProGan.Keras.Tests.Backend;

public class NativeLoaderTests
{
    private static string ShippedLibrary()
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
        return Path.Combine(dir, "libLibTorchSharp.so");
    }

    [Fact]
    public void Backend_is_usable_after_initialize()
    {
        string what = TorchBackend.Initialize();
        Assert.False(string.IsNullOrEmpty(what));
        using var x = torch.arange(6, dtype: float32).reshape(2, 3);
        Assert.Equal(15f, x.sum().item<float>());
        Assert.Same(what, TorchBackend.Initialize()); // idempotent: loads once
    }

    [SkippableFact]
    public void Patcher_marks_exactly_the_GLIBCXX_3_4_32_entry_weak_and_changes_nothing_else()
    {
        Skip.IfNot(RuntimeInformation.IsOSPlatform(OSPlatform.Linux), "the shipped libLibTorchSharp.so is a Linux library");
        byte[] original = File.ReadAllBytes(ShippedLibrary());
        var before = ElfVersionPatcher.ReadVersionNeeds(original);
        var target = Assert.Single(before, n => n.Version == "GLIBCXX_3.4.32");
        Assert.Equal("libstdc++.so.6", target.Library);
        Assert.False(target.IsWeak);

        byte[] patched = (byte[])original.Clone();
        Assert.Equal(1, ElfVersionPatcher.MarkVersionWeak(patched, "GLIBCXX_3.4.32"));

        var changedBytes = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToList();
        int flagsByte = Assert.Single(changedBytes);
        Assert.Equal(target.FlagsOffset, flagsByte); // little-endian: the weak bit (0x2) lives in the low byte
        Assert.Equal(original[flagsByte] | ElfVersionPatcher.VerFlagWeak, patched[flagsByte]);

        var after = ElfVersionPatcher.ReadVersionNeeds(patched);
        Assert.Equal(before.Count, after.Count);
        for (int i = 0; i < before.Count; i++)
            Assert.Equal(before[i].Version == "GLIBCXX_3.4.32", after[i].IsWeak && !before[i].IsWeak);

        Assert.Equal(0, ElfVersionPatcher.MarkVersionWeak(patched, "GLIBCXX_3.4.32")); // already weak: no-op
    }

    [Fact]
    public void Patcher_rejects_a_file_that_is_not_ELF64()
    {
        var e = Assert.Throws<FormatException>(() => ElfVersionPatcher.ReadVersionNeeds(new byte[128]));
        Assert.Contains("ELF", e.Message);
    }

    [SkippableFact]
    public void Patcher_rejects_a_truncated_library()
    {
        Skip.IfNot(RuntimeInformation.IsOSPlatform(OSPlatform.Linux), "the shipped libLibTorchSharp.so is a Linux library");
        byte[] cut = File.ReadAllBytes(ShippedLibrary())[..4096];
        Assert.Throws<FormatException>(() => ElfVersionPatcher.ReadVersionNeeds(cut));
    }
}
