using ProGan.Keras.IO;

namespace ProGan.Keras.Tests.Serving;

/// <summary>The rule of every command that writes (<see cref="OutputTargets"/>), apart from the commands.</summary>
public sealed class OutputTargetsTests : IDisposable
{
    private readonly string folder = Path.Combine(Path.GetTempPath(), "targets-" + Guid.NewGuid().ToString("N"));

    public OutputTargetsTests() => Directory.CreateDirectory(folder);

    public void Dispose() => Directory.Delete(folder, recursive: true);

    [Fact]
    public void A_file_target_may_be_new_or_its_own_and_anything_else_only_with_force()
    {
        string path = Path.Combine(folder, "model.onnx");
        OutputTargets.CheckTarget(path, "--out", "an ONNX model", _ => false, force: false); // new

        File.WriteAllText(path, "someone else's");
        var refused = Assert.Throws<OutputRefusedException>(() => OutputTargets.CheckTarget(path, "--out", "an ONNX model", _ => false, force: false));
        Assert.StartsWith("--out: '", refused.Message);
        Assert.Contains("add --force to replace it", refused.Message);
        Assert.DoesNotContain('\n', refused.Message);
        OutputTargets.CheckTarget(path, "--out", "an ONNX model", p => p == Path.GetFullPath(path), force: false); // its own
        OutputTargets.CheckTarget(path, "--out", "an ONNX model", _ => false, force: true);
        Assert.Equal("someone else's", File.ReadAllText(path)); // a check never writes

        Assert.Contains("is a folder", Assert.Throws<OutputRefusedException>(
            () => OutputTargets.CheckTarget(folder, "--out", "an ONNX model", _ => true, force: true)).Message);
        Assert.Contains("does not exist", Assert.Throws<OutputRefusedException>(
            () => OutputTargets.CheckTarget(Path.Combine(folder, "missing", "model.onnx"), "--out", "an ONNX model", _ => true, force: true)).Message);
    }

    [Fact]
    public void A_folder_target_may_be_new_empty_or_hold_only_its_own_files()
    {
        string target = Path.Combine(folder, "samples");
        Assert.Equal(Path.GetFullPath(target), OutputTargets.CheckFolderTarget(target, "--out", "generate.fsx", _ => false, force: false)); // new
        Directory.CreateDirectory(target);
        OutputTargets.CheckFolderTarget(target, "--out", "generate.fsx", _ => false, force: false); // empty
        File.WriteAllText(Path.Combine(target, "samples-seed1.png"), "");
        OutputTargets.CheckFolderTarget(target, "--out", "generate.fsx", e => Path.GetFileName(e).StartsWith("samples-"), force: false);

        File.WriteAllText(Path.Combine(target, "notes.txt"), "");
        var refused = Assert.Throws<OutputRefusedException>(
            () => OutputTargets.CheckFolderTarget(target, "--out", "generate.fsx", e => Path.GetFileName(e).StartsWith("samples-"), force: false));
        Assert.Contains("'notes.txt'", refused.Message);
        Assert.Contains("add --force", refused.Message);
        OutputTargets.CheckFolderTarget(target, "--out", "generate.fsx", _ => false, force: true);
        // A command without --force does not offer it.
        Assert.DoesNotContain("--force", Assert.Throws<OutputRefusedException>(
            () => OutputTargets.CheckFolderTarget(target, "--out", "prepare.fsx", _ => false, force: false, forceHint: null)).Message);
        Assert.Contains("not a folder", Assert.Throws<OutputRefusedException>(
            () => OutputTargets.CheckFolderTarget(Path.Combine(target, "notes.txt"), "--out", "generate.fsx", _ => true, force: true)).Message);
    }
}
