#ifndef CORE_WS_UNMASK_H
#define CORE_WS_UNMASK_H
/* RFC 6455 §5.3 masking: XOR with a 4-byte key. Masking and unmasking are the
 * same operation. ws_unmask() is bound once at start-up (CPU feature
 * detection) to the widest variant the CPU has; the variants are exposed so
 * tests and benchmarks can compare them with the scalar reference. */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* XOR p[0..len) in place with key, where p[0] takes key[phase & 3] (phase is
 * the payload offset of p, so a payload split across reads continues its
 * mask). Returns the phase for the byte after the last: (phase + len) & 3.
 * Reads and writes only [p, p + len); any alignment. */
size_t ws_unmask(uint8_t *p, size_t len, const uint8_t key[4], size_t phase);

typedef size_t (*ws_unmask_fn)(uint8_t *p, size_t len, const uint8_t key[4],
                               size_t phase);

/* Variants with the contract of ws_unmask(). Calling one the CPU lacks is
 * undefined; check ws_unmask_variant() first. */
size_t ws__unmask_scalar(uint8_t *p, size_t len, const uint8_t key[4], size_t phase);
size_t ws__unmask_sse2(uint8_t *p, size_t len, const uint8_t key[4], size_t phase);
size_t ws__unmask_avx2(uint8_t *p, size_t len, const uint8_t key[4], size_t phase);
size_t ws__unmask_avx512(uint8_t *p, size_t len, const uint8_t key[4], size_t phase);

/* The variant named "scalar", "sse2", "avx2" or "avx512" if this CPU can run
 * it, else NULL. */
ws_unmask_fn ws_unmask_variant(const char *name);

/* Name of the variant ws_unmask() is bound to. Static string. */
const char *ws_unmask_impl(void);

#endif
