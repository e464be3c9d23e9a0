using System.Buffers.Binary;
using System.Text;

namespace ProGan.Keras.Backend;

/// <summary>
/// Edits the symbol-version requirements (<c>SHT_GNU_verneed</c>) of a little-endian ELF64 shared library in memory.
/// </summary>
/// <remarks>
/// TorchSharp's <c>libLibTorchSharp.so</c> is built with GCC 13 and so requires <c>GLIBCXX_3.4.32</c>, which
/// Debian 12's libstdc++ (GCC 12) lacks. Exactly one symbol needs that version and it is only referenced, never
/// called, so marking the requirement weak (<c>VER_FLG_WEAK</c>) lets the dynamic loader accept the library with a
/// warning instead of refusing it. Nothing else in the file changes.
/// </remarks>
public static class ElfVersionPatcher
{
    /// <summary>The ELF section type of GNU version requirements.</summary>
    public const uint ShtGnuVerneed = 0x6ffffffe;

    /// <summary>The <c>vna_flags</c> bit that makes a version requirement weak.</summary>
    public const ushort VerFlagWeak = 0x2;

    /// <summary>One version requirement: which library it names, which version, and where its flags live.</summary>
    /// <param name="Library">The needed library file (for example <c>libstdc++.so.6</c>).</param>
    /// <param name="Version">The version name (for example <c>GLIBCXX_3.4.32</c>).</param>
    /// <param name="FlagsOffset">The file offset of this entry's <c>vna_flags</c> field.</param>
    /// <param name="Flags">The entry's current flags.</param>
    public sealed record VersionNeed(string Library, string Version, int FlagsOffset, ushort Flags)
    {
        /// <summary>Whether the requirement is already weak.</summary>
        public bool IsWeak => (Flags & VerFlagWeak) != 0;
    }

    /// <summary>Lists every version requirement of the ELF image.</summary>
    /// <exception cref="FormatException">The bytes are not a little-endian ELF64 file with a readable verneed section.</exception>
    public static IReadOnlyList<VersionNeed> ReadVersionNeeds(ReadOnlySpan<byte> elf)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new FormatException("Not an ELF file (bad magic).");
        if (elf[4] != 2 || elf[5] != 1)
            throw new FormatException("Only little-endian ELF64 files are supported.");

        ulong sectionTable = U64(elf, 0x28);
        int sectionSize = U16(elf, 0x3A);
        int sectionCount = U16(elf, 0x3C);
        var needs = new List<VersionNeed>();
        for (int s = 0; s < sectionCount; s++)
        {
            int header = Checked(sectionTable + (ulong)(s * sectionSize), 64, elf.Length);
            if (U32(elf, header + 4) != ShtGnuVerneed) continue;

            int offset = Checked(U64(elf, header + 24), 0, elf.Length);
            uint entryCount = U32(elf, header + 44);
            int strings = StringTableOffset(elf, sectionTable, sectionSize, (int)U32(elf, header + 40));

            int need = offset;
            for (uint n = 0; n < entryCount; n++)
            {
                Checked((ulong)need, 16, elf.Length);
                string library = CString(elf, strings + (int)U32(elf, need + 4));
                int aux = need + (int)U32(elf, need + 8);
                int auxCount = U16(elf, need + 2);
                for (int a = 0; a < auxCount; a++)
                {
                    Checked((ulong)aux, 16, elf.Length);
                    string version = CString(elf, strings + (int)U32(elf, aux + 8));
                    needs.Add(new VersionNeed(library, version, aux + 4, U16(elf, aux + 4)));
                    aux += (int)U32(elf, aux + 12);
                }
                uint next = U32(elf, need + 12);
                if (next == 0) break;
                need += (int)next;
            }
        }
        return needs;
    }

    /// <summary>
    /// Sets <c>VER_FLG_WEAK</c> on every requirement of <paramref name="version"/> and returns how many entries changed.
    /// Every other byte of <paramref name="elf"/> is left as it was.
    /// </summary>
    public static int MarkVersionWeak(Span<byte> elf, string version)
    {
        int changed = 0;
        foreach (var need in ReadVersionNeeds(elf))
        {
            if (need.Version != version || need.IsWeak) continue;
            BinaryPrimitives.WriteUInt16LittleEndian(elf.Slice(need.FlagsOffset, 2), (ushort)(need.Flags | VerFlagWeak));
            changed++;
        }
        return changed;
    }

    private static int StringTableOffset(ReadOnlySpan<byte> elf, ulong sectionTable, int sectionSize, int index)
    {
        int header = Checked(sectionTable + (ulong)(index * sectionSize), 64, elf.Length);
        return Checked(U64(elf, header + 24), 0, elf.Length);
    }

    private static string CString(ReadOnlySpan<byte> elf, int offset)
    {
        Checked((ulong)offset, 1, elf.Length);
        int end = elf[offset..].IndexOf((byte)0);
        if (end < 0) throw new FormatException("Unterminated string in the ELF string table.");
        return Encoding.ASCII.GetString(elf.Slice(offset, end));
    }

    private static int Checked(ulong offset, int length, int fileLength) =>
        offset + (ulong)length <= (ulong)fileLength
            ? (int)offset
            : throw new FormatException($"ELF offset {offset} (+{length}) lies outside the {fileLength}-byte file.");

    private static ushort U16(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt16LittleEndian(b.Slice(at, 2));
    private static uint U32(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b.Slice(at, 4));
    private static ulong U64(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt64LittleEndian(b.Slice(at, 8));
}
