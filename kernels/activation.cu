// Elementwise activations.
//
// gelu_tanh_f32: x [count] F32 in place, x = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
//                Grid-stride loop: any grid covers any count.
// silu_gate_f32: gate_up [rows, 2·ff] (gate | up), y [rows, ff]: y = silu(gate) · up.
//                Grid: (ceil(ff / blockDim.x), rows); one thread per output element.
#include "common.cuh"

extern "C" __global__ void gelu_tanh_f32(float* x, long long count)
{
    const float c = 0.7978845608028654f;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride)
    {
        const float v = x[i];
        x[i] = 0.5f * v * (1.f + tanhf(c * (v + 0.044715f * v * v * v)));
    }
}
W2S_EXPORT(gelu_tanh_f32)

extern "C" __global__ void silu_gate_f32(const float* gate_up, float* y, int ff)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= ff) return;
    const long long row = blockIdx.y;
    const float g = gate_up[row * 2 * ff + i];
    y[row * ff + i] = g / (1.f + expf(-g)) * gate_up[row * 2 * ff + ff + i];
}
W2S_EXPORT(silu_gate_f32)
