// Which images one training step sees, drawn ahead on another thread.
namespace ProGan.Training.Data

open TorchSharp

/// Which images one training step sees, and whether each is mirrored.
type MinibatchDraw =
    { Level: int
      Indices: int64[]
      Mirrored: bool[] }

/// The minibatch of a step as a pure function of the run's data stream and the images shown before the step — like
/// the schedule — so that the next one can be gathered on another thread while a step runs (`Trainer`), and a resumed
/// run draws exactly what an uninterrupted one draws without any random-number state for data.
module Minibatch =

    /// SplitMix64's finaliser: neighbouring inputs give unrelated seeds.
    let private mix (x: uint64) =
        let x = (x ^^^ (x >>> 30)) * 0xbf58476d1ce4e5b9UL
        let x = (x ^^^ (x >>> 27)) * 0x94d049bb133111ebUL
        x ^^^ (x >>> 31)

    /// The draw of the step that starts at `shown` images: `count` indices uniform over `size` images (with
    /// replacement, as the reference samples), each mirrored with probability ½ when `mirror`.
    let draw (dataSeed: uint64) (shown: int64) (level: int) (count: int) (size: int) (mirror: bool) =
        use g = new torch.Generator(mix (dataSeed + mix (uint64 shown)))
        use indices = torch.randint(int64 size, [| int64 count |], generator = g)
        use flips = torch.rand([| int64 count |], generator = g)
        { Level = level
          Indices = indices.data<int64>().ToArray()
          Mirrored = if mirror then flips.data<float32>().ToArray() |> Array.map (fun u -> u < 0.5f) else Array.zeroCreate count }

    /// The images of a draw in [−1, 1], mirrored left–right where drawn, on the CPU.
    let gather (data: TrainingImages) (draw: MinibatchDraw) =
        let images = data.Gather(draw.Level, draw.Indices, torch.CPU)
        if Array.exists id draw.Mirrored then
            use scope = torch.NewDisposeScope()
            let flip = torch.tensor(draw.Mirrored).view(-1L, 1L, 1L, 1L)
            let mirrored = torch.where(flip, images.flip(3L), images).MoveToOuterDisposeScope()
            images.Dispose()
            mirrored
        else images
