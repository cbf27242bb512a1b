/* libFuzzer target for core/utf8.c: every variant, fed the input in pieces
 * chosen from the input, must agree with an independent decoder written
 * here from the RFC 3629 §3 bit patterns (decode each code point, then judge
 * its value), including the fail-fast offset.
 *
 * Input layout: byte 0 picks how to cut (whole, byte at a time, or pieces
 * whose sizes come from a generator seeded by bytes 1..8); the text is
 * everything after byte 0. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

#define REF_OK ((size_t)-1)
#define REF_OPEN ((size_t)-2)

/* Independent reference: decode code point by code point. The lead byte's
 * high bits give the length n (RFC 3629 §3); the value must need exactly n
 * bytes (no overlong), must not be a surrogate and must be <= U+10FFFF.
 * Fail-fast: the failing offset is the first byte at which every
 * continuation is already ruled out, so it is found by asking, after each
 * byte of a sequence, whether any completion of the bytes so far could give
 * an allowed value. */
static int lead_len(uint8_t b)
{
    if (b < 0x80)
        return 1;
    if ((b & 0xe0) == 0xc0)
        return 2;
    if ((b & 0xf0) == 0xe0)
        return 3;
    if ((b & 0xf8) == 0xf0)
        return 4;
    return 0; /* continuation byte, or 5/6-byte forms and FE/FF */
}

/* Could the first k bytes (value bits so far in v) of an n-byte sequence
 * still complete to an allowed code point? The smallest and largest
 * completions fill the missing 6-bit groups with all 0s / all 1s. */
static int prefix_possible(uint32_t v, int k, int n)
{
    static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    int missing = 6 * (n - k);
    uint32_t lo = v << missing;
    uint32_t hi = (v << missing) | ((1u << missing) - 1);
    if (hi < min_for_len[n] || lo > 0x10ffff)
        return 0;
    /* Entirely inside the surrogate block? */
    if (lo >= 0xd800 && hi <= 0xdfff)
        return 0;
    return 1;
}

static size_t ref_validate(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        int n = lead_len(p[i]);
        if (n == 0)
            return i;
        uint32_t v = n == 1 ? p[i] : (uint32_t)(p[i] & (0x7f >> n));
        if (!prefix_possible(v, 1, n))
            return i;
        for (int k = 1; k < n; k++) {
            if (i + (size_t)k >= len)
                return REF_OPEN;
            uint8_t c = p[i + (size_t)k];
            if ((c & 0xc0) != 0x80)
                return i + (size_t)k;
            v = v << 6 | (c & 0x3fu);
            if (!prefix_possible(v, k + 1, n))
                return i + (size_t)k;
        }
        /* A complete code point: judge its value directly, too. */
        if ((n > 1 && v < (n == 2 ? 0x80u : n == 3 ? 0x800u : 0x10000u)) ||
            (v >= 0xd800 && v <= 0xdfff) || v > 0x10ffff)
            abort();
        i += (size_t)n;
    }
    return REF_OK;
}

typedef size_t (*feed_fn)(struct utf8_state *s, const uint8_t *p, size_t len);

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Feed the text in pieces, each copied to an exact-size heap block so
 * ASan sees a read past any piece. */
static size_t feed_split(feed_fn fn, const uint8_t *p, size_t len,
                         uint8_t mode, uint64_t seed)
{
    struct utf8_state s = {0};
    size_t start = 0;
    uint64_t x = seed | 1;
    while (start < len || start == 0) {
        size_t n = len - start;
        if (mode % 3 == 1 && n > 1)
            n = 1;
        else if (mode % 3 == 2 && n > 0)
            n = (size_t)(next_rand(&x) % (n < 80 ? n + 1 : 80));
        uint8_t *piece = malloc(n ? n : 1);
        if (!piece)
            abort();
        memcpy(piece, p + start, n);
        size_t r = fn(&s, piece, n);
        free(piece);
        if (r != n) {
            if (r > n || s.st != UTF8_REJECT || fn(&s, p, len) != 0)
                abort();
            return start + r;
        }
        start += n;
        if (len == 0)
            break;
    }
    return utf8_done(&s) ? REF_OK : REF_OPEN;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    uint64_t seed = 0;
    memcpy(&seed, p, len < 8 ? len : 8);

    size_t want = ref_validate(p, len);
    feed_fn fns[4] = {utf8__feed_scalar, utf8_feed, utf8__feed_sse2,
                      utf8__feed_avx2};
    size_t n_fns = utf8__has_avx2() ? 4 : 3;
    for (size_t i = 0; i < n_fns; i++) {
        if (feed_split(fns[i], p, len, 0, 0) != want)
            abort();
        if (feed_split(fns[i], p, len, mode, seed) != want)
            abort();
    }
    return 0;
}
