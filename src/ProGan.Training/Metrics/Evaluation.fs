// Scoring a generator: SWD with its real-vs-real floor, MS-SSIM (§5), and FD-ResNet18, KID and precision/recall.
namespace ProGan.Training.Metrics

open System
open System.Text.Json
open System.Text.Json.Serialization
open System.Threading
open TorchSharp
open ProGan.Keras.IO
open ProGan.Keras.Models
open ProGan.Keras.Serving
open ProGan.Training.Config
open ProGan.Training.Data
open ProGan.Training.Paper

/// An evaluation: the run's SWD against real images, beside the real-vs-real floor that gives it meaning, and the
/// MS-SSIM of pairs of generated images beside that of pairs of real ones; and, in ResNet-18's feature space
/// (`ImageFeatures`), the Fréchet distance, KID, precision and recall, each beside the same between two disjoint sets of
/// real images. A metric not measured (see `Metrics`) is NaN, or an empty list.
[<CLIMutable>]
type EvaluationResult =
    { ImagesShown: int64
      Resolution: int
      Images: int
      /// The metrics measured, by their `--metrics` names.
      Metrics: string list
      Levels: int list
      FakeVsReal: float list
      FakeVsRealAverage: float
      RealVsReal: float list
      RealVsRealAverage: float
      /// Mean MS-SSIM of pairs of generated images (lower: more varied).
      MsSsimGenerated: float
      /// The same for pairs of real images: what the data's own variation gives.
      MsSsimReal: float
      /// The feature space of the FD, KID and precision/recall ("" when none of them was measured).
      FeatureNetwork: string
      /// FD-ResNet18: the Fréchet distance (Heusel et al. 2017) of generated against real images in ResNet-18's
      /// features — not FID, and not comparable with published FIDs —, and of two disjoint sets of real images.
      FdResNet18: float
      FdResNet18RealVsReal: float
      /// KID (Bińkowski et al. 2018): mean and standard deviation over subsets of the unbiased MMD², generated against
      /// real, and real against real.
      Kid: float
      KidStd: float
      KidRealVsReal: float
      KidRealVsRealStd: float
      /// Precision and recall (Kynkäänniemi et al. 2019, k = 3), generated against real, and real against real.
      Precision: float
      Recall: float
      PrecisionRealVsReal: float
      RecallRealVsReal: float }

/// What one metric run at a phase end gives (NaN for one not asked for); the figures of a log row.
type PhaseEndMetrics =
    { Swd: float
      MsSsim: float
      FdResNet18: float
      Kid: float
      Precision: float
      Recall: float }

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
    /// Images through the feature network (generated, then real ones not seen before in this process).
    | FeaturesExtracted of done': int * total: int
    /// KID subsets (generated-real, then the real-real floor).
    | KidSubsets of done': int * total: int

