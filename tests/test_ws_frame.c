/* core/ws_frame: header parse at every prefix (a stateless parser fed byte by
 * byte sees exactly the prefixes), RFC 6455 §5.7 example headers, every
 * length form and its non-minimal twin, and encode/parse round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/ws_frame.h"

/* Parse [f, f + n) from an exact-size heap copy, so ASan catches any read
 * past end. */
static ptrdiff_t parse_copy(const uint8_t *f, size_t n, struct ws_frame *out)
{
    uint8_t *c = malloc(n ? n : 1);
    assert_non_null(c);
    if (n)
        memcpy(c, f, n);
    ptrdiff_t r = ws_frame_parse(c, c + n, out);
    free(c);
    return r;
}

/* Every prefix shorter than hdr needs more; every longer one (payload bytes
 * or a following frame included) parses to the same header. */
static void expect_header(const uint8_t *f, size_t n, size_t hdr,
                          uint8_t opcode, bool fin, bool masked, uint64_t len,
                          const uint8_t *key)
{
    for (size_t cut = 0; cut <= n; cut++) {
        struct ws_frame fr;
        memset(&fr, 0xa5, sizeof fr);
        ptrdiff_t r = parse_copy(f, cut, &fr);
        if (cut < hdr) {
            assert_int_equal(r, 0);
            continue;
        }
        assert_int_equal(r, (ptrdiff_t)hdr);
        assert_int_equal(fr.hdr_len, hdr);
        assert_int_equal(fr.opcode, opcode);
        assert_int_equal(fr.fin, fin);
        assert_int_equal(fr.masked, masked);
        assert_int_equal(fr.rsv, 0);
        assert_true(fr.len == len);
        if (key)
            assert_memory_equal(fr.mask, key, 4);
    }
}

static const uint8_t rfc_key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* RFC 6455 §5.7: "A single-frame unmasked text message". */
static void test_rfc_unmasked_hello(void **state)
{
    (void)state;
    static const uint8_t f[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    expect_header(f, sizeof f, 2, WS_OP_TEXT, true, false, 5, NULL);
}

/* RFC 6455 §5.7: "A single-frame masked text message". */
static void test_rfc_masked_hello(void **state)
{
    (void)state;
    static const uint8_t f[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                0x7f, 0x9f, 0x4d, 0x51, 0x58};
    expect_header(f, sizeof f, 6, WS_OP_TEXT, true, true, 5, rfc_key);
}

/* RFC 6455 §5.7: "A fragmented unmasked text message": two frames back to
 * back, walked header by header. */
static void test_rfc_fragmented(void **state)
{
    (void)state;
    static const uint8_t f[] = {0x01, 0x03, 0x48, 0x65, 0x6c,
                                0x80, 0x02, 0x6c, 0x6f};
    expect_header(f, sizeof f, 2, WS_OP_TEXT, false, false, 3, NULL);
    expect_header(f + 5, sizeof f - 5, 2, WS_OP_CONT, true, false, 2, NULL);
}

/* RFC 6455 §5.7: unmasked Ping and masked Pong, both "Hello". */
static void test_rfc_ping_pong(void **state)
{
    (void)state;
    static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    expect_header(ping, sizeof ping, 2, WS_OP_PING, true, false, 5, NULL);
    expect_header(pong, sizeof pong, 6, WS_OP_PONG, true, true, 5, rfc_key);
}

/* RFC 6455 §5.7: 256 bytes binary (16-bit length) and 64KiB binary (64-bit
 * length), unmasked; payload bytes are not needed to parse the header. */
static void test_rfc_binary_lengths(void **state)
{
    (void)state;
    static const uint8_t h256[] = {0x82, 0x7e, 0x01, 0x00};
    static const uint8_t h64k[] = {0x82, 0x7f, 0x00, 0x00, 0x00,
                                   0x00, 0x00, 0x01, 0x00, 0x00};
    expect_header(h256, sizeof h256, 4, WS_OP_BINARY, true, false, 256, NULL);
    expect_header(h64k, sizeof h64k, 10, WS_OP_BINARY, true, false, 65536, NULL);

    uint8_t out[WS_MAX_HDR];
    assert_int_equal(ws_frame_header_encode(out, WS_OP_BINARY, true, 256, NULL),
                     sizeof h256);
    assert_memory_equal(out, h256, sizeof h256);
    assert_int_equal(ws_frame_header_encode(out, WS_OP_BINARY, true, 65536, NULL),
                     sizeof h64k);
    assert_memory_equal(out, h64k, sizeof h64k);
}

/* The encoder reproduces the §5.7 headers byte for byte. */
static void test_encode_rfc_headers(void **state)
{
    (void)state;
    uint8_t out[WS_MAX_HDR];
    static const uint8_t unmasked[] = {0x81, 0x05};
    static const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d};
    static const uint8_t first[] = {0x01, 0x03};
    static const uint8_t last[] = {0x80, 0x02};
    assert_int_equal(ws_frame_header_encode(out, WS_OP_TEXT, true, 5, NULL), 2);
    assert_memory_equal(out, unmasked, 2);
    assert_int_equal(ws_frame_header_encode(out, WS_OP_TEXT, true, 5, rfc_key), 6);
    assert_memory_equal(out, masked, 6);
    assert_int_equal(ws_frame_header_encode(out, WS_OP_TEXT, false, 3, NULL), 2);
    assert_memory_equal(out, first, 2);
    assert_int_equal(ws_frame_header_encode(out, WS_OP_CONT, true, 2, NULL), 2);
    assert_memory_equal(out, last, 2);
}

