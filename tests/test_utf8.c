/* Tests for core/utf8.c: the cases of Markus Kuhn's "UTF-8 decoder
 * capability and stress test" (UTF-8-test.txt, sections named per case),
 * judged by RFC 3629 (so 5- and 6-byte forms and U+110000.. are invalid),
 * each with its exact failing offset; every case whole, split at every
 * offset and byte at a time, through every variant; every case embedded in
 * longer text at every position of a 32-byte block; and the fast variants
 * against the scalar DFA on random mixed text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/utf8.h"

typedef size_t (*feed_fn)(struct utf8_state *s, const uint8_t *p, size_t len);

/* Expected verdict: complete and valid, valid so far but inside a code
 * point (not done), or the failing offset. */
#define OK ((size_t)-1)
#define OPEN ((size_t)-2)

struct tcase {
    const char *name;
    const char *bytes;
    size_t len;
    size_t expect; /* OK, OPEN, or failing offset */
};

#define TC(name, lit, expect) {name, lit, sizeof(lit) - 1, expect}

static const struct tcase cases[] = {
    /* 1: some correct UTF-8 text (Greek "kosme"). */
    TC("1 kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", OK),
    TC("autobahn 6.2", "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", OK),
    TC("empty", "", OK),
    /* 2.1: first possible sequence of a certain length. */
    TC("2.1.1 U+0000", "\x00", OK),
    TC("2.1.2 U+0080", "\xc2\x80", OK),
    TC("2.1.3 U+0800", "\xe0\xa0\x80", OK),
    TC("2.1.4 U+10000", "\xf0\x90\x80\x80", OK),
    TC("2.1.5 5-byte U+200000", "\xf8\x88\x80\x80\x80", 0),
    TC("2.1.6 6-byte U+4000000", "\xfc\x84\x80\x80\x80\x80", 0),
    /* 2.2: last possible sequence of a certain length. */
    TC("2.2.1 U+007F", "\x7f", OK),
    TC("2.2.2 U+07FF", "\xdf\xbf", OK),
    TC("2.2.3 U+FFFF", "\xef\xbf\xbf", OK),
    TC("2.2.4 U+1FFFFF", "\xf7\xbf\xbf\xbf", 0),
    TC("2.2.5 5-byte U+3FFFFFF", "\xfb\xbf\xbf\xbf\xbf", 0),
    TC("2.2.6 6-byte U+7FFFFFFF", "\xfd\xbf\xbf\xbf\xbf\xbf", 0),
    /* 2.3: other boundary conditions. */
    TC("2.3.1 U+D7FF", "\xed\x9f\xbf", OK),
    TC("2.3.2 U+E000", "\xee\x80\x80", OK),
    TC("2.3.3 U+FFFD", "\xef\xbf\xbd", OK),
    TC("2.3.4 U+10FFFF", "\xf4\x8f\xbf\xbf", OK),
    TC("2.3.5 U+110000", "\xf4\x90\x80\x80", 1),
    /* 3.1: unexpected continuation bytes. */
    TC("3.1.1 first cont", "\x80", 0),
    TC("3.1.2 last cont", "\xbf", 0),
    TC("3.1.3 2 conts", "\x80\xbf", 0),
    TC("3.1.4 3 conts", "\x80\xbf\x80", 0),
    TC("3.1.5 4 conts", "\x80\xbf\x80\xbf", 0),
    TC("3.1.6 5 conts", "\x80\xbf\x80\xbf\x80", 0),
    TC("3.1.7 6 conts", "\x80\xbf\x80\xbf\x80\xbf", 0),
    TC("3.1.8 7 conts", "\x80\xbf\x80\xbf\x80\xbf\x80", 0),
    TC("cont after ASCII", "ab\x80", 2),
    TC("cont after 2-byte", "\xc3\xa9\x80", 2),
    TC("cont after 3-byte", "\xe2\x82\xac\xbf", 3),
    TC("cont after 4-byte", "\xf0\x9f\x98\x80\x80", 4),
    /* 3.2: lonely start characters, each followed by a space. */
    TC("3.2.1 C0 sp", "\xc0\x20", 0),
    TC("3.2.1 C1 sp", "\xc1\x20", 0),
    TC("3.2.1 C2 sp", "\xc2\x20", 1),
    TC("3.2.1 DF sp", "\xdf\x20", 1),
    TC("3.2.2 E0 sp", "\xe0\x20", 1),
    TC("3.2.2 EF sp", "\xef\x20", 1),
    TC("3.2.3 F0 sp", "\xf0\x20", 1),
    TC("3.2.3 F4 sp", "\xf4\x20", 1),
    TC("3.2.3 F5 sp", "\xf5\x20", 0),
    TC("3.2.3 F7 sp", "\xf7\x20", 0),
    TC("3.2.4 F8 sp", "\xf8\x20", 0),
    TC("3.2.5 FC sp", "\xfc\x20", 0),
    TC("3.2 two lonely", "\xc2\x20\xc3\x20", 1),
    /* 3.3: sequences with the last continuation byte missing, at the end
     * of input: valid so far, not done. */
    TC("3.3.1 C2", "\xc2", OPEN),
    TC("3.3.2 E0 A0", "\xe0\xa0", OPEN),
    TC("3.3.3 F0 90 80", "\xf0\x90\x80", OPEN),
    TC("3.3.4 5-byte F8 88 80 80", "\xf8\x88\x80\x80", 0),
    TC("3.3.5 6-byte FC 84 80 80 80", "\xfc\x84\x80\x80\x80", 0),
    TC("3.3.6 DF", "\xdf", OPEN),
    TC("3.3.7 EF BF", "\xef\xbf", OPEN),
    TC("3.3.8 F4 8F BF", "\xf4\x8f\xbf", OPEN),
    TC("3.3.9 5-byte FB BF BF BF", "\xfb\xbf\xbf\xbf", 0),
    TC("3.3.10 6-byte FD BF BF BF BF", "\xfd\xbf\xbf\xbf\xbf", 0),
    TC("3.3 E1", "\xe1", OPEN),
    TC("3.3 F1 80", "\xf1\x80", OPEN),
    TC("3.3 missing then ASCII", "\xe2\x82x", 2),
    TC("3.3 missing then lead", "\xf0\x9f\x98\xc3\xa9", 3),
    /* 3.4: concatenation of the incomplete sequences of 3.3. */
    TC("3.4 concatenated", "\xc2\xe0\xa0\xf0\x90\x80\xf8\x88\x80\x80", 1),
    TC("3.4 concatenated last", "\xdf\xef\xbf\xf4\x8f\xbf", 1),
    /* 3.5: impossible bytes. */
    TC("3.5.1 FE", "\xfe", 0),
    TC("3.5.2 FF", "\xff", 0),
    TC("3.5.3 FE FE FF FF", "\xfe\xfe\xff\xff", 0),
    TC("3.5 FF after text", "ok\xff", 2),
    /* 4.1: overlong '/'. */
    TC("4.1.1 C0 AF", "\xc0\xaf", 0),
    TC("4.1.2 E0 80 AF", "\xe0\x80\xaf", 1),
    TC("4.1.3 F0 80 80 AF", "\xf0\x80\x80\xaf", 1),
    TC("4.1.4 F8 80 80 80 AF", "\xf8\x80\x80\x80\xaf", 0),
    TC("4.1.5 FC 80 80 80 80 AF", "\xfc\x80\x80\x80\x80\xaf", 0),
    /* 4.2: maximum overlong sequences. */
    TC("4.2.1 C1 BF", "\xc1\xbf", 0),
    TC("4.2.2 E0 9F BF", "\xe0\x9f\xbf", 1),
    TC("4.2.3 F0 8F BF BF", "\xf0\x8f\xbf\xbf", 1),
    TC("4.2.4 F8 87 BF BF BF", "\xf8\x87\xbf\xbf\xbf", 0),
    TC("4.2.5 FC 83 BF BF BF BF", "\xfc\x83\xbf\xbf\xbf\xbf", 0),
    /* 4.3: overlong NUL. */
    TC("4.3.1 C0 80", "\xc0\x80", 0),
    TC("4.3.2 E0 80 80", "\xe0\x80\x80", 1),
    TC("4.3.3 F0 80 80 80", "\xf0\x80\x80\x80", 1),
    TC("4.3.4 F8 80 80 80 80", "\xf8\x80\x80\x80\x80", 0),
    TC("4.3.5 FC 80 80 80 80 80", "\xfc\x80\x80\x80\x80\x80", 0),
    /* Fail-fast: no byte after these can make them valid. */
    TC("E0 80", "\xe0\x80", 1),
    TC("ED A0", "\xed\xa0", 1),
    TC("F4 90", "\xf4\x90", 1),
    TC("F0 80", "\xf0\x80", 1),
    TC("F0 8F", "\xf0\x8f", 1),
    TC("C0", "\xc0", 0),
    /* 5.1: single UTF-16 surrogates. */
    TC("5.1.1 U+D800", "\xed\xa0\x80", 1),
    TC("5.1.2 U+DB7F", "\xed\xad\xbf", 1),
    TC("5.1.3 U+DB80", "\xed\xae\x80", 1),
    TC("5.1.4 U+DBFF", "\xed\xaf\xbf", 1),
    TC("5.1.5 U+DC00", "\xed\xb0\x80", 1),
    TC("5.1.6 U+DF80", "\xed\xbe\x80", 1),
    TC("5.1.7 U+DFFF", "\xed\xbf\xbf", 1),
    /* 5.2: paired UTF-16 surrogates. */
    TC("5.2.1 U+D800 U+DC00", "\xed\xa0\x80\xed\xb0\x80", 1),
    TC("5.2.2 U+D800 U+DFFF", "\xed\xa0\x80\xed\xbf\xbf", 1),
    TC("5.2.3 U+DB7F U+DC00", "\xed\xad\xbf\xed\xb0\x80", 1),
    TC("5.2.4 U+DB7F U+DFFF", "\xed\xad\xbf\xed\xbf\xbf", 1),
    TC("5.2.5 U+DB80 U+DC00", "\xed\xae\x80\xed\xb0\x80", 1),
    TC("5.2.6 U+DB80 U+DFFF", "\xed\xae\x80\xed\xbf\xbf", 1),
    TC("5.2.7 U+DBFF U+DC00", "\xed\xaf\xbf\xed\xb0\x80", 1),
    TC("5.2.8 U+DBFF U+DFFF", "\xed\xaf\xbf\xed\xbf\xbf", 1),
    TC("surrogate after text", "abc\xed\xb2\x80", 4),
    /* 5.3: noncharacters are valid UTF-8. */
    TC("5.3.1 U+FFFE", "\xef\xbf\xbe", OK),
    TC("5.3.2 U+FFFF", "\xef\xbf\xbf", OK),
    TC("5.3.3 U+FDD0", "\xef\xb7\x90", OK),
    TC("5.3.3 U+FDEF", "\xef\xb7\xaf", OK),
    TC("5.3.4 U+1FFFE U+1FFFF", "\xf0\x9f\xbf\xbe\xf0\x9f\xbf\xbf", OK),
    TC("5.3.4 U+10FFFE", "\xf4\x8f\xbf\xbe", OK),
    /* More: every lead just inside its limits. */
    TC("U+E1 range", "\xe1\x80\x80\xec\xbf\xbf\xee\x80\x80", OK),
    TC("F1..F3", "\xf1\x80\x80\x80\xf3\xbf\xbf\xbf", OK),
    TC("ED 80 80", "\xed\x80\x80", OK),
    TC("ED C0", "\xed\xc0", 1),
    TC("E0 C0", "\xe0\xc0", 1),
    TC("mixed scripts",
       "na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xd0\xb4\xd0\xb0", OK),
};

