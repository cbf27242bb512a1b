/* Tests for core/ws_unmask.c: every SIMD variant and the dispatched
 * ws_unmask() against the scalar one, which is itself checked against a
 * byte-by-byte reference written here; bounds (canaries and guard pages); the
 * returned phase; RFC 6455 §5.7 vectors. Variants the CPU lacks are skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/ws_unmask.h"

#define MAX_LEN 1024
#define MAX_ALIGN 64
#define GUARD 128 /* canary bytes each side */
#define CANARY 0xA5

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rng(void)
{
    /* xorshift64*, fixed seed: deterministic runs. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Du;
}

static void fill_random(uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(rng() >> 56);
}

/* The definition in RFC 6455 §5.3, one byte at a time. */
static void ref_unmask(uint8_t *p, size_t len, const uint8_t key[4], size_t phase)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(p[i] ^ key[(phase + i) % 4]);
}

struct variant {
    const char *name; /* for ws_unmask_variant(); "dispatch" means ws_unmask */
};

static struct variant v_scalar = {"scalar"}, v_sse2 = {"sse2"}, v_avx2 = {"avx2"},
                      v_avx512 = {"avx512"}, v_dispatch = {"dispatch"};

/* The function under test, or NULL after reporting a skip. */
static ws_unmask_fn get_fn(void **state)
{
    const struct variant *v = *state;
    if (strcmp(v->name, "dispatch") == 0)
        return ws_unmask;
    ws_unmask_fn fn = ws_unmask_variant(v->name);
    if (!fn)
        printf("[  SKIP    ] variant %s: not supported by this CPU\n", v->name);
    return fn;
}

static const uint8_t test_key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* fn against expect (scalar or reference) for lengths 0..MAX_LEN, every start
 * alignment 0..63 and every phase, with canaries around the buffer. */
static void check_against(ws_unmask_fn fn, ws_unmask_fn expect_fn)
{
    size_t total = GUARD + MAX_ALIGN + MAX_LEN + GUARD;
    uint8_t *base = aligned_alloc(64, total);
    uint8_t *src = malloc(MAX_LEN);
    uint8_t *want = malloc(MAX_LEN);
    assert_non_null(base);
    assert_non_null(src);
    assert_non_null(want);
    uint8_t key[4];
    for (size_t len = 0; len <= MAX_LEN; len++) {
        fill_random(src, len);
        fill_random(key, 4);
        for (size_t phase = 0; phase < 4; phase++) {
            memcpy(want, src, len);
            size_t want_phase;
            if (expect_fn) {
                want_phase = expect_fn(want, len, key, phase);
            } else {
                ref_unmask(want, len, key, phase);
                want_phase = (phase + len) % 4;
            }
            for (size_t align = 0; align < MAX_ALIGN; align++) {
                uint8_t *p = base + GUARD + align;
                memset(base, CANARY, total);
                memcpy(p, src, len);
                size_t got_phase = fn(p, len, key, phase);
                if (got_phase != want_phase || memcmp(p, want, len) != 0)
                    fail_msg("len %zu align %zu phase %zu: phase %zu want %zu, bytes %s",
                             len, align, phase, got_phase, want_phase,
                             memcmp(p, want, len) ? "differ" : "equal");
                for (uint8_t *c = base; c < p; c++)
                    if (*c != CANARY)
                        fail_msg("len %zu align %zu phase %zu: wrote %zu bytes before p",
                                 len, align, phase, (size_t)(p - c));
                for (uint8_t *c = p + len; c < base + total; c++)
                    if (*c != CANARY)
                        fail_msg("len %zu align %zu phase %zu: wrote byte %zu after end",
                                 len, align, phase, (size_t)(c - (p + len)));
            }
        }
    }
    free(want);
    free(src);
    free(base);
}

/* The scalar reference itself, against the byte loop above. */
static void test_scalar_matches_definition(void **state)
{
    (void)state;
    check_against(ws__unmask_scalar, NULL);
}

/* Every variant (and ws_unmask) equals scalar, with canaries intact. */
static void test_variant_matches_scalar(void **state)
{
    ws_unmask_fn fn = get_fn(state);
    if (!fn) {
        skip();
        return;
    }
    check_against(fn, ws__unmask_scalar);
}

/* No read or write outside [p, p + len): the range touches a PROT_NONE page
 * on one side, so any access past it faults. Catches over-reads that canaries
 * cannot see. */
static void test_variant_guard_pages(void **state)
{
    ws_unmask_fn fn = get_fn(state);
    if (!fn) {
        skip();
        return;
    }
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t data = (MAX_LEN + pg - 1) / pg * pg;
    uint8_t *map = mmap(NULL, pg + data + pg, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map, pg, PROT_NONE), 0);
    assert_int_equal(mprotect(map + pg + data, pg, PROT_NONE), 0);
    uint8_t *lo = map + pg, *hi = map + pg + data;
    uint8_t src[MAX_LEN], want[MAX_LEN];
    uint8_t key[4];
    for (size_t len = 0; len <= MAX_LEN; len++) {
        fill_random(src, len);
        fill_random(key, 4);
        for (size_t phase = 0; phase < 4; phase++) {
            memcpy(want, src, len);
            ref_unmask(want, len, key, phase);
            /* Ends at the upper guard page, then starts at the lower one. */
            uint8_t *starts[2] = {hi - len, lo};
            for (int s = 0; s < 2; s++) {
                uint8_t *p = starts[s];
                memcpy(p, src, len);
                assert_int_equal(fn(p, len, key, phase), (phase + len) % 4);
                assert_true(memcmp(p, want, len) == 0);
            }
        }
    }
    assert_int_equal(munmap(map, pg + data + pg), 0);
}

