// Data movement: row gather, paged-KV block copy, dtype conversion and bias add for the cuBLAS path.
//
// gather_rows_f32:  dst[i, :] = src[rows[i], :]; src/dst rows of dim F32. Grid: one block per gathered row.
// copy_block_f32:   keys/values pools [blocks, block_elements] F32; copies block src → dst in both pools.
//                   Grid-stride over block_elements.
// convert_f32_bf16 / convert_f32_f16: dst[i] = round(src[i]) to the 16-bit type (RNE). Grid-stride.
// widen_bf16_f32 / widen_f16_f32:     dst[i] = float(src[i]). Grid-stride.
// add_bias_f32:     y [rows, n] += bias [n]. Grid: (ceil(n / blockDim.x), rows).
#include "common.cuh"

extern "C" __global__ void gather_rows_f32(const float* src, const int* rows, float* dst, int dim)
{
    const float* from = src + (long long)rows[blockIdx.x] * dim;
    float* to = dst + (long long)blockIdx.x * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) to[i] = from[i];
}
W2S_EXPORT(gather_rows_f32)

extern "C" __global__ void copy_block_f32(float* keys, float* values, long long block_elements, int source, int destination)
{
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long from = (long long)source * block_elements, to = (long long)destination * block_elements;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < block_elements; i += stride)
    {
        keys[to + i] = keys[from + i];
        values[to + i] = values[from + i];
    }
}
W2S_EXPORT(copy_block_f32)

#define W2S_GRID_STRIDE(i, count) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (count); i += (long long)gridDim.x * blockDim.x)

extern "C" __global__ void convert_f32_bf16(const float* src, w2s_bf16* dst, long long count)
{
    W2S_GRID_STRIDE(i, count) dst[i] = to_bf16(src[i]);
}
W2S_EXPORT(convert_f32_bf16)

extern "C" __global__ void convert_f32_f16(const float* src, w2s_f16* dst, long long count)
{
    W2S_GRID_STRIDE(i, count) dst[i] = to_f16(src[i]);
}
W2S_EXPORT(convert_f32_f16)

extern "C" __global__ void widen_bf16_f32(const w2s_bf16* src, float* dst, long long count)
{
    W2S_GRID_STRIDE(i, count) dst[i] = to_float(src[i]);
}
W2S_EXPORT(widen_bf16_f32)

extern "C" __global__ void widen_f16_f32(const w2s_f16* src, float* dst, long long count)
{
    W2S_GRID_STRIDE(i, count) dst[i] = to_float(src[i]);
}
W2S_EXPORT(widen_f16_f32)

extern "C" __global__ void add_bias_f32(float* y, const float* bias, int n)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[(long long)blockIdx.y * n + i] += bias[i];
}
W2S_EXPORT(add_bias_f32)
