// A host emulation of the CUDA built-ins our kernels use, so that g++ builds each kernel file into a shared
// library whose kernels run on the CPU (tests/WeakToStrong.Tests/Cuda compares them with the CPU ops).
//
// Execution model: the blocks of a grid run one after another on the calling OS thread; the threads of a block
// are fibers that switch only at barriers (__syncthreads, __syncwarp and every warp collective). So
// shared memory is a per-OS-thread static, atomics are plain read-modify-writes, and a warp collective is a
// barrier of the warp's lanes followed by a read of the partners' slots (two slot banks, alternating by
// barrier generation, so a fast lane never overwrites a value a slow lane has yet to read). Fibers run in a
// seeded shuffled order that changes with every launch, so a missing barrier shows up as a wrong result rather
// than hiding behind a lucky order. Threads waiting at a barrier that others never reach (a divergent
// __syncthreads, a warp collective with an exited lane) are reported as a deadlock, not hung.
//
// Inline-PTX helpers in kernels/common.cuh call the plain C++ twins defined here when W2S_EMU is set.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <sys/mman.h>
#include <type_traits>
#include <ucontext.h>
#include <utility>
#include <vector>

#define W2S_EMU 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __align__(n) alignas(n)
#define __shared__ static thread_local

struct dim3
{
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace emu
{
constexpr unsigned kMaxThreads = 1024;
constexpr size_t kStackBytes = 256 * 1024;
constexpr size_t kMaxDynamicShared = 228 * 1024;

enum class Wait { None, Block, Warp };

// A fiber's saved execution state. On x86-64 a switch saves the callee-saved registers on the fiber's own stack
// and swaps stack pointers (emu_switch_stacks below): no system call, unlike swapcontext, which saves the signal
// mask on every switch and made warp-heavy kernels ~20× slower. Elsewhere ucontext does the job.
struct Context
{
#if defined(__x86_64__)
    void* sp = nullptr;
#else
    ucontext_t uc;
#endif
};

struct Fiber
{
    Context context;
    dim3 tid;
    unsigned linear = 0;
    bool done = false;
    Wait wait = Wait::None;
    unsigned wait_generation = 0;
};

using Thunk = void (*)(void**);

struct Launch
{
    dim3 grid, block, block_idx;
    unsigned threads = 0;
    void** args = nullptr;
    Thunk thunk = nullptr;
    std::vector<Fiber> fibers;
    Fiber* current = nullptr;
    Context scheduler;
    unsigned done = 0;
    unsigned block_arrived = 0, block_generation = 0;
    std::vector<unsigned> warp_arrived, warp_generation;
    std::vector<uint64_t> slots; // [warps, 2 banks, 32 lanes]
    std::vector<std::max_align_t> dynamic_shared;
    bool failed = false;
    std::string error;
};

#if defined(__x86_64__)
extern "C" void emu_switch_stacks(void** save_sp, void* load_sp);
asm(R"(
    .text
    .globl emu_switch_stacks
    .hidden emu_switch_stacks
    .type emu_switch_stacks, @function
emu_switch_stacks:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch_stacks, .-emu_switch_stacks
)");

inline void switch_to(Context* from, Context* to) { emu_switch_stacks(&from->sp, to->sp); }

// Lays out a fresh stack so that the first switch to it "returns" into entry with the ABI's alignment.
inline void start_context(Context* c, unsigned char* stack, size_t bytes, void (*entry)())
{
    uintptr_t top = ((uintptr_t)(stack + bytes)) & ~(uintptr_t)15;
    void** sp = (void**)(top - 8 * sizeof(void*));
    for (int i = 0; i < 6; i++) sp[i] = nullptr; // r15 r14 r13 r12 rbx rbp
    sp[6] = (void*)entry;                        // return address; entry never returns
    sp[7] = nullptr;
    c->sp = sp;
}
#else
inline void switch_to(Context* from, Context* to) { swapcontext(&from->uc, &to->uc); }

inline void start_context(Context* c, unsigned char* stack, size_t bytes, void (*entry)())
{
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack;
    c->uc.uc_stack.ss_size = bytes;
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, entry, 0);
}
#endif

inline thread_local Launch* g_launch = nullptr;
inline thread_local unsigned char* g_stacks = nullptr;
inline thread_local uint64_t g_schedule_seed = 0x9E3779B97F4A7C15ull;
inline thread_local std::string g_last_error;

inline std::map<std::string, Thunk>& registry()
{
    static std::map<std::string, Thunk> kernels;
    return kernels;
}

struct Registration
{
    Registration(const char* name, Thunk thunk) { registry()[name] = thunk; }
};

// Calls a kernel with cuLaunchKernel's argument convention: args[i] points at the i-th parameter's value.
template <auto Fn> struct Invoke;
template <typename... A, void (*Fn)(A...)> struct Invoke<Fn>
{
    template <size_t... I> static void call(void** args, std::index_sequence<I...>)
    {
        Fn(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(args[I])...);
    }
    static void run(void** args) { call(args, std::index_sequence_for<A...>{}); }
};

inline unsigned char* dynamic_shared() { return reinterpret_cast<unsigned char*>(g_launch->dynamic_shared.data()); }

inline void yield()
{
    Launch* l = g_launch;
    Fiber* f = l->current;
    switch_to(&f->context, &l->scheduler);
}

inline void fail(const std::string& message)
{
    Launch* l = g_launch;
    if (!l->failed)
    {
        l->failed = true;
        l->error = message;
    }
    for (;;) yield();
}

inline unsigned warp_lanes(unsigned warp)
{
    const unsigned base = warp * 32;
    return std::min(32u, g_launch->threads - base);
}

inline void block_barrier()
{
    Launch* l = g_launch;
    Fiber* f = l->current;
    f->wait = Wait::Block;
    f->wait_generation = l->block_generation;
    if (++l->block_arrived + l->done == l->threads)
    {
        l->block_arrived = 0;
        l->block_generation++;
    }
    while (l->block_generation == f->wait_generation) yield();
    f->wait = Wait::None;
}

// Arrives at the warp barrier and returns the slot bank of this collective.
inline unsigned warp_barrier_arrive()
{
    Launch* l = g_launch;
    Fiber* f = l->current;
    const unsigned warp = f->linear / 32;
    f->wait = Wait::Warp;
    f->wait_generation = l->warp_generation[warp];
    if (++l->warp_arrived[warp] == warp_lanes(warp))
    {
        l->warp_arrived[warp] = 0;
        l->warp_generation[warp]++;
    }
    return f->wait_generation & 1u;
}

inline void warp_barrier_wait()
{
    Launch* l = g_launch;
    Fiber* f = l->current;
    const unsigned warp = f->linear / 32;
    while (l->warp_generation[warp] == f->wait_generation) yield();
    f->wait = Wait::None;
}

inline uint64_t* warp_slots(unsigned warp, unsigned bank) { return &g_launch->slots[(warp * 2 + bank) * 32]; }

// Every lane publishes `bits`; returns the published values of the lane's warp (indexed by lane).
inline const uint64_t* exchange(uint64_t bits)
{
    Fiber* f = g_launch->current;
    const unsigned warp = f->linear / 32, lane = f->linear % 32;
    const unsigned bank = warp_barrier_arrive();
    uint64_t* slots = warp_slots(warp, bank);
    slots[lane] = bits;
    warp_barrier_wait();
    return slots;
}

template <typename T> inline uint64_t to_bits(T v)
{
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
    uint64_t b = 0;
    std::memcpy(&b, &v, sizeof(T));
    return b;
}

template <typename T> inline T from_bits(uint64_t b)
{
    T v;
    std::memcpy(&v, &b, sizeof(T));
    return v;
}

inline void check_mask(unsigned mask)
{
    Fiber* f = g_launch->current;
    const unsigned lanes = warp_lanes(f->linear / 32);
    const unsigned expected = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u);
    if ((mask & expected) != expected) fail("emulator: warp collectives must name every lane of the warp in their mask");
}

