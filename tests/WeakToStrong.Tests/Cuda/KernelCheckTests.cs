using WeakToStrong.Backends.Cuda;

namespace WeakToStrong.Tests.Cuda;

/// <summary>The NVRTC compile check (what CI runs as `w2s kernels`), and its ptxas-log parser.</summary>
[Trait("Category", "Integration")]
public class KernelCheckTests
{
    [NvrtcFact]
    public void EveryKernelCompilesForAmpereAndHopperWithoutSpills()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = KernelCheck.Run(["sm_80", "sm_90"], json: true, stdout, stderr);
        Assert.True(exit == 0, $"exit {exit}\n{stderr}\n{stdout}");
        using var doc = System.Text.Json.JsonDocument.Parse(stdout.ToString());
        var archs = doc.RootElement.GetProperty("architectures");
        Assert.Equal(2, archs.GetArrayLength());
        foreach (var arch in archs.EnumerateArray())
        {
            var names = arch.GetProperty("kernels").EnumerateArray().Select(k => k.GetProperty("kernel").GetString()!).ToHashSet();
            Assert.Equal(Backends.Cuda.Kernels.KernelCatalog.AllKernels.ToHashSet(), names);
            Assert.All(arch.GetProperty("kernels").EnumerateArray(), k => Assert.True(k.GetProperty("registers").GetInt32() > 0));
        }
    }

    [NvrtcFact]
    public void RejectsANameThatIsNotAnArchitecture()
    {
        var stderr = new StringWriter();
        Assert.Equal(2, KernelCheck.Run(["compute_80"], json: false, new StringWriter(), stderr));
        Assert.Contains("sm_XX", stderr.ToString());
    }

    [Fact]
    public void ParsesRegistersSharedMemoryAndSpillsPerEntryFunction()
    {
        const string log = """
            ptxas info    : 0 bytes gmem
            ptxas info    : Compiling entry function 'first_f32' for 'sm_80'
            ptxas info    : Function properties for first_f32
            ptxas         .     48 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads
            ptxas info    : Used 38 registers, 412 bytes cmem[0], 32 bytes cmem[2]
            ptxas info    : Compiling entry function 'second_f32' for 'sm_80'
            ptxas info    : Function properties for second_f32
            ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
            ptxas info    : Used 10 registers, 1024 bytes smem, 364 bytes cmem[0]
            """;
        var kernels = KernelCheck.ParsePtxasLog(log, "x.cu");
        Assert.Equal([new KernelResources("first_f32", "x.cu", 38, 0, 48, 8, 12), new KernelResources("second_f32", "x.cu", 10, 1024, 0, 0, 0)], kernels);
    }
}
