#ifndef CORE_HS_H
#define CORE_HS_H
/* The server side of the RFC 6455 §4.2 opening handshake. SHA-1 and base64
 * come from OpenSSL's libcrypto (a library call, no I/O). */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

struct http_req;

#define HS_ACCEPT_LEN 28 /* base64 of a 20-byte SHA-1 */

/* Origin check: return true to accept. origin is NULL when absent. */
typedef bool (*hs_origin_fn)(void *ctx, const uint8_t *origin, size_t len);

struct hs_config {
    const char *const *protocols; /* subprotocols we speak, in preference order */
    size_t n_protocols;
    hs_origin_fn origin_ok;       /* NULL: any origin */
    void *origin_ctx;
};

struct hs_result {
    const uint8_t *key;   /* Sec-WebSocket-Key view into the request */
    size_t key_len;
    const char *protocol; /* chosen from cfg->protocols, or NULL */
};

/* Judge an upgrade request per RFC 6455 §4.2.1. Returns 0 with *res filled
 * when it is valid, else the HTTP status to answer: 405 (not GET), 400
 * (HTTP/1.0, no Host, Upgrade without "websocket", Connection without
 * "upgrade", a key that does not decode to 16 bytes, or a missing version),
 * 426 (a version other than 13), 403 (origin refused). */
int hs_check(const struct hs_config *cfg, const struct http_req *req,
             struct hs_result *res);

/* Sec-WebSocket-Accept for key: base64(SHA-1(key + GUID)) into out, NUL
 * terminated. */
void hs_accept(const uint8_t *key, size_t key_len, char out[HS_ACCEPT_LEN + 1]);

/* Write the 101 Switching Protocols response for res into dst. Returns its
 * length, or -1 when cap is too small. */
ptrdiff_t hs_response_101(const struct hs_result *res, char *dst, size_t cap);

/* Write a complete error response for status (400, 403, 404, 405, 426, ...)
 * with a short text body; 426 carries "Sec-WebSocket-Version: 13" and 405
 * "Allow: GET". Connection: close. Returns length or -1 when cap is small. */
ptrdiff_t hs_response_error(int status, char *dst, size_t cap);

#endif
