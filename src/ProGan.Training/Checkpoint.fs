namespace ProGan.Training

open System
open System.IO
open System.Security.Cryptography
open System.Text.Json
open TorchSharp
open ProGan.Keras.IO
open ProGan.Keras.Models

/// What a checkpoint says about itself, readable without the tensors.
[<CLIMutable>]
type CheckpointHeader =
    { ImagesShown: int64
      Architecture: ProGanConfig
      Seed: int
      /// The learning rate in use (lower than configured after a non-finite retry); 0 in older checkpoints.
      LearningRate: float
      SavedAtUtc: DateTime }

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

/// A checkpoint file is bad: unreadable, cut short, corrupted, or from another architecture.
exception CheckpointException of path: string * problem: string
    with override this.Message = sprintf "Checkpoint '%s' %s" this.path this.problem

/// A checkpoint is fine but belongs to networks of another shape; nothing is wrong with the file itself.
exception ArchitectureMismatchException of path: string * differences: string
    with override this.Message = sprintf "Checkpoint '%s' was made with another architecture: %s." this.path this.differences

/// A checkpoint could not be written (disk full, permissions); the previous checkpoints are untouched.
exception CheckpointWriteException of path: string * reason: string
    with override this.Message = sprintf "Could not write checkpoint '%s': %s" this.path this.reason

