// Embedding gather (+ learned positions).
//
// Layout: table [vocab, dim] in the weight type; positions_table [max_positions, dim] F32 or null;
//         tokens, positions [tokens] I32; x [tokens, dim] F32.
// Grid:   one block per token (blockIdx.x); the block's threads stride over dim.
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void embed(const T* __restrict__ table, const float* __restrict__ position_table,
    const int* __restrict__ tokens, const int* __restrict__ positions, float* __restrict__ x, int dim)
{
    const int t = blockIdx.x;
    const T* row = table + (long long)tokens[t] * dim;
    const float* position_row = position_table ? position_table + (long long)positions[t] * dim : nullptr;
    float* out = x + (long long)t * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
    {
        float v = to_float(row[i]);
        if (position_row) v += position_row[i];
        out[i] = v;
    }
}

#define W2S_EMBED(SUFFIX, T)                                                                                   \
    extern "C" __global__ void embed_##SUFFIX(const T* table, const float* position_table, const int* tokens, \
        const int* positions, float* x, int dim)                                                               \
    {                                                                                                          \
        embed<T>(table, position_table, tokens, positions, x, dim);                                           \
    }                                                                                                          \
    W2S_EXPORT(embed_##SUFFIX)

W2S_EMBED(f32, float)
W2S_EMBED(bf16, w2s_bf16)
W2S_EMBED(f16, w2s_f16)
