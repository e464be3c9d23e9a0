/// The .NET Interactive kernel the notebooks run in, driven as Polyglot Notebooks drives it: `dotnet interactive stdio`
/// takes one JSON command a line on stdin and answers with one JSON event a line on stdout. The kernel is the local tool
/// pinned in .config/dotnet-tools.json, restored here, so a fresh clone needs nothing installed by hand.
module ProGan.Training.Tests.Notebooks.NotebookKernel

open System
open System.Collections.Concurrent
open System.Diagnostics
open System.Text.Json
open System.Text.Json.Nodes

/// What a cell showed, in the kernel's own terms.
type CellOutput =
    /// Text the cell wrote to stdout or stderr ("stdout" / "stderr").
    | Stream of name: string * text: string
    /// A value the cell displayed (`display`, a formatter) or returned, by mime type; the id of an updatable display.
    | Display of valueId: string option * formats: (string * string) list * isResult: bool

/// A cell's outcome: its outputs in order, the kernel's error if it failed, and how long it ran.
type CellResult =
    { Outputs: CellOutput list
      Error: string option
      Seconds: float }

    /// The cell's stdout, joined.
    member r.Text = r.Outputs |> List.choose (function Stream("stdout", t) -> Some t | _ -> None) |> String.concat ""

    /// The cell's displayed values in one mime type (the final state of updated displays).
    member r.Shown(mime: string) =
        r.Outputs |> List.choose (function Display(_, f, _) -> List.tryFind (fst >> (=) mime) f |> Option.map snd | _ -> None)

