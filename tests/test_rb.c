/* Tests for core/rb.c: the contracts in core/rb.h, then a long random run
 * against a plain byte-string model with canaries in the RB_SLACK bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/rb.h"

#define CANARY 0x5A

static uint64_t rng_state = 0x0123456789ABCDEFu;

static uint64_t rng(void)
{
    /* xorshift64*, fixed seed. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Du;
}

/* cap + RB_SLACK bytes; the slack holds canaries. */
static uint8_t *new_mem(size_t cap)
{
    uint8_t *m = malloc(cap + RB_SLACK);
    assert_non_null(m);
    memset(m, 0, cap);
    memset(m + cap, CANARY, RB_SLACK);
    return m;
}

static void assert_slack_intact(const uint8_t *mem, size_t cap)
{
    for (size_t i = 0; i < RB_SLACK; i++)
        assert_int_equal(mem[cap + i], CANARY);
}

/* Append the bytes lo, lo+1, ... (mod 256) through reserve/commit. */
static void put_seq(struct rb *b, size_t n, uint8_t lo)
{
    size_t avail = 0;
    uint8_t *w = rb_reserve(b, n, &avail);
    assert_non_null(w);
    assert_true(avail >= n);
    for (size_t i = 0; i < n; i++)
        w[i] = (uint8_t)(lo + i);
    rb_commit(b, n);
}

static void assert_seq(const struct rb *b, uint8_t lo)
{
    const uint8_t *d = rb_data(b);
    for (size_t i = 0; i < rb_len(b); i++)
        assert_int_equal(d[i], (uint8_t)(lo + i));
}

static void test_init_empty(void **state)
{
    (void)state;
    uint8_t *m = new_mem(100);
    struct rb b;
    rb_init(&b, m, 100);
    assert_int_equal(rb_len(&b), 0);
    assert_int_equal(rb_room(&b), 100);
    assert_ptr_equal(rb_data(&b), m);
    free(m);
}

static void test_reserve_commit_consume(void **state)
{
    (void)state;
    uint8_t *m = new_mem(64);
    struct rb b;
    rb_init(&b, m, 64);
    size_t avail = 0;
    uint8_t *w = rb_reserve(&b, 10, &avail);
    assert_ptr_equal(w, m);
    assert_int_equal(avail, 64); /* the whole contiguous free length */
    memcpy(w, "abcdefghij", 10);
    rb_commit(&b, 6); /* committing less than written is allowed */
    assert_int_equal(rb_len(&b), 6);
    assert_memory_equal(rb_data(&b), "abcdef", 6);
    rb_consume(&b, 2);
    assert_int_equal(rb_len(&b), 4);
    assert_memory_equal(rb_data(&b), "cdef", 4);
    w = rb_reserve(&b, 1, &avail);
    assert_ptr_equal(w, m + 6);
    assert_int_equal(avail, 58);
    assert_slack_intact(m, 64);
    free(m);
}

/* An emptied buffer rewinds to the front without any reserve. */
static void test_rewind_on_empty(void **state)
{
    (void)state;
    uint8_t *m = new_mem(32);
    struct rb b;
    rb_init(&b, m, 32);
    put_seq(&b, 20, 0);
    rb_consume(&b, 5);
    assert_int_equal(b.head, 5);
    rb_consume(&b, 15);
    assert_int_equal(b.head, 0);
    assert_int_equal(b.tail, 0);
    assert_int_equal(rb_room(&b), 32);
    /* consume(0) on an empty buffer keeps it rewound. */
    rb_consume(&b, 0);
    assert_int_equal(b.tail, 0);
    free(m);
}

/* With room after tail, reserve never moves bytes even though head > 0. */
static void test_no_compaction_when_room(void **state)
{
    (void)state;
    uint8_t *m = new_mem(100);
    struct rb b;
    rb_init(&b, m, 100);
    put_seq(&b, 50, 1);
    rb_consume(&b, 30);
    uint8_t *before = rb_data(&b);
    size_t avail;
    uint8_t *w = rb_reserve(&b, 50, &avail); /* exactly the room left */
    assert_ptr_equal(w, m + 50);
    assert_int_equal(avail, 50);
    assert_ptr_equal(rb_data(&b), before);
    assert_int_equal(b.head, 30);
    assert_seq(&b, 31);
    free(m);
}

