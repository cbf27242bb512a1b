/* net/relay: the multi-producer inbox (single-threaded order, a chain pushed
 * with one compare-and-swap, then four producer threads against one
 * consumer: every node exactly once, each producer's nodes in order, and a
 * wake-up signalled whenever the consumer could have found the inbox empty),
 * channel names and the ?echo=1 query. The threaded test is meant to run
 * under SAN=thread too. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/relay.h"

struct item {
    struct relay_node node; /* first: a node pointer is the item pointer */
    uint32_t producer, seq;
};

static void test_inbox_fifo_single_thread(void **state)
{
    (void)state;
    struct relay_inbox q = {0};
    struct item it[5];
    assert_null(relay_inbox_take(&q));
    for (uint32_t i = 0; i < 5; i++) {
        it[i].seq = i;
        /* Only the first push finds the inbox empty. */
        assert_int_equal(relay_inbox_push(&q, &it[i].node), i == 0);
    }
    struct relay_node *n = relay_inbox_take(&q);
    for (uint32_t i = 0; i < 5; i++, n = n->next) {
        assert_non_null(n);
        assert_int_equal(((struct item *)n)->seq, i);
    }
    assert_null(n);
    assert_null(relay_inbox_take(&q));
    assert_true(relay_inbox_push(&q, &it[0].node)); /* empty again */
}

/* A chain pushed with one CAS comes out oldest first, after what was
 * already there and before what comes later. */
static void test_inbox_chain(void **state)
{
    (void)state;
    struct relay_inbox q = {0};
    struct item it[6];
    for (uint32_t i = 0; i < 6; i++)
        it[i].seq = i;
    assert_true(relay_inbox_push(&q, &it[0].node));
    /* 1, 2, 3 linked newest first, the way a worker collects them. */
    it[3].node.next = &it[2].node;
    it[2].node.next = &it[1].node;
    it[1].node.next = NULL;
    assert_false(relay_inbox_push_chain(&q, &it[3].node, &it[1].node));
    assert_false(relay_inbox_push(&q, &it[4].node));
    struct relay_node *n = relay_inbox_take(&q);
    for (uint32_t i = 0; i < 5; i++, n = n->next) {
        assert_non_null(n);
        assert_int_equal(((struct item *)n)->seq, i);
    }
    assert_null(n);
    it[5].node.next = NULL; /* a one-node chain into an empty inbox */
    assert_true(relay_inbox_push_chain(&q, &it[5].node, &it[5].node));
    n = relay_inbox_take(&q);
    assert_ptr_equal(n, &it[5].node);
    assert_null(n->next);
}

#define PRODUCERS 4
#define PER_PRODUCER 50000

struct shared {
    struct relay_inbox q;
    struct item *items; /* PRODUCERS * PER_PRODUCER */
    _Atomic uint32_t wakes, done_producers;
};

struct prod_arg {
    struct shared *sh;
    uint32_t id;
    bool chains; /* push runs of 1..8 nodes with relay_inbox_push_chain */
};

static void *producer(void *arg)
{
    struct prod_arg *pa = arg;
    struct item *base = pa->sh->items + (size_t)pa->id * PER_PRODUCER;
    for (uint32_t i = 0; i < PER_PRODUCER;) {
        uint32_t run = pa->chains ? 1 + (i / 3 + pa->id) % 8 : 1;
        if (run > PER_PRODUCER - i)
            run = PER_PRODUCER - i;
        for (uint32_t k = 0; k < run; k++) {
            base[i + k].producer = pa->id;
            base[i + k].seq = i + k;
            if (k > 0) /* newest first: each node points at the one before it */
                base[i + k].node.next = &base[i + k - 1].node;
        }
        bool was_empty = pa->chains
            ? relay_inbox_push_chain(&pa->sh->q, &base[i + run - 1].node, &base[i].node)
            : relay_inbox_push(&pa->sh->q, &base[i].node);
        if (was_empty)
            atomic_fetch_add(&pa->sh->wakes, 1);
        i += run;
    }
    atomic_fetch_add(&pa->sh->done_producers, 1);
    return NULL;
}

