// The README is the front door and docs/ holds the rest: every relative link between them, and from the notebooks'
// text, has to lead somewhere.
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ProGan.Keras.Tests;

public class DocsLinkTests
{
    private static readonly Regex Fence = new(@"```.*?```", RegexOptions.Singleline);
    private static readonly Regex Link = new(@"!?\[[^\]]*\]\(([^)\s]+)\)");
    private static readonly Regex Heading = new(@"^#+ (.*)$", RegexOptions.Multiline);

    /// <summary>A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens.</summary>
    public static string Anchor(string heading) =>
        Regex.Replace(heading.Trim().ToLowerInvariant(), @"[^\w\- ]", "").Replace(' ', '-');

    private static HashSet<string> Anchors(string markdownFile) =>
        Heading.Matches(Fence.Replace(File.ReadAllText(markdownFile), ""))
            .Select(m => Anchor(m.Groups[1].Value)).ToHashSet();

    /// <summary>The markdown text of the README, every docs page and the notebooks' markdown cells, by file.</summary>
    private static IEnumerable<(string path, string text)> Texts(string root)
    {
        yield return (Path.Combine(root, "README.md"), File.ReadAllText(Path.Combine(root, "README.md")));
        foreach (var page in Directory.GetFiles(Path.Combine(root, "docs"), "*.md"))
            yield return (page, File.ReadAllText(page));
        foreach (var notebook in Directory.GetFiles(Path.Combine(root, "notebooks"), "*.ipynb"))
        {
            using var json = JsonDocument.Parse(File.ReadAllText(notebook));
            var cells = json.RootElement.GetProperty("cells").EnumerateArray()
                .Where(c => c.GetProperty("cell_type").GetString() == "markdown")
                .Select(c => string.Concat(c.GetProperty("source").EnumerateArray().Select(line => line.GetString())));
            yield return (notebook, string.Join("\n", cells));
        }
    }

    [Fact]
    public void Anchors_are_made_as_GitHub_makes_them()
    {
        Assert.Equal("options-beyond-the-papers-defaults", Anchor("Options beyond the paper's defaults"));
        Assert.Equal("why-torchsharp-not-tensorflownet", Anchor("Why TorchSharp, not TensorFlow.NET"));
    }

    [Fact]
    public void Every_relative_link_of_the_readme_the_docs_and_the_notebooks_resolves()
    {
        string root = PackageFeed.RepositoryRoot();
        var broken = new List<string>();
        int links = 0;
        foreach (var (path, text) in Texts(root))
        {
            foreach (Match m in Link.Matches(Fence.Replace(text, "")))
            {
                string target = m.Groups[1].Value;
                if (Regex.IsMatch(target, "^[a-z]+:")) continue; // https:, mailto:
                links++;
                int hash = target.IndexOf('#');
                string file = hash < 0 ? target : target[..hash], anchor = hash < 0 ? "" : target[(hash + 1)..];
                string full = file == "" ? path : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, file));
                string from = Path.GetRelativePath(root, path);
                if (!File.Exists(full) && !Directory.Exists(full)) broken.Add($"{from}: {target}: no such file");
                else if (anchor != "" && full.EndsWith(".md") && !Anchors(full).Contains(anchor)) broken.Add($"{from}: {target}: no heading #{anchor}");
            }
        }
        Assert.True(links >= 30, $"only {links} relative links found: is the README still linking its pages?");
        Assert.True(broken.Count == 0, string.Join("\n", broken));
    }
}
