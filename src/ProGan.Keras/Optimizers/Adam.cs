using ProGan.Keras.Backend;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Optimizers;

/// <summary>
/// Adam (Kingma &amp; Ba 2015), the optimizer of the paper (§A.1: α = 0.001, β₁ = 0, β₂ = 0.99, ε = 10⁻⁸): TorchSharp's
/// <see cref="TorchSharp.Modules.Adam"/> with a step whose Scalars stay alive while libtorch reads them.
/// </summary>
/// <remarks>
/// <para>TorchSharp 0.107's <c>Adam.step</c> hands six Scalars made on the fly (β₁, 1 − β₁, β₂, 1 − β₂, ε, the step
/// size) to native code for every parameter; a GC on another thread can finalize one mid-call (see
/// <see cref="Backend.Scalars"/>). This step computes the same update with the same operations in the same order —
/// m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε) — so it is
/// bit-identical to TorchSharp's, and its state, parameter groups and <c>save_state_dict</c> format are TorchSharp's
/// own (checkpoints stay as they were). Weight decay, AMSGrad and maximize, which ProGAN does not use, are refused.</para>
/// </remarks>
public sealed class Adam : TorchSharp.Modules.Adam
{
    /// <summary>Creates the optimizer over <paramref name="parameters"/>.</summary>
    public Adam(IEnumerable<TorchSharp.Modules.Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
        : base(parameters, lr, beta1, beta2, eps)
    {
    }

    /// <inheritdoc/>
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
    {
        var options = (Options)group.Options;
        if (options.weight_decay is not (null or 0.0) || options.amsgrad == true || options.maximize == true)
            throw new NotSupportedException("ProGan.Keras.Optimizers.Adam implements plain Adam: weight_decay, amsgrad and maximize are not supported.");
        double beta1 = options.beta1!.Value, beta2 = options.beta2!.Value, lr = options.LearningRate!.Value;
        using var b1 = beta1.ToScalar();
        using var b2 = beta2.ToScalar();
        using var oneMinusB1 = (1 - beta1).ToScalar();
        using var oneMinusB2 = (1 - beta2).ToScalar();
        using var eps = options.eps!.Value.ToScalar();
        foreach (var param in group.Parameters)
        {
            if (param.grad is not { } grad) continue;
            var state = (State)_state[param.Handle];
            state.step += 1;
            double correction1 = 1 - Math.Pow(beta1, state.step), correction2 = 1 - Math.Pow(beta2, state.step);
            using var sqrtCorrection2 = Math.Sqrt(correction2).ToScalar();
            using var stepSize = (-(lr / correction1)).ToScalar();
            state.exp_avg.mul_(b1).add_(grad, alpha: oneMinusB1);
            state.exp_avg_sq.mul_(b2).addcmul_(grad, grad, value: oneMinusB2);
            using var denom = state.exp_avg_sq.sqrt().div_(sqrtCorrection2).PlusInPlace(eps);
            param.addcdiv_(state.exp_avg, denom, value: stepSize);
        }
    }, closure);
}
