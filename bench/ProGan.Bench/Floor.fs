/// The training step's floor: every layer operation of one real step recorded with its input's shape and the passes
/// autograd runs through it, then each timed alone (same shapes, same dtype, warm, the minimum of many runs), summed
/// with the optimisers and the EMA update. The step can approach that sum on this machine; what it takes beyond it is
/// the cost of running the operations together (caches, allocation, dispatch, thread fork/join) and of the few small
/// operations not counted here (the losses, the penalty's interpolation, the reals' fade, the fade-in blends at 4²–r²
/// with 3 channels, the leaky ReLUs after the two dense layers at 4²).
module ProGan.Bench.Floor

open System
open System.Collections.Generic
open System.Diagnostics
open TorchSharp
open ProGan.Keras.Backend
open ProGan.Keras.Layers
open ProGan.Keras.Models
open ProGan.Training.Config
open ProGan.Training.Data
open ProGan.Training.Loop
open ProGan.Training.Paper

type Tensor = torch.Tensor

/// What autograd does with an operation in the step, from the model call it belongs to.
type Pass =
    /// G making D's fakes, under `no_grad`: forward only.
    | ForwardOnly
    /// D on the joined reals and fakes, or G in its own step: forward, then backward to the weights (and to the input
    /// where it needs a gradient).
    | ForwardBackward
    /// D scoring G's fakes in G's step, its parameters frozen: forward, then backward to the input only.
    | InputGradient
    /// D on the penalty's interpolated images: forward, ∂D/∂x with `create_graph`, then backward through both graphs
    /// (the double backward of WGAN-GP's or R1's penalty).
    | Penalty

    override this.ToString() =
        match this with
        | ForwardOnly -> "forward"
        | ForwardBackward -> "forward+backward"
        | InputGradient -> "forward+input gradient"
        | Penalty -> "penalty (double backward)"

/// One operation as the step ran it.
type Call =
    { /// What it is, in words: network, operation, shape (e.g. "D conv 3×3 128→128 at 32²").
      Name: string
      Pass: Pass
      /// The input's shape and type.
      Shape: int64[]
      DType: torch.ScalarType
      InputNeedsGradient: bool
      /// Whether the step ran it channels-last (`ChannelsLast.Is` of its input or output): it is timed so.
      Nhwc: bool
      /// The operation on an input of that shape.
      Run: Tensor -> Tensor
      /// Its parameters (frozen for `InputGradient`).
      Parameters: torch.nn.Module option }

/// An operation's time alone, per step (times the calls of that kind in one step).
type Timed = { Name: string; Pass: Pass; Calls: int; Seconds: float }

/// The floor of one step: its operations' times alone, summed with the optimisers' and the EMA update's.
type StepFloor =
    { Operations: Timed list
      OptimisersAndEma: float
      Seconds: float
      /// The median seconds of whole steps of the same trainer, timed between the rounds of operations.
      StepSeconds: float }

    /// The `count` operations that cost most, largest first.
    member this.Costliest(count: int) = this.Operations |> List.sortByDescending (fun t -> t.Seconds) |> List.truncate count

let private side (shape: int64[]) = if shape.Length = 4 then sprintf " at %d²" shape[3] else ""

