namespace ProGan.Training

open System
open System.IO
open System.Text.Json
open TorchSharp

/// An evaluation: the run's SWD against real images, beside the real-vs-real floor that gives it meaning.
[<CLIMutable>]
type EvaluationResult =
    { ImagesShown: int64
      Resolution: int
      Images: int
      Levels: int list
      FakeVsReal: float list
      FakeVsRealAverage: float
      RealVsReal: float list
      RealVsRealAverage: float }

/// Scoring a trained run with the paper's multi-scale sliced Wasserstein distance (§5).
module Evaluation =

    /// SWD of the EMA generator at the run's position against `images` reals, and of two disjoint halves of the reals.
    let evaluate (run: LoadedRun) (data: ImagePyramid) (images: int) (seed: int) =
        let level = run.Position.Level
        let n = min images (data.Count / 2)
        if n < 16 then invalidArg "images" (sprintf "SWD needs at least 32 real images; the data has %d." data.Count)
        use g = new torch.Generator(uint64 seed)
        // Two disjoint sets of reals: a random permutation split in halves.
        use order = torch.randperm(int64 data.Count, generator = g)
        let reals (offset: int64) =
            use idx = order.narrow(0L, offset, int64 n)
            data.Gather(level, idx, torch.CPU)
        use realA = reals 0L
        use realB = reals (int64 n)
        use z = Generation.latents run.Config.Architecture.LatentSize (seed + 1) n
        use fakes = (Generation.sample run z).cpu()
        let fake = SlicedWasserstein.compute fakes realA seed
        let floor = SlicedWasserstein.compute realB realA seed
        { ImagesShown = run.Position.ImagesShown; Resolution = run.Position.Resolution; Images = n
          Levels = fake.Resolutions; FakeVsReal = fake.PerLevel; FakeVsRealAverage = fake.Average
          RealVsReal = floor.PerLevel; RealVsRealAverage = floor.Average }

    /// Writes the result as swd.json in the run folder.
    let save (runFolder: string) (result: EvaluationResult) =
        File.WriteAllText(Path.Combine(runFolder, "swd.json"), JsonSerializer.Serialize(result, JsonSerializerOptions(WriteIndented = true)))

    /// The result as a small table.
    let format (r: EvaluationResult) =
        let row (name: string) (values: float list) (avg: float) =
            sprintf "%-16s %s │ %8.2f" name (String.Join(" ", values |> List.map (sprintf "%8.2f"))) avg
        String.Join(Environment.NewLine,
            [ sprintf "SWD ×10³ at %d² after %d images, %d images per set" r.Resolution r.ImagesShown r.Images
              sprintf "%-16s %s │ %8s" "level" (String.Join(" ", r.Levels |> List.map (sprintf "%7d²"))) "average"
              row "generated-real" r.FakeVsReal r.FakeVsRealAverage
              row "real-real floor" r.RealVsReal r.RealVsRealAverage ])