#define N_CASES (sizeof cases / sizeof cases[0])

/* The variants under test: the scalar DFA, the public entry and both
 * fast variants (avx2 only when the CPU has it). */
static size_t n_variants(void)
{
    return utf8__has_avx2() ? 4 : 3;
}

static feed_fn variant(size_t i)
{
    static const feed_fn fns[] = {utf8__feed_scalar, utf8_feed, utf8__feed_sse2,
                                  utf8__feed_avx2};
    return fns[i];
}

static const char *variant_name(size_t i)
{
    static const char *const names[] = {"scalar", "utf8_feed", "sse2", "avx2"};
    return names[i];
}

/* Feed [p, p + len) in pieces ending at the sorted cuts, each piece copied
 * into its own exact-size heap block (so a sanitizer sees any overread).
 * Returns the overall verdict in the OK/OPEN/offset form. */
static size_t feed_pieces(feed_fn fn, const uint8_t *p, size_t len,
                          const size_t *cuts, size_t n_cuts)
{
    struct utf8_state s = {0};
    size_t start = 0;
    for (size_t c = 0; c <= n_cuts; c++) {
        size_t end = c < n_cuts ? cuts[c] : len;
        size_t n = end - start;
        uint8_t *piece = malloc(n ? n : 1);
        assert_non_null(piece);
        if (n)
            memcpy(piece, p + start, n);
        size_t r = fn(&s, piece, n);
        free(piece);
        if (r != n) {
            assert_int_equal(s.st, UTF8_REJECT);
            assert_true(r < n);
            /* A failed state stays failed and reads nothing. */
            uint8_t more = 'x';
            assert_int_equal(fn(&s, &more, 1), 0);
            assert_false(utf8_done(&s));
            return start + r;
        }
        assert_true(s.st != UTF8_REJECT);
        start = end;
    }
    return utf8_done(&s) ? OK : OPEN;
}