template <typename T> inline T shuffle(unsigned mask, T v, int source_lane)
{
    check_mask(mask);
    Fiber* f = g_launch->current;
    const unsigned lanes = warp_lanes(f->linear / 32);
    const uint64_t* slots = exchange(to_bits(v));
    unsigned source = (unsigned)source_lane;
    if (source >= lanes) source = f->linear % 32;
    return from_bits<T>(slots[source]);
}

inline void fiber_main()
{
    Launch* l = g_launch;
    l->thunk(l->args);
    Fiber* f = l->current;
    f->done = true;
    l->done++;
    if (l->block_arrived > 0 && l->block_arrived + l->done == l->threads)
    {
        l->block_arrived = 0;
        l->block_generation++;
    }
    switch_to(&f->context, &l->scheduler);
}

inline uint64_t next_random(uint64_t& s)
{
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

inline bool blocked(const Launch& l, const Fiber& f)
{
    if (f.wait == Wait::Block) return l.block_generation == f.wait_generation;
    if (f.wait == Wait::Warp) return l.warp_generation[f.linear / 32] == f.wait_generation;
    return false;
}

// Runs one block to completion; false (with l.error set) on a fault or a deadlock.
inline bool run_block(Launch& l, std::vector<unsigned>& order)
{
    const unsigned n = l.threads;
    l.done = 0;
    l.block_arrived = 0;
    std::fill(l.warp_arrived.begin(), l.warp_arrived.end(), 0u);
    for (unsigned i = 0; i < n; i++)
    {
        Fiber& f = l.fibers[i];
        f.done = false;
        f.wait = Wait::None;
        start_context(&f.context, g_stacks + (size_t)i * kStackBytes, kStackBytes, fiber_main);
    }
    for (unsigned i = n; i-- > 1;) std::swap(order[i], order[next_random(g_schedule_seed) % (i + 1)]);
    while (l.done < n)
    {
        bool progressed = false;
        for (unsigned k = 0; k < n; k++)
        {
            Fiber& f = l.fibers[order[k]];
            if (f.done || blocked(l, f)) continue;
            progressed = true;
            l.current = &f;
            switch_to(&l.scheduler, &f.context);
            if (l.failed) return false;
        }
        if (!progressed)
        {
            l.failed = true;
            l.error = "emulator: deadlock: threads wait at a barrier that others never reach (a divergent __syncthreads, or a warp collective with an exited lane)";
            return false;
        }
    }
    return true;
}

inline float half_to_float(unsigned short h)
{
    const unsigned sign = (unsigned)(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    unsigned bits;
    if (exponent == 0x1f) bits = sign | 0x7f800000u | (mantissa << 13);
    else if (exponent != 0) bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    else if (mantissa == 0) bits = sign;
    else
    {
        float f = std::ldexp((float)mantissa, -24);
        std::memcpy(&bits, &f, 4);
        bits |= sign;
    }
    float r;
    std::memcpy(&r, &bits, 4);
    return r;
}

inline unsigned short float_to_half(float f)
{
    unsigned u;
    std::memcpy(&u, &f, 4);
    const unsigned short sign = (unsigned short)((u >> 16) & 0x8000u);
    const unsigned magnitude = u & 0x7fffffffu;
    if (magnitude > 0x7f800000u) return (unsigned short)(sign | 0x7e00u);
    if (magnitude >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u); // rounds to infinity
    if (magnitude < 0x38800000u)                                             // f16 subnormal or zero
    {
        float a;
        std::memcpy(&a, &magnitude, 4);
        return (unsigned short)(sign | (unsigned short)std::nearbyint(a * 16777216.0f));
    }
    const unsigned rounded = magnitude + 0xfffu + ((magnitude >> 13) & 1u);
    return (unsigned short)(sign | ((rounded - 0x38000000u) >> 13));
}
} // namespace emu

#define W2S_EMU_REGISTER(name) static ::emu::Registration emu_registration_##name(#name, &::emu::Invoke<&name>::run);

#define threadIdx (::emu::g_launch->current->tid)
#define blockIdx (::emu::g_launch->block_idx)
#define blockDim (::emu::g_launch->block)
#define gridDim (::emu::g_launch->grid)
#define warpSize 32

inline void __syncthreads() { ::emu::block_barrier(); }

inline void __syncwarp(unsigned mask = 0xffffffffu)
{
    ::emu::check_mask(mask);
    ::emu::exchange(0);
}

template <typename T> inline T __shfl_sync(unsigned mask, T v, int lane, int width = 32)
{
    const int self = (int)(::emu::g_launch->current->linear % 32);
    return ::emu::shuffle(mask, v, (self & ~(width - 1)) + (lane & (width - 1)));
}

template <typename T> inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32)
{
    const int self = (int)(::emu::g_launch->current->linear % 32);
    int source = self ^ lane_mask;
    if ((source & ~(width - 1)) != (self & ~(width - 1))) source = self;
    return ::emu::shuffle(mask, v, source);
}

