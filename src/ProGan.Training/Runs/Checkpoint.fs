// The whole training state as a checkpoint file: written, read, checked against a configuration.
namespace ProGan.Training.Runs

open System
open System.IO
open TorchSharp
open ProGan.Keras.Models
open ProGan.Keras.Serving
open ProGan.Training.Config
open ProGan.Training.Paper

/// Everything training state is made of; a checkpoint holds all of it.
type TrainingState =
    { Generator: ProgressiveGenerator
      Discriminator: ProgressiveDiscriminator
      /// The exponential moving average of the generator, used for every sample (`Gs`).
      Ema: ProgressiveGenerator
      mutable GeneratorOptimizer: TorchSharp.Modules.Adam
      mutable DiscriminatorOptimizer: TorchSharp.Modules.Adam
      /// Draws latents and the gradient-penalty mix.
      NoiseRandom: torch.Generator }

/// A checkpoint is fine but belongs to networks of another shape; nothing is wrong with the file itself.
exception ArchitectureMismatchException of path: string * differences: string
    with override this.Message = sprintf "Checkpoint '%s' was made with another architecture: %s." this.path this.differences

/// A checkpoint could not be written (disk full, permissions); the previous checkpoints are untouched.
exception CheckpointWriteException of path: string * reason: string
    with override this.Message = sprintf "Could not write checkpoint '%s': %s" this.path this.reason

/// Checkpoints of training: G, D, the EMA generator, both optimisers and the random-number states as the sections of
/// one `CheckpointFile` (ProGan.Keras.Serving owns the format: header, sections, SHA-256, atomic write), with the
/// schedule position in its header so that the EMA generator can be used without the run's configuration.
module Checkpoint =

    /// The format this version writes and reads (`CheckpointFile.FormatVersion`).
    let formatVersion = CheckpointFile.FormatVersion

    /// Every architecture field that differs, named with both values.
    let differences (expected: ProGanConfig) (found: ProGanConfig) =
        typeof<ProGanConfig>.GetProperties()
        |> Array.filter (fun p -> p.CanWrite)
        |> Array.choose (fun p ->
            let e, f = p.GetValue expected, p.GetValue found
            if Object.Equals(e, f) then None else Some(sprintf "%s (run: %O, checkpoint: %O)" p.Name e f))
        |> List.ofArray

    /// Writes the state atomically to `path`, taken at `position` (whose images shown name it), with the run's seed and
    /// the learning rate in use.
    let save (path: string) (position: SchedulePosition) (seed: int) (learningRate: float) (state: TrainingState) =
        let header =
            CheckpointHeader(
                ImagesShown = position.ImagesShown, Architecture = state.Generator.Config, Position = Sampling.generatorPosition position,
                Seed = seed, LearningRate = learningRate, SavedAtUtc = DateTime.UtcNow)
        let module' (m: torch.nn.Module) = fun (w: BinaryWriter) -> m.save w |> ignore
        let random (g: torch.Generator) =
            fun (w: BinaryWriter) ->
                use s = g.get_state()
                let bytes = s.data<byte>().ToArray()
                w.Write bytes.Length
                w.Write bytes
        let sections : struct (string * Action<BinaryWriter>) list =
            [ struct (CheckpointSection.Generator, Action<_>(module' state.Generator))
              struct (CheckpointSection.Discriminator, Action<_>(module' state.Discriminator))
              struct (CheckpointSection.Ema, Action<_>(module' state.Ema))
              struct (CheckpointSection.GeneratorOptimizer, Action<_>(fun w -> state.GeneratorOptimizer.save_state_dict w))
              struct (CheckpointSection.DiscriminatorOptimizer, Action<_>(fun w -> state.DiscriminatorOptimizer.save_state_dict w))
              struct (CheckpointSection.NoiseRandom, Action<_>(random state.NoiseRandom)) ]
        try CheckpointFile.Write(path, header, sections)
        with :? IOException as e -> raise (CheckpointWriteException(path, e.Message))

    /// Reads and verifies a checkpoint's header (its SHA-256 checked), without touching any network.
    let readHeader (path: string) = (CheckpointFile.Read path).Header

    /// The content of a training checkpoint; a generator-only file (`export.fsx --format checkpoint`) is refused by name.
    let private readForTraining (path: string) =
        let content = CheckpointFile.Read path
        if not (content.Sections |> Seq.contains CheckpointSection.Generator) then
            raise (CheckpointException(path, "holds only the EMA generator (a sampling export, export.fsx --format checkpoint); training needs a checkpoint that the run itself wrote."))
        content

    /// The networks of a training checkpoint into G, D and the EMA generator, the architecture checked first (one
    /// that differs is named field by field); returns the content for the caller's other sections.
    let private readNetworks (path: string) (g: ProgressiveGenerator) (d: ProgressiveDiscriminator) (ema: ProgressiveGenerator) =
        let content = readForTraining path
        match differences g.Config content.Header.Architecture with
        | [] -> ()
        | diff -> raise (ArchitectureMismatchException(path, String.Join("; ", diff)))
        content.Read(CheckpointSection.Generator, fun r -> g.load r |> ignore)
        content.Read(CheckpointSection.Discriminator, fun r -> d.load r |> ignore)
        content.Read(CheckpointSection.Ema, fun r -> ema.load r |> ignore)
        content

    /// Loads `path` into `state` (whose networks must have the checkpoint's architecture) and returns its header; an
    /// architecture that differs is named field by field, and any failure while reading names the file.
    let load (path: string) (state: TrainingState) =
        let content = readNetworks path state.Generator state.Discriminator state.Ema
        content.Read(CheckpointSection.GeneratorOptimizer, fun r -> state.GeneratorOptimizer.load_state_dict r)
        content.Read(CheckpointSection.DiscriminatorOptimizer, fun r -> state.DiscriminatorOptimizer.load_state_dict r)
        content.Read(CheckpointSection.NoiseRandom, fun r ->
            let length = r.ReadInt32()
            use s = torch.tensor(r.ReadBytes length, dtype = torch.ScalarType.Byte)
            state.NoiseRandom.set_state s)
        content.Header

    /// Loads G, D and the EMA generator of a checkpoint (not the optimisers: fine-tuning), checking the architecture first.
    let loadNetworks (path: string) (g: ProgressiveGenerator) (d: ProgressiveDiscriminator) (ema: ProgressiveGenerator) =
        (readNetworks path g d ema).Header

    /// Deletes all but the newest `keep` checkpoints of a run folder.
    let prune (folder: RunFolder) (keep: int) =
        let all = folder.Checkpoints()
        for old in all |> List.skip (min keep all.Length) do
            try File.Delete old with :? IOException | :? UnauthorizedAccessException -> ()