/// Records the layer operations of one `trainer.Step()`, with the pass each belongs to.
let record (trainer: Trainer) =
    let calls = List<Call>()
    let mutable network, pass = "G", ForwardOnly
    let removers = List<IDisposable>()
    let onModel (name: string) (classify: Tensor -> Pass) (m: torch.nn.Module<Tensor, Tensor>) =
        let handle = m.register_forward_pre_hook(Func<torch.nn.Module<Tensor, Tensor>, Tensor, Tensor>(fun _ x -> network <- name; pass <- classify x; x))
        removers.Add { new IDisposable with member _.Dispose() = handle.remove() }
    /// `describe` gives, from the layer's input and output, its operation's name, how to run it, and the input it
    /// takes as (shape, type, whether it needs a gradient).
    let onLayer (m: torch.nn.Module<Tensor, Tensor>) (describe: Tensor -> Tensor -> string * (Tensor -> Tensor) * (int64[] * torch.ScalarType * bool)) =
        let handle =
            m.register_forward_hook(Func<torch.nn.Module<Tensor, Tensor>, Tensor, Tensor, Tensor>(fun _ x y ->
                let name, run, (shape, dtype, needsGradient) = describe x y
                calls.Add
                    { Name = network + " " + name; Pass = pass; Shape = shape; DType = dtype
                      InputNeedsGradient = needsGradient && pass <> ForwardOnly; Run = run
                      Nhwc = ChannelsLast.Is x || ChannelsLast.Is y
                      Parameters = (match m with :? WeightScaledConv2D | :? WeightScaledDense -> Some(m :> torch.nn.Module) | _ -> None) }
                y))
        removers.Add { new IDisposable with member _.Dispose() = handle.remove() }
    let input (x: Tensor) = x.shape, x.dtype, x.requires_grad
    let g, d = trainer.State.Generator, trainer.State.Discriminator
    for pair in g.Pairs do
        for m in [ Some pair.StraightThrough; Option.ofObj pair.FadeIn ] |> List.choose id do
            onModel "G" (fun _ -> if torch.is_grad_enabled () then ForwardBackward else ForwardOnly) m
    for pair in d.Pairs do
        for m in [ Some pair.StraightThrough; Option.ofObj pair.FadeIn ] |> List.choose id do
            onModel "D" (fun x ->
                if x.is_leaf && x.requires_grad then Penalty
                elif m.parameters() |> Seq.forall (fun p -> not p.requires_grad) then InputGradient
                else ForwardBackward) m
    for network in [ g :> torch.nn.Module; d ] do
        for m in network.modules() do
            match m with
            | :? WeightScaledConv2D as conv ->
                onLayer conv (fun x _ ->
                    let kind = if conv.Upscale then " (upscale)" elif conv.Downscale then " (downscale)" else ""
                    sprintf "conv %d×%d %d→%d%s%s" conv.KernelSize conv.KernelSize conv.InChannels conv.OutChannels kind (side x.shape), conv.call, input x)
            | :? WeightScaledDense as dense ->
                onLayer dense (fun x _ -> sprintf "dense %d→%d" dense.InFeatures dense.OutFeatures, dense.call, input x)
            | :? PixelNormalization as norm -> onLayer norm (fun x _ -> "pixel norm" + side x.shape, norm.call, input x)
            | :? MinibatchStdev as stdev -> onLayer stdev (fun x _ -> "minibatch stddev" + side x.shape, stdev.call, input x)
            | :? ConvActivation as unit ->
                // The unit's LeakyReLU, on its convolution's output (the unit's output has that shape).
                let slope = unit.Slope
                onLayer unit (fun _ y -> "leaky ReLU" + side y.shape, (fun x -> x.leaky_relu(Scalars.Of slope)), input y)
            | :? DiscriminatorBlock when not trainer.Config.Architecture.FusedScale ->
                // The separate order's 2×2 average pooling after the block's second unit.
                onLayer (m :?> torch.nn.Module<Tensor, Tensor>) (fun _ y ->
                    let shape = [| y.shape[0]; y.shape[1]; 2L * y.shape[2]; 2L * y.shape[3] |]
                    "2×2 average pool" + side shape, Resample.Down, (shape, y.dtype, y.requires_grad))
            | _ -> ()
    try
        trainer.Step() |> ignore
    finally
        for r in removers do r.Dispose()
    List.ofSeq calls

/// The recorded calls grouped by what they time the same: name, pass, input shape, whether the input needs a gradient.
let private kinds (calls: Call list) =
    calls |> List.groupBy (fun c -> c.Name, c.Pass, List.ofArray c.Shape, c.InputNeedsGradient) |> List.map snd

/// The minimum over `runs` (after two warm-ups) of the seconds `f` takes.
let private fastest (runs: int) (f: unit -> unit) =
    f ()
    f ()
    [ for _ in 1..runs ->
        let sw = Stopwatch.StartNew()
        f ()
        sw.Elapsed.TotalSeconds ]
    |> List.min

