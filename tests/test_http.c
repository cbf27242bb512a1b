/* Tests for core/http.c. Every parse goes through fix_parse(), which feeds the
 * input whole, one byte at a time, and split in two at every offset, and
 * fails unless all of them return the same result and the same views. Under
 * ASan the bytes past the current end are poisoned during each call, so a
 * read past end is a report, not luck. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sanitizer/asan_interface.h>

#include "core/http.h"

static const struct http_limits lim_default = {.max_line = 8190, .max_head = 8192};

struct fix {
    uint8_t *buf; /* exact-size heap copy of the input */
    size_t len;
    ptrdiff_t rc; /* agreed result */
    struct http_req req; /* from the whole-input parse */
};

/* One call with [buf + n, buf + total) poisoned. */
static ptrdiff_t call(struct http_parser *ps, const struct http_limits *lim,
                      uint8_t *buf, size_t n, size_t total, struct http_req *out)
{
    ASAN_POISON_MEMORY_REGION(buf + n, total - n);
    ptrdiff_t rc = http_parse_request(ps, lim, buf, buf + n, out);
    ASAN_UNPOISON_MEMORY_REGION(buf + n, total - n);
    return rc;
}

/* Garbage in *out before a parse, so a field the parser forgets shows. */
static void scribble(struct http_req *r)
{
    memset(r, 0xA5, sizeof *r);
}

static void assert_same_req(const struct http_req *a, const struct http_req *b)
{
    assert_ptr_equal(a->method, b->method);
    assert_int_equal(a->method_len, b->method_len);
    assert_ptr_equal(a->target, b->target);
    assert_int_equal(a->target_len, b->target_len);
    assert_int_equal(a->version_major, b->version_major);
    assert_int_equal(a->version_minor, b->version_minor);
    assert_int_equal(a->n_headers, b->n_headers);
    for (size_t i = 0; i < a->n_headers; i++) {
        assert_ptr_equal(a->headers[i].name, b->headers[i].name);
        assert_int_equal(a->headers[i].name_len, b->headers[i].name_len);
        assert_ptr_equal(a->headers[i].value, b->headers[i].value);
        assert_int_equal(a->headers[i].value_len, b->headers[i].value_len);
    }
    assert_int_equal(a->content_length, b->content_length);
    assert_int_equal(a->chunked, b->chunked);
}

/* Views must lie inside the head [buf, buf + rc). */
static void assert_views_inside(const struct fix *f)
{
    const uint8_t *lo = f->buf, *hi = f->buf + f->rc;
    const struct http_req *r = &f->req;
    assert_true(r->method >= lo && r->method + r->method_len <= hi);
    assert_true(r->target >= lo && r->target + r->target_len <= hi);
    assert_true(r->n_headers <= HTTP_MAX_HEADERS);
    for (size_t i = 0; i < r->n_headers; i++) {
        const struct http_header *h = &r->headers[i];
        assert_true(h->name >= lo && h->name + h->name_len <= hi);
        assert_true(h->value >= lo && h->value + h->value_len <= hi);
    }
}

static void fix_parse_lim(struct fix *f, const void *s, size_t len,
                          const struct http_limits *lim)
{
    f->buf = malloc(len ? len : 1);
    assert_non_null(f->buf);
    memcpy(f->buf, s, len);
    f->len = len;

    /* Whole. */
    struct http_parser ps = {0};
    scribble(&f->req);
    f->rc = call(&ps, lim, f->buf, len, len, &f->req);
    assert_true(f->rc <= (ptrdiff_t)len);
    if (f->rc > 0)
        assert_views_inside(f);

    /* One byte at a time; the parser must remember its progress. */
    struct http_parser bs = {0};
    struct http_req br;
    scribble(&br);
    ptrdiff_t rc = 0;
    for (size_t k = 0; k <= len && rc == 0; k++) {
        rc = call(&bs, lim, f->buf, k, len, &br);
        if (rc == 0)
            assert_int_equal(bs.scanned, k);
    }
    assert_int_equal(rc, f->rc);
    if (rc > 0)
        assert_same_req(&br, &f->req);

    /* Split in two at every offset, a fresh out each call. */
    for (size_t cut = 0; cut <= len; cut++) {
        struct http_parser sp = {0};
        struct http_req sr;
        scribble(&sr);
        rc = call(&sp, lim, f->buf, cut, len, &sr);
        if (rc == 0) {
            scribble(&sr);
            rc = call(&sp, lim, f->buf, len, len, &sr);
        }
        assert_int_equal(rc, f->rc);
        if (rc > 0)
            assert_same_req(&sr, &f->req);
    }
}

