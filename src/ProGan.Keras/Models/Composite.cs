using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Models;

/// <summary>
/// The model that trains the generator through the discriminator, as in the Keras tutorial: <c>D(G(z))</c>, or
/// <c>D(T(G(z)))</c> with a differentiable transformation <c>T</c> between them (DiffAugment, Zhao et al. 2020).
/// Only the generator is registered as a sub-module, so <c>parameters()</c> are G's alone, and the discriminator's
/// parameters are frozen while the forward pass runs, so G's step neither reads gradients into nor changes D.
/// </summary>
public sealed class Composite : nn.Module<Tensor, Tensor>
{
    private readonly GeneratorModel generator;
    private readonly DiscriminatorModel discriminatorModel; // deliberately not registered: not trained here
    private readonly Func<Tensor, Tensor>? between;

    /// <summary>Creates the composite of a generator model and a discriminator model of the same resolution.</summary>
    /// <param name="generator">G at one resolution and phase: the model whose parameters the composite trains.</param>
    /// <param name="discriminator">D at the same resolution and phase: scores G's images, frozen.</param>
    /// <param name="between">
    /// A differentiable transformation of the generated images before D scores them (DiffAugment's); none by default.
    /// </param>
    public Composite(GeneratorModel generator, DiscriminatorModel discriminator, Func<Tensor, Tensor>? between = null)
        : base($"Composite{generator.Resolution}")
    {
        if (generator.Resolution != discriminator.Resolution)
            throw new ArgumentException(
                $"Composite needs models of one resolution; got generator {generator.Resolution}² and discriminator {discriminator.Resolution}².");
        this.generator = generator;
        discriminatorModel = discriminator;
        this.between = between;
        register_module(nameof(generator), generator);
    }

    /// <summary>The generator trained through this model.</summary>
    public GeneratorModel Generator => generator;

    /// <summary>The discriminator that scores the generated images.</summary>
    public DiscriminatorModel Discriminator => discriminatorModel;

    /// <summary>Scores generated images: <c>D(G(z))</c> (or <c>D(T(G(z)))</c>), shape <c>[N, 1]</c>.</summary>
    public override Tensor forward(Tensor latent)
    {
        var images = generator.call(latent);
        if (between is not null) images = between(images);
        using (Trainability.Freeze(discriminatorModel))
            return discriminatorModel.call(images);
    }
}

/// <summary>Temporarily freezing a module's parameters (Keras <c>trainable = False</c>).</summary>
public static class Trainability
{
    /// <summary>
    /// Turns off <c>requires_grad</c> on every parameter of <paramref name="module"/> until the returned handle is
    /// disposed, then restores each parameter's previous setting. Gradients still flow through the module to its input.
    /// </summary>
    public static IDisposable Freeze(nn.Module module)
    {
        var previous = module.parameters().Select(p => (p, p.requires_grad)).ToList();
        foreach (var (p, _) in previous) p.requires_grad = false;
        return new Restore(previous);
    }

    private sealed class Restore(List<(TorchSharp.Modules.Parameter p, bool requiresGrad)> previous) : IDisposable
    {
        public void Dispose()
        {
            foreach (var (p, requiresGrad) in previous) p.requires_grad = requiresGrad;
        }
    }
}
