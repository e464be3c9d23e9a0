using ProGan.Keras.IO;

namespace ProGan.Keras.Tests.IO;

public class AtomicFileTests
{
    private static string TempFolder()
    {
        string path = Path.Combine(Path.GetTempPath(), "atomic-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }

    [Fact]
    public void A_write_replaces_the_file_whole_and_leaves_no_temporary_file()
    {
        string folder = TempFolder();
        string path = Path.Combine(folder, "a.txt");
        AtomicFile.WriteAllText(path, "old");
        AtomicFile.WriteAllText(path, "new");
        Assert.Equal("new", File.ReadAllText(path));
        Assert.Equal(["a.txt"], Directory.GetFiles(folder).Select(Path.GetFileName));
        Directory.Delete(folder, true);
    }

    [Fact]
    public void A_failed_write_leaves_the_old_file_and_removes_only_its_own_temporary_file()
    {
        string folder = TempFolder();
        string path = Path.Combine(folder, "a.txt");
        AtomicFile.WriteAllText(path, "old");
        // The writer fails halfway: the old content stays, its temporary file goes.
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s => { s.WriteByte(1); throw new InvalidOperationException("halfway"); }));
        Assert.Equal("old", File.ReadAllText(path));
        Assert.False(File.Exists(AtomicFile.TemporaryPath(path)));
        // Another writer holds the temporary file: this write fails, and the other's file is left alone.
        using (var other = new FileStream(AtomicFile.TemporaryPath(path), FileMode.Create, FileAccess.Write, FileShare.None))
        {
            Assert.Throws<IOException>(() => AtomicFile.WriteAllText(path, "mine"));
            Assert.True(File.Exists(AtomicFile.TemporaryPath(path)));
        }
        Assert.Equal("old", File.ReadAllText(path));
        Directory.Delete(folder, true);
    }
}
