/* The worker: its event loop, listener, timer wheel and buffer pool. The
 * protocol work per connection lives in net/conn.c. */
#include "net/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "net/log.h"
#include "net/relay.h"
#include "net/wrk.h"

/* Process-wide connection count for --max-connections. Touched once per
 * accept and once per close, never per message. */
static atomic_uint total_conns;

uint64_t wrk_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t ms_to_ticks(uint32_t ms)
{
    return ms == 0 ? 0 : (ms + TICK_MS - 1) / TICK_MS;
}

/* ---- buffers -------------------------------------------------------------- */

struct buf *wrk_buf_get(struct wrk *w, size_t min_cap)
{
    struct buf *b;
    if (min_cap <= BUF_STD && w->pool) {
        b = w->pool;
        w->pool = b->next;
        w->pool_n--;
        rb_init(&b->rb, (uint8_t *)(b + 1), BUF_STD);
        return b;
    }
    size_t cap = min_cap <= BUF_STD ? BUF_STD : (min_cap + 4095) & ~(size_t)4095;
    b = malloc(sizeof *b + cap + RB_SLACK);
    if (!b)
        return NULL;
    rb_init(&b->rb, (uint8_t *)(b + 1), cap);
    b->next = NULL;
    return b;
}

void wrk_buf_put(struct wrk *w, struct buf *b)
{
    if (b->rb.cap == BUF_STD && w->pool_n < WRK_POOL_KEEP) {
        b->next = w->pool;
        w->pool = b;
        w->pool_n++;
        return;
    }
    free(b);
}

/* ---- timers: a hashed wheel; each conn has one timer ---------------------- */

void wrk_timer_del(struct wrk *w, struct conn *c)
{
    if (!c->t_prev && w->wheel[c->t_when % WHEEL_SLOTS] != c)
        return; /* not linked */
    if (c->t_prev)
        c->t_prev->t_next = c->t_next;
    else
        w->wheel[c->t_when % WHEEL_SLOTS] = c->t_next;
    if (c->t_next)
        c->t_next->t_prev = c->t_prev;
    c->t_next = c->t_prev = NULL;
    w->n_timers--;
}

static void timer_link(struct wrk *w, struct conn *c, uint32_t when)
{
    struct conn **slot = &w->wheel[when % WHEEL_SLOTS];
    c->t_when = when;
    c->t_prev = NULL;
    c->t_next = *slot;
    if (*slot)
        (*slot)->t_prev = c;
    *slot = c;
    w->n_timers++;
}

void wrk_timer_set(struct wrk *w, struct conn *c, uint32_t ticks)
{
    wrk_timer_del(w, c);
    timer_link(w, c, w->now + (ticks ? ticks : 1));
}

static void wrk_expire_timers(struct wrk *w)
{
    /* Visit every slot passed since the last visit (at most one turn). */
    uint32_t visits = w->now - w->wheel_at + 1;
    if (visits > WHEEL_SLOTS)
        visits = WHEEL_SLOTS;
    for (uint32_t i = 0; i < visits; i++) {
        struct conn **slot = &w->wheel[(w->wheel_at + i) % WHEEL_SLOTS];
        struct conn *c = *slot;
        *slot = NULL; /* detach: a fired timer may re-link into this slot */
        while (c) {
            struct conn *next = c->t_next;
            w->n_timers--;
            c->t_next = c->t_prev = NULL;
            if ((int32_t)(c->t_when - w->now) <= 0)
                conn_timeout(w, c);
            else
                timer_link(w, c, c->t_when); /* a later turn of the wheel */
            c = next;
        }
    }
    w->wheel_at = w->now + 1;
}

static int wrk_timeout_ms(const struct wrk *w)
{
    if (w->ready || relay_has_dirty(w))
        return 0;
    if (w->n_timers == 0 && !w->stopping && !w->accept_retry)
        return -1;
    uint64_t next_ms = (uint64_t)(w->now + 1) * TICK_MS + w->t0_ms;
    uint64_t now = wrk_mono_ms();
    return next_ms > now ? (int)(next_ms - now) : 0;
}

