// The EMA generator of a trained run as an ONNX model:  dotnet fsi export.fsx -- --run runs/<run>
// Add --resolution N for a lower level, --out FILE for another name; ONNX Runtime then runs it anywhere (C#, Python, the browser).
#load "scripts/Bootstrap.fsx"

Bootstrap.run Bootstrap.Export fsi.CommandLineArgs