static void check_all_ways(const char *name, const uint8_t *p, size_t len,
                           size_t expect)
{
    size_t *cuts = malloc((len + 1) * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t v = 0; v < n_variants(); v++) {
        feed_fn fn = variant(v);
        size_t got = feed_pieces(fn, p, len, NULL, 0);
        if (got != expect)
            fail_msg("%s [%s whole]: got %zd, want %zd", name, variant_name(v),
                     (ssize_t)got, (ssize_t)expect);
        for (size_t cut = 0; cut <= len; cut++) {
            cuts[0] = cut;
            got = feed_pieces(fn, p, len, cuts, 1);
            if (got != expect)
                fail_msg("%s [%s cut at %zu]: got %zd, want %zd", name,
                         variant_name(v), cut, (ssize_t)got, (ssize_t)expect);
        }
        for (size_t i = 0; i < len; i++)
            cuts[i] = i + 1;
        got = feed_pieces(fn, p, len, cuts, len ? len - 1 : 0);
        if (got != expect)
            fail_msg("%s [%s bytewise]: got %zd, want %zd", name,
                     variant_name(v), (ssize_t)got, (ssize_t)expect);
    }
    free(cuts);
}

static void test_kuhn_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CASES; i++)
        check_all_ways(cases[i].name, (const uint8_t *)cases[i].bytes,
                       cases[i].len, cases[i].expect);
}

