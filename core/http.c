/* Incremental HTTP/1.1 request-head parser (RFC 9112 §2-§6).
 *
 * One forward pass over the bytes, resumed where the last call stopped
 * (ps->scanned), judges bare CR and LF, the request-line and head limits,
 * and each line as its LF arrives (request line, header syntax, header
 * count). Each check fires at a fixed byte, so the first error is the one at
 * the earliest byte and the result is the same however the input is split
 * across calls; a head fed byte by byte costs linear, not quadratic, time. Lines are
 * parsed into *out as they complete; when the head ends in a later call than
 * it started, the head is parsed once more so *out never depends on the
 * struct passed to earlier calls. */
#include "core/http.h"

#include <string.h>

/* RFC 9112 §2.2: a server SHOULD ignore at least one empty line received
 * before the request-line. We take up to this many; more are a 400. */
#define LEADING_EMPTY_MAX 4

/* RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. */
static const uint8_t tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* [p, p + len) equals the NUL-terminated s, ASCII case-insensitively. */
bool http_eq_ci(const uint8_t *p, size_t len, const char *s)
{
    if (strlen(s) != len) /* folded for literals once inlined */
        return false;
    for (size_t i = 0; i < len; i++) {
        if (lower(p[i]) != lower((uint8_t)s[i]))
            return false;
    }
    return true;
}

/* request-line = method SP request-target SP HTTP-version (RFC 9112 §3),
 * [p, e) without its CRLF. Single spaces only: RFC 9112 §3 lets a server
 * accept other whitespace, but a strict parser leaves no room for two
 * parsers to disagree about where the target ends. */
static int parse_request_line(const uint8_t *p, const uint8_t *e,
                              struct http_req *out)
{
    const uint8_t *q = p;
    while (q < e && tchar[*q])
        q++;
    if (q == p || q == e || *q != ' ')
        return HTTP_E_BAD;
    out->method = p;
    out->method_len = (size_t)(q - p);

    /* The target: no SP, no CTL, no DEL. Bytes >= 0x80 pass; resolving
     * the path is the router's job. */
    const uint8_t *t = ++q;
    while (q < e && *q > ' ' && *q != 0x7f)
        q++;
    if (q == t || q == e || *q != ' ')
        return HTTP_E_BAD;
    out->target = t;
    out->target_len = (size_t)(q - t);

    /* HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive (§2.3). */
    q++;
    if (e - q != 8 || memcmp(q, "HTTP/", 5) != 0 || q[5] < '0' ||
        q[5] > '9' || q[6] != '.' || q[7] < '0' || q[7] > '9')
        return HTTP_E_BAD;
    if (q[5] != '1' || (q[7] != '0' && q[7] != '1'))
        return HTTP_E_VERSION;
    out->version_major = 1;
    out->version_minor = (uint8_t)(q[7] - '0');
    return 0;
}

/* field-line = field-name ":" OWS field-value OWS (RFC 9112 §5), [p, e)
 * without its CRLF. A space before the colon (§5.1) or a line that starts
 * with whitespace (obs-fold, §5.2) fails the token test: 400 both. */
static int parse_header_line(const uint8_t *p, const uint8_t *e,
                             struct http_header *h)
{
    const uint8_t *q = p;
    while (q < e && tchar[*q])
        q++;
    if (q == p || q == e || *q != ':')
        return HTTP_E_BAD;
    h->name = p;
    h->name_len = (size_t)(q - p);

    q++;
    while (q < e && is_ows(*q))
        q++;
    const uint8_t *v = q;
    while (e > v && is_ows(e[-1]))
        e--;
    /* RFC 9110 §5.5: field-vchar / SP / HTAB / obs-text; CR, LF, NUL and
     * the other CTLs are invalid. */
    for (const uint8_t *r = v; r < e; r++) {
        if ((*r < ' ' && *r != '\t') || *r == 0x7f)
            return HTTP_E_BAD;
    }
    h->value = v;
    h->value_len = (size_t)(e - v);
    return 0;
}

