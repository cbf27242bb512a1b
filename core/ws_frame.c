/* RFC 6455 §5.2 frame header codec. Byte 0: FIN, RSV1-3, opcode. Byte 1:
 * MASK and a 7-bit length, where 126 announces a 16-bit and 127 a 64-bit
 * big-endian length. Then, when MASK is set, the 4-byte masking key. */
#include "core/ws_frame.h"

#include <string.h>

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

ptrdiff_t ws_frame_parse(const uint8_t *p, const uint8_t *end,
                         struct ws_frame *out)
{
    size_t avail = (size_t)(end - p);
    if (avail < 2)
        return 0;
    uint8_t b0 = p[0], b1 = p[1];
    uint8_t len7 = b1 & 0x7f;
    bool masked = (b1 & 0x80) != 0;
    /* 0, 2 or 8 extended length bytes. */
    size_t ext = len7 < 126 ? 0 : len7 == 126 ? 2 : 8;
    if (avail < 2 + ext)
        return 0;
    uint64_t len = len7;
    if (ext == 2) {
        len = (uint64_t)p[2] << 8 | p[3];
        /* RFC 6455 §5.2: "the minimal number of bytes MUST be used". */
        if (len < 126)
            return WS_E_PROTO;
    } else if (ext == 8) {
        len = load_be64(p + 2);
        /* The most significant bit MUST be 0; and 16 bits would have done. */
        if ((len >> 63) != 0 || len <= 0xffff)
            return WS_E_PROTO;
    }
    size_t hdr = 2 + ext + (masked ? 4 : 0);
    if (avail < hdr)
        return 0;
    out->len = len;
    if (masked)
        memcpy(out->mask, p + 2 + ext, 4);
    else
        memset(out->mask, 0, 4);
    out->opcode = b0 & 0x0f;
    out->rsv = b0 & 0x70;
    out->hdr_len = (uint8_t)hdr;
    out->fin = (b0 & 0x80) != 0;
    out->masked = masked;
    return (ptrdiff_t)hdr;
}

size_t ws_frame_header_len(uint64_t len, bool masked)
{
    size_t n = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
    return n + (masked ? 4 : 0);
}

size_t ws_frame_header_encode(uint8_t *dst, uint8_t opcode, bool fin,
                              uint64_t len, const uint8_t *mask)
{
    uint8_t mbit = mask ? 0x80 : 0;
    size_t n;
    dst[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        dst[1] = (uint8_t)(mbit | len);
        n = 2;
    } else if (len <= 0xffff) {
        dst[1] = mbit | 126;
        dst[2] = (uint8_t)(len >> 8);
        dst[3] = (uint8_t)len;
        n = 4;
    } else {
        dst[1] = mbit | 127;
        for (int i = 0; i < 8; i++)
            dst[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        memcpy(dst + n, mask, 4);
        n += 4;
    }
    return n;
}
