/* Streaming, fail-fast UTF-8 validation (RFC 3629 §4 syntax).
 *
 * The reference is a byte-at-a-time DFA over 12 byte classes. utf8_feed()
 * gives the same answer faster:
 *   - ASCII runs are skipped 16/32 bytes at a time (SSE2, the x86-64
 *     baseline) or 8 at a time with a word test elsewhere;
 *   - a multi-byte code point with its whole sequence in range is checked
 *     with direct range tests instead of one DFA step per byte;
 *   - with AVX2 (chosen at run time), 32-byte blocks of any content are
 *     checked with three nibble table lookups per byte (the scheme of
 *     Keiser and Lemire, "Validating UTF-8 In Less Than One Instruction Per
 *     Byte", 2021).
 * Whenever a fast path finds something it does not accept, the DFA is
 * restarted at the code point boundary before it, so the failing offset is
 * always the DFA's, by construction. The fast paths only have to be right
 * about "valid"; they never decide where input fails. */
#include "core/utf8.h"

#include <assert.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define UTF8_X86 1
#endif

/* ---- the reference DFA ------------------------------------------------- */

/* DFA states. S_ACCEPT must be 0 (all-zero start state); the rest are only
 * ever stored in utf8_state.st while a code point is open. */
enum {
    S_ACCEPT = 0,
    S_TAIL1, /* one more 80..BF */
    S_TAIL2, /* two more 80..BF */
    S_E0,    /* after E0: A0..BF, then one more (no overlongs) */
    S_ED,    /* after ED: 80..9F, then one more (no surrogates) */
    S_F0,    /* after F0: 90..BF, then two more (no overlongs) */
    S_TAIL3, /* after F1..F3: three more 80..BF */
    S_F4,    /* after F4: 80..8F, then two more (nothing above U+10FFFF) */
    S_REJECT,
    S_COUNT
};

/* Byte classes: each class is a set of bytes the DFA never tells apart. */
enum {
    C_ASCII,  /* 00..7F */
    C_T8,     /* 80..8F */
    C_T9,     /* 90..9F */
    C_TA,     /* A0..BF */
    C_BAD,    /* C0, C1, F5..FF: never in UTF-8 */
    C_L2,     /* C2..DF */
    C_E0,     /* E0 */
    C_L3,     /* E1..EC, EE, EF */
    C_ED,     /* ED */
    C_F0,     /* F0 */
    C_L4,     /* F1..F3 */
    C_F4,     /* F4 */
    C_COUNT
};

static const uint8_t byte_class[256] = {
    [0x00 ... 0x7f] = C_ASCII,
    [0x80 ... 0x8f] = C_T8,
    [0x90 ... 0x9f] = C_T9,
    [0xa0 ... 0xbf] = C_TA,
    [0xc0 ... 0xc1] = C_BAD,
    [0xc2 ... 0xdf] = C_L2,
    [0xe0] = C_E0,
    [0xe1 ... 0xec] = C_L3,
    [0xed] = C_ED,
    [0xee ... 0xef] = C_L3,
    [0xf0] = C_F0,
    [0xf1 ... 0xf3] = C_L4,
    [0xf4] = C_F4,
    [0xf5 ... 0xff] = C_BAD,
};

