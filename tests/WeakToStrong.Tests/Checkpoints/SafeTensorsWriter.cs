using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using WeakToStrong.Checkpoints;

namespace WeakToStrong.Tests.Checkpoints;

/// <summary>One tensor as stored: dtype name, shape and raw little-endian bytes.</summary>
internal sealed record RawTensor(string Name, string DType, long[] Shape, byte[] Data);

/// <summary>
/// Writes safetensors files for tests (8-byte LE header length, JSON header space-padded to a multiple of 8,
/// data) and reads them back with plain JSON, independently of the reader under test.
/// </summary>
internal static class SafeTensorsWriter
{
    /// <summary>All tensors of a file, in the order of their data.</summary>
    public static List<RawTensor> Read(string path)
    {
        byte[] file = File.ReadAllBytes(path);
        int headerLength = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(file));
        using var header = JsonDocument.Parse(file.AsMemory(8, headerLength));
        int dataStart = 8 + headerLength;
        var tensors = new List<(long Begin, RawTensor Tensor)>();
        foreach (var entry in header.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__") continue;
            long begin = entry.Value.GetProperty("data_offsets")[0].GetInt64();
            long end = entry.Value.GetProperty("data_offsets")[1].GetInt64();
            tensors.Add((begin, new RawTensor(
                entry.Name,
                entry.Value.GetProperty("dtype").GetString()!,
                entry.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray(),
                file[(int)(dataStart + begin)..(int)(dataStart + end)])));
        }
        return tensors.OrderBy(t => t.Begin).Select(t => t.Tensor).ToList();
    }

    /// <summary>Writes the tensors with their data in the given order (header entries in the same order).</summary>
    public static void Write(string path, IEnumerable<RawTensor> tensors)
    {
        var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
        var data = new MemoryStream();
        foreach (var t in tensors)
        {
            header[t.Name] = new JsonObject
            {
                ["dtype"] = t.DType,
                ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(data.Length, data.Length + t.Data.Length),
            };
            data.Write(t.Data);
        }
        WriteRaw(path, header.ToJsonString(), data.ToArray());
    }

    /// <summary>
    /// Writes <paramref name="headerJson"/> space-padded to a multiple of 8, then <paramref name="data"/>; the length
    /// prefix is the padded header length unless <paramref name="declaredHeaderLength"/> overrides it.
    /// </summary>
    public static void WriteRaw(string path, string headerJson, byte[]? data = null, ulong? declaredHeaderLength = null) =>
        WriteRaw(path, Encoding.UTF8.GetBytes(headerJson), data, declaredHeaderLength);

    public static void WriteRaw(string path, byte[] headerBytes, byte[]? data = null, ulong? declaredHeaderLength = null)
    {
        int padded = (headerBytes.Length + 7) / 8 * 8;
        var file = new byte[8 + padded + (data?.Length ?? 0)];
        BinaryPrimitives.WriteUInt64LittleEndian(file, declaredHeaderLength ?? (ulong)padded);
        headerBytes.CopyTo(file, 8);
        file.AsSpan(8 + headerBytes.Length, padded - headerBytes.Length).Fill((byte)' ');
        data?.CopyTo(file, 8 + padded);
        File.WriteAllBytes(path, file);
    }

    /// <summary>One header entry as JSON text, for hand-built (often broken) headers.</summary>
    public static string Entry(string name, string dtype, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    /// <summary>Writes a model.safetensors.index.json with the weight_map entries in the given order.</summary>
    public static void WriteIndex(string path, IEnumerable<(string Tensor, string Shard)> weightMap, long totalSize)
    {
        var map = new JsonObject();
        foreach (var (tensor, shard) in weightMap) map[tensor] = shard;
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = totalSize }, ["weight_map"] = map };
        File.WriteAllText(path, index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}

/// <summary>Checks that a failure is a <see cref="CheckpointException"/> naming the file and the tensor or field.</summary>
internal static class CheckpointAssert
{
    /// <param name="action">The failing call.</param>
    /// <param name="file">The file (or folder) the message must name.</param>
    /// <param name="field">The tensor or field the message must name; null for a problem of the whole file.</param>
    /// <param name="phrases">Words the message must also hold (case-insensitive).</param>
    public static CheckpointException Throws(Action action, string file, string? field, params string[] phrases)
    {
        var e = Assert.Throws<CheckpointException>(action);
        Assert.Equal(Path.GetFullPath(file), Path.GetFullPath(e.FilePath));
        Assert.Contains(file, e.Message, StringComparison.Ordinal);
        Assert.Equal(field, e.Field);
        if (field is not null) Assert.Contains($"'{field}'", e.Message, StringComparison.Ordinal);
        foreach (string phrase in phrases) Assert.Contains(phrase, e.Message, StringComparison.OrdinalIgnoreCase);
        return e;
    }
}
