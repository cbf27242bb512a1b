/* The receive side of one WebSocket connection (RFC 6455 §5, §7).
 *
 * Frames up to stream_above bytes (or all frames, when it is 0) are handled
 * whole: the caller keeps re-presenting the bytes until the header and the
 * whole payload are there (s->need says how many), then one call consumes the
 * frame and yields its event. Longer data frames are streamed: their header is
 * consumed on its own and every later call delivers whatever payload bytes it
 * is given, unmasked with the mask phase carried in fr_done. Control frames
 * (at most 125 bytes) are always handled whole.
 *
 * Every rule that byte 0 and byte 1 of a header decide is judged as soon as
 * those two bytes are there, before the extended length and the key; then
 * the length encoding (ws_frame_parse); then the limits, which need the
 * length but not the payload. The order is fixed, so any split of the same
 * bytes yields the same error. */
#include "core/ws_session.h"

#include <assert.h>
#include <string.h>

#include "core/ws_unmask.h"

/* Result of a failed session, per error kind. */
static const int8_t err_code[WS_ERR__COUNT] = {
    [WS_ERR_NONE] = 0,
    [WS_ERR_UNMASKED] = WS_E_PROTO,
    [WS_ERR_RSV] = WS_E_PROTO,
    [WS_ERR_OPCODE] = WS_E_PROTO,
    [WS_ERR_CTRL_FRAGMENTED] = WS_E_PROTO,
    [WS_ERR_CTRL_TOO_LONG] = WS_E_PROTO,
    [WS_ERR_BAD_CONT] = WS_E_PROTO,
    [WS_ERR_NOT_CONT] = WS_E_PROTO,
    [WS_ERR_CLOSE_LEN] = WS_E_PROTO,
    [WS_ERR_CLOSE_CODE] = WS_E_PROTO,
    [WS_ERR_LENGTH] = WS_E_PROTO,
    [WS_ERR_UTF8] = WS_E_UTF8,
    [WS_ERR_CLOSE_UTF8] = WS_E_UTF8,
    [WS_ERR_FRAME_TOO_BIG] = WS_E_TOO_BIG,
    [WS_ERR_MSG_TOO_BIG] = WS_E_TOO_BIG,
};

static const char *const err_names[WS_ERR__COUNT] = {
    [WS_ERR_NONE] = "none",
    [WS_ERR_UNMASKED] = "unmasked",
    [WS_ERR_RSV] = "rsv",
    [WS_ERR_OPCODE] = "opcode",
    [WS_ERR_CTRL_FRAGMENTED] = "ctrl_fragmented",
    [WS_ERR_CTRL_TOO_LONG] = "ctrl_too_long",
    [WS_ERR_BAD_CONT] = "bad_cont",
    [WS_ERR_NOT_CONT] = "not_cont",
    [WS_ERR_CLOSE_LEN] = "close_len",
    [WS_ERR_CLOSE_CODE] = "close_code",
    [WS_ERR_LENGTH] = "length",
    [WS_ERR_UTF8] = "utf8",
    [WS_ERR_CLOSE_UTF8] = "close_utf8",
    [WS_ERR_FRAME_TOO_BIG] = "frame_too_big",
    [WS_ERR_MSG_TOO_BIG] = "msg_too_big",
};

/* Opcodes RFC 6455 §5.2 defines: 0-2 and 8-A; the rest are reserved. */
#define DEFINED_OPS 0x0707u

static ptrdiff_t fail(struct ws_session *s, enum ws_err_kind k)
{
    s->err = k;
    return err_code[k];
}

/* Which rule bytes 0 and 1 of a header break, in the fixed order; NONE when
 * none. Called only off the fast path. */
static enum ws_err_kind judge_head_slow(const struct ws_session *s, uint8_t b0,
                                        uint8_t b1)
{
    unsigned op = b0 & 0x0fu;
    if (b0 & 0x70)
        return WS_ERR_RSV; /* §5.2: no extension was negotiated */
    if (!((DEFINED_OPS >> op) & 1u))
        return WS_ERR_OPCODE;
    /* §5.1: a server closes on an unmasked frame, a client on a masked one. */
    if (((b1 & 0x80) != 0) == s->client)
        return WS_ERR_UNMASKED;
    if (op & 8) {
        /* §5.5: control frames MUST NOT be fragmented; payload <= 125. */
        if (!(b0 & 0x80))
            return WS_ERR_CTRL_FRAGMENTED;
        if ((b1 & 0x7f) > WS_MAX_CTRL_PAYLOAD)
            return WS_ERR_CTRL_TOO_LONG;
        return WS_ERR_NONE;
    }
    /* §5.4: a continuation needs an open message, a start needs none. */
    if (op == WS_OP_CONT && s->msg_op == 0)
        return WS_ERR_BAD_CONT;
    if (op != WS_OP_CONT && s->msg_op != 0)
        return WS_ERR_NOT_CONT;
    return WS_ERR_NONE;
}

