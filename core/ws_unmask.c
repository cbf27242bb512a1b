/* RFC 6455 §5.3 masking: scalar reference, SSE2/AVX2/AVX-512 variants and the
 * start-up binding of ws_unmask().
 *
 * The key is carried as one 32-bit word whose byte i (little-endian) masks
 * payload byte i of the current 4-byte group. Starting phase s means the word
 * is the key rotated right by 8*s bits; moving r bytes further rotates by 8*r
 * more. A vector key is that word broadcast, which stays valid at any offset
 * that is a multiple of 4, so only heads and tails need a re-rotation.
 *
 * The vector variants never touch a byte outside [p, p + len):
 * - len below one vector goes to narrower steps (AVX-512 uses one masked
 *   load/store, which suppresses faults on masked-out bytes);
 * - otherwise the first and last (possibly unaligned, possibly overlapping)
 *   vectors are loaded before anything is stored, the aligned middle is done
 *   in place, and the head and tail are stored last. A byte covered twice is
 *   written twice with the same value, both computed from the original byte,
 *   so nothing is XORed twice. */
#include "core/ws_unmask.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define WS_X86 1
#include <immintrin.h>
#else
#define WS_X86 0
#endif

static inline uint32_t rotr32(uint32_t x, unsigned bits)
{
    bits &= 31;
    return bits ? (x >> bits) | (x << (32 - bits)) : x;
}

/* The key word for a byte at payload phase `phase`. */
static inline uint32_t key_word(const uint8_t key[4], size_t phase)
{
    uint32_t k;
    memcpy(&k, key, 4);
    return rotr32(k, (unsigned)(phase & 3) * 8);
}

/* The key word for the byte `off` bytes after one with key word kw. */
static inline uint32_t key_advance(uint32_t kw, size_t off)
{
    return rotr32(kw, (unsigned)(off & 3) * 8);
}

static inline uint64_t key_dword(uint32_t kw)
{
    return (uint64_t)kw | (uint64_t)kw << 32;
}

static inline void xor64_at(uint8_t *p, uint64_t v)
{
    uint64_t x;
    memcpy(&x, p, 8);
    x ^= v;
    memcpy(p, &x, 8);
}

/* len < 16 with no setup beyond the key word: two possibly overlapping words,
 * both loaded before either is stored. Assumes little-endian (x86). */
static inline __attribute__((always_inline)) void
unmask_small(uint8_t *p, size_t len, uint32_t kw)
{
    if (len >= 8) {
        uint64_t a, b;
        memcpy(&a, p, 8);
        memcpy(&b, p + len - 8, 8);
        a ^= key_dword(kw);
        b ^= key_dword(key_advance(kw, len - 8));
        memcpy(p, &a, 8);
        memcpy(p + len - 8, &b, 8);
    } else if (len >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + len - 4, 4);
        a ^= kw;
        b ^= key_advance(kw, len - 4);
        memcpy(p, &a, 4);
        memcpy(p + len - 4, &b, 4);
    } else {
        for (size_t i = 0; i < len; i++)
            p[i] ^= (uint8_t)(kw >> (8 * i));
    }
}

size_t ws__unmask_scalar(uint8_t *p, size_t len, const uint8_t key[4], size_t phase)
{
    size_t i = 0;
    /* Word at a time: 8 is a multiple of 4, so one rotated word serves all. */
    if (len >= 8) {
        uint64_t k = key_dword(key_word(key, phase));
        for (; i + 8 <= len; i += 8)
            xor64_at(p + i, k);
    }
    for (; i < len; i++)
        p[i] ^= key[(phase + i) & 3];
    return (phase + len) & 3;
}

#if WS_X86

__attribute__((target("sse2")))
size_t ws__unmask_sse2(uint8_t *p, size_t len, const uint8_t key[4], size_t phase)
{
    uint32_t kw = key_word(key, phase);
    if (len < 16) {
        unmask_small(p, len, kw);
        return (phase + len) & 3;
    }
    uint8_t *end = p + len;
    __m128i head = _mm_loadu_si128((const __m128i *)p);
    __m128i tail = _mm_loadu_si128((const __m128i *)(end - 16));
    uint8_t *q = (uint8_t *)(((uintptr_t)p + 15) & ~(uintptr_t)15);
    __m128i k = _mm_set1_epi32((int)key_advance(kw, (size_t)(q - p)));
    for (; q + 64 <= end; q += 64) {
        __m128i *v = (__m128i *)q;
        __m128i a = _mm_xor_si128(_mm_load_si128(v + 0), k);
        __m128i b = _mm_xor_si128(_mm_load_si128(v + 1), k);
        __m128i c = _mm_xor_si128(_mm_load_si128(v + 2), k);
        __m128i d = _mm_xor_si128(_mm_load_si128(v + 3), k);
        _mm_store_si128(v + 0, a);
        _mm_store_si128(v + 1, b);
        _mm_store_si128(v + 2, c);
        _mm_store_si128(v + 3, d);
    }
    for (; q + 16 <= end; q += 16)
        _mm_store_si128((__m128i *)q, _mm_xor_si128(_mm_load_si128((const __m128i *)q), k));
    _mm_storeu_si128((__m128i *)p, _mm_xor_si128(head, _mm_set1_epi32((int)kw)));
    _mm_storeu_si128((__m128i *)(end - 16),
                     _mm_xor_si128(tail, _mm_set1_epi32((int)key_advance(kw, len - 16))));
    return (phase + len) & 3;
}

