/* The hot-path byte buffer: one contiguous view [head, tail), rewound when
 * empty, compacted by rb_reserve only when the free space after tail is too
 * short. The RB_SLACK bytes after cap are never handed out and never written
 * here; they exist only so vector code may overrun the view's end. */
#include "core/rb.h"

#include <assert.h>
#include <string.h>

void rb_init(struct rb *b, uint8_t *mem, size_t cap)
{
    b->mem = mem;
    b->cap = cap;
    b->head = 0;
    b->tail = 0;
}

uint8_t *rb_reserve(struct rb *b, size_t min, size_t *avail)
{
    if (rb_room(b) < min) {
        size_t len = rb_len(b);
        if (b->cap - len < min) {
            if (avail)
                *avail = 0;
            return NULL;
        }
        /* Only reachable with head > 0: rb_room() < min <= cap - len means
         * tail > len. The regions may overlap, hence memmove. */
        memmove(b->mem, b->mem + b->head, len);
        b->head = 0;
        b->tail = len;
    }
    if (avail)
        *avail = rb_room(b);
    return b->mem + b->tail;
}

void rb_commit(struct rb *b, size_t n)
{
    assert(n <= rb_room(b));
    b->tail += n;
}

void rb_consume(struct rb *b, size_t n)
{
    assert(n <= rb_len(b));
    b->head += n;
    if (b->head == b->tail) {
        b->head = 0;
        b->tail = 0;
    }
}

bool rb_append(struct rb *b, const void *src, size_t n)
{
    uint8_t *dst = rb_reserve(b, n, NULL);
    if (!dst)
        return false;
    if (n)
        memcpy(dst, src, n);
    b->tail += n;
    return true;
}

uint8_t *rb_migrate(struct rb *b, uint8_t *mem, size_t cap)
{
    size_t len = rb_len(b);
    assert(cap >= len);
    uint8_t *old = b->mem;
    if (len)
        memmove(mem, old + b->head, len);
    b->mem = mem;
    b->cap = cap;
    b->head = 0;
    b->tail = len;
    return old;
}
