// Residual add fused with LayerNorm / RMSNorm.
//
// Layout: residual, delta, y [rows, dim] F32 (delta may be null); weight, bias [dim] F32 (bias may be null).
//         residual += delta (written back), then y = norm(residual) · weight (+ bias).
// Grid:   one block per row (blockIdx.x), block size a multiple of 32; the threads stride over dim, the
//         statistics are block reductions. LayerNorm takes two passes (mean, then Σ(x − mean)²) over the row,
//         which stays in L1/L2, for the accuracy of the CPU op's two-pass form.
#include "common.cuh"

__device__ __forceinline__ float add_delta(float* __restrict__ x, const float* __restrict__ d, int dim, int i)
{
    float v = x[i];
    if (d)
    {
        v += d[i];
        x[i] = v;
    }
    return v;
}

extern "C" __global__ void add_rms_norm_f32(float* residual, const float* delta, const float* weight, float* y, int dim, float eps)
{
    __shared__ float scratch[32];
    const long long base = (long long)blockIdx.x * dim;
    float* x = residual + base;
    const float* d = delta ? delta + base : nullptr;
    float squares = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
    {
        const float v = add_delta(x, d, dim, i);
        squares = fmaf(v, v, squares);
    }
    const float inv = rsqrtf(block_sum(squares, scratch) / dim + eps);
    float* out = y + base;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) out[i] = x[i] * inv * weight[i];
}
W2S_EXPORT(add_rms_norm_f32)

extern "C" __global__ void add_layer_norm_f32(float* residual, const float* delta, const float* weight, const float* bias, float* y, int dim, float eps)
{
    __shared__ float scratch[32];
    const long long base = (long long)blockIdx.x * dim;
    float* x = residual + base;
    const float* d = delta ? delta + base : nullptr;
    float sum = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) sum += add_delta(x, d, dim, i);
    const float mean = block_sum(sum, scratch) / dim;
    float squares = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
    {
        const float c = x[i] - mean;
        squares = fmaf(c, c, squares);
    }
    const float inv = rsqrtf(block_sum(squares, scratch) / dim + eps);
    float* out = y + base;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
    {
        float v = (x[i] - mean) * inv * weight[i];
        if (bias) v += bias[i];
        out[i] = v;
    }
}
W2S_EXPORT(add_layer_norm_f32)
