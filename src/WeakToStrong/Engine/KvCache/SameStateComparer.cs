namespace WeakToStrong.Engine.KvCache;

/// <summary>
/// Equal when two sequences would compute the same rows: the same tokens, the same cached length and the same blocks
/// (a shared block is written once, so the same blocks hold the same keys and values). Such sequences can feed one
/// row between them and then share its KV (<see cref="Sequence.ShareCacheOf"/>).
/// </summary>
internal sealed class SameStateComparer : IEqualityComparer<Sequence>
{
    public static SameStateComparer Instance { get; } = new();

    public bool Equals(Sequence? a, Sequence? b) =>
        ReferenceEquals(a, b) || (a is not null && b is not null && a.Cache == b.Cache && a.CachedLength == b.CachedLength
            && a.BlockTable.SequenceEqual(b.BlockTable) && a.Tokens.SequenceEqual(b.Tokens));

    public int GetHashCode(Sequence s) =>
        HashCode.Combine(s.CachedLength, s.Length, s.Length > 0 ? s.Tokens[^1] : -1, s.BlockTable.Count > 0 ? s.BlockTable[^1] : -1);
}
