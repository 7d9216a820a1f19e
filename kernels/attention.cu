// Causal attention over the paged KV cache, flash-style: query rows are tiled, keys stream through shared
// memory 32 at a time, softmax is online (running max m, running sum l, unnormalised accumulator).
//
// Layout: qkv [tokens, (heads + 2·kv_heads)·head_dim] F32 (only q is read);
//         key_cache, value_cache [blocks·block_size, kv_heads, head_dim] F32;
//         block_tables [sequences, max_blocks] I32; positions, token_seq [tokens] I32;
//         tiles [num_tiles, 4] I32 = (first token, token count, first head, head count): the tokens are consecutive
//         in the batch, belong to one sequence and have ascending positions; the heads share one KV head
//         (query head h uses KV head h / (heads / kv_heads)), and token count × head count ≤ ATT_MAX_ROWS.
//         out [tokens, heads·head_dim] F32.
// Grid:   blockIdx.x → tile, blockIdx.y → split of the key range (split_len keys, a multiple of ATT_KEYS);
//         ATT_WARPS warps; warp w owns rows w, w + ATT_WARPS, …; for a key step, lane j scores key j of the
//         step against the row (q from shared memory, K rows padded to head_dim + 1 floats against bank
//         conflicts), then every lane updates its own dims d = lane + 32·c of the accumulator.
// attention_prefill_f32 runs the whole key range per tile (gridDim.y = 1) and writes out directly.
// attention_decode_f32 splits the key range (split-K, for few tiles with long contexts) and writes per-split
// (m, l, acc) partials that attention_combine_f32 merges. head_dim ≤ 32·ATT_MAX_DIM_CHUNKS.
#include "common.cuh"

#define ATT_KEYS 32
#define ATT_WARPS 4
#define ATT_MAX_ROWS 16
#define ATT_ROWS_PER_WARP (ATT_MAX_ROWS / ATT_WARPS)
#define ATT_MAX_DIM_CHUNKS 8

template <bool SPLIT>
__device__ __forceinline__ void attention_tile(const float* __restrict__ qkv, const float* __restrict__ key_cache,
    const float* __restrict__ value_cache, const int* __restrict__ tiles, const int* __restrict__ positions,
    const int* __restrict__ token_seq, const int* __restrict__ block_tables, int max_blocks, int heads, int kv_heads,
    int head_dim, int block_size, int split_len, float scale, float* __restrict__ out, float* __restrict__ partial)
{
    float* q_s = W2S_DYNAMIC_SHARED(float);          // [ATT_MAX_ROWS, head_dim], pre-scaled
    float* k_s = q_s + ATT_MAX_ROWS * head_dim;      // [ATT_KEYS, head_dim + 1]
    float* v_s = k_s + ATT_KEYS * (head_dim + 1);    // [ATT_KEYS, head_dim]
    float* p_s = v_s + ATT_KEYS * head_dim;          // [ATT_WARPS, ATT_ROWS_PER_WARP, ATT_KEYS]

    const int tile = blockIdx.x;
    const int t0 = tiles[4 * tile], nt = tiles[4 * tile + 1], h0 = tiles[4 * tile + 2], nh = tiles[4 * tile + 3];
    const int rows = nt * nh, group = heads / kv_heads, kvh = h0 / group;
    const int width = (heads + 2 * kv_heads) * head_dim, kv_width = kv_heads * head_dim;
    const int* table = block_tables + (long long)token_seq[t0] * max_blocks;
    const int context = positions[t0 + nt - 1] + 1;
    const int k_begin = blockIdx.y * split_len, k_end = min(context, k_begin + split_len);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

    for (int i = threadIdx.x; i < rows * head_dim; i += blockDim.x)
    {
        const int r = i / head_dim, d = i % head_dim;
        q_s[i] = qkv[(long long)(t0 + r / nh) * width + (h0 + r % nh) * head_dim + d] * scale;
    }

    float m[ATT_ROWS_PER_WARP], l[ATT_ROWS_PER_WARP], acc[ATT_ROWS_PER_WARP][ATT_MAX_DIM_CHUNKS];
#pragma unroll
    for (int i = 0; i < ATT_ROWS_PER_WARP; i++)
    {
        m[i] = -W2S_INFINITY;
        l[i] = 0.f;
#pragma unroll
        for (int c = 0; c < ATT_MAX_DIM_CHUNKS; c++) acc[i][c] = 0.f;
    }

    for (int kb = k_begin; kb < k_end; kb += ATT_KEYS)
    {
        __syncthreads(); // the previous step's K/V (and at first the q tile) are done with
        for (int i = threadIdx.x; i < ATT_KEYS * head_dim; i += blockDim.x)
        {
            const int j = i / head_dim, d = i % head_dim, position = kb + j;
            float k = 0.f, v = 0.f;
            if (position < k_end)
            {
                const long long slot = (long long)table[position / block_size] * block_size + position % block_size;
                const long long at = slot * kv_width + kvh * head_dim + d;
                k = key_cache[at];
                v = value_cache[at];
            }
            k_s[j * (head_dim + 1) + d] = k;
            v_s[j * head_dim + d] = v;
        }
        __syncthreads();

#pragma unroll
        for (int i = 0; i < ATT_ROWS_PER_WARP; i++)
        {
            const int r = warp + i * ATT_WARPS;
            if (r >= rows) break; // warp-uniform
            const int query_position = positions[t0 + r / nh];
            const int key = kb + lane;
            float s = -W2S_INFINITY;
            if (key < k_end && key <= query_position)
            {
                const float* q = q_s + r * head_dim;
                const float* k = k_s + lane * (head_dim + 1);
                float dot = 0.f;
                for (int d = 0; d < head_dim; d++) dot = fmaf(q[d], k[d], dot);
                s = dot;
            }
            const float m_new = fmaxf(m[i], warp_max(s));
            if (m_new == -W2S_INFINITY) continue; // every key of this step is masked for this row (warp-uniform)
            const float p = s == -W2S_INFINITY ? 0.f : expf(s - m_new);
            const float alpha = expf(m[i] - m_new);
            l[i] = l[i] * alpha + warp_sum(p);
            m[i] = m_new;
            float* pw = p_s + (warp * ATT_ROWS_PER_WARP + i) * ATT_KEYS;
            pw[lane] = p;
            __syncwarp();
#pragma unroll
            for (int c = 0; c < ATT_MAX_DIM_CHUNKS; c++)
            {
                const int d = lane + 32 * c;
                if (d >= head_dim) break;
                float a = acc[i][c] * alpha;
                for (int j = 0; j < ATT_KEYS; j++) a = fmaf(pw[j], v_s[j * head_dim + d], a);
                acc[i][c] = a;
            }
        }
    }

#pragma unroll
    for (int i = 0; i < ATT_ROWS_PER_WARP; i++)
    {
        const int r = warp + i * ATT_WARPS;
        if (r >= rows) break;
        const int t = t0 + r / nh, h = h0 + r % nh;
        if (SPLIT)
        {
            float* p = partial + ((long long)(tile * gridDim.y + blockIdx.y) * ATT_MAX_ROWS + r) * (head_dim + 2);
            if (lane == 0)
            {
                p[0] = m[i];
                p[1] = l[i];
            }
#pragma unroll
            for (int c = 0; c < ATT_MAX_DIM_CHUNKS; c++)
                if (lane + 32 * c < head_dim) p[2 + lane + 32 * c] = acc[i][c];
        }
        else
        {
            const float inv = 1.f / l[i];
            float* o = out + (long long)t * heads * head_dim + h * head_dim;
#pragma unroll
            for (int c = 0; c < ATT_MAX_DIM_CHUNKS; c++)
                if (lane + 32 * c < head_dim) o[lane + 32 * c] = acc[i][c] * inv;
        }
    }
}

