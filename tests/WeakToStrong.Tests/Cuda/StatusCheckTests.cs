using System.Text.RegularExpressions;

namespace WeakToStrong.Tests.Cuda;

/// <summary>
/// Every CUDA driver, NVRTC and cuBLAS call returns a status and never throws, so a call whose status is dropped
/// fails silently (and a <c>catch (CudaException)</c> around it is dead). A source check over the CUDA backend: each
/// raw call's status is checked (ThrowIfFailed, compared, assigned, returned) or discarded explicitly with
/// <c>_ =</c> under a comment saying why.
/// </summary>
[Trait("Category", "Unit")]
public partial class StatusCheckTests
{
    [GeneratedRegex(@"\b(DriverApi|NvrtcApi|CublasApi)\.(\w+)\(")]
    private static partial Regex RawCall();

    [GeneratedRegex(@"^\s*(if \(.*\)\s*)?(DriverApi|NvrtcApi|CublasApi)\.\w+\(.*\);")]
    private static partial Regex DroppedStatus();

    private static string CudaSources()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "src", "WeakToStrong", "Backends", "Cuda");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("src/WeakToStrong/Backends/Cuda above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void EveryRawCallsStatusIsCheckedOrDiscardedWithAReason()
    {
        var problems = new List<string>();
        int calls = 0;
        foreach (string file in Directory.EnumerateFiles(CudaSources(), "*.cs", SearchOption.AllDirectories))
        {
            string[] lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                string line = lines[i];
                if (line.TrimStart().StartsWith("//", StringComparison.Ordinal) || line.Contains("[LibraryImport") || line.Contains("[DllImport")) continue;
                if (!RawCall().IsMatch(line)) continue;
                calls++;
                string where = $"{Path.GetFileName(file)}:{i + 1}: {line.Trim()}";
                if (DroppedStatus().IsMatch(line)) problems.Add("status dropped: " + where);
                if (Regex.IsMatch(line, @"(^|[\s(])_ = (DriverApi|NvrtcApi|CublasApi)\."))
                {
                    // The reason: a comment on this line or within the three lines above.
                    bool reason = line.Contains("//") || Enumerable.Range(Math.Max(0, i - 3), Math.Min(3, i)).Any(j => lines[j].TrimStart().StartsWith("//", StringComparison.Ordinal));
                    if (!reason) problems.Add("discarded without a reason: " + where);
                }
            }
        }
        Assert.True(calls > 20, $"only {calls} raw calls found: is the pattern still right?");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    /// <summary>The check itself: it flags a dropped status and an unexplained discard, and passes the checked forms.</summary>
    [Theory]
    [InlineData("            DriverApi.StreamSynchronize(Stream);", true)]
    [InlineData("            if (broken != 0) DriverApi.GraphDestroy(broken);", true)]
    [InlineData("            NvrtcApi.DestroyProgram(ref program);", true)]
    [InlineData("            Cu.ThrowIfFailed(DriverApi.StreamSynchronize(Stream));", false)]
    [InlineData("            _ = DriverApi.StreamSynchronize(Stream);", false)]
    [InlineData("        var status = NvrtcApi.CompileProgram(program, options.Count, opts);", false)]
    [InlineData("    protected override bool ReleaseHandle() => DriverApi.MemFree((ulong)handle) == CuResult.Success;", false)]
    public void TheCheckFlagsDroppedStatuses(string line, bool dropped) => Assert.Equal(dropped, DroppedStatus().IsMatch(line));
}
