using System.Text.Json;

namespace WeakToStrong.Checkpoints;

/// <summary>
/// A Hugging Face model folder: <c>config.json</c> plus <c>model.safetensors</c> or a sharded
/// <c>model.safetensors.index.json</c> whose <c>weight_map</c> says which shard holds each tensor.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    private readonly List<SafeTensorsFile> _files;
    private readonly Dictionary<string, SafeTensorsFile> _owner;

    private Checkpoint(string directory, ModelSpec spec, List<SafeTensorsFile> files, Dictionary<string, SafeTensorsFile> owner)
    {
        Directory = directory;
        Spec = spec;
        _files = files;
        _owner = owner;
    }

    public string Directory { get; }

    public ModelSpec Spec { get; }

    public IReadOnlyList<SafeTensorsFile> Files => _files;

    public IEnumerable<string> TensorNames => _owner.Keys;

    /// <summary>A model folder's spec from its config files alone (no weights opened).</summary>
    public static ModelSpec ReadSpec(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!System.IO.Directory.Exists(directory)) throw new CheckpointException(directory, null, "model folder not found");
        return ModelConfig.Load(directory);
    }

    /// <summary>Opens and validates a model folder (config, header of every shard, index consistency).</summary>
    public static Checkpoint Open(string directory)
    {
        var spec = ReadSpec(directory);

        string single = Path.Combine(directory, "model.safetensors");
        string index = Path.Combine(directory, "model.safetensors.index.json");
        var files = new List<SafeTensorsFile>();
        var owner = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        try
        {
            if (File.Exists(single))
            {
                var file = SafeTensorsFile.Open(single);
                files.Add(file);
                foreach (var t in file.Tensors) owner[t.Name] = file;
            }
            else if (File.Exists(index))
            {
                OpenShards(directory, index, files, owner);
            }
            else
            {
                throw new CheckpointException(directory, null, "no model.safetensors or model.safetensors.index.json in the folder");
            }
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
        return new Checkpoint(directory, spec, files, owner);
    }

    private static void OpenShards(string directory, string indexPath, List<SafeTensorsFile> files, Dictionary<string, SafeTensorsFile> owner)
    {
        using var document = ModelConfig.ParseJsonFile(indexPath);
        if (document.RootElement.ValueKind != JsonValueKind.Object
            || !document.RootElement.TryGetProperty("weight_map", out var map)
            || map.ValueKind != JsonValueKind.Object)
            throw new CheckpointException(indexPath, "weight_map", "missing or not an object");
        try
        {
            OpenWeightMap(directory, indexPath, map, files, owner);
        }
        catch (InvalidOperationException e)
        {
            // An escaped lone surrogate ("\ud800") is valid JSON but cannot become a .NET string.
            throw new CheckpointException(indexPath, "weight_map", $"holds a string that is not valid Unicode ({e.Message})", e);
        }
    }

    private static void OpenWeightMap(string directory, string indexPath, JsonElement map, List<SafeTensorsFile> files, Dictionary<string, SafeTensorsFile> owner)
    {
        string indexName = Path.GetFileName(indexPath);
        var shards = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        foreach (var entry in map.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String) throw new CheckpointException(indexPath, entry.Name, "weight_map value is not a file name");
            string shardName = entry.Value.GetString()!;
            if (shardName.Length == 0 || shardName != Path.GetFileName(shardName) || shardName is "." or "..")
                throw new CheckpointException(indexPath, entry.Name, $"shard '{shardName}' is not a plain file name in the model folder");
            if (!shards.TryGetValue(shardName, out var shard))
            {
                string shardPath = Path.Combine(directory, shardName);
                if (!File.Exists(shardPath)) throw new CheckpointException(shardPath, entry.Name, $"shard listed for this tensor in {indexName} not found");
                shard = SafeTensorsFile.Open(shardPath);
                shards[shardName] = shard;
                files.Add(shard);
            }
            if (!shard.Contains(entry.Name))
                throw new CheckpointException(shard.FilePath, entry.Name, $"tensor listed in {indexName} is not in this shard");
            owner[entry.Name] = shard;
        }
    }

    public bool Contains(string name) => _owner.ContainsKey(name);

    /// <summary>Finds a tensor by name across shards.</summary>
    public bool TryFind(string name, out SafeTensorsFile file, out SafeTensorInfo info)
    {
        if (_owner.TryGetValue(name, out var owner))
        {
            file = owner;
            info = owner[name];
            return true;
        }
        file = null!;
        info = null!;
        return false;
    }

    /// <summary>Sum of the stored element counts of all tensors.</summary>
    public long StoredParameterCount => _files.SelectMany(f => f.Tensors).Sum(t => t.ElementCount);

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
