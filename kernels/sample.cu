// Token choice from rows of logits: greedy argmax, and temperature / top-k / top-p sampling with the exact
// meaning of Backends/Cpu/CpuSampler.cs (read its doc comment first).
//
// Layout: logits [rows, vocab] F32; params [rows] SampleRow; result [rows] I32.
// Grid:   one block per row (blockDim.x a multiple of 32, ≤ 1024).
//
// Candidates are ordered by (logit desc, index asc). A prefix of that order is described by (key, limit): the
// items whose order key is greater than `key`, plus those equal to it with index ≤ `limit`. Top-k, top-p and the
// final draw each find a prefix — by count, or by the first point where the running mass reaches a target —
// through a 4-pass radix descent over the 32-bit order keys (256 buckets of count and F64 mass per pass), then
// pick among the items tied on the final key by index, with a block scan over contiguous index chunks. No sort,
// no scratch memory beyond shared. Masses are exp((logit − max) / T) in F64 as on the CPU; the two can only
// disagree when u lands within rounding (~1e-15 relative) of a boundary.
#include "common.cuh"

struct SampleRow
{
    float temperature; // ≤ 0: greedy
    int top_k;         // 0: no cut
    float top_p;       // ≥ 1: no cut
    int position;      // RNG counter
    unsigned long long seed;
    unsigned long long key;
};

struct Prefix
{
    unsigned key;
    int limit;
};

struct SampleShared
{
    int count[256];
    double mass[256];
    double scan_d[33];
    int scan_i[33];
    float maxima[32];
    int indices[32];
    double sums[32];
    int digit;
    int taken;
    double above;
    int result;
    unsigned min_key;
};

__device__ __forceinline__ unsigned order_key(float f)
{
    const unsigned u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ float key_value(unsigned k) { return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k); }

__device__ __forceinline__ bool in_prefix(unsigned k, int i, Prefix p) { return k > p.key || (k == p.key && i <= p.limit); }

__device__ __forceinline__ double weight(float logit, float best, double inv_t) { return exp((double)(logit - best) * inv_t); }

// Exclusive prefix sum over the block (thread order); *total gets the sum. scratch: 33 elements.
template <typename T>
__device__ __forceinline__ T block_exclusive_scan(T v, T* scratch, T* total)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    T x = v;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1)
    {
        const T y = __shfl_up_sync(W2S_FULL_MASK, x, o);
        if (lane >= o) x += y;
    }
    const T before = __shfl_up_sync(W2S_FULL_MASK, x, 1);
    __syncthreads();
    if (lane == 31) scratch[warp] = x;
    __syncthreads();
    if (warp == 0)
    {
        const T w = lane < warps ? scratch[lane] : T(0);
        T inclusive = w;
#pragma unroll
        for (int o = 1; o < 32; o <<= 1)
        {
            const T y = __shfl_up_sync(W2S_FULL_MASK, inclusive, o);
            if (lane >= o) inclusive += y;
        }
        const T exclusive = __shfl_up_sync(W2S_FULL_MASK, inclusive, 1);
        if (lane < warps) scratch[lane] = lane == 0 ? T(0) : exclusive;
        if (lane == 31) scratch[32] = inclusive;
    }
    __syncthreads();
    *total = scratch[32];
    return scratch[warp] + (lane == 0 ? T(0) : before);
}

