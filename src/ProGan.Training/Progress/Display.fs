// A run shown to a person: a live display on a terminal, plain lines otherwise.
namespace ProGan.Training.Progress

open System
open Spectre.Console
open ProGan.Training.Config

/// Plain lines of counted work (images prepared, generated) for a log or a pipe: done of total, the rate and the time
/// left, at most one every two seconds and always the last. `quiet`: none for work that is over within two seconds
/// (the first line comes two seconds in), for steps that are usually short.
type ProgressLines(what: string, total: int, ?quiet: bool) =
    let clock = Diagnostics.Stopwatch.StartNew()
    let quiet = defaultArg quiet false
    let mutable shown = if quiet then 0.0 else Double.NegativeInfinity
    let mutable any = false
    /// The total this counts to.
    member _.Total = total
    /// Reports `done'` of the total done.
    member _.Report(done': int) =
        let t = clock.Elapsed.TotalSeconds
        if (done' >= total && (any || not quiet)) || t - shown >= 2.0 then
            shown <- t
            any <- true
            let rate = float done' / max t 1e-3
            let left = if rate > 0.0 then TimeSpan.FromSeconds(float (total - done') / rate).ToString(@"hh\:mm\:ss") else "?"
            // Slow work (checkpoints evaluated) keeps two digits rather than showing 0/s.
            let rate = if rate >= 10.0 then sprintf "%.0f" rate else sprintf "%.2g" rate
            printfn "%s %d/%d (%s/s, %s left)" what done' total rate left

/// Shows a training run to a person: a live Spectre.Console progress display on a terminal, plain periodic lines
/// when the output is redirected (CI, log files).
module Display =

    let private status (p: SchedulePosition) =
        match p.Phase with
        | FadeIn -> sprintf "%d² fade-in α=%.2f" p.Resolution p.Alpha
        | Stabilise -> sprintf "%d² stabilise" p.Resolution

    let private losses (r: LogRow) = sprintf "D %.3f  G %.3f  GP %.3f" r.DLoss r.GLoss r.GradientPenalty

    let private eta (r: LogRow) (total: int64) =
        let seconds = float (total - r.ImagesShown) / max 1e-9 r.ImagesPerSecond
        if Double.IsFinite seconds then TimeSpan.FromSeconds(seconds).ToString(@"hh\:mm\:ss") else "?"

    /// The progress lines of the preparation being reported, and the count last reported.
    let mutable private preparing : (ProgressLines * int) option = None

    /// Plain lines, one per log row and one per notable event.
    let plain (event: TrainingEvent) =
        match event with
        | Info text -> printfn "%s" text
        | Warning text -> eprintfn "warning: %s" text
        | Preparing(d, t) ->
            let lines =
                match preparing with
                | Some(lines: ProgressLines, last) when lines.Total = t && d >= last -> lines
                | _ -> ProgressLines("preparing images", t)
            preparing <- Some(lines, d)
            lines.Report d
        | Started(p, total) -> printfn "training from %d of %d images at %s" p.ImagesShown total (status p)
        | Logged(r, p, total) ->
            printfn "[%9d/%d] %-24s %s  %.1f img/s  ETA %s (at this speed)" r.ImagesShown total (status p) (losses r) r.ImagesPerSecond (eta r total)
        | Ticked(_, checkpoint) -> printfn "checkpoint %s" (IO.Path.GetFileName checkpoint)
        | Finished(p, cancelled) -> printfn "%s at %d images (%s)" (if cancelled then "stopped" else "finished") p.ImagesShown (status p)

    /// Runs `work` with a live progress display; `work` receives the event sink.
    let live (work: (TrainingEvent -> unit) -> 'T) : 'T =
        let mutable result = Unchecked.defaultof<'T>
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns([| TaskDescriptionColumn(Alignment = Justify.Left) :> ProgressColumn
                        ProgressBarColumn(); PercentageColumn(); ElapsedTimeColumn(); RemainingTimeColumn(); SpinnerColumn() |])
            .Start(fun ctx ->
                let task = ctx.AddTask("preparing data", maxValue = 1.0)
                let describe (p: SchedulePosition) (row: LogRow option) =
                    let tail = match row with Some r -> sprintf " │ %s │ %.1f img/s" (losses r) r.ImagesPerSecond | None -> ""
                    task.Description <- Markup.Escape(sprintf "%s │ %d img%s" (status p) p.ImagesShown tail)
                result <-
                    work (fun event ->
                        match event with
                        | Info text -> AnsiConsole.MarkupLine("[grey]{0}[/]", Markup.Escape text)
                        | Warning text -> AnsiConsole.MarkupLine("[yellow]warning:[/] {0}", Markup.Escape text)
                        | Preparing(d, t) ->
                            task.MaxValue <- float t
                            task.Value <- float d
                        | Started(p, total) ->
                            task.MaxValue <- float total
                            task.Value <- float p.ImagesShown
                            describe p None
                        | Logged(r, p, _) ->
                            task.Value <- float r.ImagesShown
                            describe p (Some r)
                        | Ticked _ -> ()
                        | Finished(p, cancelled) ->
                            task.Value <- float p.ImagesShown
                            task.Description <- Markup.Escape(sprintf "%s at %d images (%s)" (if cancelled then "stopped" else "finished") p.ImagesShown (status p))
                            if not cancelled then task.StopTask())
                ctx.Refresh())
        result

    /// Whether the live display can be used (an interactive terminal, output not redirected).
    let isInteractive () =
        not Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive
