/// Floating-point operations of one training iteration, counted from the layer shapes.
module ProGan.Bench.Flops

open ProGan.Keras.Layers
open ProGan.Keras.Models
open ProGan.Training.Config

/// 2·MACs of a k×k convolution at r×r.
let private conv (cin: int) (cout: int) (k: int) (r: int) = 2.0 * float cin * float cout * float (k * k) * float (r * r)
let private dense (i: int) (o: int) = 2.0 * float i * float o

/// The upsample-then-conv of a generator block at output side r: the model's 3×3 conv over the upsampled image, or
/// — `executed`, where WeightScaledConv2D takes its fused path — the 2×2 taps per output pixel it really computes.
let private upscaleConv (executed: bool) (cin: int) (cout: int) (r: int) =
    if executed && int64 (r / 2) >= WeightScaledConv2D.FusedUpscaleMinInputSize then conv cin cout 2 r else conv cin cout 3 r

/// The convolve-then-downscale of a discriminator block at input side r: the model's 3×3 conv at r, or — `executed`,
/// where FusedScale makes WeightScaledConv2D take its fused path — the 4×4 stride-2 conv at r/2 it really computes.
/// (Both orders count the same for the model: they differ in where LeakyReLU goes, not in multiply-adds.)
let private downscaleConv (executed: bool) (fused: bool) (cin: int) (cout: int) (r: int) =
    if executed && fused && int64 r >= WeightScaledConv2D.FusedDownscaleMinInputSize then conv cin cout 4 (r / 2) else conv cin cout 3 r

/// Forward FLOPs per image of the generator at `level`, fading in or not: of the model (the paper's network), or
/// `executed` by this implementation (fewer, where upsampling is fused into the convolution).
let generator (executed: bool) (a: ProGanConfig) (level: int) (fading: bool) =
    let nf = a.ChannelsAt
    let input = dense a.LatentSize (16 * nf 0) + conv (nf 0) (nf 0) 3 4
    let blocks = [ for l in 1 .. level -> let r = a.ResolutionOf l in upscaleConv executed (nf (l - 1)) (nf l) r + conv (nf l) (nf l) 3 r ] |> List.sum
    let toRgb = conv (nf level) a.ImageChannels 1 (a.ResolutionOf level)
    let low = if fading then conv (nf (level - 1)) a.ImageChannels 1 (a.ResolutionOf(level - 1)) else 0.0
    input + blocks + toRgb + low

/// Forward FLOPs per image of the discriminator at `level`, fading in or not: of the model, or `executed` by this
/// implementation (fewer, where FusedScale fuses the downscale into the convolution).
let discriminator (executed: bool) (a: ProGanConfig) (level: int) (fading: bool) =
    let nf = a.ChannelsAt
    let fromRgb = conv a.ImageChannels (nf level) 1 (a.ResolutionOf level)
    let low = if fading then conv a.ImageChannels (nf (level - 1)) 1 (a.ResolutionOf(level - 1)) else 0.0
    let blocks =
        [ for l in 1 .. level ->
            let r = a.ResolutionOf l
            conv (nf l) (nf l) 3 r + downscaleConv executed a.FusedScale (nf l) (nf (l - 1)) r ] |> List.sum
    let output = conv (nf 0 + 1) (nf 0) 3 4 + dense (16 * nf 0) (a.FeatureMaps 0) + dense (a.FeatureMaps 0) 1
    fromRgb + low + blocks + output

/// FLOPs per image of one iteration, with the usual conventions (a backward pass costs twice its forward pass):
/// D step = G forward + 2 D forwards (real, fake) + their backward (2·2·D), and on a minibatch that takes the gradient
///          penalty (WGAN-GP's or R1) a third D forward (the mixed or real images) + ∂D/∂x with create_graph (1·D,
///          input gradients only) + backward through that graph (2·2·D);
/// G step = G forward + D forward + D input gradients (1·D) + G backward (2·G).
/// In all 4·G + 14·D with the penalty (the paper's WGAN-GP, on every minibatch), 4·G + 8·D without. The benchmark
/// times the median step, so this counts the penalty only where every minibatch takes it (`PenaltyInterval` = 1):
/// with it on every k-th (k > 1), the median step is one without. EMA and optimiser updates not counted (they scale
/// with parameters, not images).
/// `executed` counts the multiply-adds this implementation runs (the fused upsample- and downscale-convolutions do 4
/// of the model's 9 taps): the figure to hold against the hardware's matrix-product ceiling; otherwise the model's.
let iteration (executed: bool) (config: TrainingConfig) (level: int) (fading: bool) =
    let a = config.Architecture
    let weights = TrainingConfig.lossWeights config
    let penalised = match config.Loss with WganGp -> weights.Lambda > 0.0 | _ -> weights.R1 > 0.0
    let penalty = if penalised && config.PenaltyInterval = 1 then 6.0 else 0.0
    4.0 * generator executed a level fading + (8.0 + penalty) * discriminator executed a level fading