/// Scoring a generator with the paper's multi-scale sliced Wasserstein distance and MS-SSIM (§5), and with FD-ResNet18,
/// KID and precision/recall: the one recipe used both at phase ends during training (`--metrics`) and by
/// `evaluate.fsx`.
module Evaluation =

    /// Fewest real images an SWD compares (the descriptors' per-channel statistics need a few hundred patches).
    let minimumImages = 16

    /// A phase end's figures where none was measured.
    let notMeasured = { Swd = nan; MsSsim = nan; FdResNet18 = nan; Kid = nan; Precision = nan; Recall = nan }

    /// The metrics that need the feature network.
    let featureMetrics = [ "fd"; "kid"; "pr" ]

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

    /// The random order of the reals drawn from `seed`.
    let private realOrder (data: TrainingImages) (seed: uint64) =
        use g = new torch.Generator(seed)
        use order = torch.randperm(int64 data.Count, generator = g)
        order.data<int64>().ToArray()

    /// `images` reals of `level` in a random order drawn from `seed`: the first `images`, and (when `floor`) the
    /// disjoint next `images` too.
    let private reals (data: TrainingImages) (level: int) (images: int) (seed: uint64) (floor: bool) (cancel: CancellationToken) (report: EvaluationStep -> unit) =
        let order = realOrder data seed
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

    /// The key of the features of the reals `offset`…`offset + images − 1` of the order drawn from `seed`.
    let private realsKey (data: TrainingImages) (level: int) (seed: uint64) (offset: int) (images: int) =
        let order = realOrder data seed
        RealFeatures.key (data.LevelHash level) level order[offset .. offset + images - 1]

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

    /// Features of `sets` (each: images, and the key its features are kept under, or None for generated images),
    /// through the shared network, the kept ones not again; progress over the images that go through it.
    let private features (sets: (torch.Tensor * string option) list) (cancel: CancellationToken) (report: EvaluationStep -> unit) =
        let todo = sets |> List.filter (fun (_, key) -> key |> Option.forall (RealFeatures.contains >> not))
        let total = todo |> List.sumBy (fun (images, _) -> int images.shape[0])
        let mutable before = 0
        let extract (images: torch.Tensor) () =
            let n = int images.shape[0]
            let result = ImageFeatures.Shared.ExtractStepping(images, cancel, fun d -> report (FeaturesExtracted(before + d, total)))
            before <- before + n
            result
        sets |> List.map (fun (images, key) ->
            match key with
            | Some key -> RealFeatures.getOrCompute key (extract images)
            | None -> extract images ())

    /// FD-ResNet18, KID and precision/recall of `generated` features against `real`, NaN for those not in `names`;
    /// `kidStepped` sees each KID subset.
    let private inFeatureSpace (names: string list) (generated: torch.Tensor) (real: torch.Tensor) (seed: uint64) (kidStepped: int -> int -> unit) =
        let fd = if List.contains "fd" names then FrechetDistance.compute generated real else nan
        let kid =
            if List.contains "kid" names then
                KernelDistance.computeStepping kidStepped KernelDistance.defaultSubsets KernelDistance.defaultSubsetSize seed generated real
            else { Mean = nan; Std = nan; Subsets = 0; SubsetSize = 0 }
        let pr = if List.contains "pr" names then PrecisionRecall.compute generated real else { Precision = nan; Recall = nan }
        fd, kid, pr

    /// The metrics a run measures at its phase ends (`TrainingConfig.Metrics`): SWD ×10³ of `generator` at `position`
    /// against `images` reals of that level, the mean MS-SSIM of pairs of its images, and FD-ResNet18, KID and
    /// precision/recall against those reals (their features kept for the next phase end); NaN for one not asked for.
    /// Reals and latents come from the `MetricReals` and `MetricLatents` streams of `streams`, directions and KID's
    /// subsets from `streams.Weights`.
    let phaseEnd (names: string list) (generator: ProgressiveGenerator) (position: SchedulePosition) (data: TrainingImages) (images: int) (streams: RandomStreams) (device: torch.Device) =
        let n = min images data.Count
        use generated = fakes generator position n streams device CancellationToken.None ignore
        let needsReals = List.contains "swd" names || featureMetrics |> List.exists (fun m -> List.contains m names)
        let realA, _ = if needsReals then reals data position.Level n streams.MetricReals false CancellationToken.None ignore else torch.empty(0L), None
        use realA = realA
        let swd = if List.contains "swd" names then (SlicedWasserstein.compute generated realA (int streams.Weights)).Average else nan
        let msSsim = if List.contains "ms-ssim" names then MsSsim.meanOfPairs generated else nan
        let fd, kid, pr =
            if featureMetrics |> List.exists (fun m -> List.contains m names) then
                match features [ generated, None; realA, Some(realsKey data position.Level streams.MetricReals 0 n) ] CancellationToken.None ignore with
                | [ g; r ] ->
                    use g = g
                    use r = r
                    inFeatureSpace names g r (uint64 streams.Weights) (fun _ _ -> ())
                | _ -> failwith "unreachable"
            else nan, { Mean = nan; Std = nan; Subsets = 0; SubsetSize = 0 }, { Precision = nan; Recall = nan }
        { Swd = swd; MsSsim = msSsim; FdResNet18 = fd; Kid = kid.Mean; Precision = pr.Precision; Recall = pr.Recall }

    /// The metrics `names` ("swd", "ms-ssim", "fd", "kid", "pr") of `generator` at `position` against `images` reals,
    /// each beside the same measured between two disjoint sets of `images` reals (the floor), reporting each step done
    /// to `report` and stopped by `cancel` between steps (a batch of images, an image through the feature network, a
    /// random projection, a KID subset, a chunk of pairs) with OperationCanceledException, every tensor freed.
    let measureUntil (names: string list) (cancel: CancellationToken) (report: EvaluationStep -> unit) (generator: ProgressiveGenerator) (position: SchedulePosition) (data: TrainingImages) (images: int) (streams: RandomStreams) (device: torch.Device) =
        let n = min images (data.Count / 2)
        if n < minimumImages then
            invalidArg "images" (sprintf "The metrics and their floors need two sets of at least %d real images; the data has %d." minimumImages data.Count)
        let asked name = List.contains name names
        let realA, realB = reals data position.Level n streams.MetricReals true cancel report
        use realA = realA
        use realB = realB.Value
        use generated = fakes generator position n streams device cancel report
        let swd =
            if asked "swd" then
                let projections (offset: int) =
                    fun (done': int) (total: int) ->
                        report (SwdProjections(offset * total + done', 2 * total))
                        cancel.ThrowIfCancellationRequested()
                Some(SlicedWasserstein.computeStepping (projections 0) generated realA (int streams.Weights),
                     SlicedWasserstein.computeStepping (projections 1) realB realA (int streams.Weights))
            else None
        let msSsimGenerated, msSsimReal =
            if asked "ms-ssim" then
                let pairs = n / 2
                let compared = ref 0
                let counted count =
                    compared.Value <- compared.Value + count
                    report (MsSsimPairs(compared.Value, 2 * pairs))
                let g = msSsim generated cancel counted
                g, msSsim realA cancel counted
            else nan, nan
        let inFeatures = featureMetrics |> List.exists asked
        let (fd, kid, pr), (fdFloor, kidFloor, prFloor) =
            if inFeatures then
                let key offset = Some(realsKey data position.Level streams.MetricReals offset n)
                match features [ generated, None; realA, key 0; realB, key n ] cancel report with
                | [ g; a; b ] ->
                    use g = g
                    use a = a
                    use b = b
                    let subsets (offset: int) =
                        fun (done': int) (total: int) ->
                            report (KidSubsets(offset * total + done', 2 * total))
                            cancel.ThrowIfCancellationRequested()
                    inFeatureSpace names g a (uint64 streams.Weights) (subsets 0), inFeatureSpace names b a (uint64 streams.Weights) (subsets 1)
                | _ -> failwith "unreachable"
            else
                let none = nan, { Mean = nan; Std = nan; Subsets = 0; SubsetSize = 0 }, { Precision = nan; Recall = nan }
                none, none
        { ImagesShown = position.ImagesShown; Resolution = position.Resolution; Images = n
          Metrics = names |> List.filter (fun m -> List.contains m TrainingConfig.knownMetrics)
          Levels = (match swd with Some(f, _) -> f.Resolutions | None -> [])
          FakeVsReal = (match swd with Some(f, _) -> f.PerLevel | None -> [])
          FakeVsRealAverage = (match swd with Some(f, _) -> f.Average | None -> nan)
          RealVsReal = (match swd with Some(_, r) -> r.PerLevel | None -> [])
          RealVsRealAverage = (match swd with Some(_, r) -> r.Average | None -> nan)
          MsSsimGenerated = msSsimGenerated; MsSsimReal = msSsimReal
          FeatureNetwork = (if inFeatures then ImageFeatures.Name else "")
          FdResNet18 = fd; FdResNet18RealVsReal = fdFloor
          Kid = kid.Mean; KidStd = kid.Std; KidRealVsReal = kidFloor.Mean; KidRealVsRealStd = kidFloor.Std
          Precision = pr.Precision; Recall = pr.Recall; PrecisionRealVsReal = prFloor.Precision; RecallRealVsReal = prFloor.Recall }

    /// SWD and MS-SSIM (`measureUntil` of those two).
    let withFloorUntil (cancel: CancellationToken) (report: EvaluationStep -> unit) (generator: ProgressiveGenerator) (position: SchedulePosition) (data: TrainingImages) (images: int) (streams: RandomStreams) (device: torch.Device) =
        measureUntil [ "swd"; "ms-ssim" ] cancel report generator position data images streams device

    /// SWD of `generator` at `position` against `images` reals, and of two disjoint sets of `images` reals (the floor).
    let withFloor (generator: ProgressiveGenerator) (position: SchedulePosition) (data: TrainingImages) (images: int) (streams: RandomStreams) (device: torch.Device) =
        withFloorUntil CancellationToken.None ignore generator position data images streams device

    /// Writes the result as JSON (atomically); a metric not measured is written as "NaN".
    let save (path: string) (result: EvaluationResult) =
        let options = JsonSerializerOptions(WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(result, options))

    /// The result as a small table: each measured metric beside its real-vs-real floor.
    let format (r: EvaluationResult) =
        let asked name = List.contains name r.Metrics
        let row (name: string) (values: float list) (avg: float) =
            sprintf "%-16s %s │ %8.2f" name (String.Join(" ", values |> List.map (sprintf "%8.2f"))) avg
        let swd =
            if asked "swd" then
                [ sprintf "SWD ×10³ at %d² after %d images, %d images per set" r.Resolution r.ImagesShown r.Images
                  sprintf "%-16s %s │ %8s" "level" (String.Join(" ", r.Levels |> List.map (sprintf "%7d²"))) "average"
                  row "generated-real" r.FakeVsReal r.FakeVsRealAverage
                  row "real-real floor" r.RealVsReal r.RealVsRealAverage
                  "" ]
            else []
        let msSsim =
            if asked "ms-ssim" then
                [ sprintf "MS-SSIM of %d pairs (lower: more varied)" (r.Images / 2)
                  sprintf "%-16s %8.4f" "generated" r.MsSsimGenerated
                  sprintf "%-16s %8.4f" "real" r.MsSsimReal
                  "" ]
            else []
        let features =
            if featureMetrics |> List.exists asked then
                let line (name: string) (fake: string) (floor: string) = sprintf "%-22s %18s %18s" name fake floor
                [ sprintf "In %s, at %d² after %d images, %d images per set" r.FeatureNetwork r.Resolution r.ImagesShown r.Images
                  line "" "generated-real" "real-real floor"
                  if asked "fd" then line "FD-ResNet18 (not FID)" (sprintf "%.3f" r.FdResNet18) (sprintf "%.3f" r.FdResNet18RealVsReal)
                  if asked "kid" then
                      line "KID (± sd of subsets)" (sprintf "%.4f ± %.4f" r.Kid r.KidStd) (sprintf "%.4f ± %.4f" r.KidRealVsReal r.KidRealVsRealStd)
                  if asked "pr" then
                      line "precision (k = 3)" (sprintf "%.3f" r.Precision) (sprintf "%.3f" r.PrecisionRealVsReal)
                      line "recall (k = 3)" (sprintf "%.3f" r.Recall) (sprintf "%.3f" r.RecallRealVsReal) ]
            else []
        String.Join(Environment.NewLine, swd @ msSsim @ features).TrimEnd()