/* One test for the common case: no RSV, defined opcode, the mask bit our
 * role expects, and a data opcode that fits the message state (or an
 * unfragmented short control frame). */
static inline enum ws_err_kind judge_head(const struct ws_session *s,
                                          uint8_t b0, uint8_t b1)
{
    unsigned op = b0 & 0x0fu;
    unsigned want_mask = s->client ? 0u : 0x80u;
    unsigned bad = (b0 & 0x70u) | ((b1 & 0x80u) ^ want_mask);
    bad |= ((DEFINED_OPS >> op) & 1u) ^ 1u;
    if (op & 8)
        bad |= (b0 & 0x80u) ^ 0x80u;
    else
        bad |= (unsigned)((op == WS_OP_CONT) == (s->msg_op == 0));
    if (bad || ((op & 8) && (b1 & 0x7f) > WS_MAX_CTRL_PAYLOAD))
        return judge_head_slow(s, b0, b1);
    return WS_ERR_NONE;
}

/* Header bytes announced by bytes 0-1 (avail >= 2), for s->need. */
static size_t head_len(const uint8_t *p)
{
    uint8_t len7 = p[1] & 0x7f;
    size_t n = len7 < 126 ? 2 : len7 == 126 ? 4 : 10;
    return n + ((p[1] & 0x80) ? 4 : 0);
}

/* A text message's bytes so far, fail-fast; fin: they end the message. */
static bool text_ok(struct ws_session *s, const uint8_t *p, size_t len,
                    bool fin)
{
    if (utf8_feed(&s->utf8, p, len) != len)
        return false;
    return !fin || utf8_done(&s->utf8);
}

/* The open message ended with this frame. */
static void end_message(struct ws_session *s)
{
    s->msg_op = 0;
    s->msg_len = 0;
    s->utf8.st = 0;
}

/* Deliver (or, after close_sent, drop) the streamed frame's payload bytes
 * in [p, end). Returns bytes consumed; 0 only when end == p. */
static ptrdiff_t stream_chunk(struct ws_session *s, uint8_t *p, uint8_t *end,
                              struct ws_event *ev)
{
    uint64_t left = s->fr.len - s->fr_done;
    size_t avail = (size_t)(end - p);
    size_t n = left < avail ? (size_t)left : avail;
    bool frame_end = n == left;
    if (n == 0 && !frame_end) {
        s->need = 1;
        return 0;
    }
    if (s->close_sent) {
        /* §7.1.1 half-closed: the peer's data is no longer wanted. */
        s->fr_done += n;
        if (frame_end) {
            s->in_frame = false;
            if (s->fr.fin)
                end_message(s);
        }
        return (ptrdiff_t)n;
    }
    if (s->fr.masked)
        ws_unmask(p, n, s->fr.mask, (size_t)(s->fr_done & 3));
    bool msg_end = frame_end && s->fr.fin;
    if (s->msg_op == WS_OP_TEXT && !text_ok(s, p, n, msg_end))
        return fail(s, WS_ERR_UTF8);
    ev->type = WS_EV_DATA;
    ev->opcode = s->msg_op;
    ev->msg_first = s->fr.opcode != WS_OP_CONT && s->fr_done == 0;
    ev->msg_last = msg_end;
    ev->frame_last = frame_end;
    ev->p = p;
    ev->len = n;
    s->fr_done += n;
    if (frame_end) {
        s->in_frame = false;
        if (msg_end)
            end_message(s);
    }
    return (ptrdiff_t)n;
}

/* A whole control frame's payload, unmasked: fill ev or fail. */
static ptrdiff_t control(struct ws_session *s, uint8_t op, uint8_t *pl,
                         size_t len, struct ws_event *ev)
{
    ev->p = pl;
    ev->len = len;
    if (op == WS_OP_PING) {
        ev->type = WS_EV_PING;
        return 0;
    }
    if (op == WS_OP_PONG) {
        ev->type = WS_EV_PONG;
        return 0;
    }
    /* §5.5.1: an optional 2-byte code, then a UTF-8 reason. */
    uint16_t code = 1005; /* §7.4.1: "no status code was actually present" */
    if (len == 1)
        return fail(s, WS_ERR_CLOSE_LEN);
    if (len >= 2) {
        code = (uint16_t)(pl[0] << 8 | pl[1]);
        if (!ws_close_code_valid(code))
            return fail(s, WS_ERR_CLOSE_CODE);
        struct utf8_state u = {0};
        if (!(utf8_feed(&u, pl + 2, len - 2) == len - 2 && utf8_done(&u)))
            return fail(s, WS_ERR_CLOSE_UTF8);
        ev->p = pl + 2;
        ev->len = len - 2;
    }
    ev->type = WS_EV_CLOSE;
    ev->code = code;
    s->close_rcvd = true;
    return 0;
}