/// `x` laid out channels-last (NHWC strides, the same NCHW shape): what oneDNN's NHWC kernels read without a reorder.
let channelsLast (x: Tensor) = if x.dim() = 4 then x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2) else x

/// Seconds of one call alone, in its pass: the inputs, output gradients and the penalty's weights are made before
/// the clock starts; only the operation and its backward passes are timed. `layout` lays out those tensors (`id`, or
/// `channelsLast`).
let timeCallIn (layout: Tensor -> Tensor) (runs: int) (call: Call) =
    use scope = torch.NewDisposeScope()
    let x = layout (torch.randn(call.Shape, dtype = call.DType))
    let y0 = (use _ = torch.no_grad() in call.Run x)
    let outGradient = layout (torch.randn_like y0)
    let weight = layout (torch.randn(call.Shape, dtype = call.DType))
    let step () =
        use inner = torch.NewDisposeScope()
        match call.Pass with
        | ForwardOnly ->
            use _ = torch.no_grad()
            call.Run x |> ignore
        | ForwardBackward | InputGradient ->
            let input = if call.InputNeedsGradient then x.detach().requires_grad_(true) else x
            let y = call.Run input
            if y.requires_grad then torch.autograd.backward([| y |], [| outGradient |]) // (the latent's pixel norm in G's step has nothing to differentiate)
        | Penalty ->
            let input = x.detach().requires_grad_(true)
            let y = call.Run input
            let gy = outGradient.detach().requires_grad_(true) // in the step, a later layer's gradient, itself differentiable
            let gx = torch.autograd.grad([| y |], [| input |], [| gy |], retain_graph = true, create_graph = true)[0]
            // Backward through the gradient's graph (the penalty) and through the forward graph (what later layers'
            // double backward sends back into this one).
            gx.mul(weight).sum().add(y.mul(outGradient).sum()).backward()
    let frozen = if call.Pass = InputGradient then call.Parameters |> Option.map Trainability.Freeze else None
    try fastest runs step
    finally frozen |> Option.iter (fun f -> f.Dispose())

/// Seconds of one call alone, in its pass, in the layout the step ran it in.
let timeCall (runs: int) (call: Call) = timeCallIn (if call.Nhwc then channelsLast else id) runs call

/// Seconds of a convolution call alone with its input, output gradient and kernel channels-last (the parameter's
/// storage laid out NHWC for the duration, then restored), or None for other calls.
let timeChannelsLast (runs: int) (call: Call) =
    match call.Parameters with
    | Some(:? WeightScaledConv2D as conv) ->
        let weight = conv.Weight
        let original = (use _ = torch.no_grad() in weight.detach().clone())
        (use _ = torch.no_grad() in weight.set_(channelsLast original) |> ignore)
        try Some(timeCallIn channelsLast runs call)
        finally
            use _ = torch.no_grad()
            weight.set_(original) |> ignore
    | _ -> None

/// Seconds of both optimisers' steps and the EMA update, alone (after a recorded step, so gradients exist).
let private optimisersAndEma (runs: int) (trainer: Trainer) =
    let state = trainer.State
    fastest runs (fun () ->
        state.DiscriminatorOptimizer.step() |> ignore
        state.GeneratorOptimizer.step() |> ignore
        Ema.update 0.999 state.Ema state.Generator)