/* RFC 3629 §4, one row per state (R: no valid continuation exists). */
#define R S_REJECT
static const uint8_t next_state[S_COUNT][C_COUNT] = {
    /*             ASCII     T8       T9       TA       BAD L2       E0    L3       ED    F0    L4       F4 */
    [S_ACCEPT] = {S_ACCEPT, R,       R,       R,       R, S_TAIL1, S_E0, S_TAIL2, S_ED, S_F0, S_TAIL3, S_F4},
    [S_TAIL1] =  {R, S_ACCEPT, S_ACCEPT, S_ACCEPT,     R, R,       R,    R,       R,    R,    R,       R},
    [S_TAIL2] =  {R, S_TAIL1,  S_TAIL1,  S_TAIL1,      R, R,       R,    R,       R,    R,    R,       R},
    [S_E0] =     {R, R,        R,        S_TAIL1,      R, R,       R,    R,       R,    R,    R,       R},
    [S_ED] =     {R, S_TAIL1,  S_TAIL1,  R,            R, R,       R,    R,       R,    R,    R,       R},
    [S_F0] =     {R, R,        S_TAIL2,  S_TAIL2,      R, R,       R,    R,       R,    R,    R,       R},
    [S_TAIL3] =  {R, S_TAIL2,  S_TAIL2,  S_TAIL2,      R, R,       R,    R,       R,    R,    R,       R},
    [S_F4] =     {R, S_TAIL2,  R,        R,            R, R,       R,    R,       R,    R,    R,       R},
    [S_REJECT] = {R, R,        R,        R,            R, R,       R,    R,       R,    R,    R,       R},
};
#undef R

/* Run the DFA from state st over [p + i, p + len). Stores the end state
 * (UTF8_REJECT on failure) and returns len or the failing offset. */
static size_t dfa_run(struct utf8_state *s, uint32_t st, const uint8_t *p,
                      size_t i, size_t len)
{
    for (; i < len; i++) {
        st = next_state[st][byte_class[p[i]]];
        if (st == S_REJECT) {
            s->st = UTF8_REJECT;
            return i;
        }
    }
    s->st = st;
    return len;
}

size_t utf8__feed_scalar(struct utf8_state *s, const uint8_t *p, size_t len)
{
    if (s->st == UTF8_REJECT)
        return 0;
    assert(s->st < S_REJECT);
    return dfa_run(s, s->st, p, 0, len);
}

bool utf8_done(const struct utf8_state *s)
{
    return s->st == S_ACCEPT;
}

/* ---- portable fast paths ---------------------------------------------- */

/* Index of the first byte >= 0x80 in [p + i, p + len), or len. */
static size_t ascii_skip(const uint8_t *p, size_t i, size_t len)
{
#if defined(__SSE2__)
    while (len - i >= 32) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 16));
        if (_mm_movemask_epi8(_mm_or_si128(a, b)) != 0) {
            uint32_t m = (uint32_t)_mm_movemask_epi8(a) |
                         (uint32_t)_mm_movemask_epi8(b) << 16;
            return i + (size_t)__builtin_ctz(m);
        }
        i += 32;
    }
    if (len - i >= 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        uint32_t m = (uint32_t)_mm_movemask_epi8(a);
        if (m != 0)
            return i + (size_t)__builtin_ctz(m);
        i += 16;
    }
#endif
    while (len - i >= 8) {
        uint64_t w;
        memcpy(&w, p + i, sizeof w);
        w &= 0x8080808080808080u;
        if (w != 0) /* little-endian: the lowest set bit is the first byte */
            return i + (size_t)__builtin_ctzll(w) / 8;
        i += 8;
    }
    while (i < len && p[i] < 0x80)
        i++;
    return i;
}

/* Length (2..4) of the valid multi-byte sequence starting at q[0] >= 0x80,
 * or 0 if it is not one. Reads at most the sequence's own bytes, and the
 * caller guarantees 4 bytes are readable. The second-byte ranges are those
 * of the RFC 3629 §4 table. */
static inline size_t seq_len(const uint8_t *q)
{
    uint8_t b0 = q[0];
    if (b0 < 0xe0) {
        if (b0 >= 0xc2 && (q[1] & 0xc0) == 0x80)
            return 2;
        return 0;
    }
    if (b0 < 0xf0) {
        uint8_t lo = b0 == 0xe0 ? 0xa0 : 0x80;
        uint8_t hi = b0 == 0xed ? 0x9f : 0xbf;
        if (q[1] >= lo && q[1] <= hi && (q[2] & 0xc0) == 0x80)
            return 3;
        return 0;
    }
    if (b0 <= 0xf4) {
        uint8_t lo = b0 == 0xf0 ? 0x90 : 0x80;
        uint8_t hi = b0 == 0xf4 ? 0x8f : 0xbf;
        if (q[1] >= lo && q[1] <= hi && (q[2] & 0xc0) == 0x80 &&
            (q[3] & 0xc0) == 0x80)
            return 4;
    }
    return 0;
}