/* ---- lists ----------------------------------------------------------------- */

void wrk_ready_add(struct wrk *w, struct conn *c)
{
    if ((c->flags & CF_READY) || c->state == CS_CLOSED)
        return;
    c->flags |= CF_READY;
    c->link = w->ready;
    w->ready = c;
}

static void wrk_run_ready(struct wrk *w)
{
    struct conn *c = w->ready;
    w->ready = NULL;
    while (c) {
        struct conn *next = c->link;
        c->flags &= (uint8_t)~CF_READY;
        c->link = NULL;
        if (c->state == CS_CLOSED) /* closed while listed: conn_close left it to us */
            wrk_retire(w, c);
        else {
            conn_resume(w, c);
        }
        c = next;
    }
}

void conn_close(struct wrk *w, struct conn *c)
{
    if (c->state == CS_CLOSED)
        return;
    if (c->rm)
        relay_leave(w, c);
    /* Closing the fd removes it from the epoll set (we never dup it);
     * io_uring operations on it are cancelled first. */
    if (w->ur)
        iou_conn_closing(w, c);
    if (w->iov_owner == c) { /* replies gathered for c point into its buffers */
        w->n_iov = w->slab_used = w->slab_iov = 0;
        w->iov_owner = NULL;
    }
    if (!c->io) { /* else closed by its last io_uring completion (net/io_uring.c) */
        close(c->fd);
        c->fd = -1;
    }
    wrk_timer_del(w, c);
    if (c->in)
        wrk_buf_put(w, c->in);
    if (c->out)
        wrk_buf_put(w, c->out);
    free(c->frag);
    c->in = c->out = NULL;
    c->frag = NULL;
    conn_set_state(w, c, CS_CLOSED);
    if (c->flags & CF_COUNTED)
        atomic_fetch_sub_explicit(&total_conns, 1, memory_order_relaxed);
    w->n_conns--;
    WRK_INC(w->st.closed);
    wrk_retire(w, c);
}

void wrk_retire(struct wrk *w, struct conn *c)
{
    if ((c->flags & CF_READY) || c->io)
        return;
    c->link = w->closing;
    w->closing = c;
}

static void wrk_reap_closed(struct wrk *w)
{
    struct conn *c = w->closing;
    w->closing = NULL;
    while (c) {
        struct conn *next = c->link;
        free(c);
        c = next;
    }
}

/* ---- accept ---------------------------------------------------------------- */

static const char resp_503[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    "Content-Length: 20\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
    "too many connections";

void wrk_accept(struct wrk *w)
{
    for (;;) {
        int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                /* Out of descriptors: use the spare to take the connection
                 * off the queue and shed it, so the listener does not stay
                 * readable and spin the loop. */
                if (w->spare_fd >= 0) {
                    close(w->spare_fd);
                    int shed = accept4(w->lfd, NULL, NULL, SOCK_CLOEXEC);
                    int shed_err = errno;
                    if (shed >= 0)
                        close(shed);
                    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                    if (shed >= 0) {
                        WRK_INC(w->st.refused);
                        continue;
                    }
                    if (shed_err == EAGAIN)
                        return; /* queue empty: a new connection raises a new edge */
                }
                log_warn("worker %d: out of file descriptors, shedding connections", w->id);
                w->accept_retry = true; /* no spare: try again next tick */
                return;
            }
            if (errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN) {
                /* ENOBUFS, ENOMEM, ...: connections may still wait in the
                 * queue and the edge will not fire again for them; retry on
                 * the next timer tick. */
                log_warn("worker %d: accept: %s", w->id, strerror(errno));
                w->accept_retry = true;
            }
            return;
        }
        wrk_accept_fd(w, fd);
    }
}

