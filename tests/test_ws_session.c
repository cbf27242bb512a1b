/* core/ws_session: every input is fed whole, one byte at a time and split at
 * every offset, and the three must produce the same transcript (events of a
 * streamed frame are joined back into one frame first). Then one test per
 * RFC 6455 rule the session enforces, the close handshake both ways,
 * streaming with mask phase continuity, limits and client mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/ws_session.h"

/* ---- building wire bytes ------------------------------------------------ */

struct wire {
    uint8_t *d;
    size_t n, cap;
};

static void wire_raw(struct wire *w, const void *src, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->d = realloc(w->d, w->cap);
        assert_non_null(w->d);
    }
    memcpy(w->d + w->n, src, n);
    w->n += n;
}

static const uint8_t K[4] = {0x37, 0xfa, 0x21, 0x3d}; /* RFC 6455 §5.7 key */

/* One frame: b0 carries FIN, RSV and opcode as they go on the wire; key NULL
 * sends it unmasked. The test masks with its own XOR, not ws_unmask. */
static void wire_frame(struct wire *w, uint8_t b0, const void *pl, size_t len,
                       const uint8_t *key)
{
    uint8_t h[WS_MAX_HDR];
    size_t hn = ws_frame_header_encode(h, b0 & 0x0f, (b0 & 0x80) != 0, len, key);
    h[0] |= b0 & 0x70;
    wire_raw(w, h, hn);
    size_t at = w->n;
    wire_raw(w, pl, len);
    for (size_t i = 0; key && i < len; i++)
        w->d[at + i] ^= key[i & 3];
}

#define FIN 0x80
#define TXT(w, b0, s, key) wire_frame(w, b0, s, sizeof s - 1, key)

/* ---- transcripts -------------------------------------------------------- */

struct tr {
    char *s;
    size_t n, cap;
    uint8_t *frame; /* a DATA frame's chunks, joined */
    size_t flen, fcap;
    bool fopen, ffirst;
    uint8_t fop;
};

