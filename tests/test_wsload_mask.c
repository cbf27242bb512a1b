/* Tests for bench/wsload/mask.c: the fused mask-and-copy and
 * mask-and-compare, scalar and AVX2 twins and the dispatching entry points,
 * against a byte-by-byte reference (RFC 6455 §5.3), for lengths 0..257 at
 * every alignment and phase; a single flipped byte anywhere must make the
 * comparison fail. The AVX2 cases are skipped on CPUs without it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bench/wsload/wsload.h"

#define MAX_LEN 257
#define MAX_ALIGN 32
#define GUARD 64
#define CANARY 0xA5

typedef void (*copy_fn)(uint8_t *, const uint8_t *, size_t, const uint8_t[4], size_t);
typedef bool (*equal_fn)(const uint8_t *, const uint8_t *, size_t, const uint8_t[4], size_t);

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint8_t rnd(void)
{
    rng_state ^= rng_state >> 12; /* xorshift64*, fixed seed */
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint8_t)((rng_state * 0x2545F4914F6CDD1Du) >> 56);
}

static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d}; /* RFC 6455 §5.7 */

static void check_copy(copy_fn f)
{
    static uint8_t src[MAX_ALIGN + MAX_LEN], dst[GUARD + MAX_ALIGN + MAX_LEN + GUARD];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = rnd();
    for (size_t len = 0; len <= MAX_LEN; len++)
        for (size_t al = 0; al < MAX_ALIGN; al++)
            for (size_t phase = 0; phase < 4; phase++) {
                memset(dst, CANARY, sizeof dst);
                uint8_t *d = dst + GUARD + al;
                const uint8_t *s = src + (al * 7) % MAX_ALIGN;
                f(d, s, len, key, phase);
                for (size_t i = 0; i < len; i++)
                    assert_int_equal(d[i], (uint8_t)(s[i] ^ key[(phase + i) % 4]));
                for (uint8_t *g = dst; g < d; g++)
                    assert_int_equal(*g, CANARY);
                for (uint8_t *g = d + len; g < dst + sizeof dst; g++)
                    assert_int_equal(*g, CANARY);
            }
}

static void check_equal(equal_fn f)
{
    static uint8_t want[MAX_ALIGN + MAX_LEN], got[MAX_ALIGN + MAX_LEN];
    for (size_t i = 0; i < sizeof want; i++)
        want[i] = rnd();
    for (size_t len = 0; len <= MAX_LEN; len++)
        for (size_t al = 0; al < MAX_ALIGN; al += 3)
            for (size_t phase = 0; phase < 4; phase++) {
                uint8_t *g = got + al;
                const uint8_t *w = want + (al * 5) % MAX_ALIGN;
                for (size_t i = 0; i < len; i++)
                    g[i] = (uint8_t)(w[i] ^ key[(phase + i) % 4]);
                assert_true(f(g, w, len, key, phase));
                for (size_t bad = 0; bad < len; bad++) {
                    uint8_t flip = (uint8_t)(1u << (bad % 8));
                    g[bad] ^= flip;
                    assert_false(f(g, w, len, key, phase));
                    g[bad] ^= flip;
                }
                if (len) /* the wrong phase is a mismatch too */
                    assert_false(f(g, w, len, key, phase + 1));
            }
}

static void test_copy_scalar(void **state)
{
    (void)state;
    check_copy(wl__mask_copy_scalar);
}

static void test_copy_dispatch(void **state)
{
    (void)state;
    check_copy(wl_mask_copy);
}

static void test_copy_avx2(void **state)
{
    (void)state;
    if (!__builtin_cpu_supports("avx2"))
        skip();
    check_copy(wl__mask_copy_avx2);
}

static void test_equal_scalar(void **state)
{
    (void)state;
    check_equal(wl__mask_equal_scalar);
}

static void test_equal_dispatch(void **state)
{
    (void)state;
    check_equal(wl_mask_equal);
}

static void test_equal_avx2(void **state)
{
    (void)state;
    if (!__builtin_cpu_supports("avx2"))
        skip();
    check_equal(wl__mask_equal_avx2);
}

/* RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d. */
static void test_rfc_hello(void **state)
{
    (void)state;
    static const uint8_t masked[5] = {0x7f, 0x9f, 0x4d, 0x51, 0x58};
    uint8_t out[5];
    wl_mask_copy(out, (const uint8_t *)"Hello", 5, key, 0);
    assert_memory_equal(out, masked, 5);
    assert_true(wl_mask_equal(masked, (const uint8_t *)"Hello", 5, key, 0));
    assert_false(wl_mask_equal(masked, (const uint8_t *)"Hellp", 5, key, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_scalar),  cmocka_unit_test(test_copy_dispatch),
        cmocka_unit_test(test_copy_avx2),    cmocka_unit_test(test_equal_scalar),
        cmocka_unit_test(test_equal_dispatch), cmocka_unit_test(test_equal_avx2),
        cmocka_unit_test(test_rfc_hello),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
