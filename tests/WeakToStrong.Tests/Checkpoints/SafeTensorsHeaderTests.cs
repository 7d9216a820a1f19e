using System.Diagnostics;
using System.Text;
using WeakToStrong.Checkpoints;
using static WeakToStrong.Tests.Checkpoints.SafeTensorsWriter;

namespace WeakToStrong.Tests.Checkpoints;

/// <summary>Every malformed safetensors header is refused with a <see cref="CheckpointException"/> naming the file and tensor.</summary>
[Trait("Category", "Unit")]
public sealed class SafeTensorsHeaderTests : IDisposable
{
    private readonly TempDirectory _temp = TestPaths.Temp();
    private readonly string _path;

    public SafeTensorsHeaderTests() => _path = _temp.File_("model.safetensors");

    public void Dispose() => _temp.Dispose();

    private void Open() => SafeTensorsFile.Open(_path).Dispose();

    /// <summary>A header with the given entries over <paramref name="dataBytes"/> bytes of data.</summary>
    private void WriteHeader(int dataBytes, params string[] entries) =>
        WriteRaw(_path, "{" + string.Join(",", entries) + "}", new byte[dataBytes]);

    [Fact]
    public void WellFormedFileOpensWithItsEntries()
    {
        WriteRaw(_path, "{\"__metadata__\":{\"format\":\"pt\"}," + Entry("a", "F32", "[2,3]", 0, 24) + "," + Entry("empty", "BF16", "[0,4]", 24, 24) + "," + Entry("b", "BF16", "[4]", 24, 32) + "}",
            Enumerable.Range(0, 32).Select(i => (byte)i).ToArray());
        using var file = SafeTensorsFile.Open(_path);
        Assert.Equal(["a", "b", "empty"], file.Tensors.Select(t => t.Name).Order());
        Assert.Equal([2L, 3L], file["a"].Shape);
        Assert.Equal(Enumerable.Range(24, 8).Select(i => (byte)i).ToArray(), file.Bytes(file["b"], 0, 8).ToArray());
        Assert.Equal(0, file["empty"].ByteLength);
    }

