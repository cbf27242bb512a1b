/* Log-bucketed latency histogram; see wsload.h for the layout. */
#include "bench/wsload/wsload.h"

size_t wl_hist_index(uint64_t v)
{
    const uint64_t top = (1ull << (WL_HIST_SUB_BITS + WL_HIST_MAX_SHIFT + 1)) - 1;
    if (v < 2 * WL_HIST_SUB)
        return (size_t)v;
    if (v > top)
        v = top;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= WL_HIST_SUB_BITS + 1 */
    unsigned shift = msb - WL_HIST_SUB_BITS;            /* 1..WL_HIST_MAX_SHIFT */
    uint64_t sub = (v >> shift) - WL_HIST_SUB;          /* 0..WL_HIST_SUB-1 */
    return 2 * WL_HIST_SUB + (size_t)(shift - 1) * WL_HIST_SUB + (size_t)sub;
}

uint64_t wl_hist_value(size_t i)
{
    if (i < 2 * WL_HIST_SUB)
        return i;
    size_t k = i - 2 * WL_HIST_SUB;
    unsigned shift = (unsigned)(k / WL_HIST_SUB) + 1;
    uint64_t low = (uint64_t)(WL_HIST_SUB + k % WL_HIST_SUB) << shift;
    return low + ((1ull << shift) - 1) / 2;
}

void wl_hist_add(struct wl_hist *h, uint64_t v)
{
    wl_hist_add_at(h, wl_hist_index(v), v);
}

void wl_hist_bump(struct wl_hist *h, size_t i)
{
    atomic_store_explicit(&h->n[i], atomic_load_explicit(&h->n[i], memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void wl_hist_add_at(struct wl_hist *h, size_t i, uint64_t v)
{
    /* Single writer: a relaxed load + store is a plain increment on x86, yet
     * readers on other threads see whole values, never a data race. */
    atomic_store_explicit(&h->n[i], atomic_load_explicit(&h->n[i], memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&h->count, atomic_load_explicit(&h->count, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (v > atomic_load_explicit(&h->max, memory_order_relaxed))
        atomic_store_explicit(&h->max, v, memory_order_relaxed);
}

void wl_hist_merge(struct wl_hist *dst, const struct wl_hist *src)
{
    for (size_t i = 0; i < WL_HIST_N; i++)
        dst->n[i] += atomic_load_explicit(&src->n[i], memory_order_relaxed);
    dst->count += atomic_load_explicit(&src->count, memory_order_relaxed);
    uint64_t m = atomic_load_explicit(&src->max, memory_order_relaxed);
    if (m > dst->max)
        dst->max = m;
}

/* The rank of quantile q among n > 0 samples: the smallest value with at
 * least ceil(q * n) samples at or below it is the answer. */
static uint64_t rank(double q, uint64_t n)
{
    uint64_t want = (uint64_t)(q * (double)n + 0.999999);
    if (want < 1)
        want = 1;
    return want > n ? n : want;
}

uint64_t wl_hist_quantile_raw(const uint64_t *b, uint64_t n, double q)
{
    if (n == 0)
        return 0;
    uint64_t want = rank(q, n);
    uint64_t seen = 0;
    for (size_t i = 0; i < WL_HIST_N; i++) {
        seen += b[i];
        if (seen >= want)
            return wl_hist_value(i);
    }
    return wl_hist_value(WL_HIST_N - 1);
}

uint64_t wl_hist_quantile(const struct wl_hist *h, double q)
{
    uint64_t n = atomic_load_explicit(&h->count, memory_order_relaxed);
    uint64_t max = atomic_load_explicit(&h->max, memory_order_relaxed);
    if (n == 0)
        return 0;
    uint64_t want = rank(q, n);
    uint64_t seen = 0;
    for (size_t i = 0; i < WL_HIST_N; i++) {
        seen += atomic_load_explicit(&h->n[i], memory_order_relaxed);
        if (seen >= want) {
            uint64_t v = wl_hist_value(i);
            return v > max ? max : v;
        }
    }
    return max;
}
