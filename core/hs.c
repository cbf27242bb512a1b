/* The server side of the RFC 6455 §4.2 opening handshake: judge the request,
 * compute Sec-WebSocket-Accept, write the 101 or the error response. */
#include "core/hs.h"

#include <string.h>

/* SHA1_Init/Update/Final are deprecated in OpenSSL 3 but, unlike SHA1() and
 * EVP_Digest(), neither fetch nor allocate per call: 95 ns against 330 ns
 * for a 24-byte key (OpenSSL 3.0.19, gcc -O2, median of 3 runs of 200k). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "core/http.h"

/* RFC 6455 §1.3: the GUID appended to the key before hashing. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static bool is_b64(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* RFC 6455 §4.1 item 7: the key is 16 bytes, base64-encoded, so exactly 22
 * alphabet characters then "==". The unused low bits of the 22nd character
 * are not judged: the RFC's own example, "AQIDBAUGBwgJCgsMDQ4PEC==", has
 * them set, and clients copy it. */
static bool key_ok(const uint8_t *k, size_t len)
{
    if (len != 24 || k[22] != '=' || k[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++) {
        if (!is_b64(k[i]))
            return false;
    }
    return true;
}

/* True when the comma list [v, v + len) holds s exactly (case-sensitive:
 * the client compares our answer with what it offered byte for byte). */
static bool list_has_exact(const uint8_t *v, size_t len, const char *s)
{
    size_t slen = strlen(s);
    const uint8_t *end = v + len;
    while (v < end) {
        const uint8_t *comma = memchr(v, ',', (size_t)(end - v));
        const uint8_t *e = comma ? comma : end;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - v) == slen && memcmp(v, s, slen) == 0)
            return true;
        v = comma ? comma + 1 : end;
    }
    return false;
}

int hs_check(const struct hs_config *cfg, const struct http_req *req,
             struct hs_result *res)
{
    res->key = NULL;
    res->key_len = 0;
    res->protocol = NULL;

    /* RFC 6455 §4.2.1 item 1: "An HTTP/1.1 or higher GET request". */
    if (req->method_len != 3 || memcmp(req->method, "GET", 3) != 0)
        return 405;
    if (req->version_major < 1 ||
        (req->version_major == 1 && req->version_minor < 1))
        return 400;

    size_t n_host = 0, n_key = 0, n_version = 0;
    bool upgrade = false, connection = false;
    const struct http_header *key = NULL, *version = NULL, *origin = NULL;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (http_eq_ci(h->name, h->name_len, "host")) {
            n_host++;
        } else if (http_eq_ci(h->name, h->name_len, "upgrade")) {
            upgrade = upgrade || http_has_token(h->value, h->value_len, "websocket");
        } else if (http_eq_ci(h->name, h->name_len, "connection")) {
            connection = connection ||
                         http_has_token(h->value, h->value_len, "upgrade");
        } else if (http_eq_ci(h->name, h->name_len, "sec-websocket-key")) {
            n_key++;
            key = h;
        } else if (http_eq_ci(h->name, h->name_len, "sec-websocket-version")) {
            n_version++;
            version = h;
        } else if (http_eq_ci(h->name, h->name_len, "origin")) {
            if (!origin)
                origin = h;
        }
    }
    /* RFC 9112 §3.2: no Host, or more than one, is a 400. */
    if (n_host != 1 || !upgrade || !connection)
        return 400;
    /* The version before the key: a client offering another version may
     * format its key differently, and a 426 lets it retry (§4.4). */
    if (n_version != 1)
        return 400;
    if (version->value_len != 2 || memcmp(version->value, "13", 2) != 0)
        return 426;
    if (n_key != 1 || !key_ok(key->value, key->value_len))
        return 400;
    if (cfg && cfg->origin_ok &&
        !cfg->origin_ok(cfg->origin_ctx, origin ? origin->value : NULL,
                        origin ? origin->value_len : 0))
        return 403;

    /* §4.2.2 item 5.4: at most one of the client's subprotocols. We pick by
     * the server's order of preference, so the configuration decides. */
    if (cfg) {
        for (size_t j = 0; j < cfg->n_protocols && !res->protocol; j++) {
            for (size_t i = 0; i < req->n_headers; i++) {
                const struct http_header *h = &req->headers[i];
                if (http_eq_ci(h->name, h->name_len, "sec-websocket-protocol") &&
                    list_has_exact(h->value, h->value_len, cfg->protocols[j])) {
                    res->protocol = cfg->protocols[j];
                    break;
                }
            }
        }
    }
    res->key = key->value;
    res->key_len = key->value_len;
    return 0;
}

