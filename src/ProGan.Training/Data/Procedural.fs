// The embedded procedural data set: seeded pictures with structure at three scales.
namespace ProGan.Training.Data

open System.Threading
open TorchSharp
open ProGan.Keras.Backend
open ProGan.Training.Basics
open ProGan.Training.Progress

/// The embedded default data: a deterministic, seeded set of pictures with structure at three scales — a two-colour
/// gradient sky (coarse), two or three bold discs and squares (middle), and stripes inside each shape (fine) — so that
/// each level of progressive growing has something new to learn, with no file and no network.
module Procedural =

    /// Images rendered at once: the 2× supersampled float canvas and its temporaries (about ten of 3·(2r)² floats
    /// per image) stay within about 256 MB at any resolution.
    let private chunkAt (resolution: int) = max 1L (min 256L (256L * 1024L * 1024L / (480L * int64 resolution * int64 resolution)))

    /// What one shape of every image looks like, drawn for all images before any pixel is rendered, so that the
    /// images do not depend on how many are rendered at once.
    type private Shape =
        { Cx: torch.Tensor; Cy: torch.Tensor; Radius: torch.Tensor; IsDisc: torch.Tensor; Present: torch.Tensor
          Frequency: torch.Tensor; Colour: torch.Tensor }

    /// Everything random about `count` images: the sky, and three shapes each.
    type private Scene =
        { Count: int64; Tilt: torch.Tensor; SkyLow: torch.Tensor; SkyHigh: torch.Tensor; Shapes: Shape list
          /// 0: every shape a disc, 1: every shape a square; None for the unlabelled set (shapes of either kind).
          Labels: torch.Tensor option }

    let private draw (count: int) (seed: int) (labelled: bool) =
        use g = new torch.Generator(uint64 seed)
        let n = int64 count
        let column () = [| n; 1L; 1L; 1L |]
        let uniform lo hi = torch.rand(column (), generator = g).mul_(scalar (hi - lo)).PlusInPlace(scalar lo)
        let palette =
            (torch.tensor
                [| 0.90f; 0.20f; 0.20f;  0.20f; 0.60f; 0.90f;  0.95f; 0.80f; 0.20f;  0.25f; 0.75f; 0.35f
                   0.60f; 0.30f; 0.80f;  0.95f; 0.55f; 0.15f;  0.95f; 0.95f; 0.95f;  0.10f; 0.10f; 0.15f |]).view(8L, 3L)
        let pick () = palette.index_select(0L, torch.randint(8L, [| n |], generator = g)).view(n, 3L, 1L, 1L)
        // Coarse: a vertical gradient between two colours, tilted a little.
        let tilt = uniform -0.5 0.5
        let skyLow = pick () * scalar 0.6
        let skyHigh = (pick () * scalar 0.6).Plus(scalar 0.2)
        // Middle and fine: shapes with stripes.
        let shapes =
            [ for _ in 1..3 ->
                let cx = uniform -0.6 0.6
                let cy = uniform -0.6 0.6
                let radius = uniform 0.18 0.42
                let isDisc = torch.rand(column (), generator = g).lt(scalar 0.5)
                let present = torch.rand(column (), generator = g).lt(scalar 0.85)
                let frequency = uniform 12.0 24.0
                { Cx = cx; Cy = cy; Radius = radius; IsDisc = isDisc; Present = present; Frequency = frequency; Colour = pick () } ]
        if labelled then
            // Drawn last, so that everything else is the unlabelled set's; the class decides every shape's kind.
            let labels = torch.randint(2L, [| n |], generator = g)
            let discs = labels.eq(scalar 0.0).view(n, 1L, 1L, 1L)
            { Count = n; Tilt = tilt; SkyLow = skyLow; SkyHigh = skyHigh; Shapes = shapes |> List.map (fun s -> { s with IsDisc = discs }); Labels = Some labels }
        else
            { Count = n; Tilt = tilt; SkyLow = skyLow; SkyHigh = skyHigh; Shapes = shapes; Labels = None }

    /// Images `start` … `start + count − 1` of a scene at `resolution` as RGBA (float in [0, 255], NCHW): the shapes
    /// opaque, the sky half transparent (the alpha a four-channel run learns).
    let private paint (scene: Scene) (resolution: int) (start: int64) (count: int64) =
        use scope = torch.NewDisposeScope()
        // Supersample 2× in each direction and average down: smooth, anti-aliased edges at every resolution.
        let size = int64 (2 * resolution)
        let axis = torch.linspace(-1.0, 1.0, size)
        let y = axis.view(1L, 1L, size, 1L)
        let x = axis.view(1L, 1L, 1L, size)
        let part (t: torch.Tensor) = t.narrow(0L, start, count)
        let t = y.Plus(part scene.Tilt * x).PlusInPlace(scalar 1.0).div_(scalar 2.0).clamp_(scalar 0.0, scalar 1.0)
        let mutable image = torch.lerp(part scene.SkyLow, part scene.SkyHigh, t)
        let mutable covered = torch.zeros([| count; 1L; size; size |])
        for s in scene.Shapes do
            let dx, dy = x - part s.Cx, y - part s.Cy
            let disc = dx.Squared().Plus(dy.Squared()).sqrt()
            let square = torch.maximum(dx.abs(), dy.abs())
            let inside = torch.where(part s.IsDisc, disc, square).lt(part s.Radius)
            let stripes = ((dx.Plus dy) * part s.Frequency).sin().sign().mul_(scalar 0.12).PlusInPlace(scalar 0.88)
            let shape = inside.logical_and(part s.Present)
            image <- torch.where(shape, part s.Colour * stripes, image)
            covered <- torch.where(shape, torch.ones_like covered, covered)
        let alpha = covered.mul(scalar 0.5).PlusInPlace(scalar 0.5)
        torch.nn.functional.avg_pool2d(torch.cat([| image; alpha |], 1L), [| 2L; 2L |]).mul_(scalar 255.0).clamp_(scalar 0.0, scalar 255.0).MoveToOuterDisposeScope()

    /// RGBA renders (0–255) as `channels` channels: 1 → the luma of the colour, 3 → the colour, 4 → RGBA.
    let private withChannels (channels: int) (rgba: torch.Tensor) =
        match channels with
        | 1 -> (rgba.narrow(1L, 0L, 3L) * torch.tensor([| 0.299f; 0.587f; 0.114f |]).view(1L, 3L, 1L, 1L)).sum([| 1L |], keepdim = true)
        | 3 -> rgba.narrow(1L, 0L, 3L)
        | _ -> rgba.alias()

    /// Renders the scene a chunk at a time, handing each chunk, its first index and its labels (empty for an
    /// unlabelled scene) to `write`; `cancel` stops it between chunks. Returns the labels of a labelled scene.
    let private renderInto (count: int) (resolution: int) (seed: int) (labelled: bool) (cancel: CancellationToken) (write: int64 -> torch.Tensor -> int64[] -> unit) =
        use scope = torch.NewDisposeScope()
        let scene = draw count seed labelled
        let labels = scene.Labels |> Option.map (fun l -> l.data<int64>().ToArray()) |> Option.defaultValue [||]
        let chunk = chunkAt resolution
        for start in 0L .. chunk .. scene.Count - 1L do
            cancel.ThrowIfCancellationRequested()
            let n = min chunk (scene.Count - start)
            use images = paint scene resolution start n
            write start images (if labels.Length = 0 then [||] else labels[int start .. int (start + n) - 1])
        labels

    /// Renders `count` RGB images at `resolution` (float in [0, 255], NCHW), with all randomness from `seed`.
    let render (count: int) (resolution: int) (seed: int) =
        let result = torch.empty([| int64 count; 3L; int64 resolution; int64 resolution |])
        renderInto count resolution seed false CancellationToken.None (fun start images _ -> result.narrow(0L, start, images.shape[0]).copy_(images.narrow(1L, 0L, 3L)) |> ignore) |> ignore
        result

    /// The class names of the labelled set (`--labels shapes`).
    let classNames = [| "discs"; "squares" |]

    let private nameOf (count: int) (seed: int) (labelled: bool) =
        sprintf "procedural shapes (%d images, seed %d%s)" count seed (if labelled then ", labelled by shape" else "")

    /// The procedural set as a pyramid of `channels` channels ready for training (grayscale: luma; RGBA: the shapes
    /// opaque on a half-transparent sky), built a chunk at a time so that only the bytes of the whole set are ever held;
    /// `labelled`: every image's shapes all discs or all squares, its class (`classNames`).
    let pyramidOf (count: int) (resolution: int) (channels: int) (seed: int) (labelled: bool) =
        let name = nameOf count seed labelled
        let levels =
            [| for r in Seq.unfold (fun r -> if r <= resolution then Some(r, 2 * r) else None) 4 ->
                 torch.empty([| int64 count; int64 channels; int64 r; int64 r |], dtype = torch.ScalarType.Byte) |]
        let labels =
            renderInto count resolution seed labelled CancellationToken.None (fun start images _ ->
                use inChannels = withChannels channels images
                use part = ImagePyramid.fromFloat name inChannels
                for level, target in Array.indexed levels do
                    target.narrow(0L, start, images.shape[0]).copy_(part.Levels[level]) |> ignore)
        new ImagePyramid(name, levels, labels, (if labelled then classNames else [||]))

    /// The procedural set written into a data set a chunk at a time (`prepare.fsx --procedural`): the images of
    /// `pyramidOf`, never all in memory at once; `report` hears how many are done, `cancel` stops between chunks.
    /// Returns the set's name.
    let prepareInto (count: int) (resolution: int) (channels: int) (seed: int) (labelled: bool) (writer: DatasetWriter) (report: TrainingEvent -> unit) (cancel: CancellationToken) =
        let name = nameOf count seed labelled
        renderInto count resolution seed labelled cancel (fun start images labels ->
            use inChannels = withChannels channels images
            use part = ImagePyramid.fromFloat name inChannels
            // The chunk's labels beside its levels (the levels stay the chunk's, disposed with it).
            writer.Append(new ImagePyramid(name, part.Levels, labels, (if labelled then classNames else [||])))
            report (Preparing(int start + int images.shape[0], count))) |> ignore
        name

    /// The unlabelled procedural set.
    let pyramid (count: int) (resolution: int) (channels: int) (seed: int) = pyramidOf count resolution channels seed false