ptrdiff_t ws_session_feed(struct ws_session *s, uint8_t *p, uint8_t *end,
                          struct ws_event *ev)
{
    *ev = (struct ws_event){.type = WS_EV_NONE};
    if (s->err)
        return err_code[s->err];
    size_t avail = (size_t)(end - p);
    if (s->in_frame)
        return stream_chunk(s, p, end, ev);
    if (s->close_rcvd) {
        /* §5.5.1: nothing after a Close frame is data. */
        s->need = avail + 1;
        return (ptrdiff_t)avail;
    }
    if (avail < 2) {
        s->need = 2;
        return 0;
    }
    enum ws_err_kind k = judge_head(s, p[0], p[1]);
    if (k)
        return fail(s, k);
    struct ws_frame f;
    ptrdiff_t hr = ws_frame_parse(p, end, &f);
    if (hr <= 0) {
        if (hr < 0)
            return fail(s, WS_ERR_LENGTH);
        s->need = head_len(p);
        return 0;
    }
    size_t hdr = (size_t)hr;
    uint8_t *pl = p + hdr;

    if (f.opcode & 8) {
        if (avail - hdr < f.len) {
            s->need = hdr + f.len;
            return 0;
        }
        size_t len = (size_t)f.len;
        if (f.masked)
            ws_unmask(pl, len, f.mask, 0);
        ptrdiff_t r = control(s, f.opcode, pl, len, ev);
        return r < 0 ? r : (ptrdiff_t)(hdr + len);
    }

    /* Data frame: limits first, before any payload is waited for. */
    if (s->max_frame && f.len > s->max_frame)
        return fail(s, WS_ERR_FRAME_TOO_BIG);
    if (s->max_message && f.len > s->max_message - s->msg_len)
        return fail(s, WS_ERR_MSG_TOO_BIG);

    if (s->close_sent || (s->stream_above && f.len > s->stream_above)) {
        /* Streamed (or dropped): the header is consumed now. */
        if (f.opcode != WS_OP_CONT)
            s->msg_op = f.opcode; /* utf8 was reset by end_message */
        s->msg_len += f.len;
        s->fr = f;
        s->fr_done = 0;
        s->in_frame = true;
        if (pl == end && f.len != 0)
            return (ptrdiff_t)hdr;
        ptrdiff_t r = stream_chunk(s, pl, end, ev);
        return r < 0 ? r : (ptrdiff_t)hdr + r;
    }

    if (avail - hdr < f.len) {
        s->need = hdr + f.len;
        return 0;
    }
    size_t len = (size_t)f.len;
    if (f.masked)
        ws_unmask(pl, len, f.mask, 0);
    bool first = f.opcode != WS_OP_CONT;
    if (first)
        s->msg_op = f.opcode; /* utf8 was reset by end_message */
    if (s->msg_op == WS_OP_TEXT && !text_ok(s, pl, len, f.fin))
        return fail(s, WS_ERR_UTF8);
    ev->type = WS_EV_DATA;
    ev->opcode = s->msg_op;
    ev->msg_first = first;
    ev->msg_last = f.fin;
    ev->frame_last = true;
    ev->p = pl;
    ev->len = len;
    if (f.fin)
        end_message(s);
    else
        s->msg_len += f.len;
    return (ptrdiff_t)(hdr + len);
}

uint16_t ws_close_code_for(ptrdiff_t err)
{
    switch (err) {
    case WS_E_PROTO:
        return 1002;
    case WS_E_UTF8:
        return 1007;
    case WS_E_TOO_BIG:
        return 1009;
    default:
        return 1011; /* not a peer error: ours */
    }
}

bool ws_close_code_valid(uint16_t code)
{
    /* §7.4.1/§7.4.2 and the IANA registry: 1004-1006 and 1015 are never sent;
     * 1016-2999 are unassigned; 3000-4999 are for libraries and apps. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

size_t ws_session_close(struct ws_session *s, uint16_t code, const char *reason,
                        size_t rlen, const uint8_t *key, uint8_t *dst)
{
    assert(rlen <= WS_MAX_CTRL_PAYLOAD - 2);
    assert(!s->client || key);
    if (rlen > WS_MAX_CTRL_PAYLOAD - 2)
        rlen = WS_MAX_CTRL_PAYLOAD - 2;
    const uint8_t *mask = s->client ? key : NULL;
    size_t plen = code ? 2 + rlen : 0;
    size_t hdr = ws_frame_header_encode(dst, WS_OP_CLOSE, true, plen, mask);
    uint8_t *pl = dst + hdr;
    if (code) {
        pl[0] = (uint8_t)(code >> 8);
        pl[1] = (uint8_t)code;
        if (rlen)
            memcpy(pl + 2, reason, rlen);
    }
    if (mask)
        ws_unmask(pl, plen, mask, 0);
    s->close_sent = true;
    return hdr + plen;
}

const char *ws_err_name(enum ws_err_kind k)
{
    if ((unsigned)k >= WS_ERR__COUNT)
        return "unknown";
    return err_names[k];
}
