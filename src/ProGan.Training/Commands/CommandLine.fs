// Command-line parsing for every command: one flag table drives parsing, usage and the resume whitelist.
namespace ProGan.Training.Commands

open System
open System.Globalization
open System.IO
open ProGan.Keras.Serving
open ProGan.Training.Basics
open ProGan.Training.Config
open ProGan.Training.Data
open ProGan.Training.Runs
open ProGan.Training.Loop

/// Bad command-line input: the message is one line that names the argument.
exception UsageException of string
    with override this.Message = this.Data0

/// One option of a command. The table of a command's flags drives its parsing, its usage text and what may be given
/// with `--resume`, so the three cannot disagree.
type Flag<'Args> =
    { /// `--name`.
      Name: string
      /// The placeholder of its value (`N`, `FOLDER`); empty for a switch, which takes none.
      Value: string
      /// What it means, for the usage text.
      Help: string
      /// Whether it may be combined with the command's resume flag.
      WithResume: bool
      /// What it does to the arguments (given the value; "" for a switch). Raises UsageException on a bad value.
      Apply: string -> 'Args -> 'Args }

/// A command-line command: its usage lines, its flag table, and its arguments before any flag.
type Command<'Args> =
    { /// How to call it, e.g. `dotnet fsi train.fsx -- [options]`.
      Usage: string list
      /// One line on what it does.
      Summary: string
      Flags: Flag<'Args> list
      Defaults: 'Args
      /// The flag that continues earlier work (`--resume`); with it, only flags marked `WithResume` are accepted.
      ResumeFlag: string option }

