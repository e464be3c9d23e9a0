using System.Globalization;
using System.Text;
using ProGan.Keras.IO;
using static TorchSharp.torch;

namespace ProGan.Keras.Serving;

/// <summary>
/// NumPy's <c>.npy</c> format (version 1.0) for float32 arrays: how latents travel to another runtime
/// (<c>numpy.load</c> in Python, the OnnxGenerate sample in C#).
/// </summary>
public static class Npy
{
    /// <summary>Writes <paramref name="values"/> (any shape, float32, C order) as a .npy file, atomically.</summary>
    public static void Write(string path, Tensor values)
    {
        using var cpu = values.detach().cpu().to_type(ScalarType.Float32).contiguous();
        string shape = cpu.shape.Length == 1 ? $"({cpu.shape[0]},)" : $"({string.Join(", ", cpu.shape.Select(d => d.ToString(CultureInfo.InvariantCulture)))})";
        string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}";
        // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64, ending in \n.
        int padded = (10 + header.Length + 1 + 63) / 64 * 64 - 10;
        header = header.PadRight(padded - 1) + "\n";
        float[] data = cpu.data<float>().ToArray();
        AtomicFile.Write(path, stream =>
        {
            using var w = new BinaryWriter(stream, Encoding.ASCII, leaveOpen: true);
            w.Write([(byte)0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)1, (byte)0]);
            w.Write((ushort)header.Length);
            w.Write(Encoding.ASCII.GetBytes(header));
            foreach (float v in data) w.Write(v);
        });
    }
}
