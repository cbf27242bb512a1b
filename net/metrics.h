#ifndef NET_METRICS_H
#define NET_METRICS_H
/* GET /metrics (Prometheus text format 0.0.4) and the --stats-interval
 * summary line. Each worker counts in its own struct wrk_stats; these
 * functions sum every worker's block with relaxed loads, from any thread. */
#include <stddef.h>

struct wrk;

#define METRICS_CTYPE "text/plain; version=0.0.4; charset=utf-8"

/* Remember the workers (the array is copied; the workers must outlive every
 * later call). Call once, before any worker starts. */
void metrics_set_workers(struct wrk *const *ws, int n);

/* The exposition text as a NUL-terminated malloc'd string (*len bytes);
 * the caller frees it. NULL when out of memory. */
char *metrics_render(size_t *len);

/* Log one line: connections, messages, relay deliveries and drops. */
void metrics_log_summary(void);

#endif
