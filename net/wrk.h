#ifndef NET_WRK_H
#define NET_WRK_H
/* Layouts shared by net/worker.c (loop, accept, timers, buffers) and
 * net/conn.c (HTTP, WebSocket, replies). Nothing outside net/ includes this. */
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/uio.h>

#include "core/hs.h"
#include "core/http.h"
#include "core/rb.h"
#include "core/ws_session.h"
#include "net/config.h"
#include "net/io.h"

#define WRK_MAX_EVENTS 256
#define WRK_IOV 512            /* iovecs per writev; flushed early when full */
#define WRK_SLAB (64 * 1024)   /* reply headers and packed small replies per batch */
/* Replies with payloads up to this many bytes are copied into the slab so a
 * batch of them leaves in one iovec; longer ones are referenced in place.
 * The kernel's per-iovec cost in _copy_from_iter dominated the echo of
 * 32-byte messages (see README, "Echo data path"). */
#ifndef WRK_PACK_MAX
#define WRK_PACK_MAX 256
#endif
#define WRK_READ_BUDGET 16     /* reads per conn per wake-up before it yields */
#define WRK_POOL_KEEP 64       /* idle standard buffers a worker keeps */
#ifndef BUF_STD
/* 256 KiB: two 64 KiB frames plus headers fit without moving the second to
 * the front; 128 KiB cost 19.4 against 18.4 us of server CPU per 64 KiB echo
 * (w3, interleaved A/B). Idle conns hold no buffer; pages are touched only
 * as far as bytes arrive. */
#define BUF_STD (256 * 1024)
#endif
#define TICK_MS 50
#define WHEEL_SLOTS 1024       /* 51.2 s per turn; later deadlines go round again */
#define HTTP_MAX_LINE (8 * 1024)
#define HTTP_MAX_HEAD (16 * 1024)

/* A byte buffer with its bookkeeping in front; data follows. */
struct buf {
    struct rb rb;
    struct buf *next; /* pool free list */
};

enum conn_state {
    CS_HTTP,    /* reading requests (keep-alive, pipelining) */
    CS_WS,      /* WebSocket open */
    CS_CLOSING, /* we sent close; waiting for the peer's close or EOF */
    CS_DRAIN,   /* last bytes queued: send them, shut down writes, read until EOF */
    CS_CLOSED,  /* fd closed; freed after the event batch */
    CS__COUNT
};

enum conn_ep { EP_NONE, EP_PREFIX, EP_ECHO, EP_RELAY, EP__COUNT }; /* EP_NONE: plain HTTP */

enum {
    CF_PAUSED = 1,    /* output over the backlog limit: not reading */
    CF_READY = 2,     /* on w->ready */
    CF_PING_OUT = 4,  /* a keep-alive ping is unanswered */
    CF_SHUT_WR = 8,   /* write side shut down */
    CF_HTTP_CLOSE = 16, /* close after the current response */
    CF_COUNTED = 32,  /* counted in the process-wide connection count */
};

/* A fragmented message being assembled (rare: most messages are one frame). */
struct frag {
    size_t len, cap;
    uint8_t data[];
};

struct conn {
    union {
        struct http_parser hp; /* CS_HTTP */
        struct ws_session ws;  /* CS_WS and later */
    } u;
    struct buf *in;          /* received bytes; NULL while none are buffered */
    struct buf *out;         /* unsent bytes; NULL while none are pending */
    struct frag *frag;       /* message being assembled, or NULL */
    struct conn *t_next, *t_prev; /* timer wheel slot list */
    struct conn *link;       /* ready or closing list */
    struct relay_member *rm; /* relay membership and delivery queue (net/relay.c), or NULL */
    uint32_t t_when;         /* tick the timer fires */
    /* WebSocket: tick bytes last arrived. HTTP/DRAIN: how many bytes the
     * peer had acknowledged (low 32 bits) at the last stall check. */
    uint32_t last_rx;
    int fd;
    uint8_t state;           /* enum conn_state */
    uint8_t ep;              /* enum conn_ep */
    uint8_t flags;           /* CF_* */
    uint8_t io;              /* IOB_*: io_uring operations in flight (net/io.h) */
};

/* Per-worker counters. Only the owning worker writes them, with a relaxed
 * load and store (plain movs, no lock prefix); net/metrics.c reads them from
 * any thread with relaxed loads, so the reads are race-free for TSan too. */
typedef _Atomic uint64_t wrk_ctr;
#define WRK_ADD(ctr, n)                                                              \
    atomic_store_explicit(&(ctr),                                                    \
                          atomic_load_explicit(&(ctr), memory_order_relaxed) + (uint64_t)(n), \
                          memory_order_relaxed)
#define WRK_INC(ctr) WRK_ADD(ctr, 1)
#define WRK_DEC(ctr) WRK_ADD(ctr, UINT64_MAX) /* gauges: wraps back; never below 0 per worker */

/* Close status slots: 1000..1015 by code, then "none" (empty close), then
 * any other code (3000-4999). */
#define WRK_CLOSE_SLOTS 18
static inline unsigned wrk_close_slot(unsigned code)
{
    if (code == 0 || code == 1005)
        return 16;
    return code >= 1000 && code <= 1015 ? code - 1000 : 17;
}