/* A Content-Length value: 1*DIGIT, or a list of identical ones (RFC 9110
 * §8.6 lets a recipient accept "42, 42"). Returns the length or -1. */
static int64_t parse_content_length(const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    int64_t first = -1;
    for (;;) {
        while (p < end && is_ows(*p))
            p++;
        if (p == end || *p < '0' || *p > '9')
            return -1;
        int64_t v = 0;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            int d = *p - '0';
            if (v > (INT64_MAX - d) / 10)
                return -1;
            v = v * 10 + d;
        }
        while (p < end && is_ows(*p))
            p++;
        if (first >= 0 && v != first)
            return -1;
        first = v;
        if (p == end)
            return first;
        if (*p != ',')
            return -1;
        p++;
    }
}

/* The last element of a comma list, trimmed; false when it is empty. */
static bool last_element(const uint8_t *p, size_t len, const uint8_t **ep,
                         size_t *elen)
{
    const uint8_t *e = p + len;
    while (e > p && is_ows(e[-1]))
        e--;
    const uint8_t *s = e;
    while (s > p && s[-1] != ',')
        s--;
    while (s < e && is_ows(*s))
        s++;
    *ep = s;
    *elen = (size_t)(e - s);
    return s < e;
}

/* Message framing from the complete header list (RFC 9112 §6). */
static int judge_framing(struct http_req *r)
{
    bool te = false;
    r->content_length = -1;
    r->chunked = false;
    for (size_t i = 0; i < r->n_headers; i++) {
        const struct http_header *h = &r->headers[i];
        if (http_eq_ci(h->name, h->name_len, "content-length")) {
            int64_t v = parse_content_length(h->value, h->value_len);
            if (v < 0 || (r->content_length >= 0 && v != r->content_length))
                return HTTP_E_BAD;
            r->content_length = v;
        } else if (http_eq_ci(h->name, h->name_len, "transfer-encoding")) {
            /* The codings of all Transfer-Encoding lines form one list;
             * what matters is its last element. */
            const uint8_t *c;
            size_t clen;
            if (!last_element(h->value, h->value_len, &c, &clen))
                return HTTP_E_BAD;
            te = true;
            r->chunked = http_eq_ci(c, clen, "chunked");
        }
    }
    /* RFC 9112 §6.3: a request whose final coding is not chunked MUST get a
     * 400; with both fields present a server MAY reject, and we do, since
     * that is the shape of request smuggling. */
    if (te && (!r->chunked || r->content_length >= 0))
        return HTTP_E_BAD;
    return 0;
}

/* Parse the complete, already validated head [p, p + len) into *out again
 * (the head ended in a later call than it began). */
static void reparse(const uint8_t *p, size_t len, size_t lead,
                    struct http_req *out)
{
    const uint8_t *end = p + len;
    const uint8_t *q = p + 2 * lead;
    const uint8_t *lf = memchr(q, '\n', (size_t)(end - q));
    (void)parse_request_line(q, lf - 1, out);
    size_t n = 0;
    for (q = lf + 1; q[0] != '\r'; q = lf + 1) {
        lf = memchr(q, '\n', (size_t)(end - q));
        (void)parse_header_line(q, lf - 1, &out->headers[n++]);
    }
}

ptrdiff_t http_parse_request(struct http_parser *ps,
                             const struct http_limits *lim,
                             const uint8_t *p, const uint8_t *end,
                             struct http_req *out)
{
    size_t n = (size_t)(end - p);
    size_t i = ps->scanned, lines = ps->lines;
    if (i > n || lines > i / 2) {
        /* Not a state this parser leaves for these bytes: start over. */
        i = 0;
        lines = 0;
    }
    size_t start = i;

    /* The leading empty lines among the complete ones: each is 2 bytes at
     * the front, so they are recounted cheaply instead of stored. */
    size_t lead = 0;
    while (lead < lines && lead <= LEADING_EMPTY_MAX && p[2 * lead] == '\r')
        lead++;