/* Short of room with unconsumed bytes: they move to the front intact. */
static void test_compaction_preserves_bytes(void **state)
{
    (void)state;
    uint8_t *m = new_mem(100);
    struct rb b;
    rb_init(&b, m, 100);
    put_seq(&b, 90, 7);
    rb_consume(&b, 60); /* 30 bytes left at [60, 90), 10 free after tail */
    size_t avail;
    uint8_t *w = rb_reserve(&b, 11, &avail);
    assert_non_null(w);
    assert_int_equal(b.head, 0);
    assert_int_equal(b.tail, 30);
    assert_ptr_equal(w, m + 30);
    assert_int_equal(avail, 70);
    assert_seq(&b, (uint8_t)(7 + 60));
    assert_slack_intact(m, 100);

    /* Overlapping move: 60 bytes at [20, 80) to [0, 60). */
    rb_init(&b, m, 100);
    put_seq(&b, 80, 3);
    rb_consume(&b, 20);
    w = rb_reserve(&b, 40, &avail);
    assert_non_null(w);
    assert_int_equal(rb_len(&b), 60);
    assert_int_equal(avail, 40);
    assert_seq(&b, (uint8_t)(3 + 20));
    free(m);
}

/* NULL when even a move cannot make min bytes; nothing changes. */
static void test_reserve_null_when_full(void **state)
{
    (void)state;
    uint8_t *m = new_mem(50);
    struct rb b;
    rb_init(&b, m, 50);
    assert_null(rb_reserve(&b, 51, NULL));
    put_seq(&b, 40, 9);
    rb_consume(&b, 10); /* 30 bytes, 20 free in total, 10 after tail */
    size_t avail = 123;
    assert_null(rb_reserve(&b, 21, &avail));
    assert_int_equal(b.head, 10);
    assert_int_equal(b.tail, 40);
    assert_seq(&b, 19);
    /* Exactly the total free space succeeds (by moving). */
    assert_non_null(rb_reserve(&b, 20, &avail));
    assert_int_equal(avail, 20);
    assert_seq(&b, 19);
    /* min 0 on a full buffer: a valid, empty view. */
    put_seq(&b, 20, 0);
    assert_int_equal(rb_len(&b), 50);
    assert_non_null(rb_reserve(&b, 0, &avail));
    assert_int_equal(avail, 0);
    assert_slack_intact(m, 50);
    free(m);
}

static void test_append(void **state)
{
    (void)state;
    uint8_t *m = new_mem(16);
    struct rb b;
    rb_init(&b, m, 16);
    assert_true(rb_append(&b, "0123456789", 10));
    assert_true(rb_append(&b, "", 0));
    assert_false(rb_append(&b, "abcdefg", 7)); /* 6 free */
    assert_int_equal(rb_len(&b), 10);
    assert_memory_equal(rb_data(&b), "0123456789", 10);
    rb_consume(&b, 4);
    assert_true(rb_append(&b, "abcdefghij", 10)); /* fits only after a move */
    assert_int_equal(rb_len(&b), 16);
    assert_memory_equal(rb_data(&b), "456789abcdefghij", 16);
    assert_false(rb_append(&b, "x", 1));
    assert_memory_equal(rb_data(&b), "456789abcdefghij", 16);
    assert_slack_intact(m, 16);
    free(m);
}

static void test_migrate(void **state)
{
    (void)state;
    uint8_t *m1 = new_mem(64), *m2 = new_mem(256), *m3 = new_mem(20);
    struct rb b;
    rb_init(&b, m1, 64);
    put_seq(&b, 60, 100);
    rb_consume(&b, 40);
    /* Grow. */
    assert_ptr_equal(rb_migrate(&b, m2, 256), m1);
    assert_ptr_equal(b.mem, m2);
    assert_int_equal(b.cap, 256);
    assert_int_equal(b.head, 0);
    assert_int_equal(rb_len(&b), 20);
    assert_seq(&b, 140);
    /* Shrink to exactly rb_len(). */
    assert_ptr_equal(rb_migrate(&b, m3, 20), m2);
    assert_int_equal(rb_room(&b), 0);
    assert_seq(&b, 140);
    assert_null(rb_reserve(&b, 1, NULL));
    rb_consume(&b, 20);
    /* An empty buffer migrates to a zero-capacity one (an idle connection). */
    uint8_t *m4 = new_mem(0);
    assert_ptr_equal(rb_migrate(&b, m4, 0), m3);
    assert_int_equal(rb_len(&b), 0);
    assert_slack_intact(m2, 256);
    assert_slack_intact(m3, 20);
    assert_slack_intact(m4, 0);
    free(m4);
    free(m3);
    free(m2);
    free(m1);
}

