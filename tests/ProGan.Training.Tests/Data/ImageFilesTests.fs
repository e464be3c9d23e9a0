/// Every format ImageSharp reads gives the pixels written; hostile files are skipped with a reason, within the limits.
module ProGan.Training.Tests.Data.ImageFilesTests

open System
open System.IO
open System.IO.Compression
open Xunit
open SixLabors.ImageSharp
open SixLabors.ImageSharp.Formats
open SixLabors.ImageSharp.Formats.Bmp
open SixLabors.ImageSharp.Formats.Gif
open SixLabors.ImageSharp.Formats.Jpeg
open SixLabors.ImageSharp.Formats.Png
open SixLabors.ImageSharp.Formats.Tga
open SixLabors.ImageSharp.Formats.Tiff
open SixLabors.ImageSharp.Formats.Webp
open SixLabors.ImageSharp.Memory
open SixLabors.ImageSharp.PixelFormats
open ProGan.Training.Data
open ProGan.Training.Tests.Fixtures

/// Four opaque quadrants — red, green, blue, white — in a `side`² image: few colours, so a palette or GIF holds them
/// exactly, and flat blocks of 16² (at `side` 32) that JPEG and lossy WebP hold nearly so.
let private quadrantsOf (side: int) =
    let image = new Image<Rgba32>(side, side)
    let colours = [| Rgba32(255uy, 0uy, 0uy, 255uy); Rgba32(0uy, 255uy, 0uy, 255uy); Rgba32(0uy, 0uy, 255uy, 255uy); Rgba32(255uy, 255uy, 255uy, 255uy) |]
    for y in 0 .. side - 1 do
        for x in 0 .. side - 1 do image[x, y] <- colours[(y * 2 / side) * 2 + x * 2 / side]
    image

let private quadrants () = quadrantsOf 8

/// The RGBA bytes of an image, row-major.
let private bytesOf (image: Image<Rgba32>) =
    let data = Array.zeroCreate<byte> (image.Width * image.Height * 4)
    image.CopyPixelDataTo(Span<byte> data)
    data

let private readAt (resolution: int) (path: string) =
    match ImageFiles.readSquare resolution path with
    | Ok pixels -> pixels
    | Error reason -> failwithf "%s was skipped: %s" (Path.GetFileName path) reason

let private read = readAt 8

let private reason (path: string) =
    match ImageFiles.readSquare 8 path with
    | Ok _ -> failwithf "%s was read; it should have been skipped" (Path.GetFileName path)
    | Error reason -> reason

[<Fact>]
let ``every lossless format ImageSharp reads gives exactly the pixels written, and a JPEG nearly`` () =
    use dir = new TempFolder()
    use image = quadrants ()
    let expected = bytesOf image
    let encoders : (string * IImageEncoder) list =
        [ "rgba.png", PngEncoder(ColorType = Nullable PngColorType.RgbWithAlpha)
          "palette.png", PngEncoder(ColorType = Nullable PngColorType.Palette)
          "rgb16.png", PngEncoder(ColorType = Nullable PngColorType.Rgb, BitDepth = Nullable PngBitDepth.Bit16)
          "24.bmp", BmpEncoder(BitsPerPixel = Nullable BmpBitsPerPixel.Pixel24)
          "still.gif", GifEncoder()
          "32.tga", TgaEncoder(BitsPerPixel = Nullable TgaBitsPerPixel.Pixel32, Compression = TgaCompression.RunLength)
          "24.tiff", TiffEncoder(BitsPerPixel = Nullable TiffBitsPerPixel.Bit24)
          "lossless.webp", WebpEncoder(FileFormat = Nullable WebpFileFormatType.Lossless) ]
    for name, encoder in encoders do
        image.Save(dir.File name, encoder)
        Assert.True((expected = read (dir.File name)), sprintf "%s decoded to other pixels" name)
    // Lossy: within a few levels of the colours written at the middle of each quadrant (both codecs blur the edges).
    use large = quadrantsOf 32
    let expected = bytesOf large
    let middles = [ for y in [ 8; 24 ] do for x in [ 8; 24 ] do for c in 0..3 -> (y * 32 + x) * 4 + c ]
    for name, encoder in [ "photo.jpg", JpegEncoder(Quality = Nullable 100) :> IImageEncoder; "lossy.webp", WebpEncoder(FileFormat = Nullable WebpFileFormatType.Lossy, Quality = 100) ] do
        large.Save(dir.File name, encoder)
        let actual = readAt 32 (dir.File name)
        let worst = middles |> List.map (fun i -> abs (int expected[i] - int actual[i])) |> List.max
        Assert.True(worst <= 8, sprintf "%s differs by up to %d levels" name worst)