void wrk_accept_fd(struct wrk *w, int fd)
{
    unsigned n = atomic_fetch_add_explicit(&total_conns, 1, memory_order_relaxed);
    if (n >= w->cfg->max_connections) {
        atomic_fetch_sub_explicit(&total_conns, 1, memory_order_relaxed);
        WRK_INC(w->st.refused);
        /* Best effort: a fresh socket's send buffer takes this at once. */
        ssize_t wr = send(fd, resp_503, sizeof resp_503 - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)wr;
        shutdown(fd, SHUT_WR);
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        atomic_fetch_sub_explicit(&total_conns, 1, memory_order_relaxed);
        close(fd);
        return;
    }
    c->fd = fd;
    c->flags = CF_COUNTED;
    if (!w->ur) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = c};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            atomic_fetch_sub_explicit(&total_conns, 1, memory_order_relaxed);
            close(fd);
            free(c);
            return;
        }
    }
    w->n_conns++;
    WRK_INC(w->st.accepted);
    conn_accepted(w, c);
}

/* ---- shutdown -------------------------------------------------------------- */

static void wrk_begin_stop(struct wrk *w)
{
    w->stopping = true;
    if (w->lfd >= 0) {
        if (w->ur)
            iou_listener_stop(w);
        close(w->lfd);
        w->lfd = -1;
    }
    w->stop_until = w->now + w->close_ticks + 1;
    /* Every live conn has a timer, so the wheel lists them all. */
    for (size_t i = 0; i < WHEEL_SLOTS; i++) {
        struct conn *c = w->wheel[i];
        while (c) {
            struct conn *next = c->t_next; /* conn_shutdown may re-link c */
            conn_shutdown(w, c);
            c = next;
        }
    }
}

static void wrk_force_close_all(struct wrk *w)
{
    for (size_t i = 0; i < WHEEL_SLOTS; i++)
        while (w->wheel[i])
            conn_close(w, w->wheel[i]);
}

/* ---- the loop -------------------------------------------------------------- */

void wrk_update_now(struct wrk *w)
{
    w->now = (uint32_t)((wrk_mono_ms() - w->t0_ms) / TICK_MS);
}

void wrk_epoll_pass(struct wrk *w, int timeout_ms)
{
    void *relay_tag = relay_wake_tag(w);
    int n = epoll_wait(w->epfd, w->evs, WRK_MAX_EVENTS, timeout_ms);
    wrk_update_now(w);
    for (int i = 0; i < n; i++) {
        void *who = w->evs[i].data.ptr;
        if (who == &w->lfd)
            wrk_accept(w);
        else if (who == &w->efd)
            ; /* a wake-up; stop_req is read below */
        else if (who == relay_tag)
            relay_drain(w); /* other workers' relay publishes */
        else
            conn_dispatch(w, who, w->evs[i].events);
    }
}

static void *wrk_main(void *arg)
{
    struct wrk *w = arg;
    if (w->cfg->io == WSR_IO_URING) {
        int rc = iou_open(w);
        struct epoll_event lev = {.events = EPOLLIN | EPOLLET, .data.ptr = &w->lfd};
        if (rc < 0) {
            log_warn("worker %d: io_uring setup failed (%s): using epoll", w->id, strerror(-rc));
            if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->lfd, &lev) == 0)
                wrk_accept(w); /* connections may have queued meanwhile */
        }
    }
    sem_post(&w->started); /* wrk_start returns: w->ur says which backend serves */
    for (;;) {
        if (w->ur)
            iou_wait(w, wrk_timeout_ms(w));
        else
            wrk_epoll_pass(w, wrk_timeout_ms(w));
        WRK_INC(w->st.loops);
        wrk_run_ready(w);
        wrk_flush_writes(w); /* relay: hand over publishes, take the inbox, one send per member */
        wrk_reap_closed(w);
        wrk_expire_timers(w);
        wrk_reap_closed(w);
        if (w->accept_retry && w->lfd >= 0) {
            w->accept_retry = false;
            wrk_accept(w);
            if (w->ur)
                iou_accept_arm(w);
        }
        if (!w->stopping && atomic_load_explicit(&w->stop_req, memory_order_acquire))
            wrk_begin_stop(w);
        if (w->stopping && (w->n_conns == 0 || (int32_t)(w->now - w->stop_until) >= 0)) {
            wrk_force_close_all(w);
            wrk_run_ready(w);
            wrk_reap_closed(w);
            if (w->ur) /* cancelled operations still hold closed conns */
                iou_close(w, 1000);
            wrk_reap_closed(w);
            break;
        }
    }
    return NULL;
}

