// Fused log-sum-exp + gather for scoring: result[r] = logits[r, targets[r]] − log Σ_v exp(logits[r, v]).
// No softmax is materialised.
//
// Layout: logits [rows, vocab] F32; targets [rows] I32; result [rows] F32.
// Grid:   one block per row; each thread keeps a running (max, Σ exp(x − max)) over a strided slice of the row
//         (one pass), then the block merges the pairs. The sum is kept in F64 for long vocabularies.
#include "common.cuh"

extern "C" __global__ void logprob_gather_f32(const float* logits, int vocab, const int* targets, float* result)
{
    __shared__ float maxima[32];
    __shared__ double sums[32];
    const float* row = logits + (long long)blockIdx.x * vocab;
    float m = -W2S_INFINITY;
    double s = 0.0;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    {
        const float v = row[i];
        if (v > m)
        {
            s = s * exp((double)m - (double)v) + 1.0;
            m = v;
        }
        else s += exp((double)v - (double)m);
    }
    const float block_m = block_max(m, maxima);
    const double scaled = m == -W2S_INFINITY ? 0.0 : s * exp((double)m - (double)block_m);
    const double total = block_sum(scaled, sums);
    if (threadIdx.x == 0) result[blockIdx.x] = (float)((double)row[targets[blockIdx.x]] - ((double)block_m + log(total)));
}
W2S_EXPORT(logprob_gather_f32)
