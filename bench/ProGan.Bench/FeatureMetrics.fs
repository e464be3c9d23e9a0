/// The cost of FD-ResNet18, KID and precision/recall: images per second through the feature network (ResNet-18 in
/// ONNX Runtime, `ImageFeatures`), and the seconds of the three statistics on two sets of 512-d features — what a
/// 10k-image evaluation spends.
module ProGan.Bench.FeatureMetrics

open System
open System.Diagnostics
open TorchSharp
open ProGan.Training.Data
open ProGan.Training.Metrics

/// Seconds of `f ()`.
let private seconds (f: unit -> unit) =
    let sw = Stopwatch.StartNew()
    f ()
    sw.Elapsed.TotalSeconds

/// Prints and returns (images/s at 32², at 64², seconds of FD, KID, precision/recall on `n` against `n` features).
let run (n: int) =
    let load = seconds (fun () -> ImageFeatures.Shared |> ignore)
    printfn "feature network: %s, ONNX Runtime on %d threads (torch's), loaded in %.1f s" ImageFeatures.Name ImageFeatures.Shared.Threads load
    let imagesPerSecond (resolution: int) =
        use data = Procedural.pyramid 96 resolution 3 1
        use images = data.Gather(data.LevelCount - 1, Array.init 96 int64, torch.CPU)
        (ImageFeatures.Shared.Extract(images.narrow(0L, 0L, 8L))).Dispose() // warm-up
        let ips = 96.0 / seconds (fun () -> (ImageFeatures.Shared.Extract images).Dispose())
        printfn "features of %d² images (resized to 224²): %.1f images/s" resolution ips
        ips
    let at32, at64 = imagesPerSecond 32, imagesPerSecond 64
    use g = new torch.Generator(1UL)
    // ReLU'd average-pool features are non-negative; |N(0, 1)| has their kind of spread.
    use a = torch.randn([| int64 n; 512L |], generator = g).abs()
    use b = (torch.randn([| int64 n; 512L |], generator = g).abs() + 0.05)
    let fd = seconds (fun () -> FrechetDistance.compute a b |> ignore)
    let kid = seconds (fun () -> KernelDistance.compute 1UL a b |> ignore)
    let pr = seconds (fun () -> PrecisionRecall.compute a b |> ignore)
    printfn "on %d against %d features: FD %.1f s, KID (100 subsets of 1000) %.1f s, precision/recall %.1f s" n n fd kid pr
    let ips = min at32 at64
    let statistics = 2.0 * (fd + kid + pr) // generated-real and the real-real floor
    printfn "a %d-image evaluation (FD, KID, P/R and floors): %.1f min with the reals' features kept (%d generated images through the network), %.1f min the first time (%d images)"
        n ((float n / ips + statistics) / 60.0) n ((3.0 * float n / ips + statistics) / 60.0) (3 * n)
    at32, at64, fd, kid, pr
