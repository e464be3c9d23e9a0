namespace ProGan.Training

open System
open System.IO
open System.Security.Cryptography
open System.Text.Json
open TorchSharp
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
      /// Draws minibatch indices and mirroring.
      DataRandom: torch.Generator
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
/// states, closed by a SHA-256 of everything before it; written to a temporary file, flushed, then renamed, so a file
/// under its final name is always complete.
module Checkpoint =

    let private magic = "PGKCKPT1"
    let private hashLength = 32

    /// The file name of the checkpoint after `shown` images (sortable).
    let fileName (shown: int64) = sprintf "checkpoint-%012d.ckpt" shown

    /// Names the first architecture field that differs, or None.
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
            for random in [ state.DataRandom; state.NoiseRandom ] do
                use s = random.get_state()
                let bytes = s.data<byte>().ToArray()
                w.Write bytes.Length
                w.Write bytes
        let content = buffer.GetBuffer().AsSpan(0, int buffer.Length)
        let hash = SHA256.HashData(content)
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath path)) |> ignore
        let temp = path + ".tmp"
        try
            do
                use file = new FileStream(temp, FileMode.Create, FileAccess.Write)
                file.Write(buffer.GetBuffer(), 0, int buffer.Length)
                file.Write(hash, 0, hash.Length)
                file.Flush(true)
            File.Move(temp, path, true)
        with
        | :? IOException | :? UnauthorizedAccessException as e ->
            (try if File.Exists temp then File.Delete temp with _ -> ())
            raise (CheckpointWriteException(path, e.Message))

    /// Reads the header and checks the checksum, without touching any network.
    let readHeader (path: string) =
        let bytes =
            try File.ReadAllBytes path
            with e -> raise (CheckpointException(path, sprintf "cannot be read: %s" e.Message))
        if bytes.Length < hashLength + magic.Length then raise (CheckpointException(path, "is cut short (too small to be a checkpoint)."))
        let content = ReadOnlySpan(bytes, 0, bytes.Length - hashLength)
        if not (SHA256.HashData(content).AsSpan().SequenceEqual(ReadOnlySpan(bytes, bytes.Length - hashLength, hashLength))) then
            raise (CheckpointException(path, "is corrupted or cut short (its SHA-256 does not match its content)."))
        let reader = new BinaryReader(new MemoryStream(bytes, 0, bytes.Length - hashLength))
        if reader.ReadString() <> magic then raise (CheckpointException(path, "is not a ProGan.Keras checkpoint."))
        let header = JsonSerializer.Deserialize<CheckpointHeader>(reader.ReadString())
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
            for random in [ state.DataRandom; state.NoiseRandom ] do
                let length = reader.ReadInt32()
                use s = torch.tensor(reader.ReadBytes length, dtype = torch.ScalarType.Byte)
                random.set_state s)

    /// Loads only the EMA generator of a checkpoint (for sampling), checking the architecture first.
    let loadEma (path: string) (ema: ProgressiveGenerator) =
        readFor path ema.Config (fun reader ->
            // G and D come first in the file; read them into throwaway networks of the same shape.
            use g = new ProgressiveGenerator(ema.Config, torch.CPU)
            use d = new ProgressiveDiscriminator(ema.Config, torch.CPU)
            g.load reader |> ignore
            d.load reader |> ignore
            ema.load reader |> ignore)

    /// The checkpoints in a run folder, newest first.
    let list (runFolder: string) =
        if Directory.Exists runFolder then
            Directory.GetFiles(runFolder, "checkpoint-*.ckpt") |> Array.sortDescending |> List.ofArray
        else []

    /// Deletes all but the newest `keep` checkpoints.
    let prune (runFolder: string) (keep: int) =
        for old in list runFolder |> List.indexed |> List.filter (fun (i, _) -> i >= keep) |> List.map snd do
            try File.Delete old with :? IOException -> ()