/* Random operations against a model. Checks after every step: contents equal
 * the model, reserved views end at or before cap (API users never need the
 * slack), the slack canaries survive, compaction happens only when the room
 * after tail was short, and an empty buffer is rewound. */
static void test_random_against_model(void **state)
{
    (void)state;
    enum { CAP_A = 97, CAP_B = 300, STEPS = 200000 };
    uint8_t *mem[2] = {new_mem(CAP_A), new_mem(CAP_B)};
    size_t caps[2] = {CAP_A, CAP_B};
    int cur = 0;
    uint8_t model[CAP_B];
    size_t mlen = 0;
    uint8_t next = 0;
    struct rb b;
    rb_init(&b, mem[0], CAP_A);
    for (int step = 0; step < STEPS; step++) {
        size_t cap = caps[cur];
        switch (rng() % 5) {
        case 0: { /* reserve + commit part of it */
            size_t min = (size_t)(rng() % (cap + 2));
            size_t head0 = b.head, tail0 = b.tail, avail;
            uint8_t *w = rb_reserve(&b, min, &avail);
            if (cap - mlen < min) {
                assert_null(w);
                assert_int_equal(b.head, head0);
                assert_int_equal(b.tail, tail0);
                break;
            }
            assert_non_null(w);
            if (cap - tail0 >= min) /* compaction only when needed */
                assert_int_equal(b.head, head0);
            else
                assert_int_equal(b.head, 0);
            assert_ptr_equal(w, b.mem + b.tail);
            assert_int_equal(avail, cap - b.tail);
            assert_true(w + avail <= b.mem + cap);
            size_t n = avail ? (size_t)(rng() % (avail + 1)) : 0;
            for (size_t i = 0; i < n; i++)
                model[mlen++] = w[i] = next++;
            rb_commit(&b, n);
            break;
        }
        case 1:
        case 2: { /* consume */
            size_t n = mlen ? (size_t)(rng() % (mlen + 1)) : 0;
            rb_consume(&b, n);
            memmove(model, model + n, mlen - n);
            mlen -= n;
            break;
        }
        case 3: { /* append */
            uint8_t src[CAP_B + 1];
            size_t n = (size_t)(rng() % (cap / 2 + 1));
            for (size_t i = 0; i < n; i++)
                src[i] = (uint8_t)(next + i);
            bool ok = rb_append(&b, src, n);
            assert_int_equal(ok, cap - mlen >= n);
            if (ok) {
                memcpy(model + mlen, src, n);
                mlen += n;
                next = (uint8_t)(next + n);
            }
            break;
        }
        default: /* migrate to the other buffer when the bytes fit */
            if (mlen <= caps[!cur]) {
                assert_ptr_equal(rb_migrate(&b, mem[!cur], caps[!cur]), mem[cur]);
                cur = !cur;
                memset(mem[!cur], 0xEE, caps[!cur]); /* old memory is garbage now */
            }
            break;
        }
        assert_int_equal(rb_len(&b), mlen);
        assert_true(b.tail <= b.cap);
        if (mlen == 0)
            assert_int_equal(b.tail, 0);
        assert_true(memcmp(rb_data(&b), model, mlen) == 0);
        assert_slack_intact(mem[0], CAP_A);
        assert_slack_intact(mem[1], CAP_B);
    }
    free(mem[1]);
    free(mem[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_empty),
        cmocka_unit_test(test_reserve_commit_consume),
        cmocka_unit_test(test_rewind_on_empty),
        cmocka_unit_test(test_no_compaction_when_room),
        cmocka_unit_test(test_compaction_preserves_bytes),
        cmocka_unit_test(test_reserve_null_when_full),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_migrate),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
