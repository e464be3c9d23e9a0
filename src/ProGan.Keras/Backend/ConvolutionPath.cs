namespace ProGan.Keras.Backend;

/// <summary>How libtorch's CPU convolutions run in this process (<see cref="CpuConvolutions"/>).</summary>
public enum ConvolutionPath
{
    /// <summary>oneDNN's kernels as libtorch calls them: where the start-up check found them right.</summary>
    OneDnn,

    /// <summary>
    /// oneDNN's kernels with channel counts zero-padded to <see cref="CpuConvolutions.ChannelAlignment"/>
    /// (<see cref="CpuConvolutions.Conv2d"/>): where only unevenly blocked channel counts came out wrong.
    /// </summary>
    OneDnnAlignedChannels,

    /// <summary>oneDNN off: libtorch's im2col and matrix products, right and slower.</summary>
    Reference,
}
