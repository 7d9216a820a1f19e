// Small-batch linear layer (GEMV-like): y = x · Wᵀ (+ bias), for decode steps where the weight read dominates.
// Large batches go through cuBLAS instead (Backends/Cuda/CudaBackend.cs).
//
// Layout: x [rows, in] F32; w [out, in] F32/BF16/F16 row-major; bias [out] F32 or null; y [rows, out] F32.
// Grid:   blockIdx.x → a group of (blockDim.x / 32) output features, one per warp;
//         blockIdx.y → a group of LINEAR_TOKENS rows of x. Each warp streams its weight row once (16-byte
//         loads when in % (16 / sizeof(T)) == 0 and the row is aligned) against every row of its group, then
//         reduces each row's partial sums across the warp. Accumulation in F32.
#include "common.cuh"

#define LINEAR_TOKENS 8

struct __align__(16) w2s_vec16 { unsigned a, b, c, d; };

__device__ __forceinline__ void unpack(const float* p, float* out)
{
    const w2s_vec16 v = *reinterpret_cast<const w2s_vec16*>(p);
    out[0] = __uint_as_float(v.a);
    out[1] = __uint_as_float(v.b);
    out[2] = __uint_as_float(v.c);
    out[3] = __uint_as_float(v.d);
}

__device__ __forceinline__ void unpack(const w2s_bf16* p, float* out)
{
    const w2s_vec16 v = *reinterpret_cast<const w2s_vec16*>(p);
    const unsigned words[4] = { v.a, v.b, v.c, v.d };
#pragma unroll
    for (int i = 0; i < 4; i++)
    {
        out[2 * i] = __uint_as_float(words[i] << 16);
        out[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
    }
}

__device__ __forceinline__ void unpack(const w2s_f16* p, float* out)
{
    const w2s_vec16 v = *reinterpret_cast<const w2s_vec16*>(p);
    const unsigned words[4] = { v.a, v.b, v.c, v.d };
#pragma unroll
    for (int i = 0; i < 4; i++)
    {
        w2s_f16 lo, hi;
        lo.bits = (unsigned short)(words[i] & 0xffffu);
        hi.bits = (unsigned short)(words[i] >> 16);
        out[2 * i] = to_float(lo);
        out[2 * i + 1] = to_float(hi);
    }
}

template <typename T>
__device__ __forceinline__ void linear(const float* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,
    float* __restrict__ y, int rows, int in_dim, int out_dim)
{
    constexpr int V = 16 / sizeof(T);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int n = blockIdx.x * (blockDim.x >> 5) + warp;
    const int t0 = blockIdx.y * LINEAR_TOKENS;
    if (n >= out_dim) return; // the whole warp leaves together
    const int tokens = min(LINEAR_TOKENS, rows - t0);
    const T* wr = w + (long long)n * in_dim;
    const float* xr = x + (long long)t0 * in_dim;
    float acc[LINEAR_TOKENS];
#pragma unroll
    for (int t = 0; t < LINEAR_TOKENS; t++) acc[t] = 0.f;

    if (in_dim % V == 0 && ((unsigned long long)wr & 15ull) == 0)
    {
        for (int k = lane * V; k < in_dim; k += 32 * V)
        {
            float wv[V];
            unpack(wr + k, wv);
#pragma unroll
            for (int t = 0; t < LINEAR_TOKENS; t++)
            {
                if (t >= tokens) break;
                const float* xt = xr + (long long)t * in_dim + k;
#pragma unroll
                for (int v = 0; v < V; v++) acc[t] = fmaf(wv[v], xt[v], acc[t]);
            }
        }
    }
    else
    {
        for (int k = lane; k < in_dim; k += 32)
        {
            const float wv = to_float(wr[k]);
#pragma unroll
            for (int t = 0; t < LINEAR_TOKENS; t++)
            {
                if (t >= tokens) break;
                acc[t] = fmaf(wv, xr[(long long)t * in_dim + k], acc[t]);
            }
        }
    }

    const float b = bias ? bias[n] : 0.f;
#pragma unroll
    for (int t = 0; t < LINEAR_TOKENS; t++)
    {
        const float s = warp_sum(acc[t]);
        if (lane == 0 && t < tokens) y[(long long)(t0 + t) * out_dim + n] = s + b;
    }
}

#define W2S_LINEAR(SUFFIX, T)                                                                                       \
    extern "C" __global__ void linear_##SUFFIX(const float* x, const T* w, const float* bias, float* y, int rows, \
        int in_dim, int out_dim)                                                                                    \
    {                                                                                                               \
        linear<T>(x, w, bias, y, rows, in_dim, out_dim);                                                            \
    }                                                                                                               \
    W2S_EXPORT(linear_##SUFFIX)

W2S_LINEAR(f32, float)
W2S_LINEAR(bf16, w2s_bf16)
W2S_LINEAR(f16, w2s_f16)