/* Section 3.1.9 and 3.2.1..3.2.3 in full: every continuation byte alone,
 * all 64 in a row, and every lead byte followed by a space. */
static void test_kuhn_byte_ranges(void **state)
{
    (void)state;
    uint8_t all[64];
    for (int b = 0x80; b <= 0xbf; b++) {
        uint8_t one = (uint8_t)b;
        check_all_ways("3.1 lone cont", &one, 1, 0);
        all[b - 0x80] = (uint8_t)b;
    }
    check_all_ways("3.1.9 all 64 conts", all, sizeof all, 0);
    for (int b = 0xc0; b <= 0xff; b++) {
        uint8_t two[2] = {(uint8_t)b, ' '};
        size_t want = (b <= 0xc1 || b >= 0xf5) ? 0 : 1;
        check_all_ways("3.2 lead + space", two, 2, want);
        /* Alone at the end of input: open if it could start a code point. */
        check_all_ways("lead alone", two, 1, want ? OPEN : 0);
    }
}

/* Every case placed at every offset 0..64 of a line of ASCII and 2-byte
 * text, so each straddles 16- and 32-byte block edges, with text after it.
 * The verdict follows from the case's own: valid stays valid, an open code
 * point fails at the first byte after the case, a failure moves by the
 * offset. */