static void fix_parse(struct fix *f, const char *s)
{
    fix_parse_lim(f, s, strlen(s), &lim_default);
}

static void fix_free(struct fix *f)
{
    free(f->buf);
    f->buf = NULL;
}

static bool view_is(const uint8_t *p, size_t len, const char *s)
{
    return len == strlen(s) && memcmp(p, s, len) == 0;
}

static ptrdiff_t parse_rc(const char *s)
{
    struct fix f;
    fix_parse(&f, s);
    ptrdiff_t rc = f.rc;
    fix_free(&f);
    return rc;
}

/* RFC 6455 §1.2, the client's opening handshake. */
static const char rfc6455_1_2[] =
    "GET /chat HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Protocol: chat, superchat\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

static void test_rfc6455_1_2_request(void **state)
{
    (void)state;
    struct fix f;
    fix_parse(&f, rfc6455_1_2);
    assert_int_equal(f.rc, strlen(rfc6455_1_2));
    const struct http_req *r = &f.req;
    assert_true(view_is(r->method, r->method_len, "GET"));
    assert_true(view_is(r->target, r->target_len, "/chat"));
    assert_int_equal(r->version_major, 1);
    assert_int_equal(r->version_minor, 1);
    assert_int_equal(r->n_headers, 7);
    assert_true(view_is(r->headers[0].name, r->headers[0].name_len, "Host"));
    assert_true(view_is(r->headers[0].value, r->headers[0].value_len,
                        "server.example.com"));
    assert_true(view_is(r->headers[6].name, r->headers[6].name_len,
                        "Sec-WebSocket-Version"));
    assert_true(view_is(r->headers[6].value, r->headers[6].value_len, "13"));
    assert_int_equal(r->content_length, -1);
    assert_false(r->chunked);

    const struct http_header *h = http_find(r, "sec-websocket-key");
    assert_non_null(h);
    assert_true(view_is(h->value, h->value_len, "dGhlIHNhbXBsZSBub25jZQ=="));
    h = http_find(r, "SEC-WEBSOCKET-PROTOCOL");
    assert_non_null(h);
    assert_true(http_has_token(h->value, h->value_len, "superchat"));
    assert_true(http_has_token(h->value, h->value_len, "chat"));
    assert_false(http_has_token(h->value, h->value_len, "super"));
    assert_null(http_find(r, "Cookie"));
    fix_free(&f);
}

/* RFC 6455 §4.4, the version-negotiation example (its "..." left out). */
static void test_rfc6455_4_4_request(void **state)
{
    (void)state;
    static const char s[] = "GET /chat HTTP/1.1\r\n"
                            "Host: server.example.com\r\n"
                            "Upgrade: websocket\r\n"
                            "Connection: Upgrade\r\n"
                            "Sec-WebSocket-Version: 25\r\n"
                            "\r\n";
    struct fix f;
    fix_parse(&f, s);
    assert_int_equal(f.rc, strlen(s));
    assert_int_equal(f.req.n_headers, 4);
    const struct http_header *h = http_find(&f.req, "Sec-WebSocket-Version");
    assert_non_null(h);
    assert_true(view_is(h->value, h->value_len, "25"));
    fix_free(&f);
}

static void test_http10_and_trimming(void **state)
{
    (void)state;
    struct fix f;
    fix_parse(&f, "OPTIONS * HTTP/1.0\r\nX-A:v\r\nX-B: \t a b \t \r\nX-C:\r\n"
                  "X-D: \x80\xff\tz\r\n\r\n");
    assert_true(f.rc > 0);
    assert_true(view_is(f.req.method, f.req.method_len, "OPTIONS"));
    assert_true(view_is(f.req.target, f.req.target_len, "*"));
    assert_int_equal(f.req.version_minor, 0);
    assert_int_equal(f.req.n_headers, 4);
    assert_true(view_is(f.req.headers[0].value, f.req.headers[0].value_len, "v"));
    assert_true(view_is(f.req.headers[1].value, f.req.headers[1].value_len, "a b"));
    assert_int_equal(f.req.headers[2].value_len, 0);
    assert_true(view_is(f.req.headers[3].value, f.req.headers[3].value_len,
                        "\x80\xff\tz"));
    fix_free(&f);
}