// First index of the maximum (CpuSampler.ArgMax). Every thread gets the result.
__device__ __forceinline__ int block_argmax(const float* row, int vocab, SampleShared& sh)
{
    float best = -W2S_INFINITY;
    int index = W2S_INT_MAX;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    {
        const float v = row[i];
        if (index == W2S_INT_MAX || v > best)
        {
            best = v;
            index = i;
        }
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
    {
        const float ov = __shfl_xor_sync(W2S_FULL_MASK, best, o);
        const int oi = __shfl_xor_sync(W2S_FULL_MASK, index, o);
        if (oi != W2S_INT_MAX && (index == W2S_INT_MAX || ov > best || (ov == best && oi < index)))
        {
            best = ov;
            index = oi;
        }
    }
    __syncthreads();
    if (lane == 0)
    {
        sh.maxima[warp] = best;
        sh.indices[warp] = index;
    }
    __syncthreads();
    if (threadIdx.x == 0)
    {
        for (int w = 1; w < warps; w++)
        {
            const float ov = sh.maxima[w];
            const int oi = sh.indices[w];
            if (oi != W2S_INT_MAX && (index == W2S_INT_MAX || ov > best || (ov == best && oi < index)))
            {
                best = ov;
                index = oi;
            }
        }
        sh.result = index == W2S_INT_MAX ? 0 : index;
    }
    __syncthreads();
    const int found = sh.result;
    __syncthreads(); // sh.result is reused by the next step
    return found;
}

// Index of the n-th (1-based) item of `set` whose key equals `key`, in index order; −1 when there are fewer.
__device__ __forceinline__ int nth_tie(const float* row, int vocab, unsigned key, Prefix set, int n, SampleShared& sh)
{
    const int chunk = (vocab + blockDim.x - 1) / blockDim.x;
    const int lo = min(vocab, (int)threadIdx.x * chunk), hi = min(vocab, lo + chunk);
    int mine = 0;
    for (int i = lo; i < hi; i++)
    {
        const unsigned k = order_key(row[i]);
        mine += (k == key && in_prefix(k, i, set)) ? 1 : 0;
    }
    if (threadIdx.x == 0) sh.result = -1;
    int total;
    const int before = block_exclusive_scan(mine, sh.scan_i, &total);
    if (before < n && n <= before + mine)
    {
        int seen = before;
        for (int i = lo; i < hi; i++)
        {
            const unsigned k = order_key(row[i]);
            if (k == key && in_prefix(k, i, set) && ++seen == n)
            {
                sh.result = i;
                break;
            }
        }
    }
    __syncthreads();
    const int found = sh.result;
    __syncthreads(); // sh.result is reused by the next step
    return found;
}

// The first `n` items of the order (1 ≤ n ≤ vocab).
__device__ __forceinline__ Prefix prefix_by_count(const float* row, int vocab, int n, SampleShared& sh)
{
    unsigned prefix = 0, mask = 0;
    int remaining = n;
    for (int shift = 24; shift >= 0; shift -= 8)
    {
        for (int d = threadIdx.x; d < 256; d += blockDim.x) sh.count[d] = 0;
        __syncthreads();
        for (int i = threadIdx.x; i < vocab; i += blockDim.x)
        {
            const unsigned k = order_key(row[i]);
            if ((k & mask) == prefix) atomicAdd(&sh.count[(k >> shift) & 255u], 1);
        }
        __syncthreads();
        if (threadIdx.x == 0)
        {
            int above = 0, d = 255;
            for (; d > 0; d--)
            {
                if (above + sh.count[d] >= remaining) break;
                above += sh.count[d];
            }
            sh.digit = d;
            sh.taken = above;
        }
        __syncthreads();
        prefix |= (unsigned)sh.digit << shift;
        mask |= 255u << shift;
        remaining -= sh.taken;
        __syncthreads();
    }
    const Prefix all = { 0u, W2S_INT_MAX };
    Prefix p = { prefix, nth_tie(row, vocab, prefix, all, remaining, sh) };
    return p;
}

// The shortest prefix of `set` whose mass reaches `target` (mass ≥ target, or > target when strict).
// False when the whole set falls short (only by rounding, or for non-finite logits).
__device__ __forceinline__ bool prefix_by_mass(const float* row, int vocab, float best, double inv_t, Prefix set, double target,
    bool strict, Prefix* result, SampleShared& sh)
{
    unsigned prefix = 0, mask = 0;
    double above = 0.0;
    int ties = 0;
    for (int shift = 24; shift >= 0; shift -= 8)
    {
        for (int d = threadIdx.x; d < 256; d += blockDim.x)
        {
            sh.count[d] = 0;
            sh.mass[d] = 0.0;
        }
        __syncthreads();
        for (int i = threadIdx.x; i < vocab; i += blockDim.x)
        {
            const float v = row[i];
            const unsigned k = order_key(v);
            if ((k & mask) == prefix && in_prefix(k, i, set))
            {
                const unsigned d = (k >> shift) & 255u;
                atomicAdd(&sh.count[d], 1);
                atomicAdd(&sh.mass[d], weight(v, best, inv_t));
            }
        }
        __syncthreads();
        if (threadIdx.x == 0)
        {
            double a = above;
            int found = -1;
            for (int d = 255; d >= 0; d--)
            {
                if (sh.count[d] == 0) continue;
                const double next = a + sh.mass[d];
                if (strict ? next > target : next >= target)
                {
                    found = d;
                    break;
                }
                a = next;
            }
            sh.digit = found;
            sh.above = a;
            sh.taken = found >= 0 ? sh.count[found] : 0;
        }
        __syncthreads();
        if (sh.digit < 0) return false; // block-uniform
        prefix |= (unsigned)sh.digit << shift;
        mask |= 255u << shift;
        above = sh.above;
        ties = sh.taken;
        __syncthreads();
    }
    // Every item tied on the final key has the same mass w; take the fewest that reach the target.
    const double w = weight(key_value(prefix), best, inv_t);
    int n = 1;
    if (w > 0.0)
    {
        const double need = (target - above) / w;
        n = need <= 1.0 ? 1 : (int)min(need + 1.0, (double)ties);
        while (n > 1 && (strict ? above + (n - 1) * w > target : above + (n - 1) * w >= target)) n--;
        while (n < ties && !(strict ? above + n * w > target : above + n * w >= target)) n++;
    }
    result->key = prefix;
    result->limit = nth_tie(row, vocab, prefix, set, n, sh);
    return true;
}

__device__ __forceinline__ double mass_of(const float* row, int vocab, float best, double inv_t, Prefix set, SampleShared& sh)
{
    double s = 0.0;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    {
        const float v = row[i];
        if (in_prefix(order_key(v), i, set)) s += weight(v, best, inv_t);
    }
    return block_sum(s, sh.sums);
}

// The last item of a prefix in the order: its smallest key, and the largest index among those.
__device__ __forceinline__ int last_of(const float* row, int vocab, Prefix set, SampleShared& sh)
{
    if (threadIdx.x == 0)
    {
        sh.min_key = 0xffffffffu;
        sh.result = -1;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    {
        const unsigned k = order_key(row[i]);
        if (in_prefix(k, i, set)) atomicMin(&sh.min_key, k);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    {
        const unsigned k = order_key(row[i]);
        if (k == sh.min_key && in_prefix(k, i, set)) atomicMax(&sh.result, i);
    }
    __syncthreads();
    return sh.result;
}

// No cut: the draw walks the tokens in index order (CpuSampler's first branch).
__device__ __forceinline__ int sample_uncut(const float* row, int vocab, float best, double inv_t, double u, SampleShared& sh)
{
    const int chunk = (vocab + blockDim.x - 1) / blockDim.x;
    const int lo = min(vocab, (int)threadIdx.x * chunk), hi = min(vocab, lo + chunk);
    double mine = 0.0;
    for (int i = lo; i < hi; i++) mine += weight(row[i], best, inv_t);
    if (threadIdx.x == 0)
    {
        sh.result = W2S_INT_MAX;
        sh.digit = -1;
    }
    double total;
    const double before = block_exclusive_scan(mine, sh.scan_d, &total);
    const double target = u * total;
    if (hi > lo && before + mine > target) atomicMin(&sh.result, (int)threadIdx.x);
    __syncthreads();
    if ((int)threadIdx.x == sh.result)
    {
        double running = before;
        int chosen = hi - 1;
        for (int i = lo; i < hi; i++)
        {
            running += weight(row[i], best, inv_t);
            if (running > target)
            {
                chosen = i;
                break;
            }
        }
        sh.digit = chosen;
    }
    if (sh.result == W2S_INT_MAX)
        for (int i = threadIdx.x; i < vocab; i += blockDim.x)
            if (is_finite(row[i])) atomicMax(&sh.digit, i);
    __syncthreads();
    const int found = sh.digit < 0 ? 0 : sh.digit;
    __syncthreads(); // sh.digit is reused by the next step
    return found;
}

extern "C" __global__ void argmax_f32(const float* logits, int vocab, int* result)
{
    __shared__ SampleShared sh;
    const int index = block_argmax(logits + (long long)blockIdx.x * vocab, vocab, sh);
    if (threadIdx.x == 0) result[blockIdx.x] = index;
}
W2S_EXPORT(argmax_f32)

extern "C" __global__ void sample_f32(const float* logits, int vocab, const SampleRow* params, int* result)
{
    __shared__ SampleShared sh;
    const float* row = logits + (long long)blockIdx.x * vocab;
    const SampleRow p = params[blockIdx.x];
    int chosen;
    if (!(p.temperature > 0.f)) chosen = block_argmax(row, vocab, sh);
    else
    {
        const float best = block_max([&] {
            float m = -W2S_INFINITY;
            for (int i = threadIdx.x; i < vocab; i += blockDim.x) m = fmaxf(m, row[i]);
            return m;
        }(), sh.maxima);
        const double inv_t = 1.0 / (double)p.temperature;
        const double u = philox_uniform(p.seed, p.key, p.position);
        const bool cut_k = p.top_k > 0 && p.top_k < vocab, cut_p = p.top_p < 1.f;
        if (!cut_k && !cut_p) chosen = sample_uncut(row, vocab, best, inv_t, u, sh);
        else
        {
            Prefix kept = { 0u, W2S_INT_MAX };
            if (cut_k) kept = prefix_by_count(row, vocab, p.top_k, sh);
            if (cut_p)
            {
                const double total = mass_of(row, vocab, best, inv_t, kept, sh);
                Prefix nucleus;
                if (prefix_by_mass(row, vocab, best, inv_t, kept, (double)p.top_p * total, false, &nucleus, sh)) kept = nucleus;
            }
            const double kept_mass = mass_of(row, vocab, best, inv_t, kept, sh);
            Prefix draw;
            if (prefix_by_mass(row, vocab, best, inv_t, kept, u * kept_mass, true, &draw, sh)) chosen = draw.limit;
            else chosen = last_of(row, vocab, kept, sh);
        }
    }
    if (threadIdx.x == 0) result[blockIdx.x] = chosen;
}
W2S_EXPORT(sample_f32)
