#ifndef CORE_UTF8_H
#define CORE_UTF8_H
/* Streaming, fail-fast UTF-8 validation (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). Resumable at any byte boundary. */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* All-zero is the start state (between code points). */
struct utf8_state {
    uint32_t st; /* 0: at a boundary; UTF8_REJECT: failed (sticky); else mid-sequence */
};

#define UTF8_REJECT 0xffffffffu

/* Validate [p, p + len) as the continuation of *s. Returns len when no byte
 * so far rules the input out (a code point may still be open: see
 * utf8_done), else the offset in [0, len) of the first byte after which no
 * valid continuation exists, and *s becomes UTF8_REJECT. Fail-fast: e.g.
 * 0xED 0xA0 fails at the 0xA0, 0xF4 0x90 at the 0x90, 0xC0 at itself. A
 * state already failed returns 0. */
size_t utf8_feed(struct utf8_state *s, const uint8_t *p, size_t len);

/* True when the input so far is complete, valid UTF-8. */
bool utf8_done(const struct utf8_state *s);

/* Scalar reference (byte-at-a-time DFA) with the contract of utf8_feed();
 * for differential tests and benchmarks. */
size_t utf8__feed_scalar(struct utf8_state *s, const uint8_t *p, size_t len);

/* The two variants utf8_feed() chooses from, with its contract, for tests
 * and benchmarks: sse2 (x86-64 baseline; portable elsewhere) and avx2.
 * Calling utf8__feed_avx2 is valid only when utf8__has_avx2() is true. */
size_t utf8__feed_sse2(struct utf8_state *s, const uint8_t *p, size_t len);
size_t utf8__feed_avx2(struct utf8_state *s, const uint8_t *p, size_t len);
bool utf8__has_avx2(void);

#endif