static void test_incomplete_needs_more(void **state)
{
    (void)state;
    assert_int_equal(parse_rc(""), 0);
    assert_int_equal(parse_rc("GET / HTTP/1.1"), 0);
    assert_int_equal(parse_rc("GET / HTTP/1.1\r\nHost: a\r\n"), 0);
    assert_int_equal(parse_rc("GET / HTTP/1.1\r\nHost: a\r\n\r"), 0);
    /* A version is judged only once its line ends. */
    assert_int_equal(parse_rc("GET / HTTP/9.9"), 0);
}

static void test_pipelined(void **state)
{
    (void)state;
    static const char a[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char b[] = "GET /b HTTP/1.1\r\nHost: y\r\nConnection: keep-alive\r\n\r\n";
    static const char c[] = "GET /c HTTP/1.1\r\nHo";
    char all[256];
    snprintf(all, sizeof all, "%s%s%s", a, b, c);

    struct fix f;
    fix_parse(&f, all);
    assert_int_equal(f.rc, strlen(a));
    assert_true(view_is(f.req.target, f.req.target_len, "/a"));
    fix_free(&f);

    fix_parse(&f, all + strlen(a));
    assert_int_equal(f.rc, strlen(b));
    assert_true(view_is(f.req.target, f.req.target_len, "/b"));
    assert_int_equal(f.req.n_headers, 2);
    fix_free(&f);

    fix_parse(&f, all + strlen(a) + strlen(b));
    assert_int_equal(f.rc, 0);
    fix_free(&f);

    /* One buffer, the parser zeroed between requests as the contract says. */
    struct http_parser ps = {0};
    struct http_req r;
    const uint8_t *p = (const uint8_t *)all, *end = p + strlen(all);
    ptrdiff_t n = http_parse_request(&ps, &lim_default, p, end, &r);
    assert_int_equal(n, strlen(a));
    p += n;
    memset(&ps, 0, sizeof ps);
    n = http_parse_request(&ps, &lim_default, p, end, &r);
    assert_int_equal(n, strlen(b));
    assert_true(view_is(r.target, r.target_len, "/b"));
    p += n;
    memset(&ps, 0, sizeof ps);
    assert_int_equal(http_parse_request(&ps, &lim_default, p, end, &r), 0);
}

static void test_leading_empty_lines(void **state)
{
    (void)state;
    static const char one[] = "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    struct fix f;
    fix_parse(&f, one);
    assert_int_equal(f.rc, strlen(one));
    assert_true(view_is(f.req.method, f.req.method_len, "GET"));
    assert_int_equal(f.req.n_headers, 1);
    fix_free(&f);

    static const char four[] = "\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    fix_parse(&f, four);
    assert_int_equal(f.rc, strlen(four));
    assert_true(view_is(f.req.target, f.req.target_len, "/"));
    fix_free(&f);

    assert_int_equal(parse_rc("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n"), HTTP_E_BAD);
    assert_int_equal(parse_rc("\nGET / HTTP/1.1\r\n\r\n"), HTTP_E_BAD);
    assert_int_equal(parse_rc("\r\n \r\n"), HTTP_E_BAD);
}

struct bad_case {
    const char *in;
    ptrdiff_t rc;
};

static void run_cases(const struct bad_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ptrdiff_t rc = parse_rc(c[i].in);
        if (rc != c[i].rc)
            fail_msg("case %zu: got %td, want %td", i, rc, c[i].rc);
    }
}

