/* Masking fused with the copy (sending) and with the check (receiving raw
 * echoes): one pass over the bytes instead of a copy or check plus an
 * in-place ws_unmask(). AVX2 when the CPU has it, the scalar twin otherwise
 * and for short runs, where a vector set-up costs more than it saves. */
#include <string.h>
#include <immintrin.h>

#include "bench/wsload/wsload.h"

#define VEC_MIN 64 /* shorter runs take the 8-byte loop; 64 is a guess, not measured */

/* The key as 8 bytes in memory order, starting at key[phase & 3]. */
static uint64_t key64(const uint8_t key[4], size_t phase)
{
    uint32_t k;
    memcpy(&k, key, 4);
    unsigned r = (unsigned)(phase & 3) * 8; /* little-endian: a right rotation */
    if (r)
        k = k >> r | k << (32 - r);
    return (uint64_t)k << 32 | k;
}

void wl__mask_copy_scalar(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], size_t phase)
{
    uint64_t k = key64(key, phase);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= k;
        memcpy(dst + i, &v, 8);
    }
    for (unsigned j = 0; i < n; i++, j += 8) /* i is a multiple of 8 here */
        dst[i] = (uint8_t)(src[i] ^ (k >> j));
}

bool wl__mask_equal_scalar(const uint8_t *p, const uint8_t *want, size_t n, const uint8_t key[4], size_t phase)
{
    uint64_t k = key64(key, phase), diff = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t a, b;
        memcpy(&a, p + i, 8);
        memcpy(&b, want + i, 8);
        diff |= a ^ b ^ k;
    }
    for (unsigned j = 0; i < n; i++, j += 8)
        diff |= (uint8_t)(p[i] ^ want[i] ^ (k >> j));
    return diff == 0;
}

__attribute__((target("avx2")))
void wl__mask_copy_avx2(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], size_t phase)
{
    uint64_t k = key64(key, phase);
    __m256i kv = _mm256_set1_epi64x((long long)k);
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(src + i + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(src + i + 64));
        __m256i d = _mm256_loadu_si256((const __m256i *)(src + i + 96));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(a, kv));
        _mm256_storeu_si256((__m256i *)(dst + i + 32), _mm256_xor_si256(b, kv));
        _mm256_storeu_si256((__m256i *)(dst + i + 64), _mm256_xor_si256(c, kv));
        _mm256_storeu_si256((__m256i *)(dst + i + 96), _mm256_xor_si256(d, kv));
    }
    for (; i + 32 <= n; i += 32)
        _mm256_storeu_si256((__m256i *)(dst + i),
                            _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i)), kv));
    wl__mask_copy_scalar(dst + i, src + i, n - i, key, phase + i); /* i is a multiple of 4 */
}

__attribute__((target("avx2")))
bool wl__mask_equal_avx2(const uint8_t *p, const uint8_t *want, size_t n, const uint8_t key[4], size_t phase)
{
    uint64_t k = key64(key, phase);
    __m256i kv = _mm256_set1_epi64x((long long)k);
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        __m256i e0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + i)),
                                                       _mm256_loadu_si256((const __m256i *)(want + i))), kv);
        __m256i e1 = _mm256_xor_si256(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + i + 32)),
                                                       _mm256_loadu_si256((const __m256i *)(want + i + 32))), kv);
        __m256i e2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + i + 64)),
                                                       _mm256_loadu_si256((const __m256i *)(want + i + 64))), kv);
        __m256i e3 = _mm256_xor_si256(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + i + 96)),
                                                       _mm256_loadu_si256((const __m256i *)(want + i + 96))), kv);
        __m256i any = _mm256_or_si256(_mm256_or_si256(e0, e1), _mm256_or_si256(e2, e3));
        if (!_mm256_testz_si256(any, any))
            return false;
    }
    for (; i + 32 <= n; i += 32) {
        __m256i e = _mm256_xor_si256(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + i)),
                                                      _mm256_loadu_si256((const __m256i *)(want + i))), kv);
        if (!_mm256_testz_si256(e, e))
            return false;
    }
    return wl__mask_equal_scalar(p + i, want + i, n - i, key, phase + i);
}

/* __builtin_cpu_supports() reads a word that libgcc fills in before main(). */
static bool have_avx2(void)
{
    return __builtin_cpu_supports("avx2");
}

void wl_mask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], size_t phase)
{
    if (n >= VEC_MIN && have_avx2())
        wl__mask_copy_avx2(dst, src, n, key, phase);
    else
        wl__mask_copy_scalar(dst, src, n, key, phase);
}

bool wl_mask_equal(const uint8_t *p, const uint8_t *want, size_t n, const uint8_t key[4], size_t phase)
{
    if (n >= VEC_MIN && have_avx2())
        return wl__mask_equal_avx2(p, want, n, key, phase);
    return wl__mask_equal_scalar(p, want, n, key, phase);
}
