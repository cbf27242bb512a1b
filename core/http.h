#ifndef CORE_HTTP_H
#define CORE_HTTP_H
/* Incremental HTTP/1.1 request-head parser (RFC 9112). Zero-copy: every view
 * points into the caller's bytes. Strict: lines end in CRLF, no obs-fold, no
 * whitespace before a header's colon, tokens as RFC 9110 §5.6.2 defines. */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define HTTP_MAX_HEADERS 32

enum {
    HTTP_E_BAD = -1,          /* malformed: 400 */
    HTTP_E_URI_TOO_LONG = -2, /* request line over its limit: 414 */
    HTTP_E_HDR_TOO_BIG = -3,  /* header block over its limit or too many headers: 431 */
    HTTP_E_VERSION = -4,      /* HTTP/2+ or HTTP/0.x on this parser: 505 */
};

struct http_header {
    const uint8_t *name;  /* as sent; compare case-insensitively */
    size_t name_len;
    const uint8_t *value; /* leading and trailing spaces/tabs trimmed */
    size_t value_len;
};

struct http_req {
    const uint8_t *method;
    size_t method_len;
    const uint8_t *target; /* request-target as sent (origin-form expected) */
    size_t target_len;
    uint8_t version_major; /* 1 */
    uint8_t version_minor; /* 0 or 1 */
    size_t n_headers;
    struct http_header headers[HTTP_MAX_HEADERS];
    int64_t content_length; /* -1 when absent */
    bool chunked;           /* Transfer-Encoding present (ends in chunked) */
};

struct http_limits {
    size_t max_line;    /* request-line bytes, CRLF excluded; 414 beyond */
    size_t max_head;    /* whole head incl. request line and final CRLF; 431 beyond */
};

/* Resumable parser state; all-zero is the start state. Reset it (zero it)
 * before the next pipelined request. */
struct http_parser {
    size_t scanned; /* bytes already searched for the end of the head */
    size_t lines;   /* complete lines in [p, p + scanned), leading empty ones
                     * included: the header count for the 431 limit */
};

/* Parse one request head from [p, end) (the same start p on every call for
 * one request; end may grow). Returns the head's length through its blank
 * line (> 0) with *out filled, 0 when more bytes are needed and no limit is
 * crossed yet, or a negative HTTP_E_*. Views in *out stay valid while the
 * caller keeps [p, end) in place. Never reads past end. */
ptrdiff_t http_parse_request(struct http_parser *ps,
                             const struct http_limits *lim,
                             const uint8_t *p, const uint8_t *end,
                             struct http_req *out);

/* The first header named name (case-insensitive), or NULL. */
const struct http_header *http_find(const struct http_req *r, const char *name);

/* True when the comma-separated list [v, v + len) holds token
 * (case-insensitive, surrounding whitespace ignored). */
bool http_has_token(const uint8_t *v, size_t len, const char *token);

/* The HTTP status for a negative HTTP_E_* code (400, 414, 431, 505). */
int http_error_status(ptrdiff_t err);

/* True when [p, p + len) equals the NUL-terminated s, ASCII case-insensitively. */
bool http_eq_ci(const uint8_t *p, size_t len, const char *s);

/* The reason phrase for status ("Not Found"); "Error" when unknown. Static. */
const char *http_reason(int status);

#endif
