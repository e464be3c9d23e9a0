// Scoring a generator: SWD with its real-vs-real floor, and MS-SSIM (§5).
namespace ProGan.Training.Metrics

open System
open System.Text.Json
open TorchSharp
open ProGan.Keras.IO
open ProGan.Keras.Models
open ProGan.Training.Config
open ProGan.Training.Data
open ProGan.Training.Paper

/// An evaluation: the run's SWD against real images, beside the real-vs-real floor that gives it meaning, and the
/// MS-SSIM of pairs of generated images beside that of pairs of real ones.
[<CLIMutable>]
type EvaluationResult =
    { ImagesShown: int64
      Resolution: int
      Images: int
      Levels: int list
      FakeVsReal: float list
      FakeVsRealAverage: float
      RealVsReal: float list
      RealVsRealAverage: float
      /// Mean MS-SSIM of pairs of generated images (lower: more varied).
      MsSsimGenerated: float
      /// The same for pairs of real images: what the data's own variation gives.
      MsSsimReal: float }

/// Scoring a generator with the paper's multi-scale sliced Wasserstein distance (§5): the one recipe used both at
/// phase ends during training (`--metrics swd`) and by `evaluate.fsx`.
module Evaluation =

    /// Fewest real images an SWD compares (the descriptors' per-channel statistics need a few hundred patches).
    let minimumImages = 16

    /// `images` reals of `level` in a random order drawn from `seed`, the first half and (when `halves`) a disjoint second half.
    let private reals (data: TrainingImages) (level: int) (images: int) (seed: uint64) =
        use g = new torch.Generator(seed)
        use order = torch.randperm(int64 data.Count, generator = g)
        let half (offset: int64) =
            use idx = order.narrow(0L, offset, int64 images)
            data.Gather(level, idx.data<int64>().ToArray(), torch.CPU)
        half 0L, (if 2 * images <= data.Count then Some(half (int64 images)) else None)

    /// `n` images of `generator` at `position`, from latents of the `MetricLatents` stream, on the CPU.
    let private fakes (generator: ProgressiveGenerator) (position: SchedulePosition) (n: int) (streams: RandomStreams) (device: torch.Device) =
        use z = Sampling.inputs generator.Config streams.MetricLatents n id // every class in turn
        use images = Sampling.at generator position z device
        images.cpu()

    /// The metrics a run measures at its phase ends (`TrainingConfig.Metrics`): SWD ×10³ of `generator` at `position`
    /// against `images` reals of that level, and the mean MS-SSIM of pairs of its images; NaN for one not asked for.
    /// Reals and latents come from the `MetricReals` and `MetricLatents` streams of `streams`, directions from
    /// `streams.Weights`.
    let phaseEnd (names: string list) (generator: ProgressiveGenerator) (position: SchedulePosition) (data: TrainingImages) (images: int) (streams: RandomStreams) (device: torch.Device) =
        let n = min images data.Count
        use generated = fakes generator position n streams device
        let swd =
            if List.contains "swd" names then
                let realA, realB = reals data position.Level n streams.MetricReals
                use realA = realA
                realB |> Option.iter (fun t -> t.Dispose())
                (SlicedWasserstein.compute generated realA (int streams.Weights)).Average
            else nan
        let msSsim = if List.contains "ms-ssim" names then MsSsim.meanOfPairs generated else nan
        swd, msSsim

    /// SWD of `generator` at `position` against `images` reals, and of two disjoint sets of `images` reals (the floor).
    let withFloor (generator: ProgressiveGenerator) (position: SchedulePosition) (data: TrainingImages) (images: int) (streams: RandomStreams) (device: torch.Device) =
        let n = min images (data.Count / 2)
        if n < minimumImages then
            invalidArg "images" (sprintf "The SWD and its floor need two sets of at least %d real images; the data has %d." minimumImages data.Count)
        let realA, realB = reals data position.Level n streams.MetricReals
        use realA = realA
        use realB = realB.Value
        use generated = fakes generator position n streams device
        let fake = SlicedWasserstein.compute generated realA (int streams.Weights)
        let floor = SlicedWasserstein.compute realB realA (int streams.Weights)
        { ImagesShown = position.ImagesShown; Resolution = position.Resolution; Images = n
          Levels = fake.Resolutions; FakeVsReal = fake.PerLevel; FakeVsRealAverage = fake.Average
          RealVsReal = floor.PerLevel; RealVsRealAverage = floor.Average
          MsSsimGenerated = MsSsim.meanOfPairs generated; MsSsimReal = MsSsim.meanOfPairs realA }

    /// Writes the result as JSON (atomically).
    let save (path: string) (result: EvaluationResult) =
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(result, JsonSerializerOptions(WriteIndented = true)))

    /// The result as a small table.
    let format (r: EvaluationResult) =
        let row (name: string) (values: float list) (avg: float) =
            sprintf "%-16s %s │ %8.2f" name (String.Join(" ", values |> List.map (sprintf "%8.2f"))) avg
        String.Join(Environment.NewLine,
            [ sprintf "SWD ×10³ at %d² after %d images, %d images per set" r.Resolution r.ImagesShown r.Images
              sprintf "%-16s %s │ %8s" "level" (String.Join(" ", r.Levels |> List.map (sprintf "%7d²"))) "average"
              row "generated-real" r.FakeVsReal r.FakeVsRealAverage
              row "real-real floor" r.RealVsReal r.RealVsRealAverage
              ""
              sprintf "MS-SSIM of %d pairs (lower: more varied)" (r.Images / 2)
              sprintf "%-16s %8.4f" "generated" r.MsSsimGenerated
              sprintf "%-16s %8.4f" "real" r.MsSsimReal ])