/// Parsing (pure), usage text, and the one place where every failure a command can meet becomes its exit code and
/// one line on standard error.
module CommandLine =

    let private bad format = Printf.kprintf (UsageException >> raise) format

    /// Builds a flag.
    let flag name value help withResume apply = { Name = name; Value = value; Help = help; WithResume = withResume; Apply = apply }

    /// A whole number in [lo, hi] (an int64 flag); says which bound is crossed.
    let wholeIn (lo: int64) (hi: int64) (flag: string) (text: string) =
        match Int64.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) with
        | true, v when v < lo -> bad "%s must be at least %d; got %d." flag lo v
        | true, v when v > hi -> bad "%s must be at most %d; got %d." flag hi v
        | true, v -> v
        | _ ->
            match Numerics.BigInteger.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) with
            | true, _ -> bad "%s must be between %d and %d; got %s." flag lo hi text
            | _ -> bad "%s expects a whole number; got '%s'." flag text

    /// A whole number in [lo, hi] as an int.
    let intIn (lo: int) (hi: int) (flag: string) (text: string) = int (wholeIn (int64 lo) (int64 hi) flag text)

    /// A whole number that fits an int (bounds are checked, with their meaning, by the configuration).
    let int' (flag: string) (text: string) = intIn Int32.MinValue Int32.MaxValue flag text

    /// A finite number.
    let float' (flag: string) (text: string) =
        match Double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture) with
        | true, v when Double.IsFinite v -> v
        | true, _ -> bad "%s must be a finite number; got '%s'." flag text
        | _ -> bad "%s expects a number; got '%s'." flag text

    /// A final resolution: a power of two ≥ 8.
    let resolution (flag: string) (text: string) =
        let r = int' flag text
        if r < 8 || r > 65536 || (r &&& (r - 1)) <> 0 then bad "%s must be a power of two ≥ 8 (8, 16, 32, 64, …); got %d." flag r
        r

    /// Image channels: 1, 3 or 4.
    let channels (flag: string) (text: string) =
        let c = int' flag text
        if not (List.contains c Channels.supported) then bad "%s must be 1, 3 or 4; got %d." flag c
        c

    /// `RESOLUTION:VALUE,…` entries (the reference's per-resolution dicts), each made by `entry`.
    let perResolution (flag: string) (text: string) (entry: int -> string -> 'T) =
        text.Split(',') |> Array.map (fun item ->
            match item.Split(':') with
            | [| r; value |] -> entry (int' flag r) value
            | _ -> bad "%s expects a value or RESOLUTION:VALUE,…; got '%s'." flag item)

    /// A non-empty path.
    let path (flag: string) (what: string) (text: string) =
        if String.IsNullOrWhiteSpace text then bad "%s needs %s; got an empty string." flag what
        text

    /// The arguments after the script's own name and the `--` that `dotnet fsi` passes through.
    let scriptArguments (argv: string[]) =
        argv |> List.ofArray |> List.skipWhile (fun a -> a = "--" || a.EndsWith(".fsx", StringComparison.Ordinal))

    /// Edit distance, for suggestions.
    let private distance (a: string) (b: string) =
        let d = Array2D.init (a.Length + 1) (b.Length + 1) (fun i j -> if i = 0 then j elif j = 0 then i else 0)
        for i in 1 .. a.Length do
            for j in 1 .. b.Length do
                let cost = if a[i - 1] = b[j - 1] then 0 else 1
                d[i, j] <- min (min (d[i - 1, j] + 1) (d[i, j - 1] + 1)) (d[i - 1, j - 1] + cost)
        d[a.Length, b.Length]

    /// The one-line complaint about an unknown option, with the closest known one.
    let private unknown (command: Command<'Args>) (given: string) =
        let names = command.Flags |> List.map (fun f -> f.Name)
        match given.IndexOf '=' with
        | i when i > 0 && List.contains (given.Substring(0, i)) names ->
            bad "Unknown option %s; write %s %s (a space, not '=')." given (given.Substring(0, i)) (given.Substring(i + 1))
        | _ ->
            match names |> List.map (fun n -> n, distance n given) |> List.minBy snd with
            | closest, d when d <= 2 -> bad "Unknown option %s; did you mean %s? (--help lists the options)" given closest
            | _ -> bad "Unknown option %s; --help lists the options." given

    /// Parses `argv` with the command's flags, in order, onto its defaults; the last of a repeated flag wins.
    /// Raises UsageException with one line on bad input. Pure: reads no file, sets nothing.
    let parse (command: Command<'Args>) (argv: string list) : 'Args =
        let find name = command.Flags |> List.tryFind (fun f -> f.Name = name)
        let rec pairs (acc: (Flag<'Args> * string) list) (args: string list) =
            match args with
            | [] -> List.rev acc
            | name :: rest when name.StartsWith "-" ->
                match find name with
                | None -> unknown command name
                | Some f when f.Value = "" -> pairs ((f, "") :: acc) rest
                | Some f ->
                    match rest with
                    | value :: rest when not (value.StartsWith "--") -> pairs ((f, value) :: acc) rest
                    | _ -> bad "%s needs a value (%s)." name f.Value
            | other :: _ -> bad "Unexpected argument '%s' (options start with --; --help lists them)." other
        let given = pairs [] argv
        match command.ResumeFlag with
        | Some resume when given |> List.exists (fun (f: Flag<'Args>, _) -> f.Name = resume) ->
            match given |> List.tryFind (fun (f: Flag<'Args>, _) -> not f.WithResume) with
            | Some(f, _) ->
                let allowed = command.Flags |> List.filter (fun f -> f.WithResume && f.Name <> resume) |> List.map (fun f -> f.Name)
                bad "%s continues a run with its own config.json; %s cannot be combined with it (allowed: %s)." resume f.Name (String.Join(", ", allowed))
            | None -> ()
        | _ -> ()
        given |> List.fold (fun args (f, value) -> f.Apply value args) command.Defaults

    /// The usage text: the summary, the usage lines, and one line per flag of the table.
    let usage (command: Command<'Args>) =
        let lines =
            [ yield sprintf "%s: %s" About.product command.Summary
              yield ""
              for i, line in List.indexed command.Usage do
                  yield (if i = 0 then "usage: " else "       ") + line
              yield ""
              for f in command.Flags do
                  let head = if f.Value = "" then f.Name else f.Name + " " + f.Value
                  yield sprintf "  %-26s %s%s" head f.Help (if command.ResumeFlag.IsSome && f.WithResume && Some(f.Name) <> command.ResumeFlag then " (also with --resume)" else "")
              yield sprintf "  %-26s %s" "--help" "this text" ]
        String.Join(Environment.NewLine, lines)

    /// An exception message without .NET's " (Parameter 'x')" suffix, on one line.
    let firstLine (message: string) =
        let line = (message.Split('\n')[0]).TrimEnd('\r')
        match line.IndexOf(" (Parameter") with
        | -1 -> line
        | i -> line.Substring(0, i)

    /// Every failure a command can meet as its exit code and one line; None for a bug (which keeps its trace).
    /// 2: bad input (an argument, a folder, a file, a setting that cannot fit); 3: the run folder is in use;
    /// 4: a file could not be written; 5: training failed (non-finite values); 6: out of memory;
    /// 130/143: stopped by a signal before the work began.
    let describe (e: exn) : (int * string) option =
        match e with
        | UsageException message -> Some(2, message + (if message.Contains "--help" then "" else " (--help lists the options)"))
        | RunFolderException message | DataException message | ResourceException message -> Some(2, message)
        | :? CheckpointException | :? InvalidRunFolderException | ArchitectureMismatchException(_, _) -> Some(2, firstLine e.Message)
        | :? ArgumentException as a -> Some(2, firstLine a.Message)
        | RunLockedException(_, _) -> Some(3, e.Message)
        | :? ProGan.Keras.IO.OutputRefusedException -> Some(2, firstLine e.Message)
        | CheckpointWriteException(_, _) -> Some(4, firstLine e.Message)
        | :? IOException | :? UnauthorizedAccessException -> Some(4, firstLine e.Message)
        | TrainingFailedException message -> Some(5, message)
        | :? OutOfMemoryException -> Some(6, "Out of memory; lower --minibatch, --fmap-max or --resolution.")
        | _ when e.Message.Contains "can't allocate memory" || e.Message.Contains "DefaultCPUAllocator" ->
            Some(6, sprintf "Out of memory (%s); lower --minibatch, --fmap-max or --resolution." (firstLine e.Message))
        | :? OperationCanceledException -> Some(130, "Stopped before the work began.")
        | _ -> None

    /// Runs a command: `--help` prints the usage; otherwise the arguments are parsed and `body` runs, and any failure
    /// `describe` knows becomes its exit code and one line on standard error.
    let run (command: Command<'Args>) (argv: string[]) (body: 'Args -> int) =
        let args = scriptArguments argv
        if List.contains "--help" args || List.contains "-h" args then
            printfn "%s" (usage command)
            0
        else
            try body (parse command args)
            with e ->
                let e = match e with :? Reflection.TargetInvocationException as t when not (isNull t.InnerException) -> t.InnerException | e -> e
                match describe e with
                | Some(code, line) ->
                    eprintfn "error: %s" line
                    code
                | None -> reraise ()
