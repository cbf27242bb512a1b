/* libFuzzer target for core/ws_session (and ws_frame through it).
 *
 * Input: byte 0 configures the session, byte 1 how bytes arrive, the rest is
 * the peer's byte stream.
 *   byte 0: bit 7 client role; bit 6 we send a close half-way; bit 5
 *           max_message 150; bit 4 max_frame 64; bits 0-3 stream_above
 *           (n * 3, 0 = never stream).
 *   byte 1: bits 0-3 bytes per arrival (0 = all at once).
 * The stream is fed like a receive buffer that fills up: after every arrival
 * the session is fed until it needs more. Invariants checked: nothing
 * consumed beyond the input, a 0 result always means s->need is out of
 * reach (so a caller's loop cannot spin), errors are sticky and consistent
 * with s->err, event views lie inside the bytes consumed by that call,
 * limits hold, delivered text messages and close reasons are valid UTF-8,
 * close codes are valid, nothing is reported after the peer's close, and no
 * data after ours. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "core/ws_frame.h"
#include "core/ws_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)            \
    do {                    \
        if (!(c))           \
            __builtin_trap(); \
    } while (0)

static bool utf8_valid(const uint8_t *p, size_t len)
{
    struct utf8_state u = {0};
    return utf8__feed_scalar(&u, p, len) == len && utf8_done(&u);
}

static void check_error(struct ws_session *s, ptrdiff_t r, uint8_t *p,
                        uint8_t *end)
{
    CHECK(r == WS_E_PROTO || r == WS_E_UTF8 || r == WS_E_TOO_BIG);
    CHECK(s->err > WS_ERR_NONE && s->err < WS_ERR__COUNT);
    bool utf8 = s->err == WS_ERR_UTF8 || s->err == WS_ERR_CLOSE_UTF8;
    bool big = s->err == WS_ERR_FRAME_TOO_BIG || s->err == WS_ERR_MSG_TOO_BIG;
    CHECK((r == WS_E_UTF8) == utf8);
    CHECK((r == WS_E_TOO_BIG) == big);
    uint16_t code = ws_close_code_for(r);
    CHECK(code == 1002 || code == 1007 || code == 1009);
    /* Sticky, whatever is fed next. */
    enum ws_err_kind k = s->err;
    struct ws_event ev;
    CHECK(ws_session_feed(s, p, end, &ev) == r);
    CHECK(ws_session_feed(s, end, end, &ev) == r);
    CHECK(ev.type == WS_EV_NONE && s->err == k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t c0 = data[0], c1 = data[1];
    struct ws_session s = {
        .client = (c0 & 0x80) != 0,
        .max_message = (c0 & 0x20) ? 150 : 0,
        .max_frame = (c0 & 0x10) ? 64 : 0,
        .stream_above = (uint64_t)(c0 & 0x0f) * 3,
    };
    bool send_close = (c0 & 0x40) != 0;
    size_t step = c1 & 0x0f;
    size_t len = size - 2;
    uint8_t *buf = malloc(len ? len : 1);
    /* A text message as delivered, to check it whole at its end. */
    uint8_t *msg = malloc(len ? len : 1);
    if (!buf || !msg)
        abort();
    if (len)
        memcpy(buf, data + 2, len);

    size_t pos = 0, have = step && step < len ? step : len;
    size_t msg_n = 0, frame_n = 0, msg_total = 0, rounds = 0;
    bool msg_open = false, in_chunks = false, closed = false;
    uint8_t msg_op = 0;
    for (;;) {
        CHECK(++rounds <= 2 * len + 8);
        if (send_close && !s.close_sent && pos >= len / 2) {
            static const uint8_t key[4] = {9, 8, 7, 6};
            uint8_t out[WS_MAX_HDR + WS_MAX_CTRL_PAYLOAD];
            size_t n = ws_session_close(&s, 1001, "bye", 3, key, out);
            struct ws_frame fr;
            CHECK(s.close_sent);
            CHECK(ws_frame_parse(out, out + n, &fr) == (s.client ? 6 : 2));
            CHECK(fr.len == 5 && fr.masked == s.client && fr.fin);
        }
        struct ws_event ev;
        uint8_t *p = buf + pos, *end = buf + have;
        ptrdiff_t r = ws_session_feed(&s, p, end, &ev);
        if (r < 0) {
            check_error(&s, r, p, end);
            break;
        }
        CHECK((size_t)r <= have - pos);
        if (r == 0) {
            CHECK(ev.type == WS_EV_NONE);
            CHECK(s.need > have - pos);
            if (have == len)
                break;
            have = step == 0 || len - have < step ? len : have + step;
            continue;
        }
        CHECK(s.err == WS_ERR_NONE);
        if (ev.type != WS_EV_NONE) {
            CHECK(!closed);
            CHECK(ev.p >= p && ev.len <= (size_t)r &&
                  ev.p + ev.len <= p + r);
        }
        switch (ev.type) {
        case WS_EV_NONE:
            break;
        case WS_EV_DATA:
            CHECK(!s.close_sent);
            CHECK(ev.opcode == WS_OP_TEXT || ev.opcode == WS_OP_BINARY);
            CHECK(!ev.msg_last || ev.frame_last);
            CHECK(ev.msg_first == (!msg_open && !in_chunks));
            if (ev.msg_first) {
                msg_open = true;
                msg_op = ev.opcode;
                msg_n = msg_total = 0;
            }
            CHECK(msg_open && ev.opcode == msg_op);
            if (!in_chunks)
                frame_n = 0;
            frame_n += ev.len;
            msg_total += ev.len;
            in_chunks = !ev.frame_last;
            if (!ev.frame_last)
                CHECK(s.stream_above && ev.len > 0);
            CHECK(!s.max_frame || frame_n <= s.max_frame);
            CHECK(!s.max_message || msg_total <= s.max_message);
            if (msg_op == WS_OP_TEXT) {
                memcpy(msg + msg_n, ev.p, ev.len);
                msg_n += ev.len;
            }
            if (ev.msg_last) {
                CHECK(msg_op != WS_OP_TEXT || utf8_valid(msg, msg_n));
                msg_open = false;
            }
            break;
        case WS_EV_PING:
        case WS_EV_PONG:
            CHECK(ev.len <= WS_MAX_CTRL_PAYLOAD);
            break;
        case WS_EV_CLOSE:
            CHECK(ev.code == 1005 ? ev.len == 0 : ws_close_code_valid(ev.code));
            CHECK(ev.len <= WS_MAX_CTRL_PAYLOAD - 2);
            CHECK(utf8_valid(ev.p, ev.len));
            CHECK(s.close_rcvd);
            closed = true;
            break;
        default:
            CHECK(0);
        }
        pos += (size_t)r;
    }
    CHECK(pos <= len);
    if (closed)
        CHECK(pos == have); /* everything after the close was swallowed */
    free(msg);
    free(buf);
    return 0;
}
