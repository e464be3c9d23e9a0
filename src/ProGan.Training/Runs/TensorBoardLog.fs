// tensorboard/: the run's event files, written by TorchSharp's writer.
namespace ProGan.Training.Runs

open System
open System.IO
open TorchSharp
open ProGan.Keras.IO
open ProGan.Training.Config
open ProGan.Training.Progress

/// A run's TensorBoard event files in `tensorboard/` (`tensorboard --logdir runs/`), written by TorchSharp's own
/// `SummaryWriter`. The step of every value is the number of real images shown — the axis of log.csv and of the
/// schedule — so a resumed run continues the same axis, after `TensorBoardLog.truncate` has dropped what the run
/// logged past the checkpoint it resumes from.
type TensorBoardLog(folder: RunFolder, weights: LossWeights) =
    let writer = torch.utils.tensorboard.SummaryWriter(folder.TensorBoard)
    // TorchSharp's steps are ints; the configuration refuses longer runs while TensorBoard is on.
    let step (images: int64) = int images

    /// The scalar of each log.csv column that has a number, by tag (`metrics/*` only where measured).
    static member RowScalars : (string * (LogRow -> float)) list =
        [ "loss/D", (fun r -> r.DLoss)
          "loss/G", (fun r -> r.GLoss)
          "loss/gradient_penalty", (fun r -> r.GradientPenalty)
          "train/d_class_accuracy", (fun r -> r.ClassAccuracy)
          "schedule/resolution", (fun r -> float r.Resolution)
          "schedule/alpha", (fun r -> r.Alpha)
          "train/images_per_second", (fun r -> r.ImagesPerSecond)
          "train/wall_seconds", (fun r -> r.WallSeconds)
          "metrics/swd_x1e3", (fun r -> r.Swd)
          "metrics/ms_ssim", (fun r -> r.MsSsim)
          "metrics/fd_resnet18", (fun r -> r.FdResNet18)
          "metrics/kid", (fun r -> r.Kid)
          "metrics/precision", (fun r -> r.Precision)
          "metrics/recall", (fun r -> r.Recall) ]

    /// The folder of `add_scalars`' chart of D's loss terms (`SummaryWriter` writes each series to `<tag>_<name>/`).
    static member TermsTag = "D_loss_terms"

    /// A row of log.csv, with D's loss also drawn as its weighted terms (they sum to D's loss:
    /// W + λ·GP + ε_drift·drift, Appendix A.1; under lazy regularisation λ·GP is the penalty's weight per minibatch on
    /// average, and the logged loss that of a minibatch with or without it), the learning rate and the level of detail.
    member _.Row(row: LogRow, learningRate: float, lod: float) =
        let at = step row.ImagesShown
        for tag, value in TensorBoardLog.RowScalars do
            let v = value row
            if not (Double.IsNaN v) then writer.add_scalar(tag, float32 v, at)
        writer.add_scalars(TensorBoardLog.TermsTag,
                           ResizeArray [ struct ("adversarial", float32 row.Adversarial)
                                         struct ("gradient_penalty", float32 (weights.Lambda / (weights.Gamma * weights.Gamma) * row.GradientPenalty))
                                         struct ("drift", float32 (weights.EpsilonDrift * row.Drift)) ],
                           at)
        writer.add_scalar("train/learning_rate", float32 learningRate, at)
        writer.add_scalar("schedule/lod", float32 lod, at)

    /// One scalar at `images` shown (a phase-end measure such as the diversity ratio).
    member _.Scalar(tag: string, value: float, images: int64) = writer.add_scalar(tag, float32 value, step images)

    /// An image: bytes [H, W, 3] (an `ImageGrid.Compose` grid).
    /// TorchSharp's writer makes Scalars of its own, out of reach: it runs with the GC held off (`GcFence`).
    member _.Image(tag: string, rgb: torch.Tensor, images: int64) =
        use pixels = rgb.contiguous()
        ProGan.Keras.Backend.GcFence.Run(fun () -> writer.add_img(tag, pixels, step images, dataformats = "HWC"))

    /// A histogram of every parameter of `network`, tagged `prefix/name` (with the GC held off, as `Image`).
    member _.Histograms(prefix: string, network: torch.nn.Module, images: int64) =
        use scope = torch.NewDisposeScope()
        for struct (name, parameter) in network.named_parameters() do
            use values = parameter.detach().cpu()
            ProGan.Keras.Backend.GcFence.Run(fun () -> writer.add_histogram(prefix + "/" + name, values, step images))

    /// Text (TensorBoard renders it as Markdown).
    member _.Text(tag: string, text: string, images: int64) = writer.add_text(tag, text, step images)

module TensorBoardLog =

    /// TFRecord's masked CRC-32C of a record's length and of its data.
    let private masked (crc: uint32) = ((crc >>> 15) ||| (crc <<< 17)) + 0xa282ead8u

    /// The records of an event file as (offset, length, event), up to the first one that is cut short or fails its
    /// checksums (a process killed mid-write).
    let private records (bytes: byte[]) =
        let rec next (offset: int) acc =
            if bytes.Length - offset < 16 then List.rev acc
            else
                let length = BitConverter.ToUInt64(bytes, offset)
                if length > uint64 (bytes.Length - offset - 16)
                   || masked (TorchSharp.Utils.CRC32C.``process`` (int64 length)) <> BitConverter.ToUInt32(bytes, offset + 8) then List.rev acc
                else
                    let data = bytes[offset + 12 .. offset + 12 + int length - 1]
                    if masked (TorchSharp.Utils.CRC32C.``process`` data) <> BitConverter.ToUInt32(bytes, offset + 12 + int length) then List.rev acc
                    else next (offset + 16 + int length) ((offset, 16 + int length, Tensorboard.Event.Parser.ParseFrom data) :: acc)
        next 0 []

    /// Drops from every event file of the run what was logged after `upTo` images — what a run resuming from the
    /// checkpoint at `upTo` logs again — and any record cut short. Files are rewritten atomically, and only when
    /// something is dropped.
    let truncate (folder: RunFolder) (upTo: int64) =
        for path in RunFolder.eventFiles folder do
            let bytes = File.ReadAllBytes path
            let all = records bytes
            let kept = all |> List.filter (fun (_, _, e) -> e.Step <= upTo || not (String.IsNullOrEmpty e.FileVersion))
            let keptLength = kept |> List.sumBy (fun (_, length, _) -> length)
            if keptLength <> bytes.Length then
                AtomicFile.Write(path, fun stream -> for offset, length, _ in kept do stream.Write(bytes, offset, length))
