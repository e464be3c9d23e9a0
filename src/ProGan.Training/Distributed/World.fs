// The processes that train one run together (data parallelism): who this one is, and its part of a minibatch.
namespace ProGan.Training.Distributed

open System

/// The processes training one run together, data-parallel as the reference's GPU towers and Horovod: each takes its
/// own slice of every global minibatch, and their gradients are averaged before each optimiser step.
type World =
    { /// This process: 0 … Size − 1; rank 0 alone writes the run folder.
      Rank: int
      /// How many processes train together.
      Size: int }

    /// Whether this process is the one that writes (rank 0).
    member this.IsRoot = this.Rank = 0

/// A process's part of a global minibatch of `Total` samples: the global positions of its samples, in its own order.
type Slice =
    { Indices: int64[]
      Total: int }

    /// The samples this process trains on.
    member this.Count = this.Indices.Length

module World =

    /// One process alone: the whole minibatch, nothing to average.
    let single = { Rank = 0; Size = 1 }

    /// The first of `names` that the environment sets to a whole number ≥ `least`.
    let private firstNumber (environment: string -> string) (least: int) (names: string list) =
        names |> List.tryPick (fun name -> match Int32.TryParse(environment name) with | true, n when n >= least -> Some n | _ -> None)

    /// The world size a launcher set in the environment, when this process was started by one: Open MPI's `mpirun`
    /// (`OMPI_COMM_WORLD_SIZE`), a PMI launcher such as MPICH's or Slurm's `srun --mpi=pmi2` (`PMI_SIZE`), or Slurm's
    /// `srun --mpi=pmix` (`PMIX_RANK`, with `SLURM_NTASKS`). None when started alone (or as a single rank).
    let launchedSize (environment: string -> string) =
        firstNumber environment 1 [ "OMPI_COMM_WORLD_SIZE"; "PMI_SIZE" ]
        |> Option.orElse (if String.IsNullOrEmpty(environment "PMIX_RANK") then None else firstNumber environment 1 [ "SLURM_NTASKS" ])
        |> Option.filter (fun n -> n > 1)

    /// This process's rank as its launcher set it (`OMPI_COMM_WORLD_RANK`, `PMI_RANK`, `PMIX_RANK`), before MPI is
    /// started; 0 when started alone.
    let launchedRank (environment: string -> string) =
        firstNumber environment 0 [ "OMPI_COMM_WORLD_RANK"; "PMI_RANK"; "PMIX_RANK" ] |> Option.defaultValue 0

    /// This process's rank among those on its machine (`OMPI_COMM_WORLD_LOCAL_RANK`, `MPI_LOCALRANKID`,
    /// `SLURM_LOCALID`): which of the machine's GPUs it trains on. 0 when started alone.
    let launchedLocalRank (environment: string -> string) =
        firstNumber environment 0 [ "OMPI_COMM_WORLD_LOCAL_RANK"; "MPI_LOCALRANKID"; "SLURM_LOCALID" ] |> Option.defaultValue 0

    /// How many of the world's processes run on this machine (`OMPI_COMM_WORLD_LOCAL_SIZE`, `MPI_LOCALNRANKS`,
    /// `SLURM_NTASKS_PER_NODE`): they share its cores. 1 when started alone.
    let launchedLocalSize (environment: string -> string) =
        firstNumber environment 1 [ "OMPI_COMM_WORLD_LOCAL_SIZE"; "MPI_LOCALNRANKS"; "SLURM_NTASKS_PER_NODE" ] |> Option.defaultValue 1

    /// The slice of a global minibatch of `total` samples that `world`'s process trains on, such that the
    /// minibatch-stddev groups of its part are exactly groups of the whole: the layer groups sample n with the
    /// samples n ± M, n ± 2M, … (M = total / G, the reference's `[G, M, …]` reshape), so the M groups are dealt out
    /// whole, M / P to each of the P processes, and a process's samples are ordered so that its own reshape forms
    /// those groups. Every statistic of a step is then the one a single process computes on the whole minibatch.
    /// Refused, naming the sizes, where the groups do not divide evenly.
    let slice (world: World) (groupSize: int) (total: int) =
        if world.Size = 1 then { Indices = Array.init total int64; Total = total }
        elif total % (world.Size * groupSize) <> 0 then
            invalidArg "total" (sprintf "A minibatch of %d images does not split over %d processes into whole minibatch-stddev groups of %d; use a minibatch that is a multiple of %d, or another number of processes."
                                    total world.Size groupSize (world.Size * groupSize))
        else
            let groups = total / groupSize // M
            let own = groups / world.Size
            { Indices = [| for k in 0 .. groupSize - 1 do for j in 0 .. own - 1 -> int64 (k * groups + world.Rank * own + j) |]
              Total = total }

    /// The process's rows of a tensor drawn for the whole minibatch (its first dimension is the global minibatch): a
    /// random draw made for the global minibatch on every process, then sliced, gives each the values a single
    /// process would have given its samples, and keeps the processes' random streams in step.
    let rows (slice: Slice) (globalTensor: TorchSharp.torch.Tensor) =
        if slice.Count = slice.Total then globalTensor
        else
            use indices = TorchSharp.torch.tensor(slice.Indices, device = globalTensor.device)
            globalTensor.index_select(0L, indices)
