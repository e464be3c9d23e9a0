using ProGan.Keras.Layers;
using static TorchSharp.torch;

namespace ProGan.Keras.Models;

/// <summary>
/// Resolution changes between levels of detail, as in the reference: the fade-in's lower-resolution path in the
/// models, and the reals blended the same way in training. The operations are the layers' <see cref="Resampling"/>.
/// </summary>
public static class Resample
{
    /// <summary>Nearest-neighbour ×2 upsampling (<see cref="Resampling.Upscale2D"/>).</summary>
    public static Tensor Up(Tensor x) => Resampling.Upscale2D(x);

    /// <summary>2×2 box averaging, halving the resolution (<see cref="Resampling.Downscale2D"/>).</summary>
    public static Tensor Down(Tensor x) => Resampling.Downscale2D(x);
}