[<Fact>]
let ``grey with alpha and 16-bit samples arrive as RGBA, 16 bits rounded to 8`` () =
    use dir = new TempFolder()
    use grey = new Image<La16>(8, 8, La16(200uy, 100uy))
    grey.Save(dir.File "grey-alpha.png", PngEncoder(ColorType = Nullable PngColorType.GrayscaleWithAlpha))
    Assert.Equal<byte[]>(Array.init 256 (fun i -> match i % 4 with 3 -> 100uy | _ -> 200uy), read (dir.File "grey-alpha.png"))
    // 0x12F0 is 18.86 of 255: rounded to 19 (StbImageSharp kept the high byte, 18), 0xFFFF stays 255.
    use deep = new Image<Rgba64>(8, 8, Rgba64(0x12F0us, 0xFFFFus, 0us, 0x8000us))
    deep.Save(dir.File "deep.png", PngEncoder(ColorType = Nullable PngColorType.RgbWithAlpha, BitDepth = Nullable PngBitDepth.Bit16))
    Assert.Equal<byte[]>(Array.init 256 (fun i -> [| 19uy; 255uy; 0uy; 128uy |][i % 4]), read (dir.File "deep.png"))

[<Fact>]
let ``a larger image is centre-cropped, then resized with Lanczos-3 as the reference's PIL ANTIALIAS does`` () =
    use dir = new TempFolder()
    // 24×16: a green band of 4 pixels each side (cropped away), then grey 100 over the left half of the square, 200 over the right.
    use image = new Image<Rgba32>(24, 16)
    for y in 0..15 do
        for x in 0..23 do
            image[x, y] <- if x < 4 || x >= 20 then Rgba32(0uy, 255uy, 0uy, 255uy) elif x < 12 then Rgba32(100uy, 100uy, 100uy, 255uy) else Rgba32(200uy, 200uy, 200uy, 255uy)
    image.SaveAsPng(dir.File "wide.png")
    let pixels = read (dir.File "wide.png")
    // Lanczos-3 widened by the factor 2 (its reach is 6 source pixels), centred on source column 2x + 0.5, its weights
    // normalised over the columns inside the image: a step of 100 rings below and above (a box filter would not).
    let sinc (t: float) = if t = 0.0 then 1.0 else sin (Math.PI * t) / (Math.PI * t)
    let lanczos (t: float) = if abs t < 3.0 then sinc t * sinc (t / 3.0) else 0.0
    let expected x =
        let centre = float (2 * x) + 0.5
        let taps = [ for j in 0..15 do if abs (float j - centre) <= 6.0 then yield j, lanczos ((float j - centre) / 2.0) ]
        (taps |> List.sumBy (fun (j, w) -> w * (if j < 8 then 100.0 else 200.0))) / (taps |> List.sumBy snd)
    Assert.True(expected 3 > 104.0 && expected 2 < 99.0) // the ringing this test tells apart from a box filter
    for y in 0..7 do
        for x in 0..7 do
            let at = (y * 8 + x) * 4
            Assert.True(abs (float pixels[at] - expected x) <= 1.0, sprintf "column %d: %d, Lanczos-3 gives %.2f" x pixels[at] (expected x))
            // Grey stays grey, and no green: the bands were cropped before the resize.
            Assert.Equal<byte[]>([| pixels[at]; pixels[at]; 255uy |], pixels[at + 1 .. at + 3])

/// A PNG of `w`×`h` declared in its header with `data` as its pixel rows, compressed (no CRC check matters: ImageSharp
/// checks them, so they are written right).
let private pngWith (w: int) (h: int) (colourType: byte) (rows: byte[]) =
    let bigEndian (v: int) = [| byte (v >>> 24); byte (v >>> 16); byte (v >>> 8); byte v |]
    let chunk (kind: string) (data: byte[]) =
        let body = Array.append (Text.Encoding.ASCII.GetBytes kind) data
        Array.concat [ bigEndian data.Length; body; bigEndian (int (crc body)) ]
    use compressed = new MemoryStream()
    do
        use z = new ZLibStream(compressed, CompressionLevel.SmallestSize, true)
        z.Write(rows, 0, rows.Length)
    Array.concat [ [| 137uy; 80uy; 78uy; 71uy; 13uy; 10uy; 26uy; 10uy |]
                   chunk "IHDR" (Array.concat [ bigEndian w; bigEndian h; [| 8uy; colourType; 0uy; 0uy; 0uy |] ])
                   chunk "IDAT" (compressed.ToArray()); chunk "IEND" [||] ]

