#ifndef NET_WORKER_H
#define NET_WORKER_H
/* A worker: one thread, one SO_REUSEPORT listener, one edge-triggered epoll
 * instance, its own buffers, timers and counters. Connections it accepts
 * stay on it for life. */
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct wrk;
struct sfiles;
struct wsr_config;

/* Create worker id with its listener bound to sa (port 0: a free port; bind
 * the next workers to wrk_port() of the first). cfg and sf must outlive the
 * worker. Returns 0 or -errno. */
int wrk_new(struct wrk **out, int id, const struct wsr_config *cfg,
            const struct sfiles *sf, const struct sockaddr *sa, socklen_t salen);

/* The port the listener is bound to. */
uint16_t wrk_port(const struct wrk *w);

/* Start the worker's thread; returns once it has set up its I/O backend
 * (its own io_uring ring, or epoll when that failed). Returns 0 or -errno. */
int wrk_start(struct wrk *w);

/* After wrk_start: true when the worker is served by io_uring. */
bool wrk_on_uring(const struct wrk *w);

/* Ask the worker to shut down gracefully: stop accepting, send close 1001 to
 * every WebSocket, wait up to the close timeout. Safe from any thread. */
void wrk_stop(struct wrk *w);

/* Wait up to ms milliseconds for the thread to end; true when it has (and
 * was joined). */
bool wrk_join_for(struct wrk *w, unsigned ms);

/* Free everything a joined worker owns. Join every worker before freeing
 * any: a running worker may read the others' counters (GET /metrics). */
void wrk_free(struct wrk *w);

#endif
