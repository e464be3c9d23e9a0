namespace ProGan.Keras.Tests;

/// <summary>Independent computations on plain arrays, and tensor helpers, for checking the layers.</summary>
internal static class Reference
{
    public static float[] Values(Tensor t) => t.detach().cpu().contiguous().data<float>().ToArray();

    public static void AssertClose(float[] expected, float[] actual, double tolerance = 1e-5)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance * (1 + Math.Abs(expected[i])),
                $"element {i}: expected {expected[i]}, got {actual[i]}");
    }

    public static void AssertClose(Tensor expected, Tensor actual, double tolerance = 1e-5)
    {
        Assert.Equal(expected.shape, actual.shape);
        AssertClose(Values(expected), Values(actual), tolerance);
    }

    /// <summary>Pixel norm on an NCHW array: x / sqrt(mean_c x² + ε).</summary>
    public static float[] PixelNorm(float[] x, int n, int c, int hw, double eps)
    {
        var y = new float[x.Length];
        for (int b = 0; b < n; b++)
            for (int p = 0; p < hw; p++)
            {
                double ss = 0;
                for (int k = 0; k < c; k++) ss += x[(b * c + k) * hw + p] * (double)x[(b * c + k) * hw + p];
                double inv = 1.0 / Math.Sqrt(ss / c + eps);
                for (int k = 0; k < c; k++) y[(b * c + k) * hw + p] = (float)(x[(b * c + k) * hw + p] * inv);
            }
        return y;
    }

    /// <summary>The minibatch-stddev statistic of each sample, by the reference's grouping (group of sample n is n mod N/G).</summary>
    public static double[] MinibatchStdevPerSample(float[] x, int n, int c, int hw, int groupSize, double eps)
    {
        int g = Math.Min(groupSize, n), m = n / g;
        var perGroup = new double[m];
        for (int grp = 0; grp < m; grp++)
        {
            double total = 0;
            for (int k = 0; k < c * hw; k++)
            {
                double mean = 0;
                for (int j = 0; j < g; j++) mean += x[(j * m + grp) * c * hw + k];
                mean /= g;
                double v = 0;
                for (int j = 0; j < g; j++) { double d = x[(j * m + grp) * c * hw + k] - mean; v += d * d; }
                total += Math.Sqrt(v / g + eps);
            }
            perGroup[grp] = total / (c * hw);
        }
        return Enumerable.Range(0, n).Select(s => perGroup[s % m]).ToArray();
    }

    /// <summary>Bit-for-bit equality of two tensors (same shape, every element equal).</summary>
    public static bool Identical(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    public static void AssertIdentical(Tensor expected, Tensor actual) =>
        Assert.True(Identical(expected, actual), $"tensors differ: max |Δ| = {(expected.shape.SequenceEqual(actual.shape) ? (expected - actual).abs().max().item<float>() : float.NaN)}");
}