struct wrk_stats {
    wrk_ctr accepted, refused, closed;
    wrk_ctr msgs_in[EP__COUNT], msgs_out[EP__COUNT], bytes_in[EP__COUNT], bytes_out[EP__COUNT];
    wrk_ctr http_requests, upgrades;
    wrk_ctr pauses;
    wrk_ctr ws_errors[WS_ERR__COUNT];
    wrk_ctr conns[CS__COUNT];          /* gauge: open conns by state (CS_CLOSED: total closed) */
    wrk_ctr close_sent[WRK_CLOSE_SLOTS], close_rcvd[WRK_CLOSE_SLOTS];
    wrk_ctr relay_deliveries;          /* relay messages fully written to a member */
    wrk_ctr relay_slow_closes, relay_drops;
    wrk_ctr relay_queue_slots;         /* gauge: delivery-queue slots allocated (a pointer each) */
    wrk_ctr loops;                     /* event-loop iterations */
} __attribute__((aligned(64)));

struct wrk {
    int id;
    int epfd, lfd, efd;
    struct iou *ur;          /* the io_uring backend, or NULL: epoll (net/io.h) */
    int spare_fd;            /* released to accept-and-shed when out of fds */
    uint16_t port;
    pthread_t th;
    sem_t started;           /* posted once the thread has set up its I/O backend */
    const struct wsr_config *cfg;
    const struct sfiles *sf;
    struct hs_config hsc;

    struct buf *pool;        /* free standard buffers */
    uint32_t pool_n;
    uint32_t n_conns;

    struct conn *ready;      /* conns that used up their read budget */
    struct conn *closing;    /* closed conns, freed after the batch */

    uint64_t t0_ms;          /* monotonic ms at start */
    uint32_t now;            /* current tick */
    uint32_t wheel_at;       /* next tick the wheel has to visit */
    uint32_t n_timers;
    uint32_t hs_ticks, idle_ticks, ping_ticks, close_ticks;
    struct conn *wheel[WHEEL_SLOTS];

    atomic_bool stop_req;
    bool stopping;
    bool accept_retry;       /* accept failed for lack of resources: try again next tick */
    uint32_t stop_until;     /* tick after which stragglers are cut */

    /* Reply scratch for the conn being served: filled, then one writev. */
    size_t n_iov, slab_used;
    size_t slab_iov;         /* n_iov when the last iovec ends at the slab's end, else 0 */
    struct conn *iov_owner;  /* conn whose replies the scratch holds; conn_close drops them */
    struct iovec iov[WRK_IOV];
    uint8_t slab[WRK_SLAB];

    struct epoll_event evs[WRK_MAX_EVENTS];
    struct wrk_stats st;
};

/* worker.c services used by conn.c */
struct buf *wrk_buf_get(struct wrk *w, size_t min_cap);
void wrk_buf_put(struct wrk *w, struct buf *b);
void wrk_timer_set(struct wrk *w, struct conn *c, uint32_t ticks_from_now);
void wrk_timer_del(struct wrk *w, struct conn *c);
void wrk_ready_add(struct wrk *w, struct conn *c);
void conn_close(struct wrk *w, struct conn *c);
/* A closed conn is freed after the batch once nothing refers to it: not on
 * the ready list, no io_uring operation in flight. Called by each of those
 * when it lets go. */
void wrk_retire(struct wrk *w, struct conn *c);
/* Take an accepted socket on (or refuse it over --max-connections). */
void wrk_accept_fd(struct wrk *w, int fd);
/* accept4 until the queue is empty (also the io_uring backend's way back
 * after a resource shortage ended its multishot accept). */
void wrk_accept(struct wrk *w);
/* Handle what the epoll set has ready without waiting (the io_uring
 * backend polls the epoll fd for the stop and relay eventfds). */
void wrk_epoll_pass(struct wrk *w, int timeout_ms);
void wrk_update_now(struct wrk *w);
/* Monotonic milliseconds (coarse clock: tick resolution is all we need). */
uint64_t wrk_mono_ms(void);

/* Every state change goes through here so the per-state gauges stay right. */
static inline void conn_set_state(struct wrk *w, struct conn *c, enum conn_state s)
{
    WRK_DEC(w->st.conns[c->state]);
    WRK_INC(w->st.conns[s]);
    c->state = (uint8_t)s;
}

/* conn.c entry points used by worker.c */
void conn_accepted(struct wrk *w, struct conn *c);
void conn_dispatch(struct wrk *w, struct conn *c, uint32_t events);
void conn_resume(struct wrk *w, struct conn *c);   /* from the ready list */
void conn_timeout(struct wrk *w, struct conn *c);
void conn_shutdown(struct wrk *w, struct conn *c); /* server is stopping */
/* Relay hooks: start the closing handshake with code if still open; after
 * net/relay.c wrote some of c->out, release it when empty and finish a
 * drain. */
void conn_ws_close(struct wrk *w, struct conn *c, uint16_t code, const char *reason);
void conn_out_written(struct wrk *w, struct conn *c);

#endif