template <typename T> inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32)
{
    const int self = (int)(::emu::g_launch->current->linear % 32);
    int source = self + (int)delta;
    if ((source & ~(width - 1)) != (self & ~(width - 1))) source = self;
    return ::emu::shuffle(mask, v, source);
}

template <typename T> inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32)
{
    const int self = (int)(::emu::g_launch->current->linear % 32);
    int source = self - (int)delta;
    if (source < (self & ~(width - 1))) source = self;
    return ::emu::shuffle(mask, v, source);
}

inline unsigned __ballot_sync(unsigned mask, int predicate)
{
    ::emu::check_mask(mask);
    const unsigned lanes = ::emu::warp_lanes(::emu::g_launch->current->linear / 32);
    const uint64_t* slots = ::emu::exchange(predicate ? 1u : 0u);
    unsigned ballot = 0;
    for (unsigned i = 0; i < lanes; i++) ballot |= (unsigned)slots[i] << i;
    return ballot;
}

inline int __any_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) != 0; }

inline int __all_sync(unsigned mask, int predicate)
{
    const unsigned lanes = ::emu::warp_lanes(::emu::g_launch->current->linear / 32);
    const unsigned all = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u);
    return __ballot_sync(mask, predicate) == all;
}

// Fibers switch only at barriers, so these read-modify-writes cannot interleave.
template <typename T> inline T atomicAdd(T* address, T value)
{
    T old = *address;
    *address = old + value;
    return old;
}