void hs_accept(const uint8_t *key, size_t key_len, char out[HS_ACCEPT_LEN + 1])
{
    SHA_CTX c;
    uint8_t md[SHA_DIGEST_LENGTH];
    SHA1_Init(&c);
    SHA1_Update(&c, key, key_len);
    SHA1_Update(&c, ws_guid, sizeof ws_guid - 1);
    SHA1_Final(md, &c);
    /* 20 bytes give 28 characters and a NUL. */
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
}

/* Appends into [dst, dst + cap); remembers overflow instead of writing. */
struct out {
    char *p;
    size_t len, cap;
    bool full;
};

static void put_mem(struct out *o, const char *s, size_t len)
{
    if (o->full || o->cap - o->len < len) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->len, s, len);
    o->len += len;
}

static void put_str(struct out *o, const char *s)
{
    put_mem(o, s, strlen(s));
}

static void put_uint(struct out *o, unsigned v)
{
    char buf[12];
    size_t i = sizeof buf;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put_mem(o, buf + i, sizeof buf - i);
}

ptrdiff_t hs_response_101(const struct hs_result *res, char *dst, size_t cap)
{
    char accept[HS_ACCEPT_LEN + 1];
    hs_accept(res->key, res->key_len, accept);
    struct out o = {dst, 0, cap, false};
    put_str(&o, "HTTP/1.1 101 Switching Protocols\r\n"
              "Upgrade: websocket\r\n"
              "Connection: Upgrade\r\n"
              "Sec-WebSocket-Accept: ");
    put_mem(&o, accept, HS_ACCEPT_LEN);
    if (res->protocol) {
        put_str(&o, "\r\nSec-WebSocket-Protocol: ");
        put_str(&o, res->protocol);
    }
    put_str(&o, "\r\n\r\n");
    return o.full ? -1 : (ptrdiff_t)o.len;
}

ptrdiff_t hs_response_error(int status, char *dst, size_t cap)
{
    if (status < 400 || status > 599)
        return -1;
    const char *why = http_reason(status);
    /* Body: "<status> <reason>\n". */
    size_t body_len = 3 + 1 + strlen(why) + 1;
    struct out o = {dst, 0, cap, false};
    put_str(&o, "HTTP/1.1 ");
    put_uint(&o, (unsigned)status);
    put_str(&o, " ");
    put_str(&o, why);
    put_str(&o, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
    put_uint(&o, (unsigned)body_len);
    if (status == 426) {
        /* RFC 9110 §15.5.22 and §7.8: a 426 names the protocol to upgrade
         * to, and an Upgrade field needs "upgrade" in Connection. RFC 6455
         * §4.2.2: the versions we speak. */
        put_str(&o, "\r\nConnection: close, Upgrade\r\nUpgrade: websocket"
                  "\r\nSec-WebSocket-Version: 13");
    } else {
        put_str(&o, "\r\nConnection: close");
    }
    if (status == 405)
        put_str(&o, "\r\nAllow: GET"); /* RFC 9110 §15.5.6 */
    put_str(&o, "\r\n\r\n");
    put_uint(&o, (unsigned)status);
    put_str(&o, " ");
    put_str(&o, why);
    put_str(&o, "\n");
    return o.full ? -1 : (ptrdiff_t)o.len;
}
