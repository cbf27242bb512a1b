#ifndef CORE_RB_H
#define CORE_RB_H
/* The byte buffer of the hot path. Bytes are appended at tail and consumed
 * at head; [head, tail) is always one contiguous view, so frames are parsed
 * and unmasked in place without wrap-around cases. When the buffer empties,
 * head and tail rewind to 0 (no copy); only when room is short while bytes
 * are still unconsumed (a partial frame at the end of a read) does
 * rb_reserve move those bytes to the front. Memory belongs to the caller and
 * carries RB_SLACK writable bytes after cap, so vector code that reads or
 * writes a whole vector at the tail never faults. */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define RB_SLACK 64 /* one AVX-512 vector */

struct rb {
    uint8_t *mem; /* cap + RB_SLACK bytes, owned by the caller */
    size_t cap;   /* usable bytes */
    size_t head;  /* first unconsumed byte */
    size_t tail;  /* one past the last committed byte */
};

/* Adopt mem (cap + RB_SLACK bytes) as an empty buffer. */
void rb_init(struct rb *b, uint8_t *mem, size_t cap);

/* Committed, unconsumed bytes. */
static inline size_t rb_len(const struct rb *b) { return b->tail - b->head; }

/* The unconsumed bytes as one view of rb_len() bytes. Valid until the next
 * rb_reserve, rb_consume or rb_migrate on b. */
static inline uint8_t *rb_data(const struct rb *b) { return b->mem + b->head; }

/* Free bytes after tail without moving anything. */
static inline size_t rb_room(const struct rb *b) { return b->cap - b->tail; }

/* Return a writable view of at least min free bytes after tail, moving the
 * unconsumed bytes to the front if that is what it takes; *avail gets the
 * whole contiguous free length. NULL when cap - rb_len() < min. Moving
 * invalidates views from rb_data(). */
uint8_t *rb_reserve(struct rb *b, size_t min, size_t *avail);

/* Mark n bytes written into the view from rb_reserve as data. n <= avail. */
void rb_commit(struct rb *b, size_t n);

/* Drop n bytes from the front (n <= rb_len). An emptied buffer rewinds. */
void rb_consume(struct rb *b, size_t n);

/* Copy n bytes from src to the tail. Returns false (nothing copied) when
 * they do not fit even after moving. */
bool rb_append(struct rb *b, const void *src, size_t n);

/* Move the unconsumed bytes into mem (cap + RB_SLACK bytes, cap >= rb_len)
 * and adopt it; returns the old memory for the caller to free or pool. */
uint8_t *rb_migrate(struct rb *b, uint8_t *mem, size_t cap);

#endif
