// Scoring a generator: SWD with its real-vs-real floor, and MS-SSIM (§5).
namespace ProGan.Training.Metrics

open System
open System.Text.Json
open System.Threading
open TorchSharp
open ProGan.Keras.IO
open ProGan.Keras.Models
open ProGan.Keras.Serving
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

/// A step of an evaluation, for its progress display: how much of one kind of work is done, of its total.
type EvaluationStep =
    /// Real images gathered from the data (both sets).
    | RealsGathered of done': int * total: int
    /// Images drawn from the generator.
    | FakesGenerated of done': int * total: int
    /// Random projections of the sliced Wasserstein distances (generated-real, then the real-real floor).
    | SwdProjections of done': int * total: int
    /// Pairs compared by MS-SSIM (generated pairs, then real pairs).
    | MsSsimPairs of done': int * total: int

/// Scoring a generator with the paper's multi-scale sliced Wasserstein distance (§5): the one recipe used both at
/// phase ends during training (`--metrics swd`) and by `evaluate.fsx`.
module Evaluation =

    /// Fewest real images an SWD compares (the descriptors' per-channel statistics need a few hundred patches).
    let minimumImages = 16

    /// Real images gathered, and MS-SSIM pairs compared, at a time: the steps between which progress is reported and
    /// a stop is seen (images are drawn `Latents.BatchSize` at a time, as `generate.fsx` draws them).
    let private realsAtOnce, pairsAtOnce = 1024, 256

    /// `count` images at `offset` of `order` of `level`, `realsAtOnce` at a time, on the CPU; `gathered` is called
    /// with the images gathered after each.
    let private gather (data: TrainingImages) (level: int) (order: int64[]) (offset: int) (count: int) (cancel: CancellationToken) (gathered: int -> unit) =
        use scope = torch.NewDisposeScope()
        let parts =
            [| for first in 0 .. realsAtOnce .. count - 1 do
                cancel.ThrowIfCancellationRequested()
                let n = min realsAtOnce (count - first)
                let part = data.Gather(level, order[offset + first .. offset + first + n - 1], torch.CPU)
                gathered n
                part |]
        torch.cat(parts, 0L).MoveToOuterDisposeScope()

    /// `images` reals of `level` in a random order drawn from `seed`: the first `images`, and (when `floor`) the
    /// disjoint next `images` too.
    let private reals (data: TrainingImages) (level: int) (images: int) (seed: uint64) (floor: bool) (cancel: CancellationToken) (report: EvaluationStep -> unit) =
        let order =
            use g = new torch.Generator(seed)
            use order = torch.randperm(int64 data.Count, generator = g)
            order.data<int64>().ToArray()
        let total = if floor then 2 * images else images
        let gathered = ref 0
        let counted n =
            gathered.Value <- gathered.Value + n
            report (RealsGathered(gathered.Value, total))
        let first = gather data level order 0 images cancel counted
        try first, (if floor then Some(gather data level order images images cancel counted) else None)
        with _ ->
            first.Dispose()
            reraise ()

    /// `n` images of `generator` at `position`, from latents of the `MetricLatents` stream, on the CPU, drawn
    /// `Latents.BatchSize` at a time.
    let private fakes (generator: ProgressiveGenerator) (position: SchedulePosition) (n: int) (streams: RandomStreams) (device: torch.Device) (cancel: CancellationToken) (report: EvaluationStep -> unit) =
        use z = Sampling.inputs generator.Config streams.MetricLatents n id // every class in turn
        use scope = torch.NewDisposeScope()
        let parts =
            [| for first in 0 .. Latents.BatchSize .. n - 1 do
                cancel.ThrowIfCancellationRequested()
                let count = min Latents.BatchSize (n - first)
                let images = (Sampling.at generator position (z.narrow(0L, int64 first, int64 count)) device).cpu()
                report (FakesGenerated(first + count, n))
                images |]
        torch.cat(parts, 0L).MoveToOuterDisposeScope()

    /// The mean MS-SSIM of the pairs of `images` (`MsSsim.meanOfPairs`), `pairsAtOnce` pairs at a time; `compared`
    /// is called with the pairs compared after each.
    let private msSsim (images: torch.Tensor) (cancel: CancellationToken) (compared: int -> unit) =
        let pairs = int (images.shape[0] / 2L)
        let sums =
            [ for first in 0 .. pairsAtOnce .. pairs - 1 do
                cancel.ThrowIfCancellationRequested()
                let count = min pairsAtOnce (pairs - first)
                use part = images.narrow(0L, 2L * int64 first, 2L * int64 count)
                let sum = MsSsim.meanOfPairs part * float count
                compared count
                sum ]
        List.sum sums / float pairs

    /// The metrics a run measures at its phase ends (`TrainingConfig.Metrics`): SWD ×10³ of `generator` at `position`
    /// against `images` reals of that level, and the mean MS-SSIM of pairs of its images; NaN for one not asked for.
    /// Reals and latents come from the `MetricReals` and `MetricLatents` streams of `streams`, directions from
    /// `streams.Weights`.
    let phaseEnd (names: string list) (generator: ProgressiveGenerator) (position: SchedulePosition) (data: TrainingImages) (images: int) (streams: RandomStreams) (device: torch.Device) =
        let n = min images data.Count
        use generated = fakes generator position n streams device CancellationToken.None ignore
        let swd =
            if List.contains "swd" names then
                let realA, _ = reals data position.Level n streams.MetricReals false CancellationToken.None ignore
                use realA = realA
                (SlicedWasserstein.compute generated realA (int streams.Weights)).Average
            else nan
        let msSsim = if List.contains "ms-ssim" names then MsSsim.meanOfPairs generated else nan
        swd, msSsim

    /// `withFloor`, reporting each step done to `report` and stopped by `cancel` between steps (a batch of images, a
    /// random projection, a chunk of pairs) with OperationCanceledException, every tensor freed.
    let withFloorUntil (cancel: CancellationToken) (report: EvaluationStep -> unit) (generator: ProgressiveGenerator) (position: SchedulePosition) (data: TrainingImages) (images: int) (streams: RandomStreams) (device: torch.Device) =
        let n = min images (data.Count / 2)
        if n < minimumImages then
            invalidArg "images" (sprintf "The SWD and its floor need two sets of at least %d real images; the data has %d." minimumImages data.Count)
        let realA, realB = reals data position.Level n streams.MetricReals true cancel report
        use realA = realA
        use realB = realB.Value
        use generated = fakes generator position n streams device cancel report
        let projections (offset: int) =
            fun (done': int) (total: int) ->
                report (SwdProjections(offset * total + done', 2 * total))
                cancel.ThrowIfCancellationRequested()
        let fake = SlicedWasserstein.computeStepping (projections 0) generated realA (int streams.Weights)
        let floor = SlicedWasserstein.computeStepping (projections 1) realB realA (int streams.Weights)
        let pairs = n / 2
        let compared = ref 0
        let counted count =
            compared.Value <- compared.Value + count
            report (MsSsimPairs(compared.Value, 2 * pairs))
        let msSsimGenerated = msSsim generated cancel counted
        let msSsimReal = msSsim realA cancel counted
        { ImagesShown = position.ImagesShown; Resolution = position.Resolution; Images = n
          Levels = fake.Resolutions; FakeVsReal = fake.PerLevel; FakeVsRealAverage = fake.Average
          RealVsReal = floor.PerLevel; RealVsRealAverage = floor.Average
          MsSsimGenerated = msSsimGenerated; MsSsimReal = msSsimReal }

    /// SWD of `generator` at `position` against `images` reals, and of two disjoint sets of `images` reals (the floor).
    let withFloor (generator: ProgressiveGenerator) (position: SchedulePosition) (data: TrainingImages) (images: int) (streams: RandomStreams) (device: torch.Device) =
        withFloorUntil CancellationToken.None ignore generator position data images streams device

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