    [Fact]
    public void HeaderLengthOfTwoToTheSixtyIsRefusedWithoutAllocating()
    {
        WriteRaw(_path, "{}", new byte[64], declaredHeaderLength: 1UL << 60);
        Assert.Throws<CheckpointException>(Open); // JIT and file cache warm-up, so the measured call below is the check alone
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        CheckpointAssert.Throws(Open, _path, null, "header length", (1UL << 60).ToString());
        clock.Stop();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        Assert.True(allocated < 1 << 20, $"refusing the header allocated {allocated} bytes");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"refusing the header took {clock.Elapsed}");
    }

    [Theory]
    [InlineData(1000UL)]
    [InlineData(ulong.MaxValue)]
    [InlineData((ulong)long.MaxValue + 1)]
    public void HeaderLengthPastTheEndOfTheFileIsRefused(ulong declared)
    {
        WriteRaw(_path, "{}", new byte[16], declaredHeaderLength: declared);
        CheckpointAssert.Throws(Open, _path, null, "header length", declared.ToString());
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(1UL)]
    public void HeaderLengthTooShortForAnObjectIsRefused(ulong declared)
    {
        WriteRaw(_path, "{}", new byte[16], declaredHeaderLength: declared);
        CheckpointAssert.Throws(Open, _path, null, "header length", "too short");
    }

    [Theory]
    [InlineData("{\"a\":{\"dtype\":\"F32\",")]
    [InlineData("{\"a\" {}}")]
    [InlineData("{'a':{}}")]
    [InlineData("{\"a\":{}} trailing")]
    [InlineData("{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}")]
    public void HeaderThatIsNotJsonIsRefused(string header)
    {
        WriteRaw(_path, header, new byte[8]);
        CheckpointAssert.Throws(Open, _path, null, "JSON");
    }

    [Theory]
    [InlineData("[1, 2]")]
    [InlineData("\"tensors\"")]
    [InlineData("42")]
    [InlineData("null")]
    public void HeaderThatIsNotAnObjectIsRefused(string header)
    {
        WriteRaw(_path, header, new byte[8]);
        CheckpointAssert.Throws(Open, _path, null, "not a JSON object");
    }

    [Fact]
    public void HeaderWithInvalidUtf8InATensorNameIsRefused()
    {
        byte[] header = Encoding.UTF8.GetBytes("{" + Entry("w\u00e9ight", "F32", "[1]", 0, 4) + "}");
        int accent = Array.IndexOf(header, (byte)0xC3);
        header[accent] = 0xFF; // 0xFF never appears in UTF-8
        WriteRaw(_path, header, new byte[4]);
        CheckpointAssert.Throws(Open, _path, null, "UTF-8");
    }

    [Fact]
    public void HeaderWithALoneSurrogateEscapeInATensorNameIsRefused()
    {
        WriteRaw(_path, "{" + Entry("w\\ud800", "F32", "[1]", 0, 4) + "}", new byte[4]);
        CheckpointAssert.Throws(Open, _path, null, "header");
    }

    [Fact]
    public void EntryThatIsNotAnObjectIsRefused()
    {
        WriteRaw(_path, "{\"a\":[1,2]}", new byte[8]);
        CheckpointAssert.Throws(Open, _path, "a", "not a JSON object");
    }

    [Theory]
    [InlineData("Q4_K")]
    [InlineData("f32")]
    [InlineData("")]
    public void UnknownDTypeIsRefused(string dtype)
    {
        WriteHeader(4, Entry("layer.weight", dtype, "[1]", 0, 4));
        CheckpointAssert.Throws(Open, _path, "layer.weight", "unknown dtype", "F32", "BF16");
    }

    [Theory]
    [InlineData("{\"shape\":[2],\"data_offsets\":[0,8]}", "dtype")]
    [InlineData("{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}", "dtype")]
    [InlineData("{\"dtype\":\"F32\",\"data_offsets\":[0,8]}", "shape")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}", "shape")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2]}", "data_offsets")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}", "data_offsets")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}", "data_offsets")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{\"begin\":0,\"end\":8}}", "data_offsets")]
    public void MissingOrMistypedFieldIsRefused(string entry, string field)
    {
        WriteRaw(_path, "{\"x.weight\":" + entry + "}", new byte[8]);
        CheckpointAssert.Throws(Open, _path, "x.weight", field);
    }

    [Theory]
    [InlineData("[-1,2]")]
    [InlineData("[2,-8]")]
    [InlineData("[1.5,2]")]
    [InlineData("[2e0,1]")]
    [InlineData("[\"2\",1]")]
    [InlineData("[null]")]
    [InlineData("[18446744073709551616]")]
    public void ShapeWithANegativeOrNonIntegerDimensionIsRefused(string shape)
    {
        WriteHeader(8, Entry("x.weight", "F32", shape, 0, 8));
        CheckpointAssert.Throws(Open, _path, "x.weight", "shape", "non-negative integer");
    }

    [Theory]
    [InlineData("[4294967296,4294967296]")]
    [InlineData("[9223372036854775807,2]")]
    public void ShapeWhoseElementCountOverflowsIsRefused(string shape)
    {
        WriteHeader(8, Entry("x.weight", "F32", shape, 0, 8));
        CheckpointAssert.Throws(Open, _path, "x.weight", "shape");
    }

    [Fact]
    public void ShapeWithTooManyDimensionsIsRefused()
    {
        WriteHeader(4, Entry("x.weight", "F32", "[" + string.Join(",", Enumerable.Repeat(1, 9)) + "]", 0, 4));
        CheckpointAssert.Throws(Open, _path, "x.weight", "9 dimensions");
    }

    [Theory]
    [InlineData("F32", "[2,3]", 20)]
    [InlineData("F32", "[2,3]", 28)]
    [InlineData("BF16", "[2,3]", 24)]
    [InlineData("I64", "[0]", 8)]
    [InlineData("F32", "[4611686018427387904]", 16)]
    public void ShapeTimesElementSizeDifferentFromTheByteSpanIsRefused(string dtype, string shape, int span)
    {
        WriteHeader(32, Entry("x.weight", dtype, shape, 0, span));
        CheckpointAssert.Throws(Open, _path, "x.weight", "byte span");
    }

    [Fact]
    public void DataOffsetsEndingBeforeTheyBeginAreRefused()
    {
        WriteHeader(16, Entry("x.weight", "F32", "[0]", 8, 4));
        CheckpointAssert.Throws(Open, _path, "x.weight", "end before begin");
    }

    [Theory]
    [InlineData("[-4,0]")]
    [InlineData("[0,-4]")]
    [InlineData("[0.0,4]")]
    [InlineData("[0,\"4\"]")]
    public void DataOffsetsThatAreNotNonNegativeIntegersAreRefused(string offsets)
    {
        WriteRaw(_path, "{\"x.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":" + offsets + "}}", new byte[8]);
        CheckpointAssert.Throws(Open, _path, "x.weight", "data_offsets");
    }

    [Theory]
    [InlineData(12, 20)]
    [InlineData(16, 24)]
    [InlineData(9223372036854775800, 9223372036854775804)]
    public void SpanPastTheDataSectionIsRefused(long begin, long end)
    {
        WriteHeader(16, Entry("x.weight", "F32", "[1]", 0, 4), Entry("y.weight", "F32", $"[{(end - begin) / 4}]", begin, end));
        CheckpointAssert.Throws(Open, _path, "y.weight", "past the data section");
    }

    [Fact]
    public void OverlappingTensorsAreRefused()
    {
        WriteHeader(32, Entry("a.weight", "F32", "[4]", 0, 16), Entry("b.weight", "F32", "[4]", 12, 28));
        var e = CheckpointAssert.Throws(Open, _path, "b.weight", "overlaps");
        Assert.Contains("'a.weight'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TensorInsideAnotherIsRefused()
    {
        WriteHeader(32, Entry("outer", "F32", "[8]", 0, 32), Entry("inner", "F32", "[2]", 8, 16));
        CheckpointAssert.Throws(Open, _path, "inner", "overlaps");
    }

    [Fact]
    public void SameTensorListedTwiceIsRefused()
    {
        WriteHeader(32, Entry("a.weight", "F32", "[4]", 0, 16), Entry("a.weight", "F32", "[4]", 16, 32));
        CheckpointAssert.Throws(Open, _path, "a.weight", "twice");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    public void FileShorterThanEightBytesIsRefused(int length)
    {
        File.WriteAllBytes(_path, new byte[length]);
        CheckpointAssert.Throws(Open, _path, null, "too short");
    }

    [Fact]
    public void MissingFileIsRefused() => CheckpointAssert.Throws(Open, _path, null, "not found");

    [Fact]
    public void FileThatCannotBeReadIsRefused()
    {
        WriteHeader(4, Entry("x.weight", "F32", "[1]", 0, 4));
        // An exclusive share lock makes the reader's open fail the way an unreadable file does (root ignores chmod).
        using var exclusive = new FileStream(_path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        CheckpointAssert.Throws(Open, _path, null, "cannot be read");
    }
}
