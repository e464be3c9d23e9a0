// A ProGAN generator exported by `dotnet fsi export.fsx` (or TrainedGenerator.ExportOnnx), run by ONNX Runtime alone:
//   dotnet run -- MODEL.onnx [--latents FILE.npy | --count 16 --seed 7] [--out grid.png]
// With --latents (generate.fsx writes latents-seed<N>.npy beside its grid) it draws the very images generate.fsx drew.
using System.Globalization;
using System.Text;
using Microsoft.ML.OnnxRuntime;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

if (args.Length == 0 || args[0].StartsWith("--"))
{
    Console.Error.WriteLine("usage: OnnxGenerate MODEL.onnx [--latents FILE.npy | --count N --seed S] [--out grid.png]");
    return 2;
}
string model = args[0], output = "grid.png";
string? latentsFile = null;
int count = 16, seed = 7;
for (int i = 1; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--latents": latentsFile = args[i + 1]; break;
        case "--count": count = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--seed": seed = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--out": output = args[i + 1]; break;
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
}

using var session = new InferenceSession(model);
var metadata = session.ModelMetadata.CustomMetadataMap;
int latentSize = (int)session.InputMetadata["latent"].Dimensions[1];
Console.WriteLine($"{Path.GetFileName(model)}: {metadata.GetValueOrDefault("resolution")}², fade-in {metadata.GetValueOrDefault("fade_in")}, α {metadata.GetValueOrDefault("alpha")}, latent {latentSize}");

// The latents: from a .npy file, or N(0, 1) draws of this program's own (Box–Muller over System.Random; other images
// than TorchSharp's generator gives for the same seed).
float[] latents;
if (latentsFile is not null) (latents, count) = ReadNpy(latentsFile, latentSize);
else
{
    var random = new Random(seed);
    latents = new float[count * latentSize];
    for (int i = 0; i < latents.Length; i++)
        latents[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
}

using var input = OrtValue.CreateTensorValueFromMemory(latents, [count, latentSize]);
using var runOptions = new RunOptions();
using var results = session.Run(runOptions, ["latent"], [input], ["image"]);
long[] shape = results[0].GetTensorTypeAndShape().Shape;           // [count, channels, r, r], in [−1, 1]
float[] images = results[0].GetTensorDataAsSpan<float>().ToArray();
WriteGrid(output, images, (int)shape[0], (int)shape[1], (int)shape[2]);
Console.WriteLine($"wrote {output}: {count} images of {shape[2]}×{shape[3]}");
return 0;

// The grid generate.fsx writes: about square, 1-pixel gaps on a dark background, each image enlarged (nearest
// neighbour) to at least 64 pixels; pixel = round((v + 1)·127.5), clamped to 0…255.
static void WriteGrid(string path, float[] images, int n, int channels, int r)
{
    int columns = (int)Math.Ceiling(Math.Sqrt(n)), rows = (n + columns - 1) / columns;
    int scale = Math.Max(1, (64 + r - 1) / r), cell = r * scale, gap = 1;
    int width = columns * (cell + gap) + gap, height = rows * (cell + gap) + gap;
    var rgb = new byte[width * height * 3];
    Array.Fill(rgb, (byte)32);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < cell; y++)
            for (int x = 0; x < cell; x++)
                for (int c = 0; c < 3; c++)
                {
                    float v = images[((i * channels + Math.Min(c, channels - 1)) * r + y / scale) * r + x / scale];
                    float pixel = Math.Clamp(MathF.Round((v + 1f) * 127.5f, MidpointRounding.ToEven), 0f, 255f);
                    int top = gap + i / columns * (cell + gap), left = gap + i % columns * (cell + gap);
                    rgb[((top + y) * width + left + x) * 3 + c] = (byte)pixel;
                }
    using var image = Image.LoadPixelData<Rgb24>(rgb, width, height);
    image.SaveAsPng(path);
}

// NumPy .npy, float32, C order, [n, latentSize].
static (float[] values, int rows) ReadNpy(string path, int latentSize)
{
    byte[] bytes = File.ReadAllBytes(path);
    if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
        throw new InvalidDataException($"{path} is not a .npy file.");
    int headerLength = bytes[6] == 1 ? BitConverter.ToUInt16(bytes, 8) : BitConverter.ToInt32(bytes, 8);
    int start = bytes[6] == 1 ? 10 + headerLength : 12 + headerLength;
    string header = Encoding.ASCII.GetString(bytes, start - headerLength, headerLength);
    if (!header.Contains("'<f4'") || header.Contains("'fortran_order': True"))
        throw new InvalidDataException($"{path} must hold float32 values in C order; its header is {header.Trim()}.");
    var values = new float[(bytes.Length - start) / 4];
    Buffer.BlockCopy(bytes, start, values, 0, values.Length * 4);
    if (values.Length % latentSize != 0)
        throw new InvalidDataException($"{path} holds {values.Length} values, not rows of {latentSize}.");
    return (values, values.Length / latentSize);
}
