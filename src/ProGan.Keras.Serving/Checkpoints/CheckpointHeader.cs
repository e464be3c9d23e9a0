using ProGan.Keras.Models;

namespace ProGan.Keras.Serving;

/// <summary>
/// Which model of a progressive generator draws images: the resolution, and whether it is the fade-in model with its
/// α (Karras et al. 2018, §3, Figure 2) or the straight-through one.
/// </summary>
/// <param name="Resolution">The output resolution r (4, 8, …).</param>
/// <param name="FadeIn">Whether the fade-in model is used (the new level blended with the upsampled previous one).</param>
/// <param name="Alpha">α of the fade-in, in [0, 1]; 1 for a straight-through model.</param>
public sealed record GeneratorPosition(int Resolution, bool FadeIn, double Alpha)
{
    /// <summary>The straight-through model at <paramref name="resolution"/>.</summary>
    public static GeneratorPosition StraightThrough(int resolution) => new(resolution, false, 1.0);

    /// <summary>Checks the position against an architecture; throws an error naming what does not fit.</summary>
    public GeneratorPosition Validate(ProGanConfig architecture)
    {
        architecture.LevelOf(Resolution);
        if (FadeIn && Resolution == 4)
            throw new ArgumentOutOfRangeException(nameof(FadeIn), FadeIn, "4² has no fade-in model; use the straight-through one.");
        if (!(Alpha is >= 0.0 and <= 1.0))
            throw new ArgumentOutOfRangeException(nameof(Alpha), Alpha, "alpha must lie in [0, 1].");
        return this;
    }

    /// <inheritdoc/>
    public override string ToString() =>
        FadeIn ? FormattableString.Invariant($"{Resolution}² fade-in, α = {Alpha:0.###}") : $"{Resolution}² straight-through";
}

/// <summary>
/// What a checkpoint says about itself, readable without its tensors: the architecture of its networks, where in
/// training it was taken (images shown, and the generator's position then, so that sampling needs no schedule), and
/// what training needs to continue from it.
/// </summary>
public sealed record CheckpointHeader
{
    /// <summary>Real images shown to the discriminator when the checkpoint was written.</summary>
    public long ImagesShown { get; init; }

    /// <summary>The architecture of G, D and the EMA generator.</summary>
    public ProGanConfig Architecture { get; init; } = null!;

    /// <summary>The model training was on: its resolution, and α during a fade-in.</summary>
    public GeneratorPosition Position { get; init; } = null!;

    /// <summary>The run's seed.</summary>
    public int Seed { get; init; }

    /// <summary>The learning rate in use (lower than configured after a non-finite retry).</summary>
    public double LearningRate { get; init; }

    /// <summary>When the checkpoint was written.</summary>
    public DateTime SavedAtUtc { get; init; }
}
