// Shared device helpers for every kernel file: 16-bit float conversions, warp/block reductions, the Philox
// generator, and the hooks that let the same source build under NVRTC and under the host emulator
// (kernels/emu/cuda_emu.h, which defines W2S_EMU). No toolkit header is needed: NVRTC alone compiles this.
//
// Conventions: block sizes are multiples of 32 (whole warps), warp collectives use the full mask, and every
// kernel is registered with W2S_EXPORT so the emulator can launch it by name.
#pragma once

#ifdef W2S_EMU
#define W2S_EXPORT(name) W2S_EMU_REGISTER(name)
#define W2S_DYNAMIC_SHARED(T) reinterpret_cast<T*>(::emu::dynamic_shared())
#else
#define W2S_EXPORT(name)
extern __shared__ __align__(16) unsigned char w2s_dynamic_shared[];
#define W2S_DYNAMIC_SHARED(T) reinterpret_cast<T*>(w2s_dynamic_shared)
#endif

#define W2S_FULL_MASK 0xffffffffu
#define W2S_INFINITY __int_as_float(0x7f800000)
#define W2S_INT_MAX 0x7fffffff

// Weight element types, distinct so that overloads pick the right conversion.
struct w2s_bf16 { unsigned short bits; };
struct w2s_f16 { unsigned short bits; };

__device__ __forceinline__ float to_float(float v) { return v; }

// bf16 is the top half of an f32: widening is a shift.
__device__ __forceinline__ float to_float(w2s_bf16 v) { return __uint_as_float(((unsigned)v.bits) << 16); }

// f16 → f32 through the hardware conversion; the emulator supplies a bit-exact C++ twin.
__device__ __forceinline__ float to_float(w2s_f16 v)
{
#ifdef W2S_EMU
    return ::emu::half_to_float(v.bits);
#else
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v.bits));
    return f;
#endif
}

// f32 → bf16, round to nearest even (NaN kept quiet).
__device__ __forceinline__ w2s_bf16 to_bf16(float f)
{
    unsigned u = __float_as_uint(f);
    w2s_bf16 r;
    if ((u & 0x7fffffffu) > 0x7f800000u) r.bits = (unsigned short)((u >> 16) | 0x40u);
    else r.bits = (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    return r;
}

// f32 → f16, round to nearest even, through the hardware conversion (emulator: C++ twin).
__device__ __forceinline__ w2s_f16 to_f16(float f)
{
    w2s_f16 r;
#ifdef W2S_EMU
    r.bits = ::emu::float_to_half(f);
#else
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r.bits) : "f"(f));
#endif
    return r;
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(W2S_FULL_MASK, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(W2S_FULL_MASK, v, o));
    return v;
}

// Sum over the whole block; every thread gets the result. scratch: 32 elements of shared memory.
// Starts with a barrier so that scratch may be reused by back-to-back calls.
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* scratch)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : T(0);
    return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* scratch)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : -W2S_INFINITY;
    return warp_max(v);
}

__device__ __forceinline__ bool is_finite(float v) { return (__float_as_uint(v) & 0x7f800000u) != 0x7f800000u; }

// Philox-4x32-10 (Salmon et al., SC'11), keyed exactly like Engine/Sampling/Philox.cs: counter
// (position, key lo, key hi, 0), key (seed lo, seed hi). Returns the first output word.
__device__ __forceinline__ unsigned philox_x0(unsigned c0, unsigned c1, unsigned c2, unsigned c3, unsigned k0, unsigned k1)
{
    for (int round = 0; round < 10; round++)
    {
        const unsigned hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        const unsigned hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        const unsigned n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return c0;
}

// Uniform in [0, 1) with 24 random bits, as Philox.Uniform.
__device__ __forceinline__ double philox_uniform(unsigned long long seed, unsigned long long key, int position)
{
    const unsigned x0 = philox_x0((unsigned)position, (unsigned)key, (unsigned)(key >> 32), 0u, (unsigned)seed, (unsigned)(seed >> 32));
    return (double)(x0 >> 8) * (1.0 / 16777216.0);
}