/* ---- AVX2 block validation -------------------------------------------- */

#if defined(UTF8_X86)
/* Error bits for a pair (previous byte, this byte). Each of the three
 * tables maps one nibble to the set of errors that nibble allows; a pair is
 * wrong when some bit survives in all three. Two errors can share a bit when
 * no byte pair matches both halves of both (e.g. F0 80 and F5 80). */
#define E_TOO_SHORT (1 << 0)  /* lead followed by ASCII or another lead */
#define E_TOO_LONG (1 << 1)   /* ASCII followed by a continuation */
#define E_OVERLONG3 (1 << 2)  /* E0 80..9F */
#define E_TOO_LARGE (1 << 3)  /* F4 90..BF, F5..FF 90..BF */
#define E_SURROGATE (1 << 4)  /* ED A0..BF */
#define E_OVERLONG2 (1 << 5)  /* C0/C1 followed by a continuation */
#define E_OVERLONG4 (1 << 6)  /* F0 80..8F */
#define E_TOO_LARGE8 (1 << 6) /* F5..FF 80..8F */
#define E_TWO_CONTS (1 << 7)  /* continuation after continuation: an error
                               * unless the lead 2 or 3 bytes back wants it */
#define E_HIGH_ONLY (E_TOO_SHORT | E_TOO_LONG | E_TWO_CONTS)

static const uint8_t byte1_high[16] = {
    /* 0..7: ASCII */
    E_TOO_LONG, E_TOO_LONG, E_TOO_LONG, E_TOO_LONG,
    E_TOO_LONG, E_TOO_LONG, E_TOO_LONG, E_TOO_LONG,
    /* 8..B: continuation */
    E_TWO_CONTS, E_TWO_CONTS, E_TWO_CONTS, E_TWO_CONTS,
    /* C, D: 2-byte leads */
    E_TOO_SHORT | E_OVERLONG2, E_TOO_SHORT,
    /* E: 3-byte leads */
    E_TOO_SHORT | E_OVERLONG3 | E_SURROGATE,
    /* F: 4-byte leads and F5..FF */
    E_TOO_SHORT | E_TOO_LARGE | E_TOO_LARGE8 | E_OVERLONG4,
};
static const uint8_t byte1_low[16] = {
    E_HIGH_ONLY | E_OVERLONG3 | E_OVERLONG2 | E_OVERLONG4,  /* x0 */
    E_HIGH_ONLY | E_OVERLONG2,                              /* x1 */
    E_HIGH_ONLY, E_HIGH_ONLY,                               /* x2, x3 */
    E_HIGH_ONLY | E_TOO_LARGE,                              /* x4 */
    E_HIGH_ONLY | E_TOO_LARGE | E_TOO_LARGE8,               /* x5 */
    E_HIGH_ONLY | E_TOO_LARGE | E_TOO_LARGE8,
    E_HIGH_ONLY | E_TOO_LARGE | E_TOO_LARGE8,
    E_HIGH_ONLY | E_TOO_LARGE | E_TOO_LARGE8,
    E_HIGH_ONLY | E_TOO_LARGE | E_TOO_LARGE8,
    E_HIGH_ONLY | E_TOO_LARGE | E_TOO_LARGE8,
    E_HIGH_ONLY | E_TOO_LARGE | E_TOO_LARGE8,
    E_HIGH_ONLY | E_TOO_LARGE | E_TOO_LARGE8,               /* xC */
    E_HIGH_ONLY | E_TOO_LARGE | E_TOO_LARGE8 | E_SURROGATE, /* xD */
    E_HIGH_ONLY | E_TOO_LARGE | E_TOO_LARGE8,
    E_HIGH_ONLY | E_TOO_LARGE | E_TOO_LARGE8,
};
static const uint8_t byte2_high[16] = {
    /* 0..7: ASCII */
    E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT,
    E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT,
    /* 8: 80..8F */
    E_TOO_LONG | E_OVERLONG2 | E_TWO_CONTS | E_OVERLONG3 | E_TOO_LARGE8 |
        E_OVERLONG4,
    /* 9: 90..9F */
    E_TOO_LONG | E_OVERLONG2 | E_TWO_CONTS | E_OVERLONG3 | E_TOO_LARGE,
    /* A, B: A0..BF */
    E_TOO_LONG | E_OVERLONG2 | E_TWO_CONTS | E_SURROGATE | E_TOO_LARGE,
    E_TOO_LONG | E_OVERLONG2 | E_TWO_CONTS | E_SURROGATE | E_TOO_LARGE,
    /* C..F: leads */
    E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT,
};

