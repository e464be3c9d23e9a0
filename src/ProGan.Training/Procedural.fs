namespace ProGan.Training

open System
open TorchSharp

/// The embedded default data: a deterministic, seeded set of pictures with structure at three scales — a two-colour
/// gradient sky (coarse), two or three bold discs and squares (middle), and stripes inside each shape (fine) — so that
/// each level of progressive growing has something new to learn, with no file and no network.
module Procedural =

    /// Renders `count` images at `resolution` (float in [0, 255], NCHW), with all randomness from `seed`.
    let render (count: int) (resolution: int) (seed: int) =
        ensureTorch ()
        use scope = torch.NewDisposeScope()
        use g = new torch.Generator(uint64 seed)
        let n = int64 count
        let uniform (shape: int64[]) lo hi = torch.rand(shape, generator = g).mul_(scalar (hi - lo)).add_(scalar (lo))
        // Supersample 2× in each direction and average down: smooth, anti-aliased edges at every resolution.
        let size = int64 (2 * resolution)
        let axis = torch.linspace(-1.0, 1.0, size)
        let y = axis.view(1L, 1L, size, 1L)
        let x = axis.view(1L, 1L, 1L, size)
        let palette =
            (torch.tensor
                [| 0.90f; 0.20f; 0.20f;  0.20f; 0.60f; 0.90f;  0.95f; 0.80f; 0.20f;  0.25f; 0.75f; 0.35f
                   0.60f; 0.30f; 0.80f;  0.95f; 0.55f; 0.15f;  0.95f; 0.95f; 0.95f;  0.10f; 0.10f; 0.15f |]).view(8L, 3L)
        let pick () = palette.index_select(0L, torch.randint(8L, [| n |], generator = g)).view(n, 3L, 1L, 1L)
        // Coarse: a vertical gradient between two colours, tilted a little.
        let tilt = uniform [| n; 1L; 1L; 1L |] -0.5 0.5
        let t = (y + tilt * x).add_(scalar 1.0).div_(scalar 2.0).clamp_(scalar 0.0, scalar 1.0)
        let mutable image = torch.lerp(pick () * 0.6, pick () * 0.6 + 0.2, t)
        // Middle and fine: shapes with stripes.
        for _ in 1..3 do
            let cx, cy = uniform [| n; 1L; 1L; 1L |] -0.6 0.6, uniform [| n; 1L; 1L; 1L |] -0.6 0.6
            let radius = uniform [| n; 1L; 1L; 1L |] 0.18 0.42
            let isDisc = torch.rand([| n; 1L; 1L; 1L |], generator = g).lt(scalar 0.5)
            let dx, dy = x - cx, y - cy
            let disc = (dx.square() + dy.square()).sqrt()
            let square = torch.maximum(dx.abs(), dy.abs())
            let inside = torch.where(isDisc, disc, square).lt(radius)
            let present = torch.rand([| n; 1L; 1L; 1L |], generator = g).lt(scalar 0.85)
            let frequency = uniform [| n; 1L; 1L; 1L |] 12.0 24.0
            let stripes = ((dx + dy) * frequency).sin().sign().mul_(scalar 0.12).add_(scalar 0.88)
            let fill = pick () * stripes
            image <- torch.where(inside.logical_and(present), fill, image)
        let result = torch.nn.functional.avg_pool2d(image, [| 2L; 2L |]).mul_(scalar 255.0).clamp_(scalar 0.0, scalar 255.0)
        result.MoveToOuterDisposeScope()

    /// The procedural set as a pyramid ready for training.
    let pyramid (count: int) (resolution: int) (seed: int) =
        use images = render count resolution seed
        ImagePyramid.fromFloat (sprintf "procedural shapes (%d images, seed %d)" count seed) images
