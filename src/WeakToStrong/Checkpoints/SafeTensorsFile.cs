using System.IO.MemoryMappedFiles;
using System.Text.Json;
using System.Text.Unicode;
using WeakToStrong.Backends;
using WeakToStrong.Native;

namespace WeakToStrong.Checkpoints;

/// <summary>One tensor's entry in a safetensors header.</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="DTypeName">The stored dtype as spelled in the header (F32, BF16, …).</param>
/// <param name="Shape">Dimensions.</param>
/// <param name="Begin">Byte offset of the data, relative to the start of the data section.</param>
/// <param name="End">Exclusive end offset.</param>
public sealed record SafeTensorInfo(string Name, string DTypeName, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;

    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// A memory-mapped safetensors file whose header has been validated before anything in it is trusted:
/// header length inside the file, valid JSON, known dtypes, shape × element size equal to the byte span,
/// spans inside the data section and not overlapping.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    /// <summary>Largest header we accept; real headers are a few hundred KiB at most.</summary>
    public const long MaxHeaderBytes = 100L << 20;

    private static readonly Dictionary<string, int> ElementSizes = new()
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2,
        ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1, ["U8"] = 1, ["BOOL"] = 1,
        ["F8_E4M3"] = 1, ["F8_E5M2"] = 1,
    };

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;
    private readonly long _dataStart;
    private readonly Dictionary<string, SafeTensorInfo> _tensors;

    private SafeTensorsFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* basePointer, long dataStart, Dictionary<string, SafeTensorInfo> tensors)
    {
        FilePath = path;
        _map = map;
        _view = view;
        _base = basePointer;
        _dataStart = dataStart;
        _tensors = tensors;
    }

    public string FilePath { get; }

    public IReadOnlyCollection<SafeTensorInfo> Tensors => _tensors.Values;

    public bool Contains(string name) => _tensors.ContainsKey(name);

    public SafeTensorInfo this[string name] =>
        _tensors.TryGetValue(name, out var info) ? info : throw new CheckpointException(FilePath, name, "tensor not found");

    /// <summary>Opens and validates a safetensors file.</summary>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new CheckpointException(path, null, "file not found");
        try
        {
            byte[] header;
            long fileLength;
            using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
            {
                fileLength = stream.Length;
                if (fileLength < 8) throw new CheckpointException(path, null, $"file is {fileLength} bytes, too short for a safetensors header");
                Span<byte> prefix = stackalloc byte[8];
                stream.ReadExactly(prefix);
                ulong raw = BitConverter.ToUInt64(prefix);
                if (raw > (ulong)Math.Min(fileLength - 8, MaxHeaderBytes))
                    throw new CheckpointException(path, null, $"header length {raw} does not fit in a file of {fileLength} bytes (limit {MaxHeaderBytes})");
                if (raw < 2) throw new CheckpointException(path, null, $"header length {raw} is too short for a JSON object");
                header = new byte[raw];
                stream.ReadExactly(header);
            }

            long dataStart = 8 + header.LongLength;
            var tensors = ParseHeader(path, header, fileLength - dataStart);
            return tensors.Count == 0 ? new SafeTensorsFile(path, null, null, null, dataStart, tensors) : Map(path, dataStart, tensors);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(path, null, $"cannot be read ({e.Message})", e);
        }
    }

    private static SafeTensorsFile Map(string path, long dataStart, Dictionary<string, SafeTensorInfo> tensors)
    {
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            return new SafeTensorsFile(path, map, view, pointer + view.PointerOffset, dataStart, tensors);
        }
        catch
        {
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    private static Dictionary<string, SafeTensorInfo> ParseHeader(string path, byte[] header, long dataLength)
    {
        // Checked up front: System.Text.Json validates UTF-8 inside strings only in GetString (InvalidOperationException).
        if (!Utf8.IsValid(header)) throw new CheckpointException(path, null, "header is not valid UTF-8");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header.AsMemory().TrimEnd((byte)' '), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new CheckpointException(path, null, $"header is not valid JSON ({e.Message})", e);
        }

        using (document)
        {
            try
            {
                return ParseEntries(path, document.RootElement, dataLength);
            }
            catch (InvalidOperationException e)
            {
                // An escaped lone surrogate ("\ud800") is valid JSON but cannot become a .NET string.
                throw new CheckpointException(path, null, $"header holds a string that is not valid Unicode ({e.Message})", e);
            }
        }
    }

    private static Dictionary<string, SafeTensorInfo> ParseEntries(string path, JsonElement root, long dataLength)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new CheckpointException(path, null, "header is not a JSON object");
        var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            if (property.Name == "__metadata__") continue;
            var info = ParseEntry(path, property.Name, property.Value, dataLength);
            if (!tensors.TryAdd(info.Name, info)) throw new CheckpointException(path, info.Name, "tensor listed twice");
        }

        SafeTensorInfo? previous = null;
        foreach (var info in tensors.Values.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (previous is not null && info.Begin < previous.End)
                throw new CheckpointException(path, info.Name, $"data [{info.Begin}, {info.End}) overlaps tensor '{previous.Name}' [{previous.Begin}, {previous.End})");
            if (info.ByteLength > 0) previous = info;
        }

        return tensors;
    }

    private static SafeTensorInfo ParseEntry(string path, string name, JsonElement entry, long dataLength)
    {
        if (entry.ValueKind != JsonValueKind.Object) throw new CheckpointException(path, name, "entry is not a JSON object");
        if (!entry.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new CheckpointException(path, name, "missing string field 'dtype'");
        string dtype = dtypeElement.GetString()!;
        if (!ElementSizes.TryGetValue(dtype, out int elementSize))
            throw new CheckpointException(path, name, $"unknown dtype '{dtype}' (known: {string.Join(", ", ElementSizes.Keys)})");

        if (!entry.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new CheckpointException(path, name, "missing array field 'shape'");
        int rank = shapeElement.GetArrayLength();
        if (rank > 8) throw new CheckpointException(path, name, $"shape has {rank} dimensions");
        var shape = new long[rank];
        long elements = 1;
        int i = 0;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long value) || value < 0)
                throw new CheckpointException(path, name, "shape holds a value that is not a non-negative integer");
            shape[i++] = value;
            elements = value == 0 ? 0 : elements > long.MaxValue / value ? -1 : elements * value;
            if (elements < 0) throw new CheckpointException(path, name, "shape is too large");
        }

        if (!entry.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw new CheckpointException(path, name, "missing field 'data_offsets' [begin, end]");
        long begin = ReadOffset(path, name, offsets[0]);
        long end = ReadOffset(path, name, offsets[1]);
        if (end < begin) throw new CheckpointException(path, name, $"data_offsets [{begin}, {end}] end before begin");
        if (end > dataLength) throw new CheckpointException(path, name, $"data_offsets [{begin}, {end}] run past the data section ({dataLength} bytes)");
        if (elements > long.MaxValue / elementSize || elements * elementSize != end - begin)
            throw new CheckpointException(path, name, $"shape [{string.Join(", ", shape)}] × {elementSize} bytes ({dtype}) does not equal the byte span {end - begin}");
        return new SafeTensorInfo(name, dtype, shape, begin, end);
    }

    private static long ReadOffset(string path, string name, JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out long value) || value < 0)
            throw new CheckpointException(path, name, "data_offsets holds a value that is not a non-negative integer");
        return value;
    }

    /// <summary>The stored dtype as a compute dtype; only F32, F16 and BF16 are weights we can use.</summary>
    public DType WeightDType(SafeTensorInfo info) => info.DTypeName switch
    {
        "F32" => DType.F32,
        "F16" => DType.F16,
        "BF16" => DType.BF16,
        _ => throw new CheckpointException(FilePath, info.Name, $"dtype {info.DTypeName} is not a supported weight type (F32, F16, BF16)"),
    };

    /// <summary>The tensor's raw bytes in the mapped file (valid while this object is alive).</summary>
    public ReadOnlySpan<byte> Bytes(SafeTensorInfo info, long byteOffset, int byteCount)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (byteOffset < 0 || byteCount < 0 || byteOffset + byteCount > info.ByteLength) throw new ArgumentOutOfRangeException(nameof(byteOffset));
        return new ReadOnlySpan<byte>(_base + _dataStart + info.Begin + byteOffset, byteCount);
    }

    /// <summary>
    /// Drops this process's mapping of the tensor's pages (the pages fully inside its data; the file and the page
    /// cache are untouched, and a later read maps them again). Called once a tensor has been copied into a backend,
    /// so that the loaded weights are the only copy resident. No-op where the OS has no madvise.
    /// </summary>
    public void Release(SafeTensorInfo info)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(info);
        if (_base is null || !OperatingSystem.IsLinux()) return;
        long page = Environment.SystemPageSize;
        long start = (long)(_base + _dataStart + info.Begin), end = (long)(_base + _dataStart + info.End);
        long first = (start + page - 1) / page * page, last = end / page * page;
        if (last > first) MemoryAdvice.DropPages((nint)first, last - first);
    }

    private bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }
}
