using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Models;

/// <summary>
/// The two models of one resolution, as in the Keras ProGAN tutorial: the straight-through model used while the
/// resolution stabilises, and the fade-in model used while it is blended in. They share every parameter.
/// </summary>
/// <typeparam name="TModel">The model type (<see cref="GeneratorModel"/> or <see cref="DiscriminatorModel"/>).</typeparam>
/// <param name="Resolution">The resolution r of both models.</param>
/// <param name="StraightThrough">The model without fade-in.</param>
/// <param name="FadeIn">The fade-in model, or null at 4² where there is nothing to fade from.</param>
public sealed record ModelPair<TModel>(int Resolution, TModel StraightThrough, TModel? FadeIn)
    where TModel : nn.Module<Tensor, Tensor>
{
    /// <summary>The model to use in the given phase.</summary>
    /// <exception cref="InvalidOperationException">A fade-in model is asked for at 4².</exception>
    public TModel Select(bool fadingIn) => !fadingIn ? StraightThrough
        : FadeIn ?? throw new InvalidOperationException($"There is no fade-in model at {Resolution}²: the lowest resolution has nothing to fade from.");
}