static bool origin_allowed(void *ctx, const uint8_t *origin, size_t len)
{
    const struct wsr_config *cfg = ctx;
    if (cfg->n_origins == 0)
        return true;
    if (!origin)
        return false;
    for (size_t i = 0; i < cfg->n_origins; i++)
        if (strlen(cfg->origins[i]) == len && memcmp(cfg->origins[i], origin, len) == 0)
            return true;
    return false;
}

int wrk_new(struct wrk **out, int id, const struct wsr_config *cfg,
            const struct sfiles *sf, const struct sockaddr *sa, socklen_t salen)
{
    int one = 1, rc;
    struct wrk *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->id = id;
    w->cfg = cfg;
    w->sf = sf;
    w->lfd = w->efd = w->epfd = w->spare_fd = -1;
    w->hsc.origin_ok = origin_allowed;
    w->hsc.origin_ctx = (void *)cfg;
    w->hs_ticks = ms_to_ticks(cfg->handshake_timeout_ms);
    w->idle_ticks = ms_to_ticks(cfg->idle_timeout_ms);
    w->ping_ticks = ms_to_ticks(cfg->ping_interval_ms);
    w->close_ticks = ms_to_ticks(cfg->close_timeout_ms);

    w->lfd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (w->lfd < 0)
        goto fail_errno;
    if (setsockopt(w->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(w->lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(w->lfd, sa, salen) < 0 || listen(w->lfd, SOMAXCONN) < 0)
        goto fail_errno;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(w->lfd, (struct sockaddr *)&ss, &sl) < 0)
        goto fail_errno;
    w->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (w->epfd < 0 || w->efd < 0 || w->spare_fd < 0)
        goto fail_errno;
    struct epoll_event lev = {.events = EPOLLIN | EPOLLET, .data.ptr = &w->lfd};
    struct epoll_event eev = {.events = EPOLLIN | EPOLLET, .data.ptr = &w->efd};
    /* With io_uring the listener is served by a multishot accept instead
     * (added here only if the ring cannot be set up: see wrk_main). */
    if ((cfg->io != WSR_IO_URING && epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->lfd, &lev) < 0) ||
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->efd, &eev) < 0 || relay_attach(w) < 0)
        goto fail_errno;
    *out = w;
    return 0;
fail_errno:
    rc = -errno;
    if (w->spare_fd >= 0)
        close(w->spare_fd);
    if (w->efd >= 0)
        close(w->efd);
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->lfd >= 0)
        close(w->lfd);
    free(w);
    return rc;
}

uint16_t wrk_port(const struct wrk *w) { return w->port; }

int wrk_start(struct wrk *w)
{
    w->t0_ms = wrk_mono_ms();
    w->now = 0;
    w->wheel_at = 0;
    if (sem_init(&w->started, 0, 0) < 0)
        return -errno;
    int rc = pthread_create(&w->th, NULL, wrk_main, w);
    if (rc == 0)
        while (sem_wait(&w->started) < 0 && errno == EINTR)
            ;
    sem_destroy(&w->started);
    return -rc;
}

bool wrk_on_uring(const struct wrk *w) { return w->ur != NULL; }

void wrk_stop(struct wrk *w)
{
    atomic_store_explicit(&w->stop_req, true, memory_order_release);
    uint64_t one = 1;
    ssize_t n = write(w->efd, &one, sizeof one);
    (void)n;
}

bool wrk_join_for(struct wrk *w, unsigned ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    until.tv_sec += ms / 1000 + until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    return pthread_timedjoin_np(w->th, NULL, &until) == 0;
}

void wrk_free(struct wrk *w)
{
    while (w->pool) {
        struct buf *b = w->pool;
        w->pool = b->next;
        free(b);
    }
    if (w->lfd >= 0)
        close(w->lfd);
    close(w->efd);
    close(w->epfd);
    close(w->spare_fd);
    free(w);
}
