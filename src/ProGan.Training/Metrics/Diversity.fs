// A cheap guard against mode collapse: sample variation against the data's.
namespace ProGan.Training.Metrics

open TorchSharp
open ProGan.Keras.Models
open ProGan.Training.Config
open ProGan.Training.Data
open ProGan.Training.Paper

/// A cheap guard against mode collapse: how much the generator's samples vary, against how much the data varies —
/// the mean pairwise L2 distance between generated images over that between as many real images of the same level.
/// Near 1 the samples vary as the data does; near 0 they have collapsed onto a few images.
module Diversity =

    /// Below this ratio a run is warned that its generator may be collapsing.
    let collapseRatio = 0.25

    /// Images compared (64 images: 2,016 pairs, a few milliseconds).
    let images = 64

    /// Mean L2 distance between distinct images of a batch [N, C, H, W].
    let meanPairwiseDistance (batch: torch.Tensor) =
        use scope = torch.NewDisposeScope()
        let flat = batch.flatten(1L).to_type(torch.ScalarType.Float32)
        let n = flat.shape[0]
        let distances = torch.cdist(flat, flat)
        (distances.sum().item<float32>() |> float) / float (n * (n - 1L))

    /// The ratio for generated and real batches of one level.
    let ratioOf (generated: torch.Tensor) (reals: torch.Tensor) =
        meanPairwiseDistance generated / max 1e-12 (meanPairwiseDistance reals)

    /// The ratio of `generator` at `position` against the data, from the metric streams of `streams`.
    let ratio (generator: ProgressiveGenerator) (position: SchedulePosition) (data: TrainingImages) (streams: RandomStreams) (device: torch.Device) =
        let n = min images data.Count
        use z = Sampling.inputs generator.Config streams.MetricLatents n id
        use generated = (Sampling.at generator position z device).cpu()
        use reals = Minibatch.gather data (Minibatch.draw streams.MetricReals 0L position.Level n data.Count false)
        ratioOf generated reals