/// Checkpoints: one file with G, D, the EMA generator, both optimisers, the schedule position and the random-number
/// states, closed by a SHA-256 of everything before it; written atomically (`AtomicFile`), so a file under its final
/// name is always complete.
module Checkpoint =

    /// The format this version writes and reads. 2: the official network (one bias per channel in G's first layer,
    /// `FusedScale` D) — its tensors do not fit version 1's models, so a version-1 file is refused, never misread.
    let formatVersion = 2

    let private magicPrefix = "PGKCKPT"
    let private magic = magicPrefix + string formatVersion
    let private hashLength = 32

    /// Every architecture field that differs, named with both values.
    let differences (expected: ProGanConfig) (found: ProGanConfig) =
        typeof<ProGanConfig>.GetProperties()
        |> Array.filter (fun p -> p.CanWrite)
        |> Array.choose (fun p ->
            let e, f = p.GetValue expected, p.GetValue found
            if Object.Equals(e, f) then None else Some(sprintf "%s (run: %O, checkpoint: %O)" p.Name e f))
        |> List.ofArray

    /// Writes the state atomically to `path`.
    let save (path: string) (shown: int64) (seed: int) (learningRate: float) (state: TrainingState) =
        use buffer = new MemoryStream()
        do
            use w = new BinaryWriter(buffer, Text.Encoding.UTF8, leaveOpen = true)
            w.Write magic
            let header = { ImagesShown = shown; Architecture = state.Generator.Config; Seed = seed; LearningRate = learningRate; SavedAtUtc = DateTime.UtcNow }
            w.Write(JsonSerializer.Serialize header)
            state.Generator.save w |> ignore
            state.Discriminator.save w |> ignore
            state.Ema.save w |> ignore
            state.GeneratorOptimizer.save_state_dict w
            state.DiscriminatorOptimizer.save_state_dict w
            for random in [ state.NoiseRandom ] do
                use s = random.get_state()
                let bytes = s.data<byte>().ToArray()
                w.Write bytes.Length
                w.Write bytes
        let hash = SHA256.HashData(buffer.GetBuffer().AsSpan(0, int buffer.Length))
        try
            AtomicFile.Write(path, fun file ->
                file.Write(buffer.GetBuffer(), 0, int buffer.Length)
                file.Write(hash, 0, hash.Length))
        with :? IOException as e -> raise (CheckpointWriteException(path, e.Message))

    /// Reads the header and checks the checksum, without touching any network.
    let readHeader (path: string) =
        let bytes =
            match FileKind.at path with
            | Regular _ ->
                try File.ReadAllBytes path
                with e -> raise (CheckpointException(path, sprintf "cannot be read: %s" e.Message))
            | Missing -> raise (CheckpointException(path, "does not exist."))
            | Folder -> raise (CheckpointException(path, "is a folder, not a checkpoint file."))
            | Special what -> raise (CheckpointException(path, sprintf "is %s, not a checkpoint file." what))
        if bytes.Length < hashLength + magic.Length then raise (CheckpointException(path, "is cut short (too small to be a checkpoint)."))
        let content = ReadOnlySpan(bytes, 0, bytes.Length - hashLength)
        if not (SHA256.HashData(content).AsSpan().SequenceEqual(ReadOnlySpan(bytes, bytes.Length - hashLength, hashLength))) then
            raise (CheckpointException(path, "is corrupted or cut short (its SHA-256 does not match its content)."))
        let reader = new BinaryReader(new MemoryStream(bytes, 0, bytes.Length - hashLength))
        match (try reader.ReadString() with _ -> "") with
        | m when m = magic -> ()
        | m when m.StartsWith magicPrefix ->
            raise (CheckpointException(path, sprintf "has checkpoint format %s; this version (%s) reads format %d only. Load it with the version that wrote it, or train anew."
                                                   (m.Substring magicPrefix.Length) About.version formatVersion))
        | _ -> raise (CheckpointException(path, "is not a ProGan.Keras checkpoint."))
        let header =
            try JsonSerializer.Deserialize<CheckpointHeader>(reader.ReadString())
            with e -> raise (CheckpointException(path, sprintf "has an unreadable header: %s" (e.Message.Split('\n')[0])))
        if isNull (box header) || isNull (box header.Architecture) then raise (CheckpointException(path, "has an empty header."))
        header, reader

    /// Opens a checkpoint for networks of architecture `expected`, then runs `read` over its tensors; an architecture
    /// that differs is named field by field, and any failure while reading names the file.
    let private readFor (path: string) (expected: ProGanConfig) (read: BinaryReader -> unit) =
        let header, reader = readHeader path
        use reader = reader
        match differences expected header.Architecture with
        | [] -> ()
        | diff -> raise (ArchitectureMismatchException(path, String.Join("; ", diff)))
        try read reader
        with
        | :? CheckpointException -> reraise ()
        | e -> raise (CheckpointException(path, sprintf "could not be loaded: %s" e.Message))
        header

    /// Loads `path` into `state` (whose networks must have the checkpoint's architecture) and returns its header.
    let load (path: string) (state: TrainingState) =
        readFor path state.Generator.Config (fun reader ->
            state.Generator.load reader |> ignore
            state.Discriminator.load reader |> ignore
            state.Ema.load reader |> ignore
            state.GeneratorOptimizer.load_state_dict reader
            state.DiscriminatorOptimizer.load_state_dict reader
            for random in [ state.NoiseRandom ] do
                let length = reader.ReadInt32()
                use s = torch.tensor(reader.ReadBytes length, dtype = torch.ScalarType.Byte)
                random.set_state s)

    /// Loads G, D and the EMA generator of a checkpoint (not the optimisers), checking the architecture first.
    let loadNetworks (path: string) (g: ProgressiveGenerator) (d: ProgressiveDiscriminator) (ema: ProgressiveGenerator) =
        readFor path g.Config (fun reader ->
            g.load reader |> ignore
            d.load reader |> ignore
            ema.load reader |> ignore)

    /// Loads only the EMA generator of a checkpoint (for sampling), checking the architecture first.
    let loadEma (path: string) (ema: ProgressiveGenerator) =
        // G and D come first in the file; read them into throwaway networks of the same shape.
        use g = new ProgressiveGenerator(ema.Config, torch.CPU)
        use d = new ProgressiveDiscriminator(ema.Config, torch.CPU)
        loadNetworks path g d ema

    /// Deletes all but the newest `keep` checkpoints of a run folder.
    let prune (folder: RunFolder) (keep: int) =
        for old in folder.Checkpoints() |> List.skip (min keep (folder.Checkpoints().Length)) do
            try File.Delete old with :? IOException | :? UnauthorizedAccessException -> ()