static void test_cases_embedded(void **state)
{
    (void)state;
    static const char filler[] = "abc\xc3\xa9" "defgh\xc3\xb6" "ijklmnopq";
    uint8_t buf[256];
    for (size_t i = 0; i < N_CASES; i++) {
        const struct tcase *tc = &cases[i];
        for (size_t at = 0; at <= 64; at++) {
            for (int latin = 0; latin < 2; latin++) {
                /* Prefix: ASCII only, or whole code points of the filler
                 * (1 or 2 bytes each) while they fit in at bytes. */
                const char *src = latin ? filler : "0123456789";
                size_t n = 0, j = 0;
                for (;;) {
                    if (src[j] == '\0')
                        j = 0;
                    size_t k = (uint8_t)src[j] >= 0xc0 ? 2 : 1;
                    if (n + k > at)
                        break;
                    memcpy(buf + n, src + j, k);
                    n += k;
                    j += k;
                }
                size_t pre = n;
                memcpy(buf + n, tc->bytes, tc->len);
                n += tc->len;
                memset(buf + n, 'z', 40);
                n += 40;
                size_t want = tc->expect == OK     ? OK
                              : tc->expect == OPEN ? pre + tc->len
                                                   : pre + tc->expect;
                char name[128];
                snprintf(name, sizeof name, "%s @%zu%s", tc->name, pre,
                         latin ? " latin" : "");
                for (size_t v = 0; v < n_variants(); v++) {
                    size_t got = feed_pieces(variant(v), buf, n, NULL, 0);
                    if (got != want)
                        fail_msg("%s [%s]: got %zd, want %zd", name,
                                 variant_name(v), (ssize_t)got, (ssize_t)want);
                }
            }
        }
    }
}

/* A deterministic generator (splitmix64). */
static uint64_t rng_next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint32_t rng_below(uint64_t *x, uint32_t n)
{
    return (uint32_t)(rng_next(x) % n);
}