    size_t cap = n < lim->max_head ? n : lim->max_head;
    while (i < cap && lines == lead) {
        /* The request line, or an empty line before it: byte by byte, as
         * its length is judged before its CRLF arrives. */
        uint8_t c = p[i++];
        if (c != '\n') {
            if (i > 1 && p[i - 2] == '\r')
                return HTTP_E_BAD; /* bare CR (RFC 9112 §2.2) */
            /* Its bytes so far, a CR that may end it excluded. */
            if (c != '\r' && i - 2 * lead > lim->max_line)
                return HTTP_E_URI_TOO_LONG;
            continue;
        }
        if (i < 2 || p[i - 2] != '\r')
            return HTTP_E_BAD; /* bare LF: we require CRLF */
        size_t ls = 2 * lead, le = i - 2; /* the line is [ls, le) */
        if (le == ls) {
            if (lead == LEADING_EMPTY_MAX)
                return HTTP_E_BAD;
            lead++;
        } else {
            int rc = parse_request_line(p + ls, p + le, out);
            if (rc < 0)
                return rc;
        }
        lines++;
    }
    while (i < cap) {
        /* Header lines, a line at a time. The request line is complete, so
         * an LF precedes i. */
        size_t ls = i;
        if (p[i - 1] == '\r' && p[i] != '\n')
            return HTTP_E_BAD;
        const uint8_t *lf = memchr(p + i, '\n', cap - i);
        size_t stop = lf ? (size_t)(lf - p) : cap;
        /* A CR before stop - 1 has a byte other than LF after it. */
        if (stop > i + 1 && memchr(p + i, '\r', stop - 1 - i))
            return HTTP_E_BAD;
        if (!lf) {
            i = cap;
            break;
        }
        if (p[stop - 1] != '\r')
            return HTTP_E_BAD; /* bare LF */
        i = stop + 1;
        size_t le = stop - 1;
        /* Resuming a line an earlier call saw part of: find its start
         * now, once per line, not on every call that extends it. */
        while (ls > 0 && p[ls - 1] != '\n')
            ls--;
        if (ls == le) {
            ps->scanned = i;
            ps->lines = lines;
            if (start > 0)
                reparse(p, i, lead, out);
            out->n_headers = lines - lead - 1;
            int rc = judge_framing(out);
            if (rc < 0)
                return rc;
            return (ptrdiff_t)i;
        }
        size_t idx = lines - lead - 1;
        if (idx >= HTTP_MAX_HEADERS)
            return HTTP_E_HDR_TOO_BIG;
        int rc = parse_header_line(p + ls, p + le, &out->headers[idx]);
        if (rc < 0)
            return rc;
        lines++;
    }
    /* Byte max_head exists and the head has not ended by then. */
    if (n > lim->max_head)
        return HTTP_E_HDR_TOO_BIG;
    ps->scanned = i;
    ps->lines = lines;
    return 0;
}

const struct http_header *http_find(const struct http_req *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        if (http_eq_ci(r->headers[i].name, r->headers[i].name_len, name))
            return &r->headers[i];
    }
    return NULL;
}

bool http_has_token(const uint8_t *v, size_t len, const char *token)
{
    const uint8_t *end = v + len;
    while (v < end) {
        const uint8_t *comma = memchr(v, ',', (size_t)(end - v));
        const uint8_t *e = comma ? comma : end;
        const uint8_t *s = v;
        while (s < e && is_ows(*s))
            s++;
        const uint8_t *t = e;
        while (t > s && is_ows(t[-1]))
            t--;
        if (t > s && http_eq_ci(s, (size_t)(t - s), token))
            return true;
        v = comma ? comma + 1 : end;
    }
    return false;
}

int http_error_status(ptrdiff_t err)
{
    switch (err) {
    case HTTP_E_BAD:
        return 400;
    case HTTP_E_URI_TOO_LONG:
        return 414;
    case HTTP_E_HDR_TOO_BIG:
        return 431;
    case HTTP_E_VERSION:
        return 505;
    default:
        return 500; /* not an HTTP_E_* code: our bug, not the peer's */
    }
}

const char *http_reason(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}