/// The floor of one step of `config` at `resolution`, fading or not, on `data`: its operations recorded from a real
/// step after `warmup` steps, each timed alone (minimum of `runs`), and whole steps of the same trainer timed between
/// them: two rounds of (every operation, then 3 steps), each operation's best and the steps' median kept, so that the
/// step and its floor are measured minutes apart at most (this VM's speed drifts by 10–30 % over minutes).
let measure (data: TrainingImages) (config: TrainingConfig) (resolution: int) (fading: bool) (warmup: int) (runs: int) =
    use trainer = Steps.trainerAt data config resolution fading warmup
    let groups = kinds (record trainer)
    let best = Array.create groups.Length infinity
    let mutable rest = infinity
    let steps = List<float>()
    for _ in 1..2 do
        groups |> List.iteri (fun i group -> best[i] <- min best[i] (timeCall runs group.Head))
        rest <- min rest (optimisersAndEma runs trainer)
        for _ in 1..3 do
            let sw = Stopwatch.StartNew()
            trainer.Step() |> ignore
            steps.Add sw.Elapsed.TotalSeconds
    let operations =
        groups |> List.mapi (fun i group ->
            let c = group.Head
            { Name = c.Name; Pass = c.Pass; Calls = group.Length; Seconds = float group.Length * best[i] })
    { Operations = operations; OptimisersAndEma = rest; Seconds = (operations |> List.sumBy (fun t -> t.Seconds)) + rest
      StepSeconds = Seq.sort steps |> Seq.item (steps.Count / 2) }

/// "name (pass, ×calls) ms" for a table cell.
let describe (t: Timed) =
    sprintf "%s, %O%s: %.1f ms" t.Name t.Pass (if t.Calls > 1 then sprintf " ×%d" t.Calls else "") (1000.0 * t.Seconds)

/// Every convolution of one step of `config` at `resolution` (stabilising), timed alone in its pass in NCHW and
/// channels-last: printed per operation and summed, so that a layout change can be judged operation by operation
/// before it is tried end to end. Returns (NCHW seconds, channels-last seconds) summed over the convolutions.
let layouts (data: TrainingImages) (config: TrainingConfig) (resolution: int) (warmup: int) (runs: int) =
    use trainer = Steps.trainerAt data config resolution false warmup
    let convolutions =
        record trainer |> List.filter (fun c -> match c.Parameters with Some(:? WeightScaledConv2D) -> true | _ -> false) |> kinds
    printfn "%d² convolutions of one step, each alone (minimum of %d), NCHW against channels-last (input, kernel and output gradient NHWC):" resolution runs
    let rows =
        [ for group in convolutions ->
            let name, pass = group.Head.Name, group.Head.Pass
            let nchw = float group.Length * timeCallIn id runs group.Head
            let nhwc = float group.Length * (timeChannelsLast runs group.Head).Value
            printfn "  %-48s %-28O %s %8.2f ms %8.2f ms  ×%.2f" name pass (if group.Length > 1 then sprintf "×%d" group.Length else "  ") (1000.0 * nchw) (1000.0 * nhwc) (nchw / nhwc)
            pass, nchw, nhwc ]
    for pass in rows |> List.map (fun (p, _, _) -> p) |> List.distinct do
        let these = rows |> List.filter (fun (p, _, _) -> p = pass)
        let nchw, nhwc = these |> List.sumBy (fun (_, a, _) -> a), these |> List.sumBy (fun (_, _, b) -> b)
        printfn "  %-78O %8.2f ms %8.2f ms  ×%.2f" pass (1000.0 * nchw) (1000.0 * nhwc) (nchw / nhwc)
    let nchw, nhwc = rows |> List.sumBy (fun (_, a, _) -> a), rows |> List.sumBy (fun (_, _, b) -> b)
    printfn "  %-78s %8.2f ms %8.2f ms  ×%.2f" "all convolutions" (1000.0 * nchw) (1000.0 * nhwc) (nchw / nhwc)
    nchw, nhwc

