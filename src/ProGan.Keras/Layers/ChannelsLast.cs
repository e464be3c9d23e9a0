using static TorchSharp.torch;

namespace ProGan.Keras.Layers;

/// <summary>
/// The channels-last (NHWC) memory layout of a 4-D tensor: the same NCHW shape with strides <c>[H·W·C, 1, W·C, C]</c>,
/// which oneDNN's NHWC convolution kernels read without reordering. TorchSharp 0.107 binds no <c>memory_format</c>,
/// so the layout is made by permuting to NHWC, copying contiguously, and permuting the view back.
/// </summary>
public static class ChannelsLast
{
    /// <summary>Whether <paramref name="x"/> is a 4-D tensor laid out channels-last (with more than one channel).</summary>
    public static bool Is(Tensor x) => x.dim() == 4 && x.shape[1] > 1 && x.stride(1) == 1 && x.stride(3) == x.shape[1];

    /// <summary><paramref name="x"/> laid out channels-last: a new tensor (differentiable: gradients flow back in
    /// <paramref name="x"/>'s layout).</summary>
    public static Tensor To(Tensor x) => x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
}