#define W2S_ATTENTION_PARAMS                                                                                      \
    const float *qkv, const float *key_cache, const float *value_cache, const int *tiles, const int *positions,  \
        const int *token_seq, const int *block_tables, int max_blocks, int heads, int kv_heads, int head_dim,     \
        int block_size, int split_len, float scale, float *out, float *partial
#define W2S_ATTENTION_ARGS                                                                                        \
    qkv, key_cache, value_cache, tiles, positions, token_seq, block_tables, max_blocks, heads, kv_heads, head_dim, \
        block_size, split_len, scale, out, partial

extern "C" __global__ void __launch_bounds__(ATT_WARPS * 32) attention_prefill_f32(W2S_ATTENTION_PARAMS)
{
    attention_tile<false>(W2S_ATTENTION_ARGS);
}
W2S_EXPORT(attention_prefill_f32)

extern "C" __global__ void __launch_bounds__(ATT_WARPS * 32) attention_decode_f32(W2S_ATTENTION_PARAMS)
{
    attention_tile<true>(W2S_ATTENTION_ARGS);
}
W2S_EXPORT(attention_decode_f32)

// partial [num_tiles, splits, ATT_MAX_ROWS, head_dim + 2] = (m, l, acc) → out. Grid: one block per tile.
extern "C" __global__ void attention_combine_f32(const float* partial, const int* tiles, int splits, int heads, int head_dim, float* out)
{
    const int tile = blockIdx.x;
    const int t0 = tiles[4 * tile], nt = tiles[4 * tile + 1], h0 = tiles[4 * tile + 2], nh = tiles[4 * tile + 3];
    const long long stride = (long long)ATT_MAX_ROWS * (head_dim + 2);
    for (int i = threadIdx.x; i < nt * nh * head_dim; i += blockDim.x)
    {
        const int r = i / head_dim, d = i % head_dim;
        const float* p = partial + (long long)tile * splits * stride + (long long)r * (head_dim + 2);
        float m = -W2S_INFINITY;
        for (int s = 0; s < splits; s++) m = fmaxf(m, p[s * stride]);
        float l = 0.f, a = 0.f;
        for (int s = 0; s < splits; s++)
        {
            const float ms = p[s * stride];
            if (ms == -W2S_INFINITY) continue;
            const float w = expf(ms - m);
            l = fmaf(p[s * stride + 1], w, l);
            a = fmaf(p[s * stride + 2 + d], w, a);
        }
        out[(long long)(t0 + r / nh) * heads * head_dim + (h0 + r % nh) * head_dim + d] = a / l;
    }
}
W2S_EXPORT(attention_combine_f32)
