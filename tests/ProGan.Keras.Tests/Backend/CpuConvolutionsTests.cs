using ProGan.Keras.Backend;

namespace ProGan.Keras.Tests.Backend;

public class CpuConvolutionsTests
{
    [Fact]
    public void After_start_up_convolutions_at_uneven_channel_counts_match_float64_in_value_and_gradients()
    {
        // On a CPU where oneDNN's kernels are wrong (seen: AMD EPYC Zen 5, 4 → 5 channels, input gradient off by 42 %;
        // D's 65 → 64 minibatch-stddev convolution's output off by 6 %) this holds only because start-up turned oneDNN
        // off (a library process; the commands may then take the aligned path, tested below).
        Assert.InRange(CpuConvolutions.WorstError(float32), 0, CpuConvolutions.Tolerance);
        Assert.InRange(CpuConvolutions.WorstError(bfloat16), 0, CpuConvolutions.BFloat16Tolerance);
        Assert.Equal(CpuConvolutions.Path == ConvolutionPath.OneDnn, CpuConvolutions.Notice is null); // the banner says so
        Assert.Equal(CpuConvolutions.Path != ConvolutionPath.Reference, CpuConvolutions.OneDnn);
        Assert.NotEqual(ConvolutionPath.OneDnnAlignedChannels, CpuConvolutions.Path); // only a program opts in
    }

    [Fact]
    public void The_aligned_path_is_right_in_float32_and_bfloat16_with_oneDNN_on()
    {
        // Where start-up turned oneDNN off this runs the reference path and checks the pad and the cut alone; where
        // oneDNN is on (on the CPU above as on any other) it checks oneDNN's kernels with aligned channels.
        Tensor Conv(Tensor x, Tensor w, long s, long p, long g) => CpuConvolutions.AlignedConv2d(x, w, null, s, p, g);
        Tensor Transposed(Tensor x, Tensor w) => CpuConvolutions.AlignedConvTranspose2d(x, w, 2, 1);
        Assert.InRange(CpuConvolutions.WorstError(float32, Conv, Transposed), 0, CpuConvolutions.Tolerance);
        Assert.InRange(CpuConvolutions.WorstError(bfloat16, Conv, Transposed), 0, CpuConvolutions.BFloat16Tolerance);
    }

    [Fact]
    public void A_float32_convolution_off_by_a_thousandth_fails_the_check_and_the_float64_one_is_the_reference()
    {
        Tensor Conv(Tensor x, Tensor w, long stride, long padding, long groups, double factor) =>
            nn.functional.conv2d(x, x.dtype == float32 ? w * torch.tensor(factor, float32) : w,
                strides: [stride, stride], padding: [padding, padding], groups: groups);
        Tensor Transposed(Tensor x, Tensor w) => CpuConvolutions.ConvTranspose2d(x, w, 2, 1);

        Assert.InRange(CpuConvolutions.WorstError(float32, (x, w, s, p, g) => CpuConvolutions.Conv2d(x, w, null, s, p, g), Transposed),
            0, CpuConvolutions.Tolerance);
        Assert.InRange(CpuConvolutions.WorstError(float32, (x, w, s, p, g) => Conv(x, w, s, p, g, 1.001), Transposed), 0.9e-3, 2.1e-3);
        Assert.InRange(CpuConvolutions.WorstError(float32, (x, w, s, p, g) => CpuConvolutions.Conv2d(x, w, null, s, p, g),
            (x, w) => x.dtype == float32 ? Transposed(x, w).neg() : Transposed(x, w)), 1.9, 2.1);
    }

    [Theory]
    [InlineData(65, 64, 3, 1, 1)] // D's minibatch-stddev convolution
    [InlineData(5, 3, 4, 2, 1)]   // a stride-2 convolution with both counts uneven
    [InlineData(3, 3, 5, 1, 3)]   // depthwise
    public void AlignedConv2d_is_the_plain_convolution_in_value_and_gradients(int ci, int co, int k, int stride, int groups)
    {
        // In float64 (oneDNN takes neither side) so that the pad and the cut alone are tested.
        using var scope = torch.NewDisposeScope();
        var x = torch.randn([2, ci, 9, 9], float64, generator: torch.manual_seed(5)).requires_grad_(true);
        var w = torch.randn([co, ci / groups, k, k], float64, generator: torch.manual_seed(6)).requires_grad_(true);
        var b = torch.randn([co], float64, generator: torch.manual_seed(7)).requires_grad_(true);
        long pad = k / 2;
        var plain = nn.functional.conv2d(x, w, b, strides: [stride, stride], padding: [pad, pad], groups: groups);
        var ours = CpuConvolutions.AlignedConv2d(x, w, b, stride, pad, groups);
        var g = torch.randn(plain.shape, float64, generator: torch.manual_seed(8));
        Assert.Equal(plain.shape, ours.shape);
        Reference.AssertClose(plain.to(float32), ours.to(float32), 1e-6);
        var expected = torch.autograd.grad([(plain * g).sum()], [x, w, b]);
        var actual = torch.autograd.grad([(ours * g).sum()], [x, w, b]);
        for (int i = 0; i < 3; i++) Reference.AssertClose(expected[i].to(float32), actual[i].to(float32), 1e-6);
    }

    [Fact]
    public void AlignedConvTranspose2d_is_the_plain_transposed_convolution_in_value_and_gradients()
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.randn([2, 5, 6, 6], float64, generator: torch.manual_seed(5)).requires_grad_(true);
        var w = torch.randn([5, 3, 4, 4], float64, generator: torch.manual_seed(6)).requires_grad_(true);
        var plain = nn.functional.conv_transpose2d(x, w, strides: [2, 2], padding: [1, 1]);
        var ours = CpuConvolutions.AlignedConvTranspose2d(x, w, 2, 1);
        Assert.Equal(new long[] { 2, 3, 12, 12 }, ours.shape);
        Reference.AssertClose(plain.to(float32), ours.to(float32), 1e-6);
        var g = torch.randn(plain.shape, float64, generator: torch.manual_seed(8));
        var expected = torch.autograd.grad([(plain * g).sum()], [x, w]);
        var actual = torch.autograd.grad([(ours * g).sum()], [x, w]);
        for (int i = 0; i < 2; i++) Reference.AssertClose(expected[i].to(float32), actual[i].to(float32), 1e-6);
    }
}