__attribute__((target("avx2")))
size_t ws__unmask_avx2(uint8_t *p, size_t len, const uint8_t key[4], size_t phase)
{
    uint32_t kw = key_word(key, phase);
    if (len < 32) {
        if (len < 16) {
            unmask_small(p, len, kw);
        } else {
            __m128i a = _mm_loadu_si128((const __m128i *)p);
            __m128i b = _mm_loadu_si128((const __m128i *)(p + len - 16));
            a = _mm_xor_si128(a, _mm_set1_epi32((int)kw));
            b = _mm_xor_si128(b, _mm_set1_epi32((int)key_advance(kw, len - 16)));
            _mm_storeu_si128((__m128i *)p, a);
            _mm_storeu_si128((__m128i *)(p + len - 16), b);
        }
        return (phase + len) & 3;
    }
    uint8_t *end = p + len;
    __m256i head = _mm256_loadu_si256((const __m256i *)p);
    __m256i tail = _mm256_loadu_si256((const __m256i *)(end - 32));
    uint8_t *q = (uint8_t *)(((uintptr_t)p + 31) & ~(uintptr_t)31);
    __m256i k = _mm256_set1_epi32((int)key_advance(kw, (size_t)(q - p)));
    for (; q + 128 <= end; q += 128) {
        __m256i *v = (__m256i *)q;
        __m256i a = _mm256_xor_si256(_mm256_load_si256(v + 0), k);
        __m256i b = _mm256_xor_si256(_mm256_load_si256(v + 1), k);
        __m256i c = _mm256_xor_si256(_mm256_load_si256(v + 2), k);
        __m256i d = _mm256_xor_si256(_mm256_load_si256(v + 3), k);
        _mm256_store_si256(v + 0, a);
        _mm256_store_si256(v + 1, b);
        _mm256_store_si256(v + 2, c);
        _mm256_store_si256(v + 3, d);
    }
    for (; q + 32 <= end; q += 32)
        _mm256_store_si256((__m256i *)q,
                           _mm256_xor_si256(_mm256_load_si256((const __m256i *)q), k));
    _mm256_storeu_si256((__m256i *)p, _mm256_xor_si256(head, _mm256_set1_epi32((int)kw)));
    _mm256_storeu_si256((__m256i *)(end - 32),
                        _mm256_xor_si256(tail, _mm256_set1_epi32((int)key_advance(kw, len - 32))));
    return (phase + len) & 3;
}

