// Every image file this library reads, through SixLabors.ImageSharp 2.1.13: the formats, the limits, the decode.
namespace ProGan.Training.Data

open System
open System.IO
open SixLabors.ImageSharp
open SixLabors.ImageSharp.Formats.Gif
open SixLabors.ImageSharp.Formats.Tiff
open SixLabors.ImageSharp.Memory
open SixLabors.ImageSharp.Metadata
open SixLabors.ImageSharp.PixelFormats
open SixLabors.ImageSharp.Processing
open ProGan.Training.Basics

/// Reads image files with SixLabors.ImageSharp 2.1.13 (the last Apache-2.0 release) under limits a crafted file
/// cannot get past: the size the header declares is checked (`Image.Identify`) before any pixel is decoded, no single
/// buffer may exceed `allocationLimitMegabytes`, a GIF is decoded no further than its second frame, and ImageSharp's
/// pool keeps at most `poolMegabytes` between images.
module ImageFiles =

    /// Images larger than this many pixels are skipped rather than decoded (an 8000×8000 RGBA image alone would take 256 MB).
    let maxPixels = 32L * 1024L * 1024L

    /// Files larger than this are skipped unread (a compressed image of 32 M pixels is far smaller).
    let maxFileBytes = 512L * 1024L * 1024L

    /// The largest buffer ImageSharp may allocate, in MB: twice an image of `maxPixels` RGBA pixels (128 MB), room for
    /// a decoder's working buffers, and far below the gigabytes a header could otherwise ask for. A larger request
    /// throws `InvalidMemoryOperationException`, reported as the file's skip reason.
    let allocationLimitMegabytes = 256

    /// What ImageSharp's pool keeps between images, in MB (its default is a share of the machine's memory): the
    /// images are decoded once and the pool's memory is better left to training.
    let poolMegabytes = 64

    /// ImageSharp's configuration for every image read: its formats (PNG, JPEG, BMP, GIF, TGA, TIFF, WebP, PBM), the
    /// memory limits above, one thread per image (the files are decoded in parallel already), a GIF read to its
    /// second frame at most (enough to tell an animation, never all of one) and a TIFF to its first.
    let configuration =
        let c = Configuration.Default.Clone()
        c.MemoryAllocator <-
            MemoryAllocator.Create(MemoryAllocatorOptions(MaximumPoolSizeMegabytes = Nullable poolMegabytes,
                                                          AllocationLimitMegabytes = Nullable allocationLimitMegabytes))
        c.MaxDegreeOfParallelism <- 1
        c.ImageFormatsManager.SetDecoder(GifFormat.Instance, GifDecoder(DecodingMode = FrameDecodingMode.All, MaxFrames = 2u))
        c.ImageFormatsManager.SetDecoder(TiffFormat.Instance, TiffDecoder(DecodingMode = FrameDecodingMode.First))
        c

    /// File extensions read (lower case, with the dot): those of the formats ImageSharp decodes.
    let extensions =
        set [ for format in configuration.ImageFormats do
                for extension in format.FileExtensions -> "." + extension.ToLowerInvariant() ]

    /// The formats read, for messages: "bmp, gif, jpeg, pbm, png, tga, tiff, webp".
    let formatNames =
        String.Join(", ", [ for format in configuration.ImageFormats -> format.Name.ToLowerInvariant() ] |> List.sort)

    /// Decodes the file at `path` to RGBA bytes `[r, r, 4]` (row-major): the centre square of the image, resized to
    /// `resolution` with Lanczos-3 where its side differs (the reference `dataset_tool.py` crops to the centre square
    /// and resizes with PIL's ANTIALIAS, Lanczos-3, premultiplied by alpha; so does ImageSharp's `Resize` here), or why
    /// it cannot be used. Palette, grayscale, 16-bit (rounded to 8) and alpha all arrive as RGBA.
    let readSquare (resolution: int) (path: string) : Result<byte[], string> =
        try
            match FileKind.at path with
            | Missing -> Error "vanished while reading"
            | Folder -> Error "a folder"
            | Special what -> Error(sprintf "%s, not a regular file" what)
            | Regular 0L -> Error "empty file"
            | Regular length when length > maxFileBytes -> Error(sprintf "too large a file (%d MB)" (length >>> 20))
            | Regular _ ->
                let bytes = File.ReadAllBytes path
                let header, format = Image.Identify(configuration, bytes)
                match header with
                | null -> Error "not a readable image"
                | header when int64 header.Width * int64 header.Height > maxPixels ->
                    Error(sprintf "too large (%d×%d pixels; at most %d)" header.Width header.Height maxPixels)
                | header when header.Width < 1 || header.Height < 1 -> Error "no pixels"
                | _ ->
                    use image = Image.Load<Rgba32>(configuration, bytes)
                    if image.Frames.Count > 1 then
                        Error(sprintf "an animated %s; save the frame to learn as an image of its own" format.Name)
                    else
                        let side = min image.Width image.Height
                        let crop = Rectangle((image.Width - side) / 2, (image.Height - side) / 2, side, side)
                        let resize = ResizeOptions(Size = Size(resolution, resolution), Mode = ResizeMode.Stretch,
                                                   Sampler = KnownResamplers.Lanczos3, PremultiplyAlpha = true)
                        // An image already square at the resolution is used as it is (create_from_images).
                        if image.Width <> image.Height then image.Mutate(fun x -> x.Crop crop |> ignore)
                        if side <> resolution then image.Mutate(fun x -> x.Resize resize |> ignore)
                        let pixels = Array.zeroCreate<byte> (resolution * resolution * 4)
                        image.CopyPixelDataTo(Span<byte> pixels)
                        Ok pixels
        with
        | :? InvalidImageContentException as e -> Error(sprintf "truncated or damaged (%s)" (e.Message.Split('\n')[0]))
        | :? InvalidMemoryOperationException -> Error(sprintf "would need more than %d MB to decode" allocationLimitMegabytes)
        | e -> Error(sprintf "unreadable (%s)" (e.Message.Split('\n')[0]))
