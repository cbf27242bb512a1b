#ifndef BENCH_MICRO_UTIL_H
#define BENCH_MICRO_UTIL_H
/* Helpers shared by the micro-benchmarks: aligned buffers and a seeded
 * generator, so every run measures the same bytes. */
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>

namespace micro {

/* Fixed seed for every generated input; mt19937's sequence is fixed by the
 * C++ standard, so inputs are identical across compilers and runs. */
constexpr uint32_t SEED = 20240601u;

struct free_deleter {
    void operator()(uint8_t *p) const { std::free(p); }
};
using buf_ptr = std::unique_ptr<uint8_t, free_deleter>;

/* len bytes (at least 1) aligned to 64, the widest vector the unmask and
 * UTF-8 variants use, plus 64 bytes of slack that stay untouched. */
inline buf_ptr aligned_buf(size_t len)
{
    size_t cap = ((len + 63) / 64) * 64 + 64;
    void *p = std::aligned_alloc(64, cap);
    if (p == nullptr)
        std::abort();
    std::memset(p, 0, cap);
    return buf_ptr(static_cast<uint8_t *>(p));
}

/* Uniform-ish integer in [lo, hi] from g; modulo bias is irrelevant here and
 * unlike std::uniform_int_distribution the result is the same everywhere. */
inline uint32_t pick(std::mt19937 &g, uint32_t lo, uint32_t hi)
{
    return lo + static_cast<uint32_t>(g() % (hi - lo + 1u));
}

} // namespace micro

#endif
