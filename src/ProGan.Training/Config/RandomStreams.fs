// Every random stream of a run, each seeded from the run's one seed.
namespace ProGan.Training.Config

/// Every random stream of a run, each seeded from the run's one seed at its own offset, so that one stream's draws
/// never shift another's: changing how many minibatches are drawn leaves the sample grids' latents alone, and a
/// metric computed mid-run does not change the training that follows.
type RandomStreams =
    { /// Initial weights (libtorch's global generator, `torch.manual_seed`).
      Weights: int64
      /// Minibatch indices and mirroring.
      Data: uint64
      /// Latents and the gradient penalty's interpolation weights during training.
      Noise: uint64
      /// The fixed latents of every sample grid.
      SampleGrid: uint64
      /// The reals a metric compares against.
      MetricReals: uint64
      /// The latents a metric draws its fakes from.
      MetricLatents: uint64 }

module RandomStreams =

    /// The streams of a seed.
    let ofSeed (seed: int) =
        let s = uint64 seed
        { Weights = int64 seed
          Data = s + 1UL
          Noise = s + 2UL
          SampleGrid = s + 1000UL
          MetricReals = s + 3000UL
          MetricLatents = s + 4000UL }

