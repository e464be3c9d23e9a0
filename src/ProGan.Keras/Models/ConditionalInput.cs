using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Models;

/// <summary>
/// The input of a conditional generator (<see cref="ProGanConfig.LabelSize"/> &gt; 0) and the two parts of its
/// discriminator's output, as the reference's <c>G_paper</c> / <c>D_paper</c> take and give them with
/// <c>label_size</c>: the latent followed by a one-hot label; the score followed by the class logits.
/// </summary>
public static class ConditionalInput
{
    /// <summary>
    /// <c>concat([latent, one_hot(label, classes)])</c>: <paramref name="latent"/> <c>[N, L]</c> and class indices
    /// <paramref name="labels"/> <c>[N]</c> (int64) as the generator's input <c>[N, L + classes]</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The shapes do not match, or a label is outside [0, classes).</exception>
    public static Tensor Of(Tensor latent, Tensor labels, int classes)
    {
        if (classes < 1) throw new ArgumentOutOfRangeException(nameof(classes), classes, "classes must be ≥ 1.");
        if (labels.dim() != 1 || latent.dim() != 2 || labels.shape[0] != latent.shape[0])
            throw new ArgumentException($"Expected latent [N, L] and labels [N]; got [{string.Join(", ", latent.shape)}] and [{string.Join(", ", labels.shape)}].", nameof(labels));
        if (labels.numel() > 0 && (labels.min().item<long>() < 0 || labels.max().item<long>() >= classes))
            throw new ArgumentException($"Every label must be in [0, {classes}).", nameof(labels));
        using var scope = NewDisposeScope();
        var oneHot = nn.functional.one_hot(labels.to(latent.device), classes).to_type(latent.dtype);
        return cat([latent, oneHot], 1).MoveToOuterDisposeScope();
    }

    /// <summary>The score column <c>[N, 1]</c> of a discriminator's output <c>[N, 1 + K]</c>.</summary>
    public static Tensor Score(Tensor discriminatorOutput) => discriminatorOutput.narrow(1, 0, 1);

    /// <summary>The class logits <c>[N, K]</c> of a discriminator's output <c>[N, 1 + K]</c>.</summary>
    public static Tensor ClassLogits(Tensor discriminatorOutput) =>
        discriminatorOutput.narrow(1, 1, discriminatorOutput.shape[1] - 1);
}
