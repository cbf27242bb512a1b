#ifndef CORE_WS_FRAME_H
#define CORE_WS_FRAME_H
/* RFC 6455 §5.2 frame headers: parse (any role) and encode (server frames
 * unmasked, client frames masked). Stateless: a header is at most 14 bytes,
 * so "need more" simply means "call again with more bytes". */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

/* Negative results shared by the core/ws_* modules. "Need more bytes" is 0. */
enum {
    WS_E_PROTO = -1,   /* protocol violation: close 1002 */
    WS_E_UTF8 = -2,    /* invalid UTF-8 in text or close reason: close 1007 */
    WS_E_TOO_BIG = -3, /* frame or message over its configured limit: close 1009 */
};

#define WS_MAX_HDR 14         /* 2 + 8 (64-bit length) + 4 (mask key) */
#define WS_MAX_CTRL_PAYLOAD 125 /* RFC 6455 §5.5 */

struct ws_frame {
    uint64_t len;    /* payload bytes */
    uint8_t mask[4]; /* masking key, valid when masked */
    uint8_t opcode;  /* low nibble of byte 0, not judged here */
    uint8_t rsv;     /* RSV1..RSV3 as they sit in byte 0 (0x70 mask) */
    uint8_t hdr_len; /* 2..14 */
    bool fin;
    bool masked;
};

/* Parse one frame header from [p, end). Returns the header length (2..14)
 * with *out filled, 0 when more bytes are needed, or WS_E_PROTO for a length
 * that is not minimally encoded or a 64-bit length with its top bit set
 * (RFC 6455 §5.2). Opcode, RSV and mask rules are the session's to judge.
 * Never reads past end. */
ptrdiff_t ws_frame_parse(const uint8_t *p, const uint8_t *end,
                         struct ws_frame *out);

/* Bytes a header for a payload of len takes, with or without a mask key. */
size_t ws_frame_header_len(uint64_t len, bool masked);

/* Write a frame header into dst (room for WS_MAX_HDR bytes). mask == NULL
 * writes an unmasked (server) header; otherwise the 4-byte key is written
 * and the MASK bit set (the payload is the caller's to mask). Returns the
 * bytes written, == ws_frame_header_len(len, mask != NULL). */
size_t ws_frame_header_encode(uint8_t *dst, uint8_t opcode, bool fin,
                              uint64_t len, const uint8_t *mask);

#endif