static size_t put_cp(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xc0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xe0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (uint8_t)(0xf0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* Fill len bytes with text in one of several styles: mostly valid code
 * points of a chosen mix, with rare corruption (a random byte, a dropped
 * byte, a surrogate, an overlong), so that long valid stretches and errors
 * at all positions both occur. */
static void gen_text(uint64_t *x, uint8_t *o, size_t len)
{
    uint32_t style = rng_below(x, 6);
    uint32_t corrupt_per_mille = rng_below(x, 3) == 0 ? 0 : rng_below(x, 30);
    size_t n = 0;
    while (n < len) {
        uint8_t tmp[8];
        size_t k;
        uint32_t r = rng_below(x, 1000);
        if (r < corrupt_per_mille) {
            switch (rng_below(x, 5)) {
            case 0: tmp[0] = (uint8_t)rng_next(x); k = 1; break;
            case 1: k = put_cp(tmp, 0x800 + rng_below(x, 0x10000 - 0x800)); k--; break;
            case 2: k = put_cp(tmp, 0xd800 + rng_below(x, 0x800)); break;
            case 3: tmp[0] = 0xe0; tmp[1] = (uint8_t)(0x80 + rng_below(x, 0x20));
                    tmp[2] = 0x80; k = 3; break;
            default: tmp[0] = 0xf4; tmp[1] = (uint8_t)(0x80 + rng_below(x, 0x40));
                    tmp[2] = 0x80; tmp[3] = 0x80; k = 4; break;
            }
        } else {
            uint32_t kind = style == 5 ? rng_below(x, 4) : style;
            if (style == 4) /* Latin-heavy: mostly ASCII, some 2-byte */
                kind = rng_below(x, 8) == 0 ? 1 : 0;
            uint32_t cp;
            switch (kind) {
            case 0: cp = 0x20 + rng_below(x, 0x5f); break;
            case 1: cp = 0x80 + rng_below(x, 0x800 - 0x80); break;
            case 2:
                cp = 0x800 + rng_below(x, 0x10000 - 0x800);
                if (cp >= 0xd800 && cp < 0xe000)
                    cp -= 0x800;
                break;
            default: cp = 0x10000 + rng_below(x, 0x110000 - 0x10000); break;
            }
            k = put_cp(tmp, cp);
        }
        if (k > len - n)
            k = len - n;
        memcpy(o + n, tmp, k);
        n += k;
    }
}

/* Every variant equals the scalar DFA (offset and end state) on random
 * text at every length 0..300 and every start alignment 0..31, whole and
 * cut in three. */
static void test_random_differential(void **state)
{
    (void)state;
    uint64_t x = 0x5eed0f00dull;
    uint8_t text[300];
    for (size_t len = 0; len <= 300; len++) {
        for (size_t align = 0; align < 32; align++) {
            gen_text(&x, text, len);
            /* The input ends exactly at the end of its allocation. */
            uint8_t *block = malloc(align + len + 1);
            assert_non_null(block);
            uint8_t *p = block + align;
            memcpy(p, text, len);
            struct utf8_state ref = {0};
            size_t want = utf8__feed_scalar(&ref, p, len);
            for (size_t v = 1; v < n_variants(); v++) {
                struct utf8_state s = {0};
                size_t got = variant(v)(&s, p, len);
                if (got != want || s.st != ref.st)
                    fail_msg("len %zu align %zu [%s]: got %zu/%u, want %zu/%u",
                             len, align, variant_name(v), got, s.st, want, ref.st);
            }
            free(block);
            size_t cuts[2] = {rng_below(&x, (uint32_t)len + 1),
                              rng_below(&x, (uint32_t)len + 1)};
            if (cuts[0] > cuts[1]) {
                size_t t = cuts[0];
                cuts[0] = cuts[1];
                cuts[1] = t;
            }
            size_t whole = feed_pieces(utf8__feed_scalar, text, len, NULL, 0);
            for (size_t v = 0; v < n_variants(); v++)
                assert_int_equal(feed_pieces(variant(v), text, len, cuts, 2), whole);
        }
    }
}

/* Long inputs: a valid megabyte-scale text in each style is accepted, and a
 * single corrupted byte at spread positions is found exactly. */
static void test_long_inputs(void **state)
{
    (void)state;
    uint64_t x = 42;
    size_t len = 1 << 16;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    for (int round = 0; round < 24; round++) {
        /* Valid text of one script, padded with ASCII. */
        uint32_t cp_kind = (uint32_t)round % 4;
        size_t n = 0;
        while (n + 4 <= len) {
            uint32_t cp = cp_kind == 0   ? 0x20 + rng_below(&x, 0x5f)
                          : cp_kind == 1 ? 0xa0 + rng_below(&x, 0x700)
                          : cp_kind == 2 ? 0x4e00 + rng_below(&x, 0x5000)
                                         : 0x1f300 + rng_below(&x, 0x300);
            n += put_cp(buf + n, cp);
        }
        memset(buf + n, 'a', len - n);
        for (size_t v = 0; v < n_variants(); v++) {
            struct utf8_state s = {0};
            assert_int_equal(variant(v)(&s, buf, len), len);
            assert_true(utf8_done(&s));
        }
        size_t at = rng_below(&x, (uint32_t)len);
        uint8_t saved = buf[at];
        buf[at] = 0xff;
        for (size_t v = 0; v < n_variants(); v++) {
            struct utf8_state s = {0};
            assert_int_equal(variant(v)(&s, buf, len), at);
        }
        buf[at] = saved;
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kuhn_cases),
        cmocka_unit_test(test_kuhn_byte_ranges),
        cmocka_unit_test(test_cases_embedded),
        cmocka_unit_test(test_random_differential),
        cmocka_unit_test(test_long_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