let private run (workingDirectory: string) (file: string) (args: string list) (timeout: TimeSpan) =
    let info = ProcessStartInfo(file, args, WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    use p = Process.Start info
    let error = p.StandardError.ReadToEndAsync()
    let output = p.StandardOutput.ReadToEnd()
    if not (p.WaitForExit timeout) then p.Kill true
    p.ExitCode, output + error.Result

/// Restores the repository's local tools (the kernel); the reason when it cannot.
let restore (root: string) =
    let code, output = run root "dotnet" [ "tool"; "restore" ] (TimeSpan.FromMinutes 5.0)
    if code = 0 then Ok() else Error(sprintf "`dotnet tool restore` failed (exit %d): %s" code (output.Trim()))

/// A running kernel, its working directory a notebook's folder, as when a notebook is opened.
type Kernel(workingDirectory: string) =
    let info =
        ProcessStartInfo("dotnet", [ "tool"; "run"; "dotnet-interactive"; "--"; "stdio"; "--default-kernel"; "fsharp" ],
                         WorkingDirectory = workingDirectory, RedirectStandardInput = true, RedirectStandardOutput = true,
                         RedirectStandardError = true, UseShellExecute = false)
    do info.Environment["DOTNET_INTERACTIVE_CLI_TELEMETRY_OPTOUT"] <- "1"
    do info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] <- "1"
    // libtorch's OpenMP threads spin while they wait for each other; on a machine whose cores other processes share
    // (the suite runs test classes side by side on 2 cores) a descheduled thread leaves the others spinning, and the
    // training cells ran 10-25x slower than with passive waiting (seen here: 269 s against 10 s for the same 2,400 images).
    do info.Environment["OMP_WAIT_POLICY"] <- "PASSIVE"
    let p = Process.Start info
    let events = new BlockingCollection<JsonNode>()
    let errors = Text.StringBuilder()
    // The kernel writes a banner before its first event: anything that is not a JSON object is not an event.
    let reader =
        Threading.Thread((fun () ->
            let mutable line = p.StandardOutput.ReadLine()
            while not (isNull line) do
                if line.StartsWith "{" then
                    try events.Add(JsonNode.Parse line) with :? JsonException -> ()
                line <- p.StandardOutput.ReadLine()
            events.CompleteAdding()), IsBackground = true)
    do reader.Start()
    do p.ErrorDataReceived.Add(fun e -> if not (isNull e.Data) then lock errors (fun () -> errors.AppendLine e.Data |> ignore))
    do p.BeginErrorReadLine()
    let mutable count = 0

    // Events that answer no command (KernelReady) have no token.
    let tokenOf (e: JsonNode) = match e["command"] with null -> "" | c -> string (c["token"])

    let formats (e: JsonNode) =
        [ for v in e["formattedValues"].AsArray() -> string (v["mimeType"]), string (v["value"]) ]

    /// Runs one cell's code in the F# kernel and collects its events until the kernel says it succeeded or failed.
    member _.Submit(code: string, timeout: TimeSpan) : CellResult =
        count <- count + 1
        let token = sprintf "cell-%d" count
        let command = JsonObject()
        command["token"] <- token
        command["commandType"] <- "SubmitCode"
        command["command"] <- JsonObject(dict [ "code", JsonValue.Create code :> JsonNode; "targetKernelName", JsonValue.Create "fsharp" ])
        p.StandardInput.WriteLine(command.ToJsonString())
        p.StandardInput.Flush()
        let watch = Stopwatch.StartNew()
        let outputs = ResizeArray<CellOutput>()
        let mutable finished = None
        while finished.IsNone do
            let left = timeout - watch.Elapsed
            let mutable e = null
            if left <= TimeSpan.Zero || not (events.TryTake(&e, left)) then
                let why = if events.IsCompleted then "the kernel exited" else sprintf "no answer within %O" timeout
                finished <- Some(Some(sprintf "%s\n%s" why (lock errors (fun () -> string errors))))
            // Events of the kernel's own sub-commands (tokens "cell-1.2") belong to the cell too, but only its own
            // command's success or failure ends it.
            elif (tokenOf e).StartsWith token then
                let own = tokenOf e = token
                match string (e["eventType"]) with
                | "StandardOutputValueProduced" -> outputs.Add(Stream("stdout", formats e["event"] |> List.head |> snd))
                | "StandardErrorValueProduced" -> outputs.Add(Stream("stderr", formats e["event"] |> List.head |> snd))
                | "DisplayedValueProduced" | "ReturnValueProduced" as kind ->
                    let id = match e["event"]["valueId"] with null -> None | v -> Some(string v)
                    outputs.Add(Display(id, formats e["event"], (kind = "ReturnValueProduced")))
                | "DisplayedValueUpdated" ->
                    // An updating display (`display(x).Update(y)`) ends as its last value, as the notebook shows it.
                    let id = match e["event"]["valueId"] with null -> None | v -> Some(string v)
                    // This kernel's F# `display` announces a value under one id and updates it under another (seen with
                    // 1.0.712001): an update of an id not seen yet belongs to the latest displayed value, which takes its id.
                    let i = outputs.FindLastIndex(fun o -> match o with Display(d, _, _) -> d = id | _ -> false)
                    let i = if i >= 0 then i else outputs.FindLastIndex(fun o -> match o with Display(_, _, isResult) -> not isResult | _ -> false)
                    if i >= 0 then outputs[i] <- Display(id, formats e["event"], false)
                    else outputs.Add(Display(id, formats e["event"], false))
                | "CommandSucceeded" when own -> finished <- Some None
                | "CommandFailed" when own -> finished <- Some(Some(string (e["event"]["message"])))
                | _ -> ()
        { Outputs = List.ofSeq outputs; Error = finished.Value; Seconds = watch.Elapsed.TotalSeconds }

    interface IDisposable with
        /// Ends the kernel and the process `dotnet tool run` started it in: a notebook's kernel lives as long as the notebook.
        member _.Dispose() =
            try p.Kill true with _ -> ()
            p.WaitForExit(10_000) |> ignore
            reader.Join(TimeSpan.FromSeconds 5.0) |> ignore
            p.Dispose()

/// The outputs of a cell as .ipynb outputs (nbformat 4): what GitHub and VS Code show.
let toIpynb (executionCount: int) (result: CellResult) =
    let items = JsonArray()
    // Consecutive writes to one stream are one output, as Jupyter shows them.
    let mutable pending: (string * Text.StringBuilder) option = None
    let flush () =
        match pending with
        | Some(name, text) ->
            items.Add(JsonNode.Parse(sprintf """{"output_type":"stream","name":%s,"text":%s}""" (JsonSerializer.Serialize name) (JsonSerializer.Serialize(string text))))
            pending <- None
        | None -> ()
    for output in result.Outputs do
        match output with
        | Stream(name, text) ->
            match pending with
            | Some(n, b) when n = name -> b.Append text |> ignore
            | _ ->
                flush ()
                pending <- Some(name, Text.StringBuilder text)
        | Display(_, formats, isResult) ->
            flush ()
            let data = JsonObject()
            for mime, value in formats do data[mime] <- value
            let item = JsonObject()
            item["output_type"] <- if isResult then "execute_result" else "display_data"
            item["data"] <- data
            item["metadata"] <- JsonObject()
            if isResult then item["execution_count"] <- executionCount
            items.Add item
    flush ()
    match result.Error with
    | Some message ->
        items.Add(JsonNode.Parse(sprintf """{"output_type":"error","ename":"Error","evalue":%s,"traceback":[]}""" (JsonSerializer.Serialize message)))
    | None -> ()
    items