static void test_bad_request_line(void **state)
{
    (void)state;
    static const struct bad_case c[] = {
        {"GET  / HTTP/1.1\r\n\r\n", HTTP_E_BAD},
        {"GET /  HTTP/1.1\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.1 \r\n\r\n", HTTP_E_BAD},
        {" GET / HTTP/1.1\r\n\r\n", HTTP_E_BAD},
        {"GET\t/ HTTP/1.1\r\n\r\n", HTTP_E_BAD},
        {"G@T / HTTP/1.1\r\n\r\n", HTTP_E_BAD},
        {"GET /a\x01z HTTP/1.1\r\n\r\n", HTTP_E_BAD},
        {"GET /a\x7fz HTTP/1.1\r\n\r\n", HTTP_E_BAD},
        {"GET HTTP/1.1\r\n\r\n", HTTP_E_BAD},
        {"GET /\r\n\r\n", HTTP_E_BAD},
        {"GET / http/1.1\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.10\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/11\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.x\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/2\r\n\r\n", HTTP_E_BAD},
        {"\x16\x03\x01\x02", 0}, /* a TLS hello: no line end yet */
        {"\x16\x03\x01\x02\r\n\r\n", HTTP_E_BAD},
    };
    run_cases(c, sizeof c / sizeof c[0]);
}

static void test_version_505(void **state)
{
    (void)state;
    static const struct bad_case c[] = {
        {"GET / HTTP/2.0\r\n\r\n", HTTP_E_VERSION},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HTTP_E_VERSION},
        {"GET / HTTP/0.9\r\n\r\n", HTTP_E_VERSION},
        {"GET / HTTP/1.2\r\n\r\n", HTTP_E_VERSION},
        {"GET / HTTP/3.0\r\nHost: a\r\n\r\n", HTTP_E_VERSION},
    };
    run_cases(c, sizeof c / sizeof c[0]);
}

static void test_bad_line_ends(void **state)
{
    (void)state;
    static const struct bad_case c[] = {
        {"GET / HTTP/1.1\nHost: a\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.1\r\nHost: a\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.1\r\nHost: a\r\n\n", HTTP_E_BAD},
        {"GET / HTTP/1.1\rHost: a\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", HTTP_E_BAD},
        /* A bare CR is known before its line ends. */
        {"GET / HTTP/1.1\r\nHost: a\rb", HTTP_E_BAD},
        {"GET /\rx", HTTP_E_BAD},
    };
    run_cases(c, sizeof c / sizeof c[0]);
}