static void tr_printf(struct tr *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(k >= 0);
    if (t->n + (size_t)k + 1 > t->cap) {
        t->cap = (t->n + (size_t)k + 1) * 2;
        t->s = realloc(t->s, t->cap);
        assert_non_null(t->s);
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    t->n += (size_t)k;
}

static uint32_t fnv1a(const uint8_t *p, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Short payloads verbatim (non-printables as \xHH), long ones as
 * "<len>#<fnv1a>". */
static void tr_bytes(struct tr *t, const uint8_t *p, size_t len)
{
    if (len > 64) {
        tr_printf(t, "%zu#%08x", len, fnv1a(p, len));
        return;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
            tr_printf(t, "%c", p[i]);
        else
            tr_printf(t, "\\x%02x", p[i]);
    }
}

static void tr_event(struct tr *t, const struct ws_event *ev)
{
    switch (ev->type) {
    case WS_EV_NONE:
        return;
    case WS_EV_DATA:
        assert_true(ev->opcode == WS_OP_TEXT || ev->opcode == WS_OP_BINARY);
        assert_true(!ev->msg_last || ev->frame_last);
        if (!t->fopen) {
            t->fopen = true;
            t->ffirst = ev->msg_first;
            t->fop = ev->opcode;
            t->flen = 0;
        } else {
            assert_false(ev->msg_first); /* only a frame's first chunk */
            assert_int_equal(ev->opcode, t->fop);
        }
        if (t->flen + ev->len > t->fcap) {
            t->fcap = (t->flen + ev->len) * 2 + 16;
            t->frame = realloc(t->frame, t->fcap);
            assert_non_null(t->frame);
        }
        if (ev->len)
            memcpy(t->frame + t->flen, ev->p, ev->len);
        t->flen += ev->len;
        if (ev->frame_last) {
            tr_printf(t, "%c[%s%s]", ev->opcode == WS_OP_TEXT ? 'T' : 'B',
                      t->ffirst ? "f" : "", ev->msg_last ? "l" : "");
            tr_bytes(t, t->frame, t->flen);
            tr_printf(t, " ");
            t->fopen = false;
        }
        return;
    case WS_EV_PING:
    case WS_EV_PONG:
        tr_printf(t, ev->type == WS_EV_PING ? "ping(" : "pong(");
        tr_bytes(t, ev->p, ev->len);
        tr_printf(t, ") ");
        return;
    case WS_EV_CLOSE:
        tr_printf(t, "close%u(", ev->code);
        tr_bytes(t, ev->p, ev->len);
        tr_printf(t, ") ");
        return;
    }
    fail_msg("bad event type %d", ev->type);
}

/* Feed a fresh copy of in[0, len) to a session configured as cfg, as one
 * contiguous receive buffer into which bytes arrive: first `first` bytes,
 * then `step` more at a time (step 0: the rest at once). After each arrival
 * the session is fed until it needs more. Returns the transcript. */
static char *run(const struct ws_session *cfg, const uint8_t *in, size_t len,
                 size_t first, size_t step)
{
    struct ws_session s = *cfg;
    struct tr t = {0};
    tr_printf(&t, "%s", "");
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    if (len)
        memcpy(buf, in, len);
    size_t pos = 0, have = first < len ? first : len;
    for (;;) {
        struct ws_event ev;
        ptrdiff_t r = ws_session_feed(&s, buf + pos, buf + have, &ev);
        if (r < 0) {
            /* A partly delivered streamed frame depends on the split. */
            t.fopen = false;
            tr_printf(&t, "E%td:%s", r, ws_err_name(s.err));
            /* Sticky: the same result on any later call. */
            enum ws_err_kind k = s.err;
            assert_int_equal(ws_session_feed(&s, buf + pos, buf + len, &ev), r);
            assert_int_equal(ev.type, WS_EV_NONE);
            assert_int_equal(s.err, k);
            break;
        }
        assert_true((size_t)r <= have - pos);
        if (ev.type != WS_EV_NONE && ev.len) {
            assert_true(ev.p >= buf + pos);
            assert_true(ev.p + ev.len <= buf + pos + (size_t)r);
        }
        if (r == 0) {
            assert_int_equal(ev.type, WS_EV_NONE);
            assert_true(s.need > have - pos); /* no loop without progress */
            if (have == len) {
                if (t.fopen) {
                    tr_printf(&t, "P:");
                    tr_bytes(&t, t.frame, t.flen);
                    tr_printf(&t, " ");
                }
                tr_printf(&t, "#%zu need=%llu", pos, (unsigned long long)s.need);
                break;
            }
            have = step == 0 || len - have < step ? len : have + step;
            continue;
        }
        tr_event(&t, &ev);
        pos += (size_t)r;
    }
    free(buf);
    free(t.frame);
    return t.s;
}

/* The transcript of in, after checking that whole, byte-at-a-time and every
 * split into two (a sample of splits for long inputs) agree. */
static char *all_splits(const struct ws_session *cfg, const uint8_t *in,
                        size_t len)
{
    char *whole = run(cfg, in, len, len, 0);
    char *bytes = run(cfg, in, len, 1, 1);
    assert_string_equal(whole, bytes);
    free(bytes);
    for (size_t cut = 0; cut <= len; cut++) {
        if (len > 4096 && cut > 300 && len - cut > 300 && cut % 4093 != 0)
            continue;
        char *two = run(cfg, in, len, cut, 0);
        assert_string_equal(whole, two);
        free(two);
    }
    return whole;
}

static void expect(const struct ws_session *cfg, const struct wire *w,
                   const char *want)
{
    char *got = all_splits(cfg, w->d, w->n);
    assert_string_equal(got, want);
    free(got);
}

static void expect_raw(const struct ws_session *cfg, const uint8_t *in,
                       size_t len, const char *want)
{
    char *got = all_splits(cfg, in, len);
    assert_string_equal(got, want);
    free(got);
}

static const struct ws_session SERVER = {0};
static const struct ws_session CLIENT = {.client = true};

/* ---- RFC 6455 §5.7 examples --------------------------------------------- */

static void test_rfc_masked_hello(void **state)
{
    (void)state;
    static const uint8_t f[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                0x7f, 0x9f, 0x4d, 0x51, 0x58};
    expect_raw(&SERVER, f, sizeof f, "T[fl]Hello #11 need=2");
}

static void test_rfc_unmasked_hello_client(void **state)
{
    (void)state;
    static const uint8_t f[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    expect_raw(&CLIENT, f, sizeof f, "T[fl]Hello #7 need=2");
    /* A server must not accept it. */
    expect_raw(&SERVER, f, sizeof f, "E-1:unmasked");
}

static void test_rfc_fragmented(void **state)
{
    (void)state;
    static const uint8_t f[] = {0x01, 0x03, 0x48, 0x65, 0x6c,
                                0x80, 0x02, 0x6c, 0x6f};
    expect_raw(&CLIENT, f, sizeof f, "T[f]Hel T[l]lo #9 need=2");
    struct wire w = {0};
    TXT(&w, WS_OP_TEXT, "Hel", K);
    TXT(&w, FIN | WS_OP_CONT, "lo", K);
    expect(&SERVER, &w, "T[f]Hel T[l]lo #17 need=2");
    free(w.d);
}

static void test_rfc_ping_pong(void **state)
{
    (void)state;
    static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    expect_raw(&CLIENT, ping, sizeof ping, "ping(Hello) #7 need=2");
    expect_raw(&SERVER, pong, sizeof pong, "pong(Hello) #11 need=2");
    struct wire w = {0};
    TXT(&w, FIN | WS_OP_PING, "", K);
    TXT(&w, FIN | WS_OP_PONG, "", K);
    expect(&SERVER, &w, "ping() pong() #12 need=2");
    free(w.d);
}

/* 256-byte and 64KiB binary frames, as the RFC shows them (unmasked, client
 * side) and masked (server side). */
static void test_rfc_binary_lengths(void **state)
{
    (void)state;
    static const size_t sizes[] = {256, 65536};
    for (size_t i = 0; i < 2; i++) {
        size_t n = sizes[i];
        uint8_t *pl = malloc(n);
        assert_non_null(pl);
        uint32_t x = 12345;
        for (size_t j = 0; j < n; j++) {
            x = x * 1103515245u + 12345u;
            pl[j] = (uint8_t)(x >> 16);
        }
        char want[96];
        for (int masked = 0; masked < 2; masked++) {
            struct wire w = {0};
            wire_frame(&w, FIN | WS_OP_BINARY, pl, n, masked ? K : NULL);
            assert_int_equal(w.d[1] & 0x7f, n == 256 ? 126 : 127);
            snprintf(want, sizeof want, "B[fl]%zu#%08x #%zu need=2", n,
                     fnv1a(pl, n), w.n);
            expect(masked ? &SERVER : &CLIENT, &w, want);
            free(w.d);
        }
        free(pl);
    }
}

/* ---- one test per close-code rule --------------------------------------- */

static void test_unmasked_client_frame(void **state)
{
    (void)state;
    struct wire w = {0};
    TXT(&w, FIN | WS_OP_TEXT, "ok", K);
    TXT(&w, FIN | WS_OP_TEXT, "no mask", NULL);
    expect(&SERVER, &w, "T[fl]ok E-1:unmasked");
    free(w.d);
}

static void test_rsv_bits(void **state)
{
    (void)state;
    static const uint8_t rsv[] = {0x40, 0x20, 0x10, 0x70};
    for (size_t i = 0; i < sizeof rsv; i++) {
        struct wire w = {0};
        TXT(&w, (uint8_t)(FIN | rsv[i] | WS_OP_TEXT), "x", K);
        expect(&SERVER, &w, "E-1:rsv");
        free(w.d);
        /* On a control frame too, and decided from the first two bytes. */
        uint8_t two[2] = {(uint8_t)(FIN | rsv[i] | WS_OP_PING), 0x80};
        expect_raw(&SERVER, two, 2, "E-1:rsv");
    }
}

static void test_reserved_opcodes(void **state)
{
    (void)state;
    static const uint8_t ops[] = {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf};
    for (size_t i = 0; i < sizeof ops; i++) {
        struct wire w = {0};
        TXT(&w, (uint8_t)(FIN | ops[i]), "x", K);
        expect(&SERVER, &w, "E-1:opcode");
        free(w.d);
    }
}

static void test_fragmented_control(void **state)
{
    (void)state;
    static const uint8_t ops[] = {WS_OP_PING, WS_OP_PONG, WS_OP_CLOSE};
    for (size_t i = 0; i < sizeof ops; i++) {
        struct wire w = {0};
        TXT(&w, ops[i], "\x03\xe8", K);
        expect(&SERVER, &w, "E-1:ctrl_fragmented");
        free(w.d);
    }
}

static void test_control_too_long(void **state)
{
    (void)state;
    uint8_t pl[126];
    memset(pl, 'a', sizeof pl);
    struct wire w = {0};
    wire_frame(&w, FIN | WS_OP_PING, pl, 125, K); /* the most allowed */
    wire_frame(&w, FIN | WS_OP_PING, pl, 126, K);
    char want[64];
    snprintf(want, sizeof want, "ping(125#%08x) E-1:ctrl_too_long",
             fnv1a(pl, 125));
    expect(&SERVER, &w, want);
    free(w.d);
    /* Known from byte 1 alone: the payload is never waited for. */
    static const uint8_t hdr[] = {0x88, 0xfe};
    expect_raw(&SERVER, hdr, sizeof hdr, "E-1:ctrl_too_long");
}

static void test_continuation_without_start(void **state)
{
    (void)state;
    struct wire w = {0};
    TXT(&w, FIN | WS_OP_TEXT, "done", K);
    TXT(&w, FIN | WS_OP_CONT, "orphan", K);
    expect(&SERVER, &w, "T[fl]done E-1:bad_cont");
    free(w.d);
}

static void test_new_message_inside_fragmented(void **state)
{
    (void)state;
    static const uint8_t second[] = {WS_OP_TEXT, FIN | WS_OP_TEXT,
                                     FIN | WS_OP_BINARY};
    for (size_t i = 0; i < sizeof second; i++) {
        struct wire w = {0};
        TXT(&w, WS_OP_TEXT, "a", K);
        TXT(&w, second[i], "b", K);
        expect(&SERVER, &w, "T[f]a E-1:not_cont");
        free(w.d);
    }
}

static void test_close_one_byte(void **state)
{
    (void)state;
    struct wire w = {0};
    TXT(&w, FIN | WS_OP_CLOSE, "\x03", K);
    expect(&SERVER, &w, "E-1:close_len");
    free(w.d);
}

static void test_close_codes(void **state)
{
    (void)state;
    static const uint16_t bad[] = {0, 1, 999, 1004, 1005, 1006, 1015, 1016,
                                   1100, 2000, 2999, 5000, 65535};
    static const uint16_t good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                    1010, 1011, 1012, 1013, 1014, 3000, 4000,
                                    4999};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(ws_close_code_valid(bad[i]));
        uint8_t pl[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
        struct wire w = {0};
        wire_frame(&w, FIN | WS_OP_CLOSE, pl, 2, K);
        expect(&SERVER, &w, "E-1:close_code");
        free(w.d);
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_true(ws_close_code_valid(good[i]));
        uint8_t pl[4] = {(uint8_t)(good[i] >> 8), (uint8_t)good[i], 'o', 'k'};
        struct wire w = {0};
        wire_frame(&w, FIN | WS_OP_CLOSE, pl, 4, K);
        char want[64];
        snprintf(want, sizeof want, "close%u(ok) #10 need=1", good[i]);
        expect(&SERVER, &w, want);
        free(w.d);
    }
}

static void test_close_empty_is_1005(void **state)
{
    (void)state;
    struct wire w = {0};
    TXT(&w, FIN | WS_OP_CLOSE, "", K);
    expect(&SERVER, &w, "close1005() #6 need=1");
    free(w.d);
}

static void test_close_reason_utf8(void **state)
{
    (void)state;
    struct wire w = {0};
    TXT(&w, FIN | WS_OP_CLOSE, "\x03\xe8" "caf\xc3\xa9", K);
    expect(&SERVER, &w, "close1000(caf\\xc3\\xa9) #13 need=1");
    free(w.d);
    static const char *const bad[] = {"\x03\xe8\xff", "\x03\xe8\x61\x62\xc3",
                                      "\x03\xe8\xed\xa0\x80"};
    for (size_t i = 0; i < 3; i++) {
        w = (struct wire){0};
        wire_frame(&w, FIN | WS_OP_CLOSE, bad[i], strlen(bad[i]), K);
        expect(&SERVER, &w, "E-2:close_utf8");
        free(w.d);
    }
}

/* ---- UTF-8 of text messages --------------------------------------------- */

static void test_text_invalid_single_frame(void **state)
{
    (void)state;
    struct wire w = {0};
    TXT(&w, FIN | WS_OP_TEXT, "ab\xc0\xafz", K); /* overlong '/' */
    expect(&SERVER, &w, "E-2:utf8");
    free(w.d);
    /* Binary messages are not UTF-8 checked. */
    w = (struct wire){0};
    TXT(&w, FIN | WS_OP_BINARY, "\xc0\xaf", K);
    expect(&SERVER, &w, "B[fl]\\xc0\\xaf #8 need=2");
    free(w.d);
}

/* A code point may span fragments; a bad one is caught in the fragment that
 * rules it out, before the message ends. */
static void test_text_across_fragments(void **state)
{
    (void)state;
    struct wire w = {0};
    TXT(&w, WS_OP_TEXT, "\xe2\x82", K);
    TXT(&w, FIN | WS_OP_CONT, "\xac", K);
    expect(&SERVER, &w, "T[f]\\xe2\\x82 T[l]\\xac #15 need=2");
    free(w.d);

    w = (struct wire){0};
    TXT(&w, WS_OP_TEXT, "ok\xed", K);
    TXT(&w, WS_OP_CONT, "\xa0\x80", K); /* surrogate: fails here */
    TXT(&w, FIN | WS_OP_CONT, "never", K);
    expect(&SERVER, &w, "T[f]ok\\xed E-2:utf8");
    /* Fail-fast: the last fragment is never needed. */
    char *t = run(&SERVER, w.d, w.n - 11, w.n - 11, 0);
    assert_string_equal(t, "T[f]ok\\xed E-2:utf8");
    free(t);
    free(w.d);
}

static void test_text_unfinished_at_end(void **state)
{
    (void)state;
    struct wire w = {0};
    TXT(&w, FIN | WS_OP_TEXT, "a\xe2\x82", K);
    expect(&SERVER, &w, "E-2:utf8");
    free(w.d);
    w = (struct wire){0};
    TXT(&w, WS_OP_TEXT, "a\xe2", K);
    TXT(&w, FIN | WS_OP_CONT, "\x82", K);
    expect(&SERVER, &w, "T[f]a\\xe2 E-2:utf8");
    free(w.d);
    /* A new message starts from a clean state. */
    w = (struct wire){0};
    TXT(&w, FIN | WS_OP_BINARY, "\xe2", K);
    TXT(&w, FIN | WS_OP_TEXT, "\x82", K);
    expect(&SERVER, &w, "B[fl]\\xe2 E-2:utf8");
    free(w.d);
}

/* In a streamed frame the error comes with the chunk holding the bad byte:
 * the bytes after it need not arrive. */
static void test_text_streamed_fail_fast(void **state)
{
    (void)state;
    uint8_t pl[300];
    memset(pl, 'a', sizeof pl);
    pl[100] = 0xff;
    struct wire w = {0};
    wire_frame(&w, FIN | WS_OP_TEXT, pl, sizeof pl, K);
    struct ws_session cfg = {.stream_above = 16};
    expect(&cfg, &w, "E-2:utf8");
    char *t = run(&cfg, w.d, 8 + 101, 8 + 101, 0);
    assert_string_equal(t, "E-2:utf8");
    free(t);
    t = run(&cfg, w.d, 8 + 100, 8 + 100, 0);
    char want[64];
    snprintf(want, sizeof want, "P:100#%08x #108 need=1", fnv1a(pl, 100));
    assert_string_equal(t, want);
    free(t);
    free(w.d);
}

/* ---- control frames, close handshake ------------------------------------ */

static void test_control_interleaved(void **state)
{
    (void)state;
    struct wire w = {0};
    TXT(&w, WS_OP_TEXT, "Hel", K);
    TXT(&w, FIN | WS_OP_PING, "p1", K);
    TXT(&w, WS_OP_CONT, "l", K);
    TXT(&w, FIN | WS_OP_PONG, "p2", K);
    TXT(&w, FIN | WS_OP_CONT, "o", K);
    TXT(&w, FIN | WS_OP_BINARY, "next", K);
    expect(&SERVER, &w,
           "T[f]Hel ping(p1) T[]l pong(p2) T[l]o B[fl]next #49 need=2");
    free(w.d);
}

static void test_close_from_peer_then_silence(void **state)
{
    (void)state;
    struct wire w = {0};
    TXT(&w, FIN | WS_OP_TEXT, "a", K);
    TXT(&w, FIN | WS_OP_CLOSE, "\x03\xe8" "bye", K);
    TXT(&w, FIN | WS_OP_TEXT, "ignored", K);
    wire_raw(&w, "\xff\xff garbage", 10); /* not even a frame */
    expect(&SERVER, &w, "T[fl]a close1000(bye) #41 need=1");
    free(w.d);
}

static void test_close_sent_by_us(void **state)
{
    (void)state;
    struct ws_session s = SERVER;
    uint8_t out[WS_MAX_HDR + 125];
    size_t n = ws_session_close(&s, 1000, "", 0, NULL, out);
    static const uint8_t want[] = {0x88, 0x02, 0x03, 0xe8};
    assert_int_equal(n, sizeof want);
    assert_memory_equal(out, want, sizeof want);
    assert_true(s.close_sent);

    /* Data after our close is dropped (a large frame without being
     * buffered), control frames and the peer's close still come through. */
    static uint8_t big[100000];
    struct wire w = {0};
    TXT(&w, WS_OP_TEXT, "dropped", K);
    TXT(&w, FIN | WS_OP_PING, "still", K);
    wire_frame(&w, FIN | WS_OP_CONT, big, sizeof big, K);
    TXT(&w, FIN | WS_OP_TEXT, "\xff not checked", K);
    TXT(&w, FIN | WS_OP_CLOSE, "\x03\xe8", K);
    TXT(&w, FIN | WS_OP_TEXT, "after", K);
    char want_t[64];
    snprintf(want_t, sizeof want_t, "ping(still) close1000() #%zu need=1", w.n);
    expect(&s, &w, want_t);
    /* Protocol rules still hold while dropping. */
    struct wire v = {0};
    TXT(&v, FIN | WS_OP_CONT, "x", K);
    expect(&s, &v, "E-1:bad_cont");
    free(v.d);
    free(w.d);
}

/* The caller sends its close in the middle of a streamed frame: the rest of
 * that frame is dropped. */
static void test_close_sent_mid_stream(void **state)
{
    (void)state;
    uint8_t pl[64];
    for (size_t i = 0; i < sizeof pl; i++)
        pl[i] = (uint8_t)('A' + i % 26);
    struct wire w = {0};
    wire_frame(&w, FIN | WS_OP_BINARY, pl, sizeof pl, K);
    TXT(&w, FIN | WS_OP_CLOSE, "\x03\xe9", K);
    struct ws_session s = {.stream_above = 8};
    struct ws_event ev;
    ptrdiff_t r = ws_session_feed(&s, w.d, w.d + 6 + 10, &ev);
    assert_int_equal(r, 16);
    assert_int_equal(ev.type, WS_EV_DATA);
    assert_int_equal(ev.len, 10);
    assert_memory_equal(ev.p, pl, 10);
    uint8_t out[WS_MAX_HDR + 125];
    ws_session_close(&s, 1001, "bye", 3, NULL, out);
    r = ws_session_feed(&s, w.d + 16, w.d + w.n, &ev);
    assert_int_equal(r, 54);
    assert_int_equal(ev.type, WS_EV_NONE);
    assert_false(s.in_frame);
    r = ws_session_feed(&s, w.d + 70, w.d + w.n, &ev);
    assert_int_equal(r, 8);
    assert_int_equal(ev.type, WS_EV_CLOSE);
    assert_int_equal(ev.code, 1001);
    assert_int_equal(ev.len, 0);
    free(w.d);
}

static void test_session_close_encoding(void **state)
{
    (void)state;
    uint8_t out[WS_MAX_HDR + 125];
    struct ws_session srv = SERVER;
    assert_int_equal(ws_session_close(&srv, 0, NULL, 0, NULL, out), 2);
    assert_int_equal(out[0], 0x88);
    assert_int_equal(out[1], 0x00);

    /* Client role: masked with the key; a server session reads it back. */
    char reason[123];
    memset(reason, 'r', sizeof reason);
    struct ws_session cli = CLIENT;
    static const uint8_t key[4] = {1, 2, 3, 4};
    size_t n = ws_session_close(&cli, 4999, reason, sizeof reason, key, out);
    assert_int_equal(n, 2 + 4 + 125);
    assert_true(cli.close_sent);
    assert_int_equal(out[1], 0x80 | 125);
    struct ws_session peer = SERVER;
    struct ws_event ev;
    assert_int_equal(ws_session_feed(&peer, out, out + n, &ev), (ptrdiff_t)n);
    assert_int_equal(ev.type, WS_EV_CLOSE);
    assert_int_equal(ev.code, 4999);
    assert_int_equal(ev.len, sizeof reason);
    assert_memory_equal(ev.p, reason, sizeof reason);
}

/* ---- streaming ---------------------------------------------------------- */

/* A 10000-byte masked frame streamed in chunks of many sizes: the joined
 * payload is the original, so the mask phase carried over every chunk. */
static void test_streaming_mask_phase(void **state)
{
    (void)state;
    enum { N = 10000 };
    static uint8_t pl[N];
    uint32_t x = 7;
    for (size_t i = 0; i < N; i++) {
        x = x * 1664525u + 1013904223u;
        pl[i] = (uint8_t)(x >> 24);
    }
    struct wire w = {0};
    wire_frame(&w, FIN | WS_OP_BINARY, pl, N, K);
    size_t hdr = w.n - N;
    static const size_t steps[] = {1, 2, 3, 5, 7, 64, 1000, 4097};
    for (size_t si = 0; si < sizeof steps / sizeof steps[0]; si++) {
        uint8_t *buf = malloc(w.n);
        assert_non_null(buf);
        memcpy(buf, w.d, w.n);
        struct ws_session s = {.stream_above = 100};
        size_t pos = 0, have = 0, got = 0, events = 0;
        while (pos < w.n) {
            have = w.n - have < steps[si] ? w.n : have + steps[si];
            for (;;) {
                struct ws_event ev;
                ptrdiff_t r = ws_session_feed(&s, buf + pos, buf + have, &ev);
                assert_true(r >= 0);
                if (r == 0)
                    break;
                if (ev.type == WS_EV_DATA) {
                    assert_int_equal(ev.msg_first, got == 0);
                    assert_int_equal(ev.frame_last, got + ev.len == N);
                    assert_int_equal(ev.msg_last, ev.frame_last);
                    assert_memory_equal(ev.p, pl + got, ev.len);
                    got += ev.len;
                    events++;
                } else {
                    assert_int_equal(ev.type, WS_EV_NONE);
                    assert_int_equal(r, (ptrdiff_t)hdr); /* header alone */
                }
                pos += (size_t)r;
            }
        }
        assert_int_equal(got, N);
        assert_true(events >= N / (steps[si] > N ? N : steps[si]) / 2);
        assert_false(s.in_frame);
        free(buf);
    }
    /* And through the transcript: all splits agree. */
    struct ws_session cfg = {.stream_above = 100};
    char want[64];
    snprintf(want, sizeof want, "B[fl]%u#%08x #%zu need=2", N, fnv1a(pl, N), w.n);
    expect(&cfg, &w, want);
    free(w.d);
}

/* Streamed and whole frames of one fragmented text message, with control
 * frames between them and a code point split across a chunk edge. */
static void test_streaming_mixed_message(void **state)
{
    (void)state;
    char a[40], b[200];
    memset(a, 'x', sizeof a);
    memset(b, 'y', sizeof b);
    memcpy(b + 100, "\xe2\x82\xac", 3);
    struct wire w = {0};
    wire_frame(&w, WS_OP_TEXT, a, sizeof a, K);
    TXT(&w, FIN | WS_OP_PING, "", K);
    wire_frame(&w, WS_OP_CONT, "zz", 2, K);
    wire_frame(&w, FIN | WS_OP_CONT, b, sizeof b, K);
    struct ws_session cfg = {.stream_above = 32};
    char want[160];
    snprintf(want, sizeof want,
             "T[f]xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx ping() T[]zz "
             "T[l]200#%08x #%zu need=2",
             fnv1a((const uint8_t *)b, sizeof b), w.n);
    expect(&cfg, &w, want);
    free(w.d);
}

/* ---- limits ------------------------------------------------------------- */

static void test_max_frame(void **state)
{
    (void)state;
    struct ws_session cfg = {.max_frame = 10};
    struct wire w = {0};
    TXT(&w, FIN | WS_OP_TEXT, "0123456789", K);
    TXT(&w, FIN | WS_OP_TEXT, "0123456789A", K);
    expect(&cfg, &w, "T[fl]0123456789 E-3:frame_too_big");
    free(w.d);
    /* Judged from the header: a 1 GiB frame needs only its 14 bytes. */
    uint8_t h[WS_MAX_HDR];
    size_t n = ws_frame_header_encode(h, WS_OP_BINARY, true, 1u << 30, K);
    expect_raw(&cfg, h, n, "E-3:frame_too_big");
    cfg.stream_above = 4; /* streaming does not lift the limit */
    expect_raw(&cfg, h, n, "E-3:frame_too_big");
}

static void test_max_message(void **state)
{
    (void)state;
    struct ws_session cfg = {.max_message = 8};
    struct wire w = {0};
    TXT(&w, WS_OP_TEXT, "1234", K);
    TXT(&w, FIN | WS_OP_CONT, "5678", K); /* exactly the limit */
    TXT(&w, WS_OP_BINARY, "12345", K);
    TXT(&w, FIN | WS_OP_PING, "", K);     /* control bytes do not count */
    TXT(&w, WS_OP_CONT, "678", K);
    TXT(&w, FIN | WS_OP_CONT, "9", K);
    expect(&cfg, &w, "T[f]1234 T[l]5678 B[f]12345 ping() B[]678 E-3:msg_too_big");
    free(w.d);
    /* Over the limit in its header alone, payload never sent. */
    w = (struct wire){0};
    TXT(&w, WS_OP_TEXT, "1234", K);
    uint8_t h[WS_MAX_HDR];
    size_t n = ws_frame_header_encode(h, WS_OP_CONT, true, 5, K);
    wire_raw(&w, h, n);
    expect(&cfg, &w, "T[f]1234 E-3:msg_too_big");
    free(w.d);
}

/* ---- client mode, need, errors ------------------------------------------ */

static void test_client_mode(void **state)
{
    (void)state;
    struct wire w = {0};
    TXT(&w, WS_OP_BINARY, "ab", NULL);
    TXT(&w, FIN | WS_OP_PING, "hi", NULL);
    TXT(&w, FIN | WS_OP_CONT, "cd", NULL);
    expect(&CLIENT, &w, "B[f]ab ping(hi) B[l]cd #12 need=2");
    TXT(&w, FIN | WS_OP_TEXT, "masked", K);
    expect(&CLIENT, &w, "B[f]ab ping(hi) B[l]cd E-1:unmasked");
    free(w.d);
}

static void test_need(void **state)
{
    (void)state;
    struct wire w = {0};
    uint8_t pl[300] = {0};
    wire_frame(&w, FIN | WS_OP_BINARY, pl, sizeof pl, K); /* 8-byte header */
    struct ws_session s = SERVER;
    struct ws_event ev;
    static const size_t cuts[] = {0, 1, 2, 7, 8, 307};
    static const uint64_t needs[] = {2, 2, 8, 8, 308, 308};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(ws_session_feed(&s, w.d, w.d + cuts[i], &ev), 0);
        assert_int_equal(ev.type, WS_EV_NONE);
        assert_true(s.need == needs[i]);
    }
    assert_int_equal(ws_session_feed(&s, w.d, w.d + w.n, &ev), 308);
    assert_int_equal(ev.type, WS_EV_DATA);
    free(w.d);
}

static void test_length_encoding(void **state)
{
    (void)state;
    static const uint8_t nonmin16[] = {0x82, 0xfe, 0x00, 0x05};
    expect_raw(&SERVER, nonmin16, sizeof nonmin16, "E-1:length");
    static const uint8_t topbit[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0};
    expect_raw(&SERVER, topbit, sizeof topbit, "E-1:length");
    static const uint8_t nonmin64[] = {0x82, 0xff, 0, 0, 0, 0, 0, 0, 0x01, 0x00};
    expect_raw(&SERVER, nonmin64, sizeof nonmin64, "E-1:length");
}

static void test_error_helpers(void **state)
{
    (void)state;
    assert_int_equal(ws_close_code_for(WS_E_PROTO), 1002);
    assert_int_equal(ws_close_code_for(WS_E_UTF8), 1007);
    assert_int_equal(ws_close_code_for(WS_E_TOO_BIG), 1009);
    assert_string_equal(ws_err_name(WS_ERR_NONE), "none");
    assert_string_equal(ws_err_name(WS_ERR_RSV), "rsv");
    assert_string_equal(ws_err_name(WS_ERR__COUNT), "unknown");
    for (int k = 0; k < WS_ERR__COUNT; k++) {
        const char *name = ws_err_name((enum ws_err_kind)k);
        assert_non_null(name);
        for (int j = 0; j < k; j++)
            assert_string_not_equal(name, ws_err_name((enum ws_err_kind)j));
    }
}

static void test_empty_messages(void **state)
{
    (void)state;
    struct wire w = {0};
    TXT(&w, FIN | WS_OP_TEXT, "", K);
    TXT(&w, WS_OP_BINARY, "", K);
    TXT(&w, FIN | WS_OP_CONT, "", K);
    expect(&SERVER, &w, "T[fl] B[f] B[l] #18 need=2");
    free(w.d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_masked_hello),
        cmocka_unit_test(test_rfc_unmasked_hello_client),
        cmocka_unit_test(test_rfc_fragmented),
        cmocka_unit_test(test_rfc_ping_pong),
        cmocka_unit_test(test_rfc_binary_lengths),
        cmocka_unit_test(test_unmasked_client_frame),
        cmocka_unit_test(test_rsv_bits),
        cmocka_unit_test(test_reserved_opcodes),
        cmocka_unit_test(test_fragmented_control),
        cmocka_unit_test(test_control_too_long),
        cmocka_unit_test(test_continuation_without_start),
        cmocka_unit_test(test_new_message_inside_fragmented),
        cmocka_unit_test(test_close_one_byte),
        cmocka_unit_test(test_close_codes),
        cmocka_unit_test(test_close_empty_is_1005),
        cmocka_unit_test(test_close_reason_utf8),
        cmocka_unit_test(test_text_invalid_single_frame),
        cmocka_unit_test(test_text_across_fragments),
        cmocka_unit_test(test_text_unfinished_at_end),
        cmocka_unit_test(test_text_streamed_fail_fast),
        cmocka_unit_test(test_control_interleaved),
        cmocka_unit_test(test_close_from_peer_then_silence),
        cmocka_unit_test(test_close_sent_by_us),
        cmocka_unit_test(test_close_sent_mid_stream),
        cmocka_unit_test(test_session_close_encoding),
        cmocka_unit_test(test_streaming_mask_phase),
        cmocka_unit_test(test_streaming_mixed_message),
        cmocka_unit_test(test_max_frame),
        cmocka_unit_test(test_max_message),
        cmocka_unit_test(test_client_mode),
        cmocka_unit_test(test_need),
        cmocka_unit_test(test_length_encoding),
        cmocka_unit_test(test_error_helpers),
        cmocka_unit_test(test_empty_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