/* A 16-entry table in both 128-bit lanes, for _mm256_shuffle_epi8. */
#define TABLE16(t) \
    _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(t)))

/* The bytes of cur shifted up by n positions (n = 1..3), the gap filled with
 * the last n bytes of prev. */
#define PREV_N(cur, prev, n)                                                  \
    _mm256_alignr_epi8((cur), _mm256_permute2x128_si256((prev), (cur), 0x21), \
                       16 - (n))

__attribute__((target("avx2")))
static inline __m256i block_errors(__m256i in, __m256i prev)
{
    const __m256i nib = _mm256_set1_epi8(0x0f);

    __m256i prev1 = PREV_N(in, prev, 1);
    __m256i p1_hi = _mm256_and_si256(_mm256_srli_epi16(prev1, 4), nib);
    __m256i p1_lo = _mm256_and_si256(prev1, nib);
    __m256i in_hi = _mm256_and_si256(_mm256_srli_epi16(in, 4), nib);
    __m256i sc = _mm256_and_si256(
        _mm256_and_si256(_mm256_shuffle_epi8(TABLE16(byte1_high), p1_hi),
                         _mm256_shuffle_epi8(TABLE16(byte1_low), p1_lo)),
        _mm256_shuffle_epi8(TABLE16(byte2_high), in_hi));

    /* A continuation is owed here exactly when the byte 2 back is E0..FF or
     * the byte 3 back is F0..FF (anything wrong with those leads themselves
     * is caught at their own next byte). Saturating subtraction moves those
     * ranges to 80..FF, so bit 7 says "owed". */
    __m256i prev2 = PREV_N(in, prev, 2);
    __m256i prev3 = PREV_N(in, prev, 3);
    __m256i owed = _mm256_or_si256(
        _mm256_subs_epu8(prev2, _mm256_set1_epi8((char)(0xe0 - 0x80))),
        _mm256_subs_epu8(prev3, _mm256_set1_epi8((char)(0xf0 - 0x80))));
    owed = _mm256_and_si256(owed, _mm256_set1_epi8((char)0x80));
    /* E_TWO_CONTS (bit 7) is right exactly when owed, so XOR cancels it. */
    return _mm256_xor_si256(sc, owed);
}

/* Non-zero where the block ends inside a code point: the last byte is a
 * lead, the second last a 3- or 4-byte lead, or the third last a 4-byte
 * lead (or any of those is F5..FF). */
__attribute__((target("avx2")))
static inline __m256i block_open_end(__m256i in)
{
    const __m256i max = _mm256_setr_epi8(
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        (char)0xef, (char)0xdf, (char)0xbf);
    return _mm256_subs_epu8(in, max);
}

/* The code point boundary at or just before q, for a q that ends input
 * which the blocks before it accepted: the start of the sequence holding
 * q - 1 when that sequence may be open or starts with a bad lead, else q. */
static size_t boundary_before(const uint8_t *p, size_t lo, size_t q)
{
    for (size_t k = 1; k <= 3 && k <= q - lo; k++) {
        uint8_t c = p[q - k];
        if (c < 0x80)
            return q;
        if (c >= 0xc0)
            return q - k;
    }
    /* Three continuations: a 4-byte sequence that the blocks accepted. */
    return q;
}

