/* Tests for core/hs.c: Sec-WebSocket-Accept from RFC 6455 §1.3, every
 * hs_check rule of §4.2.1 (requests go through the real parser, fed whole,
 * byte by byte and split at every offset), subprotocol choice, and the 101
 * and error responses checked field by field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/hs.h"
#include "core/http.h"

static const struct http_limits lim = {.max_line = 8190, .max_head = 8192};

/* A parsed request; views point into buf. */
struct req {
    char buf[2048];
    struct http_req r;
};

/* Parse s whole, byte by byte and split at every offset; all must agree on
 * the head length, and the request must be complete and valid HTTP. */
static void req_parse(struct req *q, const char *s)
{
    size_t len = strlen(s);
    assert_true(len < sizeof q->buf);
    memcpy(q->buf, s, len);
    const uint8_t *p = (const uint8_t *)q->buf;

    struct http_parser ps = {0};
    ptrdiff_t whole = http_parse_request(&ps, &lim, p, p + len, &q->r);
    assert_int_equal(whole, len);

    struct http_parser bs = {0};
    struct http_req br;
    ptrdiff_t rc = 0;
    for (size_t k = 0; k <= len && rc == 0; k++)
        rc = http_parse_request(&bs, &lim, p, p + k, &br);
    assert_int_equal(rc, whole);
    assert_int_equal(br.n_headers, q->r.n_headers);

    for (size_t cut = 0; cut <= len; cut++) {
        struct http_parser sp = {0};
        struct http_req sr;
        rc = http_parse_request(&sp, &lim, p, p + cut, &sr);
        if (rc == 0)
            rc = http_parse_request(&sp, &lim, p, p + len, &sr);
        assert_int_equal(rc, whole);
        assert_int_equal(sr.n_headers, q->r.n_headers);
    }
}

static bool view_is(const uint8_t *p, size_t len, const char *s)
{
    return len == strlen(s) && memcmp(p, s, len) == 0;
}

/* RFC 6455 §1.2, the client's opening handshake. */
#define RFC_1_2 \
    "GET /chat HTTP/1.1\r\n" \
    "Host: server.example.com\r\n" \
    "Upgrade: websocket\r\n" \
    "Connection: Upgrade\r\n" \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" \
    "Origin: http://example.com\r\n" \
    "Sec-WebSocket-Protocol: chat, superchat\r\n" \
    "Sec-WebSocket-Version: 13\r\n" \
    "\r\n"

/* A minimal valid request with one line replaced or added: the template
 * names each header once so a test can swap one out. */
static int check_with(const struct hs_config *cfg, const char *host,
                      const char *upgrade, const char *connection,
                      const char *key, const char *version, const char *extra,
                      struct hs_result *res)
{
    char s[1024];
    snprintf(s, sizeof s, "GET /echo HTTP/1.1\r\n%s%s%s%s%s%s\r\n", host, upgrade,
             connection, key, version, extra);
    struct req q;
    req_parse(&q, s);
    struct hs_result tmp;
    return hs_check(cfg, &q.r, res ? res : &tmp);
}

#define H_HOST "Host: localhost:8080\r\n"
#define H_UPG "Upgrade: websocket\r\n"
#define H_CONN "Connection: Upgrade\r\n"
#define H_KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define H_VER "Sec-WebSocket-Version: 13\r\n"

static int check_extra(const char *extra)
{
    return check_with(NULL, H_HOST, H_UPG, H_CONN, H_KEY, H_VER, extra, NULL);
}