/// Every operation of one bfloat16 step of `config` at `resolution` (stabilising or fading), timed alone in its pass
/// in bfloat16 and again on float32 inputs (the layers cast their float32 parameters to the input's type, so the same
/// call computes in float32): printed per operation, the ones bfloat16 loses on first, and summed per pass — where the
/// bfloat16 step loses, operation by operation. Returns (float32 seconds, bfloat16 seconds) summed over the operations.
let precisions (data: TrainingImages) (config: TrainingConfig) (resolution: int) (fading: bool) (warmup: int) (runs: int) =
    use trainer = Steps.trainerAt data { config with Precision = BFloat16 } resolution fading warmup
    let groups = record trainer |> List.filter (fun c -> c.DType = torch.ScalarType.BFloat16) |> kinds
    printfn "%d² %s, operations of one bfloat16 step, each alone (minimum of %d), float32 against bfloat16 (ratio > 1: bfloat16 faster):" resolution (if fading then "fade-in" else "stabilise") runs
    let rows =
        [ for group in groups ->
            let c = group.Head
            let bf16 = float group.Length * timeCall runs c
            let fp32 = float group.Length * timeCall runs { c with DType = torch.ScalarType.Float32 }
            c.Name, c.Pass, group.Length, fp32, bf16 ]
    for name, pass, calls, fp32, bf16 in rows |> List.sortBy (fun (_, _, _, a, b) -> a / b) do
        printfn "  %-48s %-28O %s %8.2f ms %8.2f ms  ×%.2f" name pass (if calls > 1 then sprintf "×%d" calls else "  ") (1000.0 * fp32) (1000.0 * bf16) (fp32 / bf16)
    for pass in rows |> List.map (fun (_, p, _, _, _) -> p) |> List.distinct do
        let these = rows |> List.filter (fun (_, p, _, _, _) -> p = pass)
        let fp32, bf16 = these |> List.sumBy (fun (_, _, _, a, _) -> a), these |> List.sumBy (fun (_, _, _, _, b) -> b)
        printfn "  %-78O %8.2f ms %8.2f ms  ×%.2f" pass (1000.0 * fp32) (1000.0 * bf16) (fp32 / bf16)
    let fp32, bf16 = rows |> List.sumBy (fun (_, _, _, a, _) -> a), rows |> List.sumBy (fun (_, _, _, _, b) -> b)
    printfn "  %-78s %8.2f ms %8.2f ms  ×%.2f" "all operations" (1000.0 * fp32) (1000.0 * bf16) (fp32 / bf16)
    fp32, bf16

/// Whole steps of two trainers (`start false` and `start true`, each warmed up by two steps), one process, timed in
/// alternating rounds of `steps` steps, the first of each pair swapping (this VM's speed drifts over minutes). Each
/// round counts its mean seconds per step, so a round of K steps under a penalty every K-th minibatch holds one penalty
/// step. Returns each round's (first's, second's) seconds per step.
let pairedSteps (start: bool -> Trainer) (rounds: int) (steps: int) =
    let warm second =
        let trainer = start second
        for _ in 1..2 do trainer.Step() |> ignore
        trainer
    use first = warm false
    use second = warm true
    let time (trainer: Trainer) =
        let sw = Stopwatch.StartNew()
        for _ in 1..steps do trainer.Step() |> ignore
        sw.Elapsed.TotalSeconds / float steps
    [ for k in 1..rounds -> if k % 2 = 1 then let a = time first in a, time second else let b = time second in time first, b ]

/// `config` laid out channels-last throughout (`TrainingConfig.ChannelsLastFrom` 4) or NCHW throughout (0).
let private inLayout (channelsLast: bool) (config: TrainingConfig) = { config with ChannelsLastFrom = (if channelsLast then 4 else 0) }

/// Whole steps in NCHW against channels-last (G, D and the EMA generator), `pairedSteps`.
let layoutSteps (data: TrainingImages) (config: TrainingConfig) (resolution: int) (fading: bool) (rounds: int) (steps: int) =
    pairedSteps (fun channelsLast -> Steps.trainerAt data (inLayout channelsLast config) resolution fading 0) rounds steps

/// Whole steps in float32 against bfloat16 (`TrainingConfig.Precision`: G and D compute in it, the weights and Adam
/// stay float32), `pairedSteps`. `channelsLast` lays both trainers' networks out channels-last, NCHW otherwise.
let precisionSteps (data: TrainingImages) (config: TrainingConfig) (channelsLast: bool) (resolution: int) (fading: bool) (rounds: int) (steps: int) =
    pairedSteps (fun bf16 ->
        Steps.trainerAt data (inLayout channelsLast { config with Precision = (if bf16 then BFloat16 else Float32) }) resolution fading 0) rounds steps
