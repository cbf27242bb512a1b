/* libFuzzer target for core/http.c and core/hs.c.
 *
 * Input: byte 0 picks the limits, byte 1 seeds the split sizes, the rest is
 * the stream. Up to four pipelined requests are parsed from the stream, each
 * whole and again in pieces (sizes from the seed; seed 0 means one byte at a
 * time); both must give the same result and the same views, and every view
 * must lie inside the head. Bytes past the current end are poisoned under
 * ASan during each call. A parsed request also goes through hs_check and,
 * when accepted, hs_response_101; error statuses through hs_response_error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

#include "core/hs.h"
#include "core/http.h"

#define CHECK(c) \
    do { \
        if (!(c)) \
            abort(); \
    } while (0)

static ptrdiff_t call(struct http_parser *ps, const struct http_limits *lim,
                      const uint8_t *p, size_t n, size_t total, struct http_req *out)
{
    ASAN_POISON_MEMORY_REGION(p + n, total - n);
    ptrdiff_t rc = http_parse_request(ps, lim, p, p + n, out);
    ASAN_UNPOISON_MEMORY_REGION(p + n, total - n);
    return rc;
}

static void same_req(const struct http_req *a, const struct http_req *b)
{
    CHECK(a->method == b->method && a->method_len == b->method_len);
    CHECK(a->target == b->target && a->target_len == b->target_len);
    CHECK(a->version_major == b->version_major);
    CHECK(a->version_minor == b->version_minor);
    CHECK(a->n_headers == b->n_headers);
    for (size_t i = 0; i < a->n_headers; i++) {
        CHECK(a->headers[i].name == b->headers[i].name);
        CHECK(a->headers[i].name_len == b->headers[i].name_len);
        CHECK(a->headers[i].value == b->headers[i].value);
        CHECK(a->headers[i].value_len == b->headers[i].value_len);
    }
    CHECK(a->content_length == b->content_length);
    CHECK(a->chunked == b->chunked);
}

static bool inside(const uint8_t *v, size_t len, const uint8_t *lo, const uint8_t *hi)
{
    return v >= lo && v <= hi && len <= (size_t)(hi - v);
}

struct origin_ctx {
    const uint8_t *lo, *hi;
};

static bool origin_ok(void *ctx, const uint8_t *origin, size_t len)
{
    const struct origin_ctx *oc = ctx;
    if (origin)
        CHECK(inside(origin, len, oc->lo, oc->hi));
    return !origin || len % 2 == 0; /* refuse some, to reach the 403 path */
}

static void check_handshake(const struct http_req *r, const uint8_t *lo,
                            const uint8_t *hi)
{
    static const char *const protos[] = {"chat", "superchat", "x"};
    struct origin_ctx oc = {lo, hi};
    const struct hs_config cfg = {
        .protocols = protos, .n_protocols = 3, .origin_ok = origin_ok, .origin_ctx = &oc};
    struct hs_result res;
    int st = hs_check(&cfg, r, &res);
    char out[512];
    if (st == 0) {
        CHECK(inside(res.key, res.key_len, lo, hi) && res.key_len == 24);
        ptrdiff_t n = hs_response_101(&res, out, sizeof out);
        CHECK(n > 0 && memcmp(out, "HTTP/1.1 101 ", 13) == 0);
        CHECK(memcmp(out + n - 4, "\r\n\r\n", 4) == 0);
        if (res.protocol) {
            const struct http_header *h = http_find(r, "Sec-WebSocket-Protocol");
            CHECK(h != NULL);
        }
    } else {
        CHECK(st == 400 || st == 403 || st == 405 || st == 426);
        CHECK(hs_response_error(st, out, sizeof out) > 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct http_limits lim = {.max_line = 8190, .max_head = 8192};
    if (data[0] & 1) {
        lim.max_line = 4 + (data[0] >> 1) % 64u;
        lim.max_head = 8 + (size_t)(data[0] >> 1) * 2u;
    }
    uint32_t seed = data[1];
    size_t total = size - 2;
    /* An exact-size copy we may poison. */
    uint8_t *buf = malloc(total ? total : 1);
    CHECK(buf != NULL);
    memcpy(buf, data + 2, total);

    size_t off = 0;
    for (int nreq = 0; nreq < 4 && off <= total; nreq++) {
        const uint8_t *p = buf + off;
        size_t len = total - off;

        struct http_parser ws = {0};
        struct http_req wr;
        ptrdiff_t whole = call(&ws, &lim, p, len, len, &wr);
        CHECK(whole <= (ptrdiff_t)len);
        CHECK(whole >= HTTP_E_VERSION);

        struct http_parser ss = {0};
        struct http_req sr;
        ptrdiff_t split = 0;
        size_t end = 0;
        uint32_t x = seed * 2654435761u + 1;
        do {
            size_t step = 1;
            if (seed) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                step = 1 + x % 64u;
            }
            end = end + step < len ? end + step : len;
            split = call(&ss, &lim, p, end, len, &sr);
        } while (split == 0 && end < len);
        CHECK(split == whole);
        if (whole < 0) {
            int st = http_error_status(whole);
            CHECK(st == 400 || st == 414 || st == 431 || st == 505);
            char out[512];
            CHECK(hs_response_error(st, out, sizeof out) > 0);
        }
        if (whole <= 0)
            break;

        same_req(&wr, &sr);
        const uint8_t *hi = p + whole;
        CHECK((size_t)whole <= lim.max_head);
        CHECK(whole >= 4 && memcmp(hi - 4, "\r\n\r\n", 4) == 0);
        CHECK(inside(wr.method, wr.method_len, p, hi) && wr.method_len > 0);
        CHECK(inside(wr.target, wr.target_len, p, hi) && wr.target_len > 0);
        CHECK(wr.target_len + wr.method_len + 10 <= lim.max_line);
        CHECK(wr.version_major == 1 && wr.version_minor <= 1);
        CHECK(wr.n_headers <= HTTP_MAX_HEADERS);
        for (size_t i = 0; i < wr.n_headers; i++) {
            CHECK(inside(wr.headers[i].name, wr.headers[i].name_len, p, hi));
            CHECK(inside(wr.headers[i].value, wr.headers[i].value_len, p, hi));
            CHECK(wr.headers[i].name_len > 0);
        }
        check_handshake(&wr, p, hi);
        off += (size_t)whole;
        seed = seed * 33u + 7u;
    }
    free(buf);
    return 0;
}
