// NCCL's all-reduce of CUDA tensors for data-parallel training on GPUs, by P/Invoke, its unique id sent over MPI.
namespace ProGan.Training.Distributed

open System
open System.Runtime.InteropServices
open TorchSharp

/// `ncclUniqueId`: 128 opaque bytes that rank 0 makes and every rank joins the communicator with (passed by value).
[<Struct; StructLayout(LayoutKind.Sequential, Size = 128)>]
type NcclUniqueId =
    val mutable private First: int64

module private NcclNative =
    [<Literal>]
    let Library = "libnccl.so.2"

    [<DllImport(Library)>]
    extern int ncclGetUniqueId(NcclUniqueId& uniqueId)

    [<DllImport(Library)>]
    extern int ncclCommInitRank(nativeint& comm, int ranks, NcclUniqueId commId, int rank)

    /// ncclAllReduce(sendbuff, recvbuff, count, datatype, op, comm, stream); in place when the buffers are one.
    [<DllImport(Library)>]
    extern int ncclAllReduce(nativeint sendBuffer, nativeint receiveBuffer, unativeint count, int datatype, int op, nativeint comm, nativeint stream)

    [<DllImport(Library)>]
    extern int ncclCommDestroy(nativeint comm)

    [<DllImport(Library)>]
    extern nativeint ncclGetErrorString(int result)

/// The CUDA runtime's `cudaSetDevice`, from the libcudart the CUDA build of libtorch loads: NCCL works on the
/// calling thread's current device, which libtorch's `torch.device` does not set.
module private CudaRuntime =
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type SetDevice = delegate of int -> int

    let setDevice (index: int) =
        let library =
            [ "libcudart.so"; "libcudart.so.12"; "libcudart.so.11.0" ]
            |> List.tryPick (fun name -> match NativeLibrary.TryLoad name with | true, h -> Some h | _ -> None)
        match library with
        | None -> raise (MpiException "CUDA tensors are all-reduced with NCCL, but the CUDA runtime (libcudart) cannot be loaded.")
        | Some handle ->
            let call = Marshal.GetDelegateForFunctionPointer<SetDevice>(NativeLibrary.GetExport(handle, "cudaSetDevice"))
            let code = call.Invoke index
            if code <> 0 then raise (MpiException(sprintf "cudaSetDevice(%d) failed with CUDA error %d." index code))

/// NCCL (the collective library of NVIDIA GPUs, `libnccl.so.2`) for the all-reduce of CUDA tensors: rank 0 makes the
/// communicator's unique id, MPI broadcasts it, every rank joins with its rank (NCCL's documented MPI bootstrap), on
/// its own GPU (one process per GPU of a machine). The gradients never leave the GPU. **Written, never run**: the
/// machines this project is built on have no GPU and no CUDA build of TorchSharp; it sits behind the same
/// `torch.Tensor -> unit` all-reduce as `Mpi.allReduceTensor`, which the tests run (docs/training.md says so).
type NcclCommunicator(world: World, device: torch.Device) =
    static let ncclFloat32, ncclSum = 7, 0

    static let check (call: string) (code: int) =
        if code <> 0 then
            let text = try Marshal.PtrToStringAnsi(NcclNative.ncclGetErrorString code) with _ -> ""
            raise (MpiException(sprintf "%s failed with NCCL error %d (%s)." call code text))

    let comm =
        let local = World.launchedLocalSize Environment.GetEnvironmentVariable
        let gpus = torch.cuda.device_count ()
        if local > gpus then
            raise (MpiException(sprintf "%d processes run on this machine but it has %d GPU(s): start one process per GPU." local gpus))
        CudaRuntime.setDevice device.index
        let mutable id = NcclUniqueId()
        let bytes = Array.zeroCreate<byte> 128
        if world.IsRoot then
            (try NcclNative.ncclGetUniqueId(&id) with :? DllNotFoundException as e ->
                raise (MpiException(sprintf "CUDA tensors are all-reduced with NCCL, but %s cannot be loaded (%s): install NCCL (libnccl2)." NcclNative.Library e.Message)))
            |> check "ncclGetUniqueId"
            MemoryMarshal.Write(Span bytes, &id)
        Mpi.broadcast bytes 128 0
        id <- MemoryMarshal.Read<NcclUniqueId>(ReadOnlySpan bytes)
        let mutable comm = 0n
        NcclNative.ncclCommInitRank(&comm, world.Size, id, world.Rank) |> check "ncclCommInitRank"
        comm

    /// Sums a contiguous float32 tensor on this process's GPU over every process, in place.
    member _.AllReduce(t: torch.Tensor) =
        if t.device_type <> DeviceType.CUDA || t.dtype <> torch.ScalarType.Float32 || not (t.is_contiguous()) then
            invalidArg "t" (sprintf "NCCL all-reduces contiguous float32 CUDA tensors; got %O on %O." t.dtype t.device)
        use scope = torch.NewDisposeScope() // the storage's alias of the tensor
        use storage = t.storage<float32>()
        let address = storage.data_ptr() + nativeint (t.storage_offset() * 4L)
        // The legacy default stream (0), which libtorch's kernels also run on unless told otherwise: the sum follows
        // the backward pass that wrote the gradients; the synchronisation makes it visible to the optimiser's step.
        NcclNative.ncclAllReduce(address, address, unativeint t.NumberOfElements, ncclFloat32, ncclSum, comm, 0n) |> check "ncclAllReduce"
        torch.cuda.synchronize device
        GC.KeepAlive t

    interface IDisposable with
        member _.Dispose() = NcclNative.ncclCommDestroy comm |> ignore