/* RFC 6455 §5.2: the minimal number of bytes MUST be used, and the 64-bit
 * form's top bit MUST be 0. The error shows as soon as the length bytes are
 * there, before the masking key. */
static void test_non_minimal_and_top_bit(void **state)
{
    (void)state;
    static const uint8_t bad[][14] = {
        {0x82, 0xfe, 0x00, 0x7d, 1, 2, 3, 4},             /* 125 in 16 bits */
        {0x82, 0xfe, 0x00, 0x00, 1, 2, 3, 4},             /* 0 in 16 bits */
        {0x82, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4}, /* 65535 in 64 */
        {0x82, 0xff, 0, 0, 0, 0, 0, 0, 0x00, 0x05, 1, 2, 3, 4}, /* 5 in 64 */
        {0x82, 0xff, 0x80, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4},    /* top bit */
        {0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4},
    };
    static const size_t len_end[] = {4, 4, 10, 10, 10, 10};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (size_t cut = 0; cut <= len_end[i] + 4; cut++) {
            struct ws_frame fr;
            ptrdiff_t r = parse_copy(bad[i], cut, &fr);
            assert_int_equal(r, cut < len_end[i] ? 0 : WS_E_PROTO);
        }
    }
    /* The largest legal length and the smallest of each form parse. */
    static const uint8_t ok_max[] = {0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff};
    expect_header(ok_max, sizeof ok_max, 10, WS_OP_BINARY, true, false,
                  UINT64_MAX >> 1, NULL);
    static const uint8_t ok126[] = {0x82, 0x7e, 0x00, 0x7e};
    expect_header(ok126, sizeof ok126, 4, WS_OP_BINARY, true, false, 126, NULL);
    static const uint8_t ok64[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0};
    expect_header(ok64, sizeof ok64, 10, WS_OP_BINARY, true, false, 65536, NULL);
}

/* Opcode and RSV bits are reported as they are, not judged. */
static void test_rsv_and_opcode_passthrough(void **state)
{
    (void)state;
    for (unsigned b0 = 0; b0 < 256; b0++) {
        uint8_t f[2] = {(uint8_t)b0, 0x00};
        struct ws_frame fr;
        assert_int_equal(parse_copy(f, 2, &fr), 2);
        assert_int_equal(fr.opcode, b0 & 0x0f);
        assert_int_equal(fr.rsv, b0 & 0x70);
        assert_int_equal(fr.fin, (b0 & 0x80) != 0);
    }
}

/* Encode then parse: every length form boundary, both roles, all opcodes. */
static void test_roundtrip(void **state)
{
    (void)state;
    static const uint64_t lens[] = {0, 1, 125, 126, 127, 65535, 65536,
                                    (uint64_t)1 << 32, UINT64_MAX >> 1};
    static const uint8_t ops[] = {WS_OP_CONT, WS_OP_TEXT, WS_OP_BINARY,
                                  WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG};
    static const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (size_t oi = 0; oi < sizeof ops; oi++)
            for (int m = 0; m < 2; m++)
                for (int fin = 0; fin < 2; fin++) {
                    uint8_t buf[WS_MAX_HDR + 1];
                    memset(buf, 0xcc, sizeof buf);
                    const uint8_t *k = m ? key : NULL;
                    size_t n = ws_frame_header_encode(buf, ops[oi], fin, lens[li], k);
                    assert_int_equal(n, ws_frame_header_len(lens[li], m));
                    assert_true(n <= WS_MAX_HDR);
                    assert_int_equal(buf[n], 0xcc); /* wrote nothing more */
                    expect_header(buf, n, n, ops[oi], fin, m, lens[li], k);
                }
}

static void test_header_len(void **state)
{
    (void)state;
    assert_int_equal(ws_frame_header_len(0, false), 2);
    assert_int_equal(ws_frame_header_len(125, false), 2);
    assert_int_equal(ws_frame_header_len(126, false), 4);
    assert_int_equal(ws_frame_header_len(65535, true), 8);
    assert_int_equal(ws_frame_header_len(65536, false), 10);
    assert_int_equal(ws_frame_header_len(65536, true), WS_MAX_HDR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_unmasked_hello),
        cmocka_unit_test(test_rfc_masked_hello),
        cmocka_unit_test(test_rfc_fragmented),
        cmocka_unit_test(test_rfc_ping_pong),
        cmocka_unit_test(test_rfc_binary_lengths),
        cmocka_unit_test(test_encode_rfc_headers),
        cmocka_unit_test(test_non_minimal_and_top_bit),
        cmocka_unit_test(test_rsv_and_opcode_passthrough),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_header_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