static void run_producers(bool chains)
{
    struct shared sh = {0};
    sh.items = calloc((size_t)PRODUCERS * PER_PRODUCER, sizeof *sh.items);
    assert_non_null(sh.items);
    pthread_t th[PRODUCERS];
    struct prod_arg args[PRODUCERS];
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        args[i] = (struct prod_arg){&sh, i, chains};
        assert_int_equal(pthread_create(&th[i], NULL, producer, &args[i]), 0);
    }
    uint32_t next[PRODUCERS] = {0};
    uint64_t got = 0, batches = 0;
    uint32_t wakes_used = 0;
    for (;;) {
        bool finished = atomic_load(&sh.done_producers) == PRODUCERS;
        struct relay_node *n = relay_inbox_take(&sh.q);
        if (n) {
            batches++;
            /* A non-empty take consumes at least one "was empty" wake-up:
             * the push that started this batch saw an empty inbox. */
            wakes_used++;
        }
        for (; n; n = n->next) {
            struct item *it = (struct item *)n;
            assert_true(it->producer < PRODUCERS);
            assert_int_equal(it->seq, next[it->producer]); /* per-producer order, no loss, no repeat */
            next[it->producer]++;
            got++;
        }
        if (finished && !n && got == (uint64_t)PRODUCERS * PER_PRODUCER)
            break;
        if (finished && got != (uint64_t)PRODUCERS * PER_PRODUCER && !sh.q.head)
            fail_msg("producers done, %llu of %u nodes seen", (unsigned long long)got,
                     PRODUCERS * PER_PRODUCER);
    }
    for (uint32_t i = 0; i < PRODUCERS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_null(relay_inbox_take(&sh.q));
    /* Exactly one wake-up per batch the consumer took: never a batch without
     * a wake-up signal (a lost wake-up would leave a sleeping consumer). */
    assert_int_equal(atomic_load(&sh.wakes), wakes_used);
    assert_true(batches >= 1);
    free(sh.items);
}

static void test_inbox_many_producers(void **state)
{
    (void)state;
    run_producers(false);
}

/* The same with producers pushing whole chains (a worker's per-pass batch
 * for another worker) racing each other. */
static void test_inbox_many_producers_chains(void **state)
{
    (void)state;
    run_producers(true);
}

static void test_names(void **state)
{
    (void)state;
    static const char *const good[] = {"a", "Z", "0", "a.b_c-d", "ABCxyz019"};
    static const char *const bad[] = {"", "a b", "a/b", "a%20", "caf\xc3\xa9", "a:b", "a?b", "a\x00"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(relay_name_ok((const uint8_t *)good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(relay_name_ok((const uint8_t *)bad[i], strlen(bad[i]) + (i == 7)));
    uint8_t longest[RELAY_NAME_MAX + 1];
    memset(longest, 'n', sizeof longest);
    assert_true(relay_name_ok(longest, RELAY_NAME_MAX));
    assert_false(relay_name_ok(longest, RELAY_NAME_MAX + 1));
}

static bool echo_q(const char *s)
{
    return relay_query_echo((const uint8_t *)s, strlen(s));
}

static void test_echo_query(void **state)
{
    (void)state;
    assert_true(echo_q("?echo=1"));
    assert_true(echo_q("echo=1"));
    assert_true(echo_q("?a=2&echo=1"));
    assert_true(echo_q("?echo=1&a=2"));
    assert_false(echo_q(""));
    assert_false(echo_q("?"));
    assert_false(echo_q("?echo=0"));
    assert_false(echo_q("?echo=10"));
    assert_false(echo_q("?xecho=1"));
    assert_false(echo_q("?echo"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inbox_fifo_single_thread),
        cmocka_unit_test(test_inbox_chain),
        cmocka_unit_test(test_inbox_many_producers),
        cmocka_unit_test(test_inbox_many_producers_chains),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_echo_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
