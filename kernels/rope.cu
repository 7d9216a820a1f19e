// Rotary embedding on q and k (rotate-half pairing: i with i + head_dim/2) fused with the paged-KV write.
//
// Layout: qkv [tokens, (heads + 2·kv_heads)·head_dim] F32, q | k | v per token (q and k rotated in place);
//         key_cache, value_cache [blocks·block_size, kv_heads, head_dim] F32, written at slots[t];
//         inv_freq [head_dim/2] F64 (llama3 scaling already applied by the host) or null for no rotation;
//         positions, slots [tokens] I32.
// Grid:   one block per token; the threads stride over the (head, pair) items of q and k, then over the
//         k | v elements. Angles are computed in F64 like the CPU op, so long positions lose no accuracy.
#include "common.cuh"

extern "C" __global__ void rope_kv_write_f32(float* qkv, float* key_cache, float* value_cache, const double* inv_freq,
    const int* positions, const int* slots, int heads, int kv_heads, int head_dim)
{
    const int t = blockIdx.x;
    const int width = (heads + 2 * kv_heads) * head_dim, kv_width = kv_heads * head_dim, half = head_dim / 2;
    float* q = qkv + (long long)t * width;
    float* k = q + heads * head_dim;
    const float* v = k + kv_width;
    if (inv_freq)
    {
        const double position = positions[t];
        for (int item = threadIdx.x; item < (heads + kv_heads) * half; item += blockDim.x)
        {
            const int h = item / half, i = item % half;
            float* x = q + h * head_dim; // k follows q, so heads beyond `heads` are k heads
            const double angle = position * inv_freq[i];
            const float c = (float)cos(angle), s = (float)sin(angle);
            const float a = x[i], b = x[i + half];
            x[i] = a * c - b * s;
            x[i + half] = b * c + a * s;
        }
        __syncthreads();
    }
    const long long slot = slots[t];
    for (int i = threadIdx.x; i < kv_width; i += blockDim.x)
    {
        key_cache[slot * kv_width + i] = k[i];
        value_cache[slot * kv_width + i] = v[i];
    }
}
W2S_EXPORT(rope_kv_write_f32)
