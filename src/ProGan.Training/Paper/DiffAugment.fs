// Differentiable augmentation of reals and fakes before D (Zhao et al. 2020).
namespace ProGan.Training.Paper

open System
open TorchSharp
open ProGan.Keras.Backend
open ProGan.Training.Basics
open ProGan.Training.Config
open ProGan.Training.Distributed

/// Differentiable augmentation (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"):
/// the same random transformations applied to reals and fakes before D, in D's step and in G's, so that D cannot
/// memorise a small data set and G still gets gradients through the transformation. Each transformation draws its
/// parameters per sample from a generator (the run's noise stream), and is made of differentiable tensor operations.
/// With several processes (`Slice`), the parameters are drawn for the whole minibatch and each process keeps its
/// rows, so that every sample is transformed as one process would transform it.
module DiffAugment =

    /// The whole minibatch `x`: one process.
    let private wholeBatch (x: torch.Tensor) = World.slice World.single 1 (int x.shape[0])

    /// `shape` drawn for every sample of the minibatch by `draw`, this process's rows of it, on x's device.
    let private perSample (slice: Slice) (x: torch.Tensor) (draw: int64[] -> torch.Tensor) (shape: int64 list) =
        (World.rows slice (draw (Array.ofList (int64 slice.Total :: shape)))).``to``(x.device)

    let private uniform (slice: Slice) (x: torch.Tensor) (generator: torch.Generator) =
        perSample slice x (fun size -> torch.rand(size, generator = generator)) [ 1L; 1L; 1L ]

    /// Brightness x + (u − ½), saturation (x − mean_c)·2u + mean_c, contrast (x − mean)·(u + ½) + mean, each with its
    /// own u ~ U(0, 1) per sample (the paper's `rand_brightness`, `rand_saturation`, `rand_contrast`).
    let private colorOf (slice: Slice) (x: torch.Tensor) (generator: torch.Generator) =
        let x = x.Plus(uniform slice x generator - scalar 0.5)
        let meanChannels = x.mean([| 1L |], keepdim = true)
        let x = ((x - meanChannels) * (uniform slice x generator * scalar 2.0)).Plus meanChannels
        let meanAll = x.mean([| 1L; 2L; 3L |], keepdim = true)
        ((x - meanAll) * (uniform slice x generator).Plus(scalar 0.5)).Plus meanAll

    /// Shifts each image by up to ⅛ of its side in each direction (integer pixels), zeros coming in at the border
    /// (the paper's `rand_translation`, ratio 0.125), as a gather over the zero-padded image.
    let private translationOf (slice: Slice) (x: torch.Tensor) (generator: torch.Generator) =
        let n, c, h, w = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
        let sh, sw = max 1L (h / 8L), max 1L (w / 8L)
        let shiftY = perSample slice x (fun size -> torch.randint(-sh, sh + 1L, size, generator = generator)) [ 1L; 1L ]
        let shiftX = perSample slice x (fun size -> torch.randint(-sw, sw + 1L, size, generator = generator)) [ 1L; 1L ]
        // Integer bounds keep the indices integers.
        let rows = (Scalars.Arange(h, x.device).view(1L, h, 1L).Plus shiftY).clamp(whole -1L, whole h).Plus(whole 1L)
        let cols = (Scalars.Arange(w, x.device).view(1L, 1L, w).Plus shiftX).clamp(whole -1L, whole w).Plus(whole 1L)
        let padded = torch.nn.functional.pad(x, [| 1L; 1L; 1L; 1L |])                          // [N, C, H+2, W+2], zero border
        let index = (rows * whole (w + 2L)).Plus(cols).view(n, 1L, h * w).expand(n, c, h * w)  // flat positions
        padded.flatten(2L).gather(2L, index).view(n, c, h, w)

    /// Zeroes a square of half the image's side at a random place in each image (the paper's `rand_cutout`, ratio ½).
    let private cutoutOf (slice: Slice) (x: torch.Tensor) (generator: torch.Generator) =
        let h, w = x.shape[2], x.shape[3]
        let ch, cw = h / 2L, w / 2L
        let top = perSample slice x (fun size -> torch.randint(0L, h - ch + 1L, size, generator = generator)) [ 1L; 1L ]
        let left = perSample slice x (fun size -> torch.randint(0L, w - cw + 1L, size, generator = generator)) [ 1L; 1L ]
        let y = Scalars.Arange(h, x.device).view(1L, h, 1L)
        let xs = Scalars.Arange(w, x.device).view(1L, 1L, w)
        let inside = (y.ge(top).logical_and(y.lt(top.Plus(whole ch)))).logical_and(xs.ge(left).logical_and(xs.lt(left.Plus(whole cw))))
        x * inside.logical_not().unsqueeze(1L).to_type(x.dtype)

    /// The color transformation of a whole minibatch.
    let color (x: torch.Tensor) (generator: torch.Generator) = colorOf (wholeBatch x) x generator

    /// The translation of a whole minibatch.
    let translation (x: torch.Tensor) (generator: torch.Generator) = translationOf (wholeBatch x) x generator

    /// The cutout of a whole minibatch.
    let cutout (x: torch.Tensor) (generator: torch.Generator) = cutoutOf (wholeBatch x) x generator

    /// Applies the transformations of `policy`, in the paper's order (color, translation, cutout), to `x`, this
    /// process's `slice` of a minibatch.
    let applyTo (slice: Slice) (policy: Augmentation list) (x: torch.Tensor) (generator: torch.Generator) =
        if x.shape[0] <> int64 slice.Count then
            invalidArg "x" (sprintf "The images are %d, their slice of the minibatch %d." x.shape[0] slice.Count)
        let step (t: torch.Tensor) (transformation: Augmentation) =
            if not (List.contains transformation policy) then t
            else
                match transformation with
                | Color -> colorOf slice t generator
                | Translation -> translationOf slice t generator
                | Cutout -> cutoutOf slice t generator
        Augmentation.all |> List.fold step x

    /// Applies the transformations of `policy`, in the paper's order (color, translation, cutout), to a whole minibatch.
    let apply (policy: Augmentation list) (x: torch.Tensor) (generator: torch.Generator) = applyTo (wholeBatch x) policy x generator