[<Fact>]
let ``hostile files of every format are skipped with a reason, and none allocates past the limits`` () =
    use dir = new TempFolder()
    use image = quadrants ()
    // Huge declared sizes, refused from the header before a pixel is decoded.
    image.SaveAsBmp(dir.File "small.bmp")
    let bmp = File.ReadAllBytes(dir.File "small.bmp")
    Array.blit (BitConverter.GetBytes 60000) 0 bmp 18 4
    Array.blit (BitConverter.GetBytes 60000) 0 bmp 22 4
    File.WriteAllBytes(dir.File "huge.bmp", bmp)
    image.SaveAsGif(dir.File "small.gif")
    let gif = File.ReadAllBytes(dir.File "small.gif")
    Array.blit (BitConverter.GetBytes 65535us) 0 gif 6 2 // the logical screen: 65535×65535
    Array.blit (BitConverter.GetBytes 65535us) 0 gif 8 2
    File.WriteAllBytes(dir.File "huge.gif", gif)
    image.SaveAsTga(dir.File "small.tga")
    let tga = File.ReadAllBytes(dir.File "small.tga")
    Array.blit (BitConverter.GetBytes 30000us) 0 tga 12 2 // ImageSharp reads TGA sizes as signed: 65535 is "no pixels"
    Array.blit (BitConverter.GetBytes 30000us) 0 tga 14 2
    File.WriteAllBytes(dir.File "huge.tga", tga)
    // A decompression bomb: 6000×6000 RGB of zeros is 108 MB of rows in a file of about 100 KB; 36 M pixels is over
    // the limit, so the header alone refuses it.
    File.WriteAllBytes(dir.File "bomb.png", pngWith 6000 6000 2uy (Array.zeroCreate (6000 * (1 + 6000 * 3))))
    for name in [ "huge.bmp"; "huge.gif"; "huge.tga"; "bomb.png" ] do
        let why = reason (dir.File name)
        Assert.True(why.StartsWith "too large (", sprintf "%s: %s" name why)
    Assert.StartsWith("too large (60000×60000", reason (dir.File "huge.bmp"))
    // Zero width, non-image bytes and an empty file under the new formats' names.
    File.WriteAllBytes(dir.File "zero-width.png", pngWith 0 8 2uy (Array.zeroCreate 8))
    Assert.DoesNotContain("×", reason (dir.File "zero-width.png"))
    File.WriteAllBytes(dir.File "noise.webp", Array.init 4096 (fun i -> byte (i * 7919 % 251)))
    Assert.Equal("not a readable image", reason (dir.File "noise.webp"))
    File.WriteAllBytes(dir.File "empty.tiff", [||])
    Assert.Equal("empty file", reason (dir.File "empty.tiff"))
    // Cut short at half its length: skipped where ImageSharp's decoder notices (PNG, TGA, TIFF); its JPEG,
    // GIF, BMP and WebP decoders fill what is missing, as StbImageSharp's did for the first three, and the image is used.
    let cut (name: string) (encoder: IImageEncoder) =
        use noisy = new Image<Rgba32>(64, 64)
        for y in 0..63 do
            for x in 0..63 do noisy[x, y] <- Rgba32(byte (x * 37 + y), byte (y * 53 + x * 3), byte (x * y), 255uy)
        use full = new MemoryStream()
        noisy.Save(full, encoder)
        File.WriteAllBytes(dir.File name, full.ToArray()[.. int full.Length / 2])
        dir.File name
    for name, encoder in [ "cut.png", PngEncoder() :> IImageEncoder; "cut.tga", TgaEncoder(); "cut.tiff", TiffEncoder() ] do
        reason (cut name encoder) |> ignore
    for name, encoder in [ "cut.jpg", JpegEncoder() :> IImageEncoder; "cut.gif", GifEncoder(); "cut.bmp", BmpEncoder()
                           "cut-lossy.webp", WebpEncoder(FileFormat = Nullable WebpFileFormatType.Lossy) ] do
        read (cut name encoder) |> ignore
    // A lossless WebP cut short is read or skipped depending on what the pool's reused buffers held: either way a
    // result, never an exception out of the reader.
    ImageFiles.readSquare 8 (cut "cut-lossless.webp" (WebpEncoder(FileFormat = Nullable WebpFileFormatType.Lossless))) |> ignore
    // An animated GIF: two frames, skipped with the fix.
    use animated = quadrants ()
    use second = quadrants ()
    animated.Frames.AddFrame(second.Frames.RootFrame) |> ignore
    animated.SaveAsGif(dir.File "animated.gif")
    Assert.StartsWith("an animated GIF; save the frame", reason (dir.File "animated.gif"))
    // The wrong extension: the contents decide.
    image.SaveAsPng(dir.File "really-a-png.jpg")
    Assert.Equal<byte[]>(bytesOf image, read (dir.File "really-a-png.jpg"))
    // A buffer past the allocation limit is refused, whatever asks for it: 9000×9000 RGBA is 309 MB.
    Assert.Throws<InvalidMemoryOperationException>(fun () -> new Image<Rgba32>(ImageFiles.configuration, 9000, 9000) |> ignore) |> ignore