static void test_accept_rfc6455_1_3(void **state)
{
    (void)state;
    char out[HS_ACCEPT_LEN + 1];
    memset(out, 'X', sizeof out);
    hs_accept((const uint8_t *)"dGhlIHNhbXBsZSBub25jZQ==", 24, out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* The §4.1 example key, checked against an independent computation
     * (Python: base64(sha1(key + GUID))). */
    hs_accept((const uint8_t *)"AQIDBAUGBwgJCgsMDQ4PEC==", 24, out);
    assert_string_equal(out, "OfS0wDaT5NoxF2gqm7Zj2YtetzM=");
    /* Only key_len bytes of the key are hashed. */
    hs_accept((const uint8_t *)"dGhlIHNhbXBsZSBub25jZQ==garbage", 24, out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_rfc6455_1_2_request_accepted(void **state)
{
    (void)state;
    struct req q;
    req_parse(&q, RFC_1_2);
    static const char *const protos[] = {"chat"};
    const struct hs_config cfg = {.protocols = protos, .n_protocols = 1};
    struct hs_result res;
    assert_int_equal(hs_check(&cfg, &q.r, &res), 0);
    assert_true(view_is(res.key, res.key_len, "dGhlIHNhbXBsZSBub25jZQ=="));
    assert_true(res.key >= (const uint8_t *)q.buf &&
                res.key + res.key_len <= (const uint8_t *)q.buf + sizeof q.buf);
    assert_ptr_equal(res.protocol, protos[0]);

    /* RFC 6455 §1.3: the server's handshake for this request. */
    static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                               "Sec-WebSocket-Protocol: chat\r\n"
                               "\r\n";
    char dst[512];
    ptrdiff_t n = hs_response_101(&res, dst, sizeof dst);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(dst, want, strlen(want));
    /* Exactly enough room works; one byte less fails. */
    assert_int_equal(hs_response_101(&res, dst, strlen(want)), strlen(want));
    for (size_t cap = 0; cap < strlen(want); cap++)
        assert_int_equal(hs_response_101(&res, dst, cap), -1);

    /* No protocol: no Sec-WebSocket-Protocol line. */
    assert_int_equal(hs_check(NULL, &q.r, &res), 0);
    assert_null(res.protocol);
    n = hs_response_101(&res, dst, sizeof dst);
    assert_true(n > 0);
    assert_null(memmem(dst, (size_t)n, "Sec-WebSocket-Protocol", 22));
    assert_memory_equal(dst + n - 4, "\r\n\r\n", 4);
}

static void test_method_405(void **state)
{
    (void)state;
    struct req q;
    struct hs_result res;
    req_parse(&q, "POST /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\n" H_KEY H_VER "\r\n");
    assert_int_equal(hs_check(NULL, &q.r, &res), 405);
    /* Methods are case-sensitive (RFC 9110 §9.1). */
    req_parse(&q, "get /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\n" H_KEY H_VER "\r\n");
    assert_int_equal(hs_check(NULL, &q.r, &res), 405);
    req_parse(&q, "GETS /chat HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(hs_check(NULL, &q.r, &res), 405);
}

static void test_http10_400(void **state)
{
    (void)state;
    struct req q;
    struct hs_result res;
    req_parse(&q, "GET /chat HTTP/1.0\r\n" H_HOST H_UPG H_CONN H_KEY H_VER "\r\n");
    assert_int_equal(hs_check(NULL, &q.r, &res), 400);
    req_parse(&q, "GET /chat HTTP/1.1\r\n" H_HOST H_UPG H_CONN H_KEY H_VER "\r\n");
    assert_int_equal(hs_check(NULL, &q.r, &res), 0);
}

static void test_host(void **state)
{
    (void)state;
    assert_int_equal(check_with(NULL, "", H_UPG, H_CONN, H_KEY, H_VER, "", NULL), 400);
    assert_int_equal(check_with(NULL, H_HOST, H_UPG, H_CONN, H_KEY, H_VER,
                                "host: other\r\n", NULL), 400);
    assert_int_equal(check_with(NULL, "HOST: x\r\n", H_UPG, H_CONN, H_KEY, H_VER, "", NULL), 0);
}

static void test_upgrade(void **state)
{
    (void)state;
    assert_int_equal(check_with(NULL, H_HOST, "", H_CONN, H_KEY, H_VER, "", NULL), 400);
    assert_int_equal(check_with(NULL, H_HOST, "Upgrade: h2c\r\n", H_CONN, H_KEY, H_VER,
                                "", NULL), 400);
    assert_int_equal(check_with(NULL, H_HOST, "Upgrade: websockets\r\n", H_CONN, H_KEY,
                                H_VER, "", NULL), 400);
    assert_int_equal(check_with(NULL, H_HOST, "Upgrade: WebSocket\r\n", H_CONN, H_KEY,
                                H_VER, "", NULL), 0);
    assert_int_equal(check_with(NULL, H_HOST, "upgrade: h2c, websocket\r\n", H_CONN,
                                H_KEY, H_VER, "", NULL), 0);
    /* The token may sit in a second Upgrade line. */
    assert_int_equal(check_with(NULL, H_HOST, "Upgrade: h2c\r\nUpgrade: websocket\r\n",
                                H_CONN, H_KEY, H_VER, "", NULL), 0);
}

static void test_connection(void **state)
{
    (void)state;
    assert_int_equal(check_with(NULL, H_HOST, H_UPG, "", H_KEY, H_VER, "", NULL), 400);
    assert_int_equal(check_with(NULL, H_HOST, H_UPG, "Connection: close\r\n", H_KEY,
                                H_VER, "", NULL), 400);
    assert_int_equal(check_with(NULL, H_HOST, H_UPG, "Connection: upgraded\r\n", H_KEY,
                                H_VER, "", NULL), 400);
    /* Firefox sends "keep-alive, Upgrade". */
    assert_int_equal(check_with(NULL, H_HOST, H_UPG, "Connection: keep-alive, Upgrade\r\n",
                                H_KEY, H_VER, "", NULL), 0);
    assert_int_equal(check_with(NULL, H_HOST, H_UPG, "connection: UPGRADE\r\n", H_KEY,
                                H_VER, "", NULL), 0);
    assert_int_equal(check_with(NULL, H_HOST, H_UPG,
                                "Connection: keep-alive\r\nConnection: upgrade\r\n", H_KEY,
                                H_VER, "", NULL), 0);
}

static int key_status(const char *key_line)
{
    return check_with(NULL, H_HOST, H_UPG, H_CONN, key_line, H_VER, "", NULL);
}

static void test_key(void **state)
{
    (void)state;
    assert_int_equal(key_status(""), 400);
    assert_int_equal(key_status(H_KEY H_KEY), 400);                       /* two */
    assert_int_equal(key_status("Sec-WebSocket-Key:\r\n"), 400);          /* empty */
    assert_int_equal(key_status("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n"), 400);
    assert_int_equal(key_status("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n"), 400);
    assert_int_equal(key_status("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ===\r\n"), 400);
    assert_int_equal(key_status("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==,"
                                "dGhlIHNhbXBsZSBub25jZQ==\r\n"), 400);
    assert_int_equal(key_status("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub2!jZQ==\r\n"), 400);
    assert_int_equal(key_status("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub2 jZQ==\r\n"), 400);
    /* 17 bytes and 15 bytes. */
    assert_int_equal(key_status("Sec-WebSocket-Key: WlpaWlpaWlpaWlpaWlpaWlo=\r\n"), 400);
    assert_int_equal(key_status("Sec-WebSocket-Key: YWJjZGVmZ2hpamtsbW5v\r\n"), 400);
    /* 18 bytes, 24 characters, no padding. */
    assert_int_equal(key_status("Sec-WebSocket-Key: YWJjZGVmZ2hpamtsbW5vcHFy\r\n"), 400);
    /* RFC 6455 §4.1's example, pad bits and all; and a canonical one. */
    assert_int_equal(key_status("Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEC==\r\n"), 0);
    assert_int_equal(key_status("Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n"), 0);
    assert_int_equal(key_status("Sec-WebSocket-Key: ++//++//++//++//++//+w==\r\n"), 0);
    /* Surrounding whitespace is not part of the value. */
    assert_int_equal(key_status("Sec-WebSocket-Key:   dGhlIHNhbXBsZSBub25jZQ==  \r\n"), 0);
}

static int version_status(const char *version_line)
{
    return check_with(NULL, H_HOST, H_UPG, H_CONN, H_KEY, version_line, "", NULL);
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(version_status(""), 400);
    assert_int_equal(version_status(H_VER H_VER), 400);
    assert_int_equal(version_status("Sec-WebSocket-Version: 8\r\n"), 426);
    assert_int_equal(version_status("Sec-WebSocket-Version: 25\r\n"), 426); /* §4.4 */
    assert_int_equal(version_status("Sec-WebSocket-Version: 130\r\n"), 426);
    assert_int_equal(version_status("Sec-WebSocket-Version: 13, 8\r\n"), 426);
    assert_int_equal(version_status("Sec-WebSocket-Version:\r\n"), 426);
    assert_int_equal(version_status("sec-websocket-version: 13\r\n"), 0);
    /* A client negotiating a version is told 426 even if its key is not ours. */
    assert_int_equal(check_with(NULL, H_HOST, H_UPG, H_CONN, "", "Sec-WebSocket-Version: 8\r\n",
                                "", NULL), 426);
}

struct origin_log {
    int calls;
    bool saw_null;
    char seen[64];
    const char *allow;
};

static bool origin_hook(void *ctx, const uint8_t *origin, size_t len)
{
    struct origin_log *log = ctx;
    log->calls++;
    log->saw_null = origin == NULL;
    if (!origin)
        return false;
    snprintf(log->seen, sizeof log->seen, "%.*s", (int)len, (const char *)origin);
    return strcmp(log->seen, log->allow) == 0;
}

static void test_origin(void **state)
{
    (void)state;
    struct origin_log log = {.allow = "http://example.com"};
    const struct hs_config cfg = {.origin_ok = origin_hook, .origin_ctx = &log};
    assert_int_equal(check_with(&cfg, H_HOST, H_UPG, H_CONN, H_KEY, H_VER,
                                "Origin: http://example.com\r\n", NULL), 0);
    assert_int_equal(log.calls, 1);
    assert_string_equal(log.seen, "http://example.com");
    assert_int_equal(check_with(&cfg, H_HOST, H_UPG, H_CONN, H_KEY, H_VER,
                                "Origin: http://evil.example\r\n", NULL), 403);
    assert_string_equal(log.seen, "http://evil.example");
    assert_int_equal(check_with(&cfg, H_HOST, H_UPG, H_CONN, H_KEY, H_VER, "", NULL), 403);
    assert_true(log.saw_null);
    /* The hook is not asked about requests that are already refused. */
    int before = log.calls;
    assert_int_equal(check_with(&cfg, H_HOST, H_UPG, H_CONN, "", H_VER,
                                "Origin: http://example.com\r\n", NULL), 400);
    assert_int_equal(log.calls, before);
    /* No hook: any origin, or none. */
    assert_int_equal(check_extra("Origin: http://evil.example\r\n"), 0);
}

static const char *chosen(const struct hs_config *cfg, const char *extra)
{
    struct hs_result res;
    int rc = check_with(cfg, H_HOST, H_UPG, H_CONN, H_KEY, H_VER, extra, &res);
    assert_int_equal(rc, 0);
    return res.protocol;
}

static void test_subprotocol(void **state)
{
    (void)state;
    static const char *const ours[] = {"superchat", "chat"};
    const struct hs_config cfg = {.protocols = ours, .n_protocols = 2};
    /* The server's order of preference wins over the client's order. */
    assert_ptr_equal(chosen(&cfg, "Sec-WebSocket-Protocol: chat, superchat\r\n"), ours[0]);
    assert_ptr_equal(chosen(&cfg, "Sec-WebSocket-Protocol: superchat, chat\r\n"), ours[0]);
    assert_ptr_equal(chosen(&cfg, "Sec-WebSocket-Protocol: chat\r\n"), ours[1]);
    /* Spread over several lines. */
    assert_ptr_equal(chosen(&cfg, "Sec-WebSocket-Protocol: a, b\r\n"
                                  "sec-websocket-protocol: c,chat\r\n"), ours[1]);
    /* None in common, none offered, or none configured: no protocol. */
    assert_null(chosen(&cfg, "Sec-WebSocket-Protocol: mqtt, wamp\r\n"));
    assert_null(chosen(&cfg, ""));
    assert_null(chosen(NULL, "Sec-WebSocket-Protocol: chat\r\n"));
    /* Names compare exactly: not by case, not by prefix. */
    assert_null(chosen(&cfg, "Sec-WebSocket-Protocol: CHAT, SuperChat\r\n"));
    assert_null(chosen(&cfg, "Sec-WebSocket-Protocol: cha, superchats\r\n"));
}

/* Split a response into its parts and check the common framing. */
static void check_error_response(int status, const char *must_have)
{
    char dst[1024];
    ptrdiff_t n = hs_response_error(status, dst, sizeof dst);
    assert_true(n > 0);
    dst[n] = '\0';
    char line[32];
    snprintf(line, sizeof line, "HTTP/1.1 %d ", status);
    assert_memory_equal(dst, line, strlen(line));
    const char *head_end = strstr(dst, "\r\n\r\n");
    assert_non_null(head_end);
    const char *body = head_end + 4;
    size_t body_len = (size_t)(dst + n - body);
    const char *cl = strstr(dst, "\r\nContent-Length: ");
    assert_non_null(cl);
    assert_true(cl < head_end);
    assert_int_equal(strtoul(cl + 18, NULL, 10), body_len);
    const char *conn = strstr(dst, "\r\nConnection: close");
    assert_true(conn && conn < head_end);
    if (must_have) {
        const char *h = strstr(dst, must_have);
        assert_true(h && h < head_end);
    }
    /* The body is the status line's "<status> <reason>" and a newline. */
    const char *sl_end = strstr(dst, "\r\n");
    size_t sl_len = (size_t)(sl_end - (dst + 9));
    assert_int_equal(body_len, sl_len + 1);
    assert_memory_equal(body, dst + 9, sl_len);
    assert_int_equal(body[sl_len], '\n');
    /* Every cap below the length fails; the exact length works. */
    for (size_t cap = 0; cap < (size_t)n; cap++)
        assert_int_equal(hs_response_error(status, dst, cap), -1);
    assert_int_equal(hs_response_error(status, dst, (size_t)n), n);
}

static void test_error_responses(void **state)
{
    (void)state;
    check_error_response(400, "400 Bad Request\r\n");
    check_error_response(403, "403 Forbidden\r\n");
    check_error_response(404, NULL);
    check_error_response(405, "\r\nAllow: GET\r\n");
    check_error_response(414, "414 URI Too Long\r\n");
    check_error_response(426, "\r\nSec-WebSocket-Version: 13\r\n");
    check_error_response(426, "\r\nUpgrade: websocket\r\n");
    check_error_response(431, "431 Request Header Fields Too Large\r\n");
    check_error_response(503, NULL);
    check_error_response(505, "505 HTTP Version Not Supported\r\n");
    check_error_response(499, NULL); /* unknown: a generic reason */

    char dst[512];
    /* Allow and the version header only where they belong. */
    ptrdiff_t n = hs_response_error(400, dst, sizeof dst);
    assert_null(memmem(dst, (size_t)n, "Allow", 5));
    assert_null(memmem(dst, (size_t)n, "Sec-WebSocket-Version", 21));
    /* Not an error status. */
    assert_int_equal(hs_response_error(200, dst, sizeof dst), -1);
    assert_int_equal(hs_response_error(101, dst, sizeof dst), -1);
    assert_int_equal(hs_response_error(600, dst, sizeof dst), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_rfc6455_1_3),
        cmocka_unit_test(test_rfc6455_1_2_request_accepted),
        cmocka_unit_test(test_method_405),
        cmocka_unit_test(test_http10_400),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_upgrade),
        cmocka_unit_test(test_connection),
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_subprotocol),
        cmocka_unit_test(test_error_responses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
