using WeakToStrong.Engine.Sampling;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// Temperature / top-k / top-p sampling of one row of logits. The meaning every backend reproduces:
/// temperature 0 → the first index of the maximum logit. Otherwise the candidates are all tokens in index order
/// when no cut applies, or, when top-k or top-p cuts, the tokens ordered by (logit descending, index ascending),
/// cut to the first K and then to the shortest prefix whose probability reaches P; the token is the first
/// candidate whose cumulative probability (softmax of logit / temperature over the candidates, in float64)
/// exceeds u · total, with u = Philox uniform of (seed, sequence key, position).
/// </summary>
internal static class CpuSampler
{
    public static int Sample(ReadOnlySpan<float> logits, in Backends.SamplingRow row)
    {
        if (row.Temperature <= 0) return ArgMax(logits);
        int vocab = logits.Length;
        double u = Philox.Uniform(row.Seed, row.SequenceKey, row.Position);
        double invT = 1.0 / row.Temperature;
        bool cutK = row.TopK > 0 && row.TopK < vocab;
        bool cutP = row.TopP < 1f;

        if (!cutK && !cutP)
        {
            float max = System.Numerics.Tensors.TensorPrimitives.Max(logits);
            double total = 0;
            for (int i = 0; i < vocab; i++) total += Math.Exp((logits[i] - max) * invT);
            double target = u * total, cumulative = 0;
            for (int i = 0; i < vocab; i++)
            {
                cumulative += Math.Exp((logits[i] - max) * invT);
                if (cumulative > target) return i;
            }
            return LastFinite(logits);
        }

        int[] order = cutK ? TopK(logits, row.TopK) : SortAll(logits);
        var probabilities = new double[order.Length];
        double best = logits[order[0]];
        double sum = 0;
        for (int i = 0; i < order.Length; i++) sum += probabilities[i] = Math.Exp((logits[order[i]] - best) * invT);
        int keep = order.Length;
        if (cutP)
        {
            double cumulative = 0;
            for (int i = 0; i < order.Length; i++)
            {
                cumulative += probabilities[i] / sum;
                if (cumulative >= row.TopP) { keep = i + 1; break; }
            }
        }
        double kept = 0;
        for (int i = 0; i < keep; i++) kept += probabilities[i];
        double goal = u * kept, running = 0;
        for (int i = 0; i < keep; i++)
        {
            running += probabilities[i];
            if (running > goal) return order[i];
        }
        return order[keep - 1];
    }

    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }

    private static int LastFinite(ReadOnlySpan<float> logits)
    {
        for (int i = logits.Length - 1; i >= 0; i--)
            if (float.IsFinite(logits[i])) return i;
        return 0;
    }

    private static int Compare(ReadOnlySpan<float> logits, int a, int b)
    {
        int c = logits[b].CompareTo(logits[a]);
        return c != 0 ? c : a.CompareTo(b);
    }

    /// <summary>The K best indices by (logit desc, index asc) via a bounded min-heap: O(V log K), no full sort.</summary>
    private static int[] TopK(ReadOnlySpan<float> logits, int k)
    {
        var heap = new PriorityQueue<int, (float Logit, int Index)>(k + 1, Comparer<(float Logit, int Index)>.Create((x, y) =>
        {
            int c = x.Logit.CompareTo(y.Logit);
            return c != 0 ? c : y.Index.CompareTo(x.Index);
        }));
        for (int i = 0; i < logits.Length; i++)
        {
            if (heap.Count < k) { heap.Enqueue(i, (logits[i], i)); continue; }
            heap.TryPeek(out _, out var worst);
            if (logits[i] > worst.Logit) heap.EnqueueDequeue(i, (logits[i], i));
        }
        var result = new int[heap.Count];
        for (int i = result.Length - 1; i >= 0; i--) result[i] = heap.Dequeue();
        return result;
    }

    private static int[] SortAll(ReadOnlySpan<float> logits)
    {
        var order = Enumerable.Range(0, logits.Length).ToArray();
        var copy = logits.ToArray();
        Array.Sort(order, (a, b) => Compare(copy, a, b));
        return order;
    }
}