/* Validate 32-byte blocks from p + i while whole blocks fit. Returns a code
 * point boundary b with [i, b) valid and complete; *bad says whether a block
 * at or after b was refused (the DFA must then run from b to find where). */
__attribute__((target("avx2")))
static size_t run_avx2(const uint8_t *p, size_t i, size_t len, bool *bad)
{
    __m256i prev = _mm256_setzero_si256(); /* i is a boundary: as if ASCII */
    __m256i open_end = _mm256_setzero_si256();
    size_t q = i;
    *bad = false;
    for (; len - q >= 32; q += 32) {
        __m256i in = _mm256_loadu_si256((const __m256i *)(const void *)(p + q));
        if (_mm256_movemask_epi8(in) == 0) {
            /* All ASCII: wrong only if the previous block left a code
             * point open. ASCII bytes before a block act like the zeros
             * of a fresh start, so prev can be reset. */
            if (!_mm256_testz_si256(open_end, open_end)) {
                *bad = true;
                break;
            }
            open_end = _mm256_setzero_si256();
            prev = _mm256_setzero_si256();
            /* Stay here while the next two blocks are ASCII too. */
            while (len - q >= 96) {
                __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(p + q + 32));
                __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + q + 64));
                if (_mm256_movemask_epi8(_mm256_or_si256(a, b)) != 0)
                    break;
                q += 64;
            }
            continue;
        }
        __m256i err = block_errors(in, prev);
        if (!_mm256_testz_si256(err, err)) {
            *bad = true;
            break;
        }
        open_end = block_open_end(in);
        prev = in;
    }
    return boundary_before(p, i, q);
}

bool utf8__has_avx2(void)
{
    return __builtin_cpu_supports("avx2");
}
#else
bool utf8__has_avx2(void)
{
    return false;
}
#endif

/* ---- the fast driver --------------------------------------------------- */

static inline size_t feed_fast(struct utf8_state *s, const uint8_t *p,
                               size_t len, bool avx2)
{
    uint32_t st = s->st;
    size_t i = 0;
    if (st == UTF8_REJECT)
        return 0;
    assert(st < S_REJECT);
    /* Close a code point left open by the previous call (<= 3 bytes). */
    while (st != S_ACCEPT && i < len) {
        st = next_state[st][byte_class[p[i]]];
        if (st == S_REJECT) {
            s->st = UTF8_REJECT;
            return i;
        }
        i++;
    }
    if (st != S_ACCEPT) {
        s->st = st;
        return len;
    }
#if defined(UTF8_X86)
    if (avx2 && len - i >= 32) {
        bool bad;
        i = run_avx2(p, i, len, &bad);
        if (bad)
            return dfa_run(s, S_ACCEPT, p, i, len);
    }
#else
    (void)avx2;
#endif
    /* Invariant: i is a code point boundary. */
    while (i < len) {
        i = ascii_skip(p, i, len);
        while (len - i >= 4 && p[i] >= 0x80) {
            size_t n = seq_len(p + i);
            if (n == 0) /* invalid: let the DFA say at which byte */
                return dfa_run(s, S_ACCEPT, p, i, len);
            i += n;
        }
        if (len - i < 4) /* a short tail may end inside a code point */
            return dfa_run(s, S_ACCEPT, p, i, len);
    }
    s->st = S_ACCEPT;
    return len;
}

size_t utf8__feed_sse2(struct utf8_state *s, const uint8_t *p, size_t len)
{
    return feed_fast(s, p, len, false);
}

size_t utf8__feed_avx2(struct utf8_state *s, const uint8_t *p, size_t len)
{
    return feed_fast(s, p, len, true);
}

size_t utf8_feed(struct utf8_state *s, const uint8_t *p, size_t len)
{
    /* Below one block the AVX2 path would not run anyway. */
#if defined(UTF8_X86)
    if (len >= 32 && __builtin_cpu_supports("avx2"))
        return feed_fast(s, p, len, true);
#endif
    return feed_fast(s, p, len, false);
}