__attribute__((target("avx512f,avx512bw")))
size_t ws__unmask_avx512(uint8_t *p, size_t len, const uint8_t key[4], size_t phase)
{
    uint32_t kw = key_word(key, phase);
    if (len <= 64) {
        /* Plain overlapping loads and stores, not one masked store: a masked
         * store cannot forward to the load that reads the payload next (the
         * reply copy), and bench_unmask showed 16-byte payloads at 2.3 GB/s
         * masked against 8 GB/s this way. */
        if (len < 16) {
            unmask_small(p, len, kw);
        } else if (len < 32) {
            __m128i a = _mm_loadu_si128((const __m128i *)p);
            __m128i b = _mm_loadu_si128((const __m128i *)(p + len - 16));
            a = _mm_xor_si128(a, _mm_set1_epi32((int)kw));
            b = _mm_xor_si128(b, _mm_set1_epi32((int)key_advance(kw, len - 16)));
            _mm_storeu_si128((__m128i *)p, a);
            _mm_storeu_si128((__m128i *)(p + len - 16), b);
        } else {
            __m256i a = _mm256_loadu_si256((const __m256i *)p);
            __m256i b = _mm256_loadu_si256((const __m256i *)(p + len - 32));
            a = _mm256_xor_si256(a, _mm256_set1_epi32((int)kw));
            b = _mm256_xor_si256(b, _mm256_set1_epi32((int)key_advance(kw, len - 32)));
            _mm256_storeu_si256((__m256i *)p, a);
            _mm256_storeu_si256((__m256i *)(p + len - 32), b);
        }
        return (phase + len) & 3;
    }
    uint8_t *end = p + len;
    __m512i head = _mm512_loadu_si512(p);
    __m512i tail = _mm512_loadu_si512(end - 64);
    uint8_t *q = (uint8_t *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
    __m512i k = _mm512_set1_epi32((int)key_advance(kw, (size_t)(q - p)));
    for (; q + 256 <= end; q += 256) {
        __m512i a = _mm512_xor_si512(_mm512_load_si512(q + 0), k);
        __m512i b = _mm512_xor_si512(_mm512_load_si512(q + 64), k);
        __m512i c = _mm512_xor_si512(_mm512_load_si512(q + 128), k);
        __m512i d = _mm512_xor_si512(_mm512_load_si512(q + 192), k);
        _mm512_store_si512(q + 0, a);
        _mm512_store_si512(q + 64, b);
        _mm512_store_si512(q + 128, c);
        _mm512_store_si512(q + 192, d);
    }
    for (; q + 64 <= end; q += 64)
        _mm512_store_si512(q, _mm512_xor_si512(_mm512_load_si512(q), k));
    _mm512_storeu_si512(p, _mm512_xor_si512(head, _mm512_set1_epi32((int)kw)));
    _mm512_storeu_si512(end - 64,
                        _mm512_xor_si512(tail, _mm512_set1_epi32((int)key_advance(kw, len - 64))));
    return (phase + len) & 3;
}

#else /* !WS_X86: keep the symbols; ws_unmask_variant() never hands them out. */

size_t ws__unmask_sse2(uint8_t *p, size_t len, const uint8_t key[4], size_t phase)
{
    return ws__unmask_scalar(p, len, key, phase);
}
size_t ws__unmask_avx2(uint8_t *p, size_t len, const uint8_t key[4], size_t phase)
{
    return ws__unmask_scalar(p, len, key, phase);
}
size_t ws__unmask_avx512(uint8_t *p, size_t len, const uint8_t key[4], size_t phase)
{
    return ws__unmask_scalar(p, len, key, phase);
}

#endif

/* ---- binding ------------------------------------------------------------ */

enum { V_SCALAR, V_SSE2, V_AVX2, V_AVX512, V_N };

static const struct {
    const char *name;
    ws_unmask_fn fn;
} variants[V_N] = {
    [V_SCALAR] = {"scalar", ws__unmask_scalar},
    [V_SSE2] = {"sse2", ws__unmask_sse2},
    [V_AVX2] = {"avx2", ws__unmask_avx2},
    [V_AVX512] = {"avx512", ws__unmask_avx512},
};

/* Whether this CPU (and OS: the compiler runtimes check XCR0 for the AVX and
 * AVX-512 register state) can run variant v. Safe to call from an ifunc
 * resolver, which runs during relocation before any constructor, hence the
 * explicit __builtin_cpu_init() and no sanitizer instrumentation. */
__attribute__((no_sanitize("address", "undefined")))
static bool cpu_has(int v)
{
#if WS_X86
    __builtin_cpu_init();
    switch (v) {
    case V_SCALAR:
        return true;
    case V_SSE2:
        return __builtin_cpu_supports("sse2");
    case V_AVX2:
        return __builtin_cpu_supports("avx2");
    case V_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    }
    return false;
#else
    return v == V_SCALAR;
#endif
}

__attribute__((no_sanitize("address", "undefined")))
static int best_variant(void)
{
    for (int v = V_N - 1; v > V_SCALAR; v--)
        if (cpu_has(v))
            return v;
    return V_SCALAR;
}

/* Binding: a GNU ifunc on ELF/glibc. The dynamic loader runs the resolver once
 * while relocating, before any constructor or thread, and writes the answer
 * into the (read-only after relocation) GOT. Compared with a constructor that
 * sets a function pointer this leaves no writable global in core/, no window
 * where an early caller finds the pointer unset, and costs the same one
 * indirect call. Elsewhere ws_unmask() asks best_variant() on each call,
 * which is slower but correct. */
/* ThreadSanitizer instruments every function's entry, the resolver's too,
 * and its runtime is not up while the loader relocates: TSan builds bind per
 * call instead. */
#if defined(__SANITIZE_THREAD__)
#define WS_NO_IFUNC 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WS_NO_IFUNC 1
#endif
#endif
#if WS_X86 && defined(__ELF__) && defined(__GLIBC__) && !defined(WS_NO_IFUNC)

/* `used`: clang 14 does not count the ifunc reference as a use. */
__attribute__((used, no_sanitize("address", "undefined")))
static ws_unmask_fn resolve_unmask(void)
{
    /* Direct addresses, not the table: it may not be relocated yet. */
    switch (best_variant()) {
    case V_AVX512:
        return ws__unmask_avx512;
    case V_AVX2:
        return ws__unmask_avx2;
    case V_SSE2:
        return ws__unmask_sse2;
    default:
        return ws__unmask_scalar;
    }
}

size_t ws_unmask(uint8_t *p, size_t len, const uint8_t key[4], size_t phase)
    __attribute__((ifunc("resolve_unmask")));

#else

size_t ws_unmask(uint8_t *p, size_t len, const uint8_t key[4], size_t phase)
{
    return variants[best_variant()].fn(p, len, key, phase);
}

#endif

ws_unmask_fn ws_unmask_variant(const char *name)
{
    for (int v = 0; v < V_N; v++)
        if (name && strcmp(name, variants[v].name) == 0)
            return cpu_has(v) ? variants[v].fn : NULL;
    return NULL;
}

const char *ws_unmask_impl(void)
{
    return variants[best_variant()].name;
}