template <typename T> inline T atomicMax(T* address, T value)
{
    T old = *address;
    *address = old > value ? old : value;
    return old;
}

template <typename T> inline T atomicMin(T* address, T value)
{
    T old = *address;
    *address = old < value ? old : value;
    return old;
}

template <typename T> inline T atomicCAS(T* address, T compare, T value)
{
    T old = *address;
    if (old == compare) *address = value;
    return old;
}

template <typename T> inline T atomicExch(T* address, T value)
{
    T old = *address;
    *address = value;
    return old;
}

template <typename T> inline T __ldg(const T* p) { return *p; }

inline unsigned __float_as_uint(float f) { return ::emu::from_bits<unsigned>(::emu::to_bits(f)); }
inline float __uint_as_float(unsigned u) { return ::emu::from_bits<float>(::emu::to_bits(u)); }
inline int __float_as_int(float f) { return ::emu::from_bits<int>(::emu::to_bits(f)); }
inline float __int_as_float(int i) { return ::emu::from_bits<float>(::emu::to_bits(i)); }
inline long long __double_as_longlong(double d) { return ::emu::from_bits<long long>(::emu::to_bits(d)); }
inline double __longlong_as_double(long long l) { return ::emu::from_bits<double>(::emu::to_bits(l)); }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((uint64_t)a * b) >> 32); }
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __clz(unsigned v) { return v == 0 ? 32 : __builtin_clz(v); }
inline int __ffs(unsigned v) { return __builtin_ffs((int)v); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline void __trap() { ::emu::fail("emulator: kernel trapped"); }

template <typename T> inline T min(T a, T b) { return a < b ? a : b; }
template <typename T> inline T max(T a, T b) { return a > b ? a : b; }
using std::cos;
using std::exp;
using std::log;
using std::sin;
using std::sqrt;

// Launches a registered kernel: grid and block as in cuLaunchKernel, args as its kernelParams.
// Returns 0, or -1 with the reason in emu_last_error().
extern "C" __attribute__((visibility("default"))) int emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz,
    unsigned bx, unsigned by, unsigned bz, unsigned shared_bytes, void** args)
{
    using namespace emu;
    auto found = registry().find(name);
    if (found == registry().end())
    {
        g_last_error = std::string("emulator: no kernel named ") + name;
        return -1;
    }
    const unsigned threads = bx * by * bz;
    if (threads == 0 || threads > kMaxThreads || gx == 0 || gy == 0 || gz == 0)
    {
        g_last_error = "emulator: invalid launch geometry for " + std::string(name);
        return -1;
    }
    if (shared_bytes > kMaxDynamicShared)
    {
        g_last_error = "emulator: too much dynamic shared memory for " + std::string(name);
        return -1;
    }
    if (g_stacks == nullptr)
    {
        void* p = mmap(nullptr, kMaxThreads * kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
        {
            g_last_error = "emulator: cannot map fiber stacks";
            return -1;
        }
        g_stacks = static_cast<unsigned char*>(p);
    }
    Launch l;
    l.grid = dim3(gx, gy, gz);
    l.block = dim3(bx, by, bz);
    l.threads = threads;
    l.args = args;
    l.thunk = found->second;
    l.fibers.resize(threads);
    const unsigned warps = (threads + 31) / 32;
    l.warp_arrived.assign(warps, 0);
    l.warp_generation.assign(warps, 0);
    l.slots.assign((size_t)warps * 64, 0);
    l.dynamic_shared.resize(shared_bytes / sizeof(std::max_align_t) + 1);
    for (unsigned i = 0; i < threads; i++)
    {
        l.fibers[i].tid = dim3(i % bx, (i / bx) % by, i / (bx * by));
        l.fibers[i].linear = i;
    }
    std::vector<unsigned> order(threads);
    for (unsigned i = 0; i < threads; i++) order[i] = i;
    Launch* previous = g_launch;
    g_launch = &l;
    bool ok = true;
    for (unsigned z = 0; z < gz && ok; z++)
        for (unsigned y = 0; y < gy && ok; y++)
            for (unsigned x = 0; x < gx && ok; x++)
            {
                l.block_idx = dim3(x, y, z);
                ok = run_block(l, order);
            }
    g_launch = previous;
    if (!ok)
    {
        g_last_error = l.error + " (kernel " + name + ")";
        return -1;
    }
    return 0;
}

extern "C" __attribute__((visibility("default"))) const char* emu_last_error() { return emu::g_last_error.c_str(); }

// Reseeds the fiber schedule of this OS thread (each launch reshuffles from the running state).
extern "C" __attribute__((visibility("default"))) void emu_set_schedule_seed(unsigned long long seed)
{
    emu::g_schedule_seed = seed == 0 ? 0x9E3779B97F4A7C15ull : seed;
}

// Writes the registered kernel names, '\n'-separated, into buffer; returns the length needed.
extern "C" __attribute__((visibility("default"))) int emu_kernel_names(char* buffer, int capacity)
{
    std::string all;
    for (auto& entry : emu::registry()) all += entry.first + "\n";
    if (buffer != nullptr && capacity > 0)
    {
        const size_t n = std::min((size_t)capacity - 1, all.size());
        std::memcpy(buffer, all.data(), n);
        buffer[n] = 0;
    }
    return (int)all.size() + 1;
}
