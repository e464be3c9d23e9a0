/// report.html opened in a real browser: headless Chromium through chromedriver (Selenium).
module ProGan.Training.Tests.Runs.ReportTests

open System
open System.IO
open OpenQA.Selenium
open OpenQA.Selenium.Chrome
open Xunit
open ProGan.Training.Runs
open ProGan.Training.Tests.Fixtures

/// The first of `paths` that is a file.
let private firstFile (paths: string list) = paths |> List.tryFind File.Exists

/// Headless Chromium with its browser console recorded; skips the test where Chromium or its driver is missing.
let private browser () =
    let chromium = firstFile [ "/usr/bin/chromium"; "/usr/bin/chromium-browser"; "/usr/bin/google-chrome" ]
    let driver = firstFile [ "/usr/bin/chromedriver"; "/usr/lib/chromium/chromedriver" ]
    Skip.If(chromium.IsNone || driver.IsNone,
            "Chromium and chromedriver are not installed (apt-get install -y chromium chromium-driver); the report page is not checked in a browser")
    let options = ChromeOptions(BinaryLocation = chromium.Value)
    // As root Chromium needs --no-sandbox; a tall window puts the whole page into one screenshot.
    options.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,3400")
    options.SetLoggingPreference(LogType.Browser, LogLevel.All)
    let service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName driver.Value, Path.GetFileName driver.Value)
    service.SuppressInitialDiagnosticInformation <- true
    service.HideCommandPromptWindow <- true
    new ChromeDriver(service, options, TimeSpan.FromSeconds 60.0)

let private script (driver: ChromeDriver) (js: string) = driver.ExecuteScript("return " + js)

[<SkippableFact>]
let ``the report opens in Chromium without console errors or network, the slider shows each tick's grid, and the charts hold every row`` () =
    let run = finishedRun.Force()
    use driver = browser ()
    driver.Navigate().GoToUrl(Uri(Path.Combine(run, "report.html")).AbsoluteUri)
    // A screenshot of the page as drawn: a picture of the page's size that is not blank.
    let shot = driver.GetScreenshot()
    let width, height, rgb = readRgb shot.AsByteArray
    Assert.True(width >= 1000 && height >= 2000, sprintf "screenshot %dx%d" width height)
    Assert.True(rgb |> Array.distinct |> Array.length > 50, "the screenshot is blank")
    match Environment.GetEnvironmentVariable "PROGAN_REPORT_SCREENSHOT" with
    | null | "" -> ()
    | path -> shot.SaveAsFile path
    // Nothing went wrong in the page, and it loads nothing from anywhere.
    let errors = driver.Manage().Logs.GetLog(LogType.Browser) |> Seq.filter (fun e -> e.Level >= LogLevel.Warning) |> Seq.map string |> List.ofSeq
    Assert.True(errors.IsEmpty, sprintf "console: %A" errors)
    Assert.Equal(0L, script driver "document.querySelectorAll('script[src], link[href], img[src^=\"http\"], iframe').length" :?> int64)
    // The charts hold exactly the rows of log.csv and metrics.csv.
    let rows = logRows run
    let points (chart: string) (series: int) =
        script driver (sprintf "report.charts.%s.data[%d].filter(v => v !== null).length" chart series) :?> int64 |> int
    Assert.Equal(rows.Length, points "loss" 0)
    Assert.Equal(rows.Length, points "loss" 1)
    Assert.Equal(rows.Length, points "loss" 2)
    Assert.Equal(rows.Length, points "penalty" 1)
    Assert.Equal(rows |> List.filter (fun r -> not (Double.IsNaN r.Swd)) |> List.length, points "metrics" 1)
    Assert.Equal(rows |> List.filter (fun r -> not (Double.IsNaN r.MsSsim)) |> List.length, points "metrics" 2)
    Assert.Equal((MetricsLog.read (RunFolder run)).Length, points "checkpoints" 3)
    Assert.Equal(List.length (checkpoints run), points "checkpoints" 0)
    Assert.Equal(RunFolder(run).PhaseGrids().Length, script driver "document.querySelectorAll('#phase-grids img').length" :?> int64 |> int)
    Assert.Equal(1L, script driver "document.querySelectorAll('#interpolation img').length" :?> int64)
    // The slider starts at the newest tick; Home moves it to the first, and the grid and its caption follow.
    let ticks = RunFolder(run).TickGrids()
    let slider = driver.FindElement(By.Id "tick-slider")
    let shown () = driver.FindElement(By.Id "tick-image").GetAttribute("src"), driver.FindElement(By.Id "tick-label").Text
    let lastSrc, lastLabel = shown ()
    Assert.StartsWith(sprintf "%d / %d" ticks.Length ticks.Length, lastLabel)
    slider.SendKeys(Keys.Home)
    let firstSrc, firstLabel = shown ()
    Assert.NotEqual<string>(lastSrc, firstSrc)
    Assert.StartsWith(sprintf "1 / %d · %d images" ticks.Length (fst ticks.Head), firstLabel)
    slider.SendKeys(Keys.ArrowRight)
    Assert.StartsWith(sprintf "2 / %d · %d images" ticks.Length (fst ticks[1]), snd (shown ()))
    slider.SendKeys(Keys.End)
    Assert.Equal((lastSrc, lastLabel), shown ())
    // Each grid shown is the tick's own picture: decoded, it has the size of its PNG (or an integer fraction).
    Assert.True(script driver "document.getElementById('tick-image').naturalWidth > 100" :?> bool)

[<Fact>]
let ``the report page is written at every tick, stays self-contained, and holds at most its share of grids`` () =
    let run = finishedRun.Force()
    let html = File.ReadAllText(Path.Combine(run, "report.html"))
    Assert.DoesNotContain("/*@DATA@*/", html)
    Assert.DoesNotContain("/*@UPLOT_JS@*/", html)
    Assert.Contains("MIT", html) // uPlot's licence travels with it
    Assert.Equal(RunFolder(run).TickGrids().Length, Text.RegularExpressions.Regex.Matches(html, "\"label\":\"[0-9,]+ images").Count)
    // A long run's page shows evenly spaced ticks, always the newest.
    let picked = RunReport.evenlySpaced RunReport.maxTickGrids [ 1 .. 750 ]
    Assert.Equal(RunReport.maxTickGrids, picked.Length)
    Assert.Equal(1, picked.Head)
    Assert.Equal(750, List.last picked)
    Assert.Equal<int list>([ 1; 2; 3 ], RunReport.evenlySpaced 48 [ 1; 2; 3 ])
    use stopped = new TempFolder()
    train tiny stopped.Path false (Some 48L) |> ignore // one tick, stopped before the end
    Assert.True(File.Exists(stopped.File "report.html"))
    Assert.False(File.Exists(stopped.File "interpolation.png")) // the strip is the finished run's