static void test_bad_headers(void **state)
{
    (void)state;
    static const struct bad_case c[] = {
        {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", HTTP_E_BAD},  /* RFC 9112 §5.1 */
        {"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.1\r\nX: a\r\n  b\r\n\r\n", HTTP_E_BAD}, /* obs-fold, §5.2 */
        {"GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", HTTP_E_BAD},   /* §2.2 */
        {"GET / HTTP/1.1\r\nHost\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.1\r\n: a\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.1\r\nX(y): a\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.1\r\nX: \x7f\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.1\r\nX: a\x1b[0m\r\n\r\n", HTTP_E_BAD},
        {"GET / HTTP/1.1\r\nX: a\tb\r\n\r\n", 26},
    };
    run_cases(c, sizeof c / sizeof c[0]);

    /* A NUL in a value. */
    static const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    struct fix f;
    fix_parse_lim(&f, nul, sizeof nul - 1, &lim_default);
    assert_int_equal(f.rc, HTTP_E_BAD);
    fix_free(&f);
    /* A bad line stops the parse before the blank line arrives. */
    assert_int_equal(parse_rc("GET / HTTP/1.1\r\nHost : a\r\n"), HTTP_E_BAD);
    assert_int_equal(parse_rc("GET  / HTTP/1.1\r\n"), HTTP_E_BAD);
}

static void test_content_length(void **state)
{
    (void)state;
    struct fix f;
    fix_parse(&f, "POST /x HTTP/1.1\r\nContent-Length: 42\r\n\r\nbody");
    assert_int_equal(f.rc, 40);
    assert_int_equal(f.req.content_length, 42);
    assert_false(f.req.chunked);
    fix_free(&f);

    fix_parse(&f, "POST /x HTTP/1.1\r\ncontent-length: 7\r\nCONTENT-LENGTH: 7\r\n\r\n");
    assert_int_equal(f.req.content_length, 7);
    fix_free(&f);
    fix_parse(&f, "POST /x HTTP/1.1\r\nContent-Length: 0, 0\r\n\r\n");
    assert_int_equal(f.req.content_length, 0);
    fix_free(&f);
    fix_parse(&f, "POST /x HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n");
    assert_int_equal(f.req.content_length, INT64_MAX);
    fix_free(&f);

    static const struct bad_case c[] = {
        {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", HTTP_E_BAD},
        {"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n", HTTP_E_BAD},
        {"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", HTTP_E_BAD},
        {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", HTTP_E_BAD},
        {"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", HTTP_E_BAD},
        {"POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", HTTP_E_BAD},
        {"POST / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n", HTTP_E_BAD},
        {"POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", HTTP_E_BAD},
        {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", HTTP_E_BAD},
        {"POST / HTTP/1.1\r\nContent-Length: 5,\r\n\r\n", HTTP_E_BAD},
        {"POST / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n", HTTP_E_BAD},
        {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", HTTP_E_BAD},
    };
    run_cases(c, sizeof c / sizeof c[0]);
}

static void test_transfer_encoding(void **state)
{
    (void)state;
    struct fix f;
    fix_parse(&f, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_true(f.rc > 0);
    assert_true(f.req.chunked);
    assert_int_equal(f.req.content_length, -1);
    fix_free(&f);
    fix_parse(&f, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n"
                  "transfer-encoding: gzip , Chunked \r\n\r\n");
    assert_true(f.rc > 0);
    assert_true(f.req.chunked);
    fix_free(&f);

    static const struct bad_case c[] = {
        /* RFC 9112 §6.3: chunked must be the final coding. */
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HTTP_E_BAD},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: gzip\r\n\r\n", HTTP_E_BAD},
        {"POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", HTTP_E_BAD},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n\r\n", HTTP_E_BAD},
        /* Both framings: refused. */
        {"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
         HTTP_E_BAD},
    };
    run_cases(c, sizeof c / sizeof c[0]);
}

/* "GET /" + pad + " HTTP/1.1": a request line of exactly len bytes. */
static size_t make_line(char *dst, size_t len)
{
    size_t fixed = strlen("GET / HTTP/1.1");
    size_t pad = len - fixed;
    memcpy(dst, "GET /", 5);
    memset(dst + 5, 'a', pad);
    memcpy(dst + 5 + pad, " HTTP/1.1", 9);
    return len;
}

static void test_request_line_limit(void **state)
{
    (void)state;
    const struct http_limits lim = {.max_line = 40, .max_head = 1000};
    char s[200];
    struct fix f;

    /* Exactly at the limit: fine. */
    size_t n = make_line(s, 40);
    memcpy(s + n, "\r\n\r\n", 4);
    fix_parse_lim(&f, s, n + 4, &lim);
    assert_int_equal(f.rc, n + 4);
    assert_int_equal(f.req.target_len, 40 - 13);
    fix_free(&f);
    /* Up to the limit without its CRLF, and with only its CR: more needed. */
    fix_parse_lim(&f, s, n, &lim);
    assert_int_equal(f.rc, 0);
    fix_free(&f);
    fix_parse_lim(&f, s, n + 1, &lim);
    assert_int_equal(f.rc, 0);
    fix_free(&f);

    /* One past: 414 with the whole head, and before any CRLF arrives. */
    n = make_line(s, 41);
    memcpy(s + n, "\r\n\r\n", 4);
    fix_parse_lim(&f, s, n + 4, &lim);
    assert_int_equal(f.rc, HTTP_E_URI_TOO_LONG);
    fix_free(&f);
    fix_parse_lim(&f, s, n, &lim);
    assert_int_equal(f.rc, HTTP_E_URI_TOO_LONG);
    fix_free(&f);
    fix_parse_lim(&f, s, n - 1, &lim);
    assert_int_equal(f.rc, 0);
    fix_free(&f);
    /* Garbage with no line end is a 414 too, once long enough. */
    memset(s, 'x', 41);
    fix_parse_lim(&f, s, 41, &lim);
    assert_int_equal(f.rc, HTTP_E_URI_TOO_LONG);
    fix_free(&f);

    /* Leading empty lines do not count against the request line. */
    memcpy(s, "\r\n\r\n", 4);
    n = make_line(s + 4, 40);
    memcpy(s + 4 + n, "\r\n\r\n", 4);
    fix_parse_lim(&f, s, n + 8, &lim);
    assert_int_equal(f.rc, n + 8);
    fix_free(&f);
}

static void test_head_limit(void **state)
{
    (void)state;
    const struct http_limits lim = {.max_line = 100, .max_head = 64};
    /* 16 + 3 + 41 + 2 + 2 = 64 bytes. */
    char s[200];
    size_t n = (size_t)snprintf(s, sizeof s, "GET / HTTP/1.1\r\nX: %041d\r\n\r\n", 0);
    assert_int_equal(n, 64);
    struct fix f;
    fix_parse_lim(&f, s, n, &lim);
    assert_int_equal(f.rc, 64);
    fix_free(&f);
    /* The same head one byte short: more needed. */
    fix_parse_lim(&f, s, 63, &lim);
    assert_int_equal(f.rc, 0);
    fix_free(&f);

    /* 65 bytes: 431, whole, and as soon as byte 65 arrives. */
    n = (size_t)snprintf(s, sizeof s, "GET / HTTP/1.1\r\nX: %042d\r\n\r\n", 0);
    assert_int_equal(n, 65);
    fix_parse_lim(&f, s, n, &lim);
    assert_int_equal(f.rc, HTTP_E_HDR_TOO_BIG);
    fix_free(&f);
    fix_parse_lim(&f, s, 64, &lim);
    assert_int_equal(f.rc, 0);
    fix_free(&f);
    fix_parse_lim(&f, s, 65, &lim);
    assert_int_equal(f.rc, HTTP_E_HDR_TOO_BIG);
    fix_free(&f);
    /* A long header line with no end in sight. */
    memset(s + 16, 'y', 100);
    fix_parse_lim(&f, s, 116, &lim);
    assert_int_equal(f.rc, HTTP_E_HDR_TOO_BIG);
    fix_free(&f);
    /* A pipelined request after a head at the limit is not counted. */
    n = (size_t)snprintf(s, sizeof s, "GET / HTTP/1.1\r\nX: %041d\r\n\r\nGET / HTTP/1.1", 0);
    fix_parse_lim(&f, s, n, &lim);
    assert_int_equal(f.rc, 64);
    fix_free(&f);
}

static size_t make_headers(char *dst, size_t cap, size_t n, bool finish)
{
    size_t len = (size_t)snprintf(dst, cap, "GET / HTTP/1.1\r\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(dst + len, cap - len, "H%zu: v\r\n", i);
    if (finish)
        len += (size_t)snprintf(dst + len, cap - len, "\r\n");
    return len;
}

static void test_header_count_limit(void **state)
{
    (void)state;
    char s[1024];
    struct fix f;
    size_t n = make_headers(s, sizeof s, HTTP_MAX_HEADERS, true);
    fix_parse_lim(&f, s, n, &lim_default);
    assert_int_equal(f.rc, n);
    assert_int_equal(f.req.n_headers, HTTP_MAX_HEADERS);
    assert_true(view_is(f.req.headers[31].name, f.req.headers[31].name_len, "H31"));
    fix_free(&f);

    n = make_headers(s, sizeof s, HTTP_MAX_HEADERS + 1, true);
    fix_parse_lim(&f, s, n, &lim_default);
    assert_int_equal(f.rc, HTTP_E_HDR_TOO_BIG);
    fix_free(&f);
    /* Known once the 33rd line ends, before the blank line. */
    n = make_headers(s, sizeof s, HTTP_MAX_HEADERS + 1, false);
    fix_parse_lim(&f, s, n, &lim_default);
    assert_int_equal(f.rc, HTTP_E_HDR_TOO_BIG);
    fix_free(&f);
    fix_parse_lim(&f, s, n - 1, &lim_default);
    assert_int_equal(f.rc, 0);
    fix_free(&f);
    /* Leading empty lines are not headers. */
    memcpy(s, "\r\n\r\n", 4);
    n = make_headers(s + 4, sizeof s - 4, HTTP_MAX_HEADERS, true);
    fix_parse_lim(&f, s, n + 4, &lim_default);
    assert_int_equal(f.rc, n + 4);
    assert_int_equal(f.req.n_headers, HTTP_MAX_HEADERS);
    fix_free(&f);
}

static void test_error_status(void **state)
{
    (void)state;
    assert_int_equal(http_error_status(HTTP_E_BAD), 400);
    assert_int_equal(http_error_status(HTTP_E_URI_TOO_LONG), 414);
    assert_int_equal(http_error_status(HTTP_E_HDR_TOO_BIG), 431);
    assert_int_equal(http_error_status(HTTP_E_VERSION), 505);
    assert_int_equal(http_error_status(-99), 500);
    assert_int_equal(http_error_status(0), 500);
}

static bool has(const char *v, const char *tok)
{
    return http_has_token((const uint8_t *)v, strlen(v), tok);
}

static void test_has_token(void **state)
{
    (void)state;
    assert_true(has("keep-alive, Upgrade", "upgrade"));
    assert_true(has("Upgrade", "UPGRADE"));
    assert_true(has(" ,, \tupgrade\t ,", "upgrade"));
    assert_true(has("a,b,c", "c"));
    assert_true(has("a,b,c", "a"));
    assert_false(has("upgrades", "upgrade"));
    assert_false(has("upgrade2, x", "upgrade"));
    assert_false(has("up grade", "upgrade"));
    assert_false(has("", "upgrade"));
    assert_false(has(", ,", "upgrade"));
    assert_false(has("keep-alive", "upgrade"));
    /* The length bounds the value: no peeking past it. */
    assert_false(http_has_token((const uint8_t *)"upgrade", 6, "upgrade"));
    assert_true(http_has_token((const uint8_t *)"x,upgradeZ", 9, "upgrade"));
}

static void test_find_first_case_insensitive(void **state)
{
    (void)state;
    struct fix f;
    fix_parse(&f, "GET / HTTP/1.1\r\nX-Tag: one\r\nx-tag: two\r\n\r\n");
    const struct http_header *h = http_find(&f.req, "X-TAG");
    assert_ptr_equal(h, &f.req.headers[0]);
    assert_null(http_find(&f.req, "X-Ta"));
    assert_null(http_find(&f.req, "X-Tags"));
    fix_free(&f);
}

/* Mutated requests from a fixed seed: fix_parse checks that whole, byte-wise
 * and split feeding agree whatever the bytes are. */
static uint64_t rng_state = 0x2545F4914F6CDD1Du;

static uint32_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Du) >> 32);
}

static void test_mutations_agree(void **state)
{
    (void)state;
    static const uint8_t alphabet[] = {'\r', '\n', ' ', '\t', ':', ',', 'a', 0, 0x7f, 0x80, '/'};
    const struct http_limits lim = {.max_line = 30, .max_head = 300};
    const size_t full = sizeof rfc6455_1_2 - 1;
    uint8_t s[sizeof rfc6455_1_2];
    size_t ok = 0, errs = 0;
    for (int iter = 0; iter < 300; iter++) {
        size_t n = (rng() & 1) ? full : 10 + rng() % (full - 10);
        memcpy(s, rfc6455_1_2, n);
        for (int m = rng() % 3; m >= 0; m--)
            s[rng() % n] = alphabet[rng() % sizeof alphabet];
        struct fix f;
        fix_parse_lim(&f, s, n, &lim);
        ok += f.rc > 0;
        errs += f.rc < 0;
        fix_free(&f);
    }
    /* The mix must reach both outcomes, or the test proves little. */
    assert_true(errs > 0);
    assert_true(ok > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc6455_1_2_request),
        cmocka_unit_test(test_rfc6455_4_4_request),
        cmocka_unit_test(test_http10_and_trimming),
        cmocka_unit_test(test_incomplete_needs_more),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_leading_empty_lines),
        cmocka_unit_test(test_bad_request_line),
        cmocka_unit_test(test_version_505),
        cmocka_unit_test(test_bad_line_ends),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_transfer_encoding),
        cmocka_unit_test(test_request_line_limit),
        cmocka_unit_test(test_head_limit),
        cmocka_unit_test(test_header_count_limit),
        cmocka_unit_test(test_error_status),
        cmocka_unit_test(test_has_token),
        cmocka_unit_test(test_find_first_case_insensitive),
        cmocka_unit_test(test_mutations_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
