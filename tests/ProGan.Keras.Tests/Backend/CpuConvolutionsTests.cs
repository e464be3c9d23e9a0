using ProGan.Keras.Backend;

namespace ProGan.Keras.Tests.Backend;

public class CpuConvolutionsTests
{
    [Fact]
    public void After_start_up_convolutions_at_uneven_channel_counts_match_float64_in_value_and_gradients()
    {
        // On a CPU where oneDNN's kernels are wrong (seen: AMD EPYC Zen 5, 4 → 5 channels, input gradient off by 36 %)
        // this holds only because start-up sent the convolutions to libtorch's reference path.
        Assert.InRange(CpuConvolutions.WorstError(), 0, CpuConvolutions.Tolerance);
        Assert.Equal(CpuConvolutions.OneDnn, CpuConvolutions.Notice is null); // the banner says so whenever oneDNN is off
    }

    [Fact]
    public void A_float32_convolution_off_by_a_thousandth_fails_the_check_and_the_float64_one_is_the_reference()
    {
        Tensor Conv(Tensor x, Tensor w, long padding, double factor) =>
            nn.functional.conv2d(x, x.dtype == float32 ? w * torch.tensor(factor, float32) : w, padding: [padding, padding]);
        Tensor Transposed(Tensor x, Tensor w) => nn.functional.conv_transpose2d(x, w, strides: [2, 2], padding: [1, 1]);

        Assert.InRange(CpuConvolutions.WorstError((x, w, p) => Conv(x, w, p, 1.0), Transposed), 0, CpuConvolutions.Tolerance);
        Assert.InRange(CpuConvolutions.WorstError((x, w, p) => Conv(x, w, p, 1.001), Transposed), 0.9e-3, 2.1e-3);
        Assert.InRange(CpuConvolutions.WorstError((x, w, p) => Conv(x, w, p, 1.0),
            (x, w) => x.dtype == float32 ? Transposed(x, w).neg() : Transposed(x, w)), 1.9, 2.1);
    }
}
