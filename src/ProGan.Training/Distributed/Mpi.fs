// Open MPI's few calls that data-parallel training uses, by P/Invoke: init, rank and size, all-reduce, broadcast.
namespace ProGan.Training.Distributed

open System
open System.Runtime.InteropServices

/// MPI could not be started or a collective call failed; the message says which, and what to do.
exception MpiException of string
    with override this.Message = this.Data0

module private Native =
    /// The Open MPI library Debian and Ubuntu ship (`libopenmpi3`, with `openmpi-bin`); ABI version 40 is Open MPI 3–5.
    [<Literal>]
    let Library = "libmpi.so.40"

    [<DllImport("libc", EntryPoint = "dlopen")>]
    extern nativeint dlopen(string file, int mode)

    [<DllImport("libc", EntryPoint = "dlerror")>]
    extern nativeint dlerror()

    [<DllImport(Library)>]
    extern int MPI_Initialized(int& flag)

    [<DllImport(Library)>]
    extern int MPI_Init_thread(nativeint argc, nativeint argv, int required, int& provided)

    [<DllImport(Library)>]
    extern int MPI_Finalized(int& flag)

    [<DllImport(Library)>]
    extern int MPI_Finalize()

    [<DllImport(Library)>]
    extern int MPI_Comm_rank(nativeint comm, int& rank)

    [<DllImport(Library)>]
    extern int MPI_Comm_size(nativeint comm, int& size)

    [<DllImport(Library)>]
    extern int MPI_Allreduce(nativeint sendBuffer, nativeint receiveBuffer, int count, nativeint datatype, nativeint op, nativeint comm)

    [<DllImport(Library)>]
    extern int MPI_Bcast(nativeint buffer, int count, nativeint datatype, int root, nativeint comm)

    [<DllImport(Library)>]
    extern int MPI_Barrier(nativeint comm)

    [<DllImport(Library)>]
    extern int MPI_Abort(nativeint comm, int errorCode)

/// The MPI calls the data-parallel step makes, on `MPI_COMM_WORLD`. Open MPI's handles (`MPI_COMM_WORLD`,
/// `MPI_FLOAT`, `MPI_SUM`, …) are the addresses of its global objects (`ompi_mpi_comm_world`, …), so they are looked
/// up in the library rather than compiled in: this binding is Open MPI's, as Debian ships it. The library is loaded
/// with RTLD_GLOBAL first, as mpi4py does, so that Open MPI's plug-ins find its symbols. Every call is made from the
/// training thread only (`MPI_THREAD_FUNNELED`).
module Mpi =

    let private threadFunneled = 1
    let private inPlace = 1n // Open MPI's MPI_IN_PLACE

    let private library =
        lazy
            // RTLD_NOW | RTLD_GLOBAL
            let handle = Native.dlopen(Native.Library, 0x102)
            if handle = 0n then
                let why = match Native.dlerror() with 0n -> "" | p -> Marshal.PtrToStringAnsi p
                raise (MpiException(sprintf "This process was started by an MPI launcher, but Open MPI's %s cannot be loaded (%s): install Open MPI (apt-get install openmpi-bin)." Native.Library why))
            handle

    let private symbol (name: string) = NativeLibrary.GetExport(library.Force(), name)
    let private world = lazy symbol "ompi_mpi_comm_world"
    let private float32Type = lazy symbol "ompi_mpi_float"
    let private byteType = lazy symbol "ompi_mpi_byte"
    let private sum = lazy symbol "ompi_mpi_op_sum"

    let private check (call: string) (code: int) =
        if code <> 0 then raise (MpiException(sprintf "%s failed with MPI error %d." call code))

    /// Starts MPI (once) and returns this process's world.
    let init () =
        library.Force() |> ignore
        let mutable initialized = 0
        Native.MPI_Initialized(&initialized) |> check "MPI_Initialized"
        if initialized = 0 then
            let mutable provided = 0
            Native.MPI_Init_thread(0n, 0n, threadFunneled, &provided) |> check "MPI_Init_thread"
            if provided < threadFunneled then
                raise (MpiException(sprintf "Open MPI provides thread level %d; training needs MPI_THREAD_FUNNELED (%d)." provided threadFunneled))
        let mutable rank, size = 0, 0
        Native.MPI_Comm_rank(world.Force(), &rank) |> check "MPI_Comm_rank"
        Native.MPI_Comm_size(world.Force(), &size) |> check "MPI_Comm_size"
        { Rank = rank; Size = size }

    /// Sums `values[0 .. count−1]` over every process, in place: afterwards every process holds the same sums.
    let allReduceSum (values: float32[]) (count: int) =
        let pin = GCHandle.Alloc(values, GCHandleType.Pinned)
        try Native.MPI_Allreduce(inPlace, pin.AddrOfPinnedObject(), count, float32Type.Force(), sum.Force(), world.Force()) |> check "MPI_Allreduce"
        finally pin.Free()

    /// Sums a contiguous float32 tensor on the CPU over every process, in place, in its own memory (no copy).
    let allReduceTensor (t: TorchSharp.torch.Tensor) =
        if t.device_type <> TorchSharp.DeviceType.CPU || t.dtype <> TorchSharp.torch.ScalarType.Float32 || not (t.is_contiguous()) then
            invalidArg "t" (sprintf "MPI all-reduces contiguous float32 tensors on the CPU; got %O on %O." t.dtype t.device)
        if t.NumberOfElements > int64 Int32.MaxValue then
            invalidArg "t" (sprintf "A tensor of %d elements is more than one MPI call takes." t.NumberOfElements)
        use scope = TorchSharp.torch.NewDisposeScope() // the storage's alias of the tensor
        use storage = t.storage<float32>()
        let address = storage.data_ptr() + nativeint (t.storage_offset() * 4L)
        Native.MPI_Allreduce(inPlace, address, int t.NumberOfElements, float32Type.Force(), sum.Force(), world.Force()) |> check "MPI_Allreduce"
        GC.KeepAlive t

    /// Rank `root`'s `bytes[0 .. count−1]` copied into every process's.
    let broadcast (bytes: byte[]) (count: int) (root: int) =
        let pin = GCHandle.Alloc(bytes, GCHandleType.Pinned)
        try Native.MPI_Bcast(pin.AddrOfPinnedObject(), count, byteType.Force(), root, world.Force()) |> check "MPI_Bcast"
        finally pin.Free()

    /// Waits until every process has reached this call.
    let barrier () = Native.MPI_Barrier(world.Force()) |> check "MPI_Barrier"

    /// Ends MPI in this process (the last MPI call; a no-op when it never started or already ended).
    let finalize () =
        if library.IsValueCreated then
            let mutable initialized, finalized = 0, 0
            Native.MPI_Initialized(&initialized) |> ignore
            Native.MPI_Finalized(&finalized) |> ignore
            if initialized <> 0 && finalized = 0 then Native.MPI_Finalize() |> ignore

    /// Ends every process of the job with `code` (after an error one process cannot recover from alone).
    let abort (code: int) = Native.MPI_Abort(world.Force(), code) |> ignore
