#ifndef CORE_WS_SESSION_H
#define CORE_WS_SESSION_H
/* One WebSocket connection's receive-side state machine (RFC 6455 §5, §7):
 * frame rules, message assembly bookkeeping, UTF-8 of text messages and close
 * reasons, control frames, limits. It consumes received bytes in place
 * (unmasking them) and yields one event per call; it never copies payloads
 * or allocates, and it never writes to the network: the caller sends. */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "utf8.h"
#include "ws_frame.h"

enum ws_ev_type {
    WS_EV_NONE = 0, /* bytes consumed, nothing to report (e.g. a streamed frame's header) */
    WS_EV_DATA,     /* payload bytes of a text/binary message */
    WS_EV_PING,     /* answer with a pong carrying the same payload */
    WS_EV_PONG,
    WS_EV_CLOSE,    /* peer's close; code and reason validated */
};

/* Why a session failed; for counters. */
enum ws_err_kind {
    WS_ERR_NONE = 0,
    WS_ERR_UNMASKED,       /* client frame without mask (or masked server frame) */
    WS_ERR_RSV,            /* RSV bit without a negotiated extension */
    WS_ERR_OPCODE,         /* reserved opcode */
    WS_ERR_CTRL_FRAGMENTED,
    WS_ERR_CTRL_TOO_LONG,  /* control payload > 125 */
    WS_ERR_BAD_CONT,       /* continuation with no message open */
    WS_ERR_NOT_CONT,       /* new data frame while a message is open */
    WS_ERR_CLOSE_LEN,      /* 1-byte close payload */
    WS_ERR_CLOSE_CODE,     /* close code not allowed on the wire */
    WS_ERR_LENGTH,         /* non-minimal or top-bit-set length */
    WS_ERR_UTF8,           /* text message */
    WS_ERR_CLOSE_UTF8,     /* close reason */
    WS_ERR_FRAME_TOO_BIG,
    WS_ERR_MSG_TOO_BIG,
    WS_ERR__COUNT
};

struct ws_event {
    enum ws_ev_type type;
    uint8_t opcode;  /* DATA: the message's opcode (TEXT or BINARY), also on continuations */
    bool msg_first;  /* DATA: these are the message's first bytes */
    bool msg_last;   /* DATA: the message ends with these bytes */
    bool frame_last; /* DATA: these bytes end a frame (false only while streaming) */
    uint16_t code;   /* CLOSE: status code; 1005 when the close had no payload */
    uint8_t *p;      /* DATA/PING/PONG: payload; CLOSE: reason (after the code) */
    size_t len;      /* bytes at p, unmasked in place; valid while the caller keeps them */
};

/* All-zero plus the configuration fields is a valid start state. Fields are
 * ordered by size: a server holds one per connection. */
struct ws_session {
    /* Configuration: set before the first feed. */
    uint64_t max_frame;    /* payload bytes per frame; 0 = no limit */
    uint64_t max_message;  /* bytes per message, fragments summed; 0 = no limit */
    uint64_t stream_above; /* a frame with a longer payload is delivered in
                            * chunks as bytes arrive; 0 = never: wait for the
                            * whole frame (see need) */

    /* State. */
    uint64_t fr_done;      /* payload bytes of fr already delivered */
    uint64_t msg_len;      /* payload bytes of the open message so far */
    uint64_t need;         /* after a 0 return: total bytes from p the next
                            * call needs (header + whole payload when not
                            * streaming); lets the caller size its buffer */
    struct ws_frame fr;    /* frame being streamed, when in_frame */
    struct utf8_state utf8;/* of the open text message */
    enum ws_err_kind err;  /* set with a negative return; sticky */
    bool client;           /* configuration: we are the client, frames must be unmasked */
    bool in_frame;         /* streaming fr's payload */
    uint8_t msg_op;        /* TEXT/BINARY while a message is open, else 0 */
    bool close_rcvd;       /* peer's close seen: further bytes are ignored */
    bool close_sent;       /* we sent close: data frames are dropped, not delivered */
};

/* Consume bytes from [p, end), unmasking payloads in place. Returns bytes
 * consumed (>= 0) with *ev set (WS_EV_NONE when there is nothing to report),
 * or a negative WS_E_* with s->err set; a failed session keeps failing.
 * Returns 0 with WS_EV_NONE when more bytes are needed (see s->need). A DATA
 * event's view covers only this call's bytes; the caller owns them. Frames
 * are delivered whole unless longer than stream_above. Text is validated
 * before its event is returned (fail-fast at the first bad byte). After
 * close_rcvd every byte is consumed without events. */
ptrdiff_t ws_session_feed(struct ws_session *s, uint8_t *p, uint8_t *end,
                          struct ws_event *ev);

/* The close status for a negative ws_session_feed result: 1002, 1007 or 1009. */
uint16_t ws_close_code_for(ptrdiff_t err);

/* True when code may appear in a Close frame on the wire (RFC 6455 §7.4):
 * 1000-1003, 1007-1014, 3000-4999. */
bool ws_close_code_valid(uint16_t code);

/* Encode a close frame (server role: unmasked; client role: masked with key)
 * with code and a reason of rlen <= 123 bytes into dst (WS_MAX_HDR + 125
 * bytes), mark close_sent, and return its length. code 0 sends an empty
 * close payload. */
size_t ws_session_close(struct ws_session *s, uint16_t code, const char *reason,
                        size_t rlen, const uint8_t *key, uint8_t *dst);

/* Short, stable name of an error kind ("rsv", "utf8", ...), for metrics. */
const char *ws_err_name(enum ws_err_kind k);

#endif