/* Large buffers (several unrolled iterations, odd alignment and length). */
static void test_variant_large(void **state)
{
    ws_unmask_fn fn = get_fn(state);
    if (!fn) {
        skip();
        return;
    }
    static const size_t lens[] = {65536, 65536 + 37, (1u << 20) + 3};
    size_t max = (1u << 20) + 3 + 64;
    uint8_t *a = malloc(max), *b = malloc(max);
    assert_non_null(a);
    assert_non_null(b);
    uint8_t key[4];
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t align = (size_t)(rng() % 64), phase = (size_t)(rng() % 4);
        fill_random(key, 4);
        fill_random(a + align, lens[i]);
        memcpy(b + align, a + align, lens[i]);
        size_t pa = fn(a + align, lens[i], key, phase);
        size_t pb = ws__unmask_scalar(b + align, lens[i], key, phase);
        assert_int_equal(pa, pb);
        assert_memory_equal(a + align, b + align, lens[i]);
    }
    free(b);
    free(a);
}

/* A payload unmasked in pieces (as reads arrive) equals one whole call: the
 * returned phase carries the mask across calls. Pieces alternate between the
 * variant under test and scalar. */
static void test_variant_split_chain(void **state)
{
    ws_unmask_fn fn = get_fn(state);
    if (!fn) {
        skip();
        return;
    }
    enum { LEN = 4099 };
    static uint8_t src[LEN], want[LEN], got[LEN];
    fill_random(src, LEN);
    memcpy(want, src, LEN);
    ref_unmask(want, LEN, test_key, 0);
    for (int round = 0; round < 200; round++) {
        memcpy(got, src, LEN);
        size_t off = 0, phase = 0;
        int which = 0;
        while (off < LEN) {
            size_t n = (size_t)(rng() % (round < 100 ? 9 : 300));
            if (n > LEN - off)
                n = LEN - off;
            ws_unmask_fn f = (which++ & 1) ? ws__unmask_scalar : fn;
            size_t next = f(got + off, n, test_key, phase);
            assert_int_equal(next, (phase + n) & 3);
            phase = next;
            off += n;
        }
        assert_memory_equal(got, want, LEN);
    }
}

/* RFC 6455 §5.7: "A single-frame masked text message" carries "Hello" with
 * key 37 fa 21 3d; unmasking the payload at every split point yields it. */
static void test_variant_rfc_hello(void **state)
{
    ws_unmask_fn fn = get_fn(state);
    if (!fn) {
        skip();
        return;
    }
    static const uint8_t frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                    0x7f, 0x9f, 0x4d, 0x51, 0x58};
    const uint8_t *key = frame + 2;
    for (size_t cut = 0; cut <= 5; cut++) {
        uint8_t payload[5];
        memcpy(payload, frame + 6, 5);
        size_t ph = fn(payload, cut, key, 0);
        assert_int_equal(ph, cut & 3);
        assert_int_equal(fn(payload + cut, 5 - cut, key, ph), 5 & 3);
        assert_memory_equal(payload, "Hello", 5);
    }
    /* Masking is its own inverse: masking "Hello" gives the frame's bytes. */
    uint8_t hello[5];
    memcpy(hello, "Hello", 5);
    fn(hello, 5, key, 0);
    assert_memory_equal(hello, frame + 6, 5);
}

/* ws_unmask is bound to the widest variant this CPU supports, and
 * ws_unmask_impl names it. */
static void test_dispatch_binding(void **state)
{
    (void)state;
    static const char *order[] = {"avx512", "avx2", "sse2", "scalar"};
    const char *best = NULL;
    for (size_t i = 0; i < 4 && !best; i++)
        if (ws_unmask_variant(order[i]))
            best = order[i];
    assert_non_null(best);
    assert_string_equal(ws_unmask_impl(), best);
    printf("ws_unmask is bound to %s\n", ws_unmask_impl());
    assert_non_null(ws_unmask_variant("scalar"));
    assert_ptr_equal(ws_unmask_variant("scalar"), ws__unmask_scalar);
    assert_null(ws_unmask_variant("avx3"));
    assert_null(ws_unmask_variant(""));
    assert_null(ws_unmask_variant(NULL));
}

/* One entry per variant, named "test/variant" so a failure says which. */
#define ONE(test, v) {#test "/" #v, test, NULL, NULL, &v_##v}
#define PER_VARIANT(test)                                              \
    ONE(test, scalar), ONE(test, sse2), ONE(test, avx2), ONE(test, avx512), \
        ONE(test, dispatch)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_matches_definition),
        cmocka_unit_test(test_dispatch_binding),
        PER_VARIANT(test_variant_matches_scalar),
        PER_VARIANT(test_variant_guard_pages),
        PER_VARIANT(test_variant_large),
        PER_VARIANT(test_variant_split_chain),
        PER_VARIANT(test_variant_rfc_hello),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
