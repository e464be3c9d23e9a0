// Whether a run fits in this machine's memory, estimated before anything is allocated.
namespace ProGan.Training.Config

open System
open System.IO
open ProGan.Keras.Models

/// A run would not fit in this machine's memory: the message gives the estimate, what it is made of, and the machine's
/// memory, before anything is allocated.
exception ResourceException of string
    with override this.Message = this.Data0

/// What a run's memory is made of, in bytes.
type MemoryUse =
    { /// G, D and the EMA generator, with gradients and both Adam moments of G and D.
      Parameters: int64
      /// The activations one training step holds for its backward passes, at the final resolution.
      Activations: int64
      /// The training images at every level of detail, as bytes.
      Data: int64 }
    member this.Total = this.Parameters + this.Activations + this.Data

/// An estimate of a configuration's memory from its numbers alone, checked before the first allocation, so that a
/// setting that cannot fit stops with one line instead of a native allocation failure or the machine swapping.
module MemoryEstimate =

    /// Parameters of G and D (Appendix A, Table 2): dense and 3×3 convolution weights with their biases, toRGB and
    /// fromRGB 1×1 convolutions at every level, the minibatch-stddev block's layers.
    let parameters (a: ProGanConfig) =
        let c level = int64 (a.ChannelsAt level)
        let rgb = int64 a.ImageChannels
        let conv3 i o = 9L * i * o + o
        let levels = [ 1 .. a.LevelCount - 1 ]
        let toRgb = [ 0 .. a.LevelCount - 1 ] |> List.sumBy (fun l -> c l * rgb + rgb)
        let g =
            int64 a.InputSize * 16L * c 0 + 16L * c 0 + conv3 (c 0) (c 0) + toRgb
            + (levels |> List.sumBy (fun l -> conv3 (c (l - 1)) (c l) + conv3 (c l) (c l)))
        let f0 = int64 (a.FeatureMaps 0)
        let fromRgb = [ 0 .. a.LevelCount - 1 ] |> List.sumBy (fun l -> rgb * c l + c l)
        let d =
            fromRgb + conv3 (c 0 + 1L) (c 0) + 16L * c 0 * f0 + f0 + f0 + 1L
            + (levels |> List.sumBy (fun l -> conv3 (c l) (c l) + conv3 (c l) (c (l - 1))))
        g, d

    /// Floats a step keeps per feature-map element of one image: G's forward (twice), D's passes over reals, fakes
    /// and the penalty's mix with its double backward, and the gradients of all of them. Set from the resident memory
    /// of CPU steps (the benchmark's 64² comparison shape peaks near 2.7 GiB), rounded up so that a run refused is one
    /// that would not have fitted.
    let private activationFactor = 64L

    /// Bytes of the training images at every level of detail (4/3 of the final level).
    let dataBytes (images: int64) (channels: int) (resolution: int) = images * int64 channels * int64 resolution * int64 resolution * 4L / 3L

    /// The memory a configuration needs; `images` is the size of its data set.
    let estimate (config: TrainingConfig) (images: int64) =
        let a = config.Architecture
        let g, d = parameters a
        let featureMaps = [ 0 .. a.LevelCount - 1 ] |> List.sumBy (fun l -> int64 (a.ChannelsAt l) * int64 (a.ResolutionOf l) * int64 (a.ResolutionOf l))
        let batch = int64 (config.Minibatch |> Array.truncate a.LevelCount |> Array.max)
        { Parameters = 4L * (5L * g + 4L * d)
          Activations = 4L * activationFactor * batch * featureMaps
          Data = dataBytes images a.ImageChannels a.Resolution }

    /// Memory this process can still take: MemAvailable on Linux, the GC's limit (which knows container limits)
    /// elsewhere and as an upper bound.
    let available () =
        let limit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes
        let fromProc =
            try
                File.ReadLines "/proc/meminfo"
                |> Seq.tryFind (fun l -> l.StartsWith "MemAvailable:")
                |> Option.map (fun l -> int64 (l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024L)
            with _ -> None
        match fromProc with
        | Some bytes -> min bytes limit
        | None -> limit

    let private gib (bytes: int64) = float bytes / float (1L <<< 30)

    /// Refuses a use of memory that exceeds `availableBytes`, naming the largest part and the settings behind it.
    let refuseAbove (availableBytes: int64) (need: MemoryUse) =
        if need.Total > availableBytes then
            let parts =
                [ need.Parameters, "networks (--latent-size, --fmap-base, --fmap-max)"
                  need.Activations, "activations (--minibatch, --fmap-base, --fmap-max, --resolution)"
                  need.Data, "training images (--procedural-images or the data folder, --resolution)" ]
            let largest = parts |> List.maxBy fst |> snd
            raise (ResourceException(
                    sprintf "This run needs about %.1f GiB (networks %.1f, activations %.1f, images %.1f) but %.1f GiB of memory is available; most of it is the %s. Lower those settings."
                        (gib need.Total) (gib need.Parameters) (gib need.Activations) (gib need.Data) (gib availableBytes) largest))

    /// Refuses a configuration that cannot fit in this machine's memory. Only the procedural set is held in memory;
    /// folders and prepared data sets are read from disk a minibatch at a time. On a GPU the networks and activations live in the
    /// device's memory, which libtorch itself reports when it runs out; only the data is checked against the host's.
    let check (config: TrainingConfig) (onCpu: bool) =
        let need = estimate config (if config.DataFolder = "" then int64 config.ProceduralImages else 0L)
        refuseAbove (available ()) (if onCpu then need else { need with Parameters = 0L; Activations = 0L })
