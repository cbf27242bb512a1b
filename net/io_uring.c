/* The io_uring backend (see net/io.h for the shape of both backends).
 *
 * One ring per worker, created on the worker's thread (single issuer,
 * deferred task work: completions are produced only while the worker is in
 * io_uring_enter, so nothing changes under it while it handles a batch).
 *
 * Receive: a multishot receive per connection selects buffers from a ring
 * of IOU_NBUF standard buffers (struct buf, BUF_STD bytes). A completion's
 * buffer becomes c->in as it is when the conn has no bytes buffered (the
 * common case: no copy), and is appended to c->in otherwise (the rest of a
 * frame). Emptied slots are refilled from the worker's pool after each
 * batch.
 *
 * Send: replies gather in c->out; a send takes that buffer whole (c->out
 * starts afresh), so the bytes stay put until the completion however many
 * replies queue meanwhile. One send per conn is in flight; MSG_WAITALL makes
 * the kernel finish it, and a short one is resubmitted for the rest. Sends
 * of at least --zc-threshold bytes use IORING_OP_SEND_ZC and keep their
 * buffer until the notification.
 *
 * Closing: the conn's operations are cancelled by fd before the fd is
 * closed; the conn is freed once its last completion has arrived
 * (wrk_retire). */
#include "net/io.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/log.h"
#include "net/relay.h"
#include "net/wrk.h"

#ifdef WSR_HAVE_URING
#include <liburing.h>

#define IOU_SQ 1024
#define IOU_CQ 16384
#ifndef IOU_NBUF
/* The kernel takes buffers from the ring's head and refills go to its tail,
 * so every buffer in the ring is used in turn: fewer of them keep the bytes
 * a receive writes in cache. w3 (64 KiB echoes), server CPU per message,
 * 4 interleaved rounds: 32 buffers 21.0 us, 128 23.2, 16 20.4 (epoll 18.5);
 * w2 (32 B, 100 conns) 0.20 / 0.19 / 0.21 us. A filled buffer also stays
 * resident: 256 made an idle connection cost 254 bytes of RSS against 207
 * with 128 (wsload --mode idle -c 10000). A receive that finds the ring
 * empty ends with ENOBUFS and is re-armed from the ready list. */
#define IOU_NBUF 32 /* provided buffers; a power of two */
#endif
#define IOU_BGID 0

/* user_data: a pointer (8-aligned) with the operation in the low bits. */
enum { UD_RECV, UD_SEND, UD_POLL, UD_ACCEPT, UD_EPOLL, UD_RELAY, UD_NOP };
#define UD_TAGS 7u
#define UD(p, tag) ((uint64_t)(uintptr_t)(p) | (tag))

struct iou_send {
    struct conn *c;        /* the conn waiting for this send */
    struct buf *b;         /* the bytes; unconsumed = not yet sent */
    struct iou_send *next; /* free list */
    struct iou_send *all;  /* every record, for iou_close */
    uint8_t refs;          /* completions to come (a send's, a SEND_ZC notification) */
};

struct iou {
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    unsigned n_empty;            /* slots without a buffer: empty[0..n_empty) */
    uint32_t zombies;            /* closed conns with operations in flight */
    uint32_t sends_out;          /* send records not yet back on the free list */
    struct iou_send *free_sends;
    struct iou_send *all_sends;
    bool accept_armed, epoll_armed, relay_armed;
    int relay_fd;                /* the relay eventfd polled here, or -1 */
    struct buf *bufs[IOU_NBUF];  /* by buffer id */
    uint16_t empty[IOU_NBUF];
};

bool iou_usable(const char **why)
{
    static char msg[96];
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    if (f) {
        int v = 0;
        bool off = fscanf(f, "%d", &v) == 1 && v == 2;
        fclose(f);
        if (off) {
            *why = "disabled by /proc/sys/kernel/io_uring_disabled";
            return false;
        }
    }
    struct io_uring ring;
    int rc = io_uring_queue_init(8, &ring, 0);
    if (rc < 0) {
        snprintf(msg, sizeof msg, "io_uring_setup: %s", strerror(-rc));
        *why = msg;
        return false;
    }
    /* SEND_ZC came with multishot receive (Linux 6.0); buffer rings with 5.19. */
    struct io_uring_probe *p = io_uring_get_probe_ring(&ring);
    bool ok = p && io_uring_opcode_supported(p, IORING_OP_SEND_ZC) &&
              io_uring_opcode_supported(p, IORING_OP_ACCEPT) &&
              io_uring_opcode_supported(p, IORING_OP_RECV) &&
              io_uring_opcode_supported(p, IORING_OP_POLL_ADD) &&
              io_uring_opcode_supported(p, IORING_OP_ASYNC_CANCEL);
    if (p)
        io_uring_free_probe(p);
    io_uring_queue_exit(&ring);
    if (!ok)
        *why = "the kernel lacks multishot receive or SEND_ZC (needs Linux 6.0 or later)";
    return ok;
}

static struct io_uring_sqe *sqe_get(struct iou *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) { /* the queue is full: hand it over and go on */
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
    }
    return sqe;
}

static void bufs_refill(struct wrk *w, struct iou *u)
{
    int mask = io_uring_buf_ring_mask(IOU_NBUF);
    int added = 0;
    while (u->n_empty > 0) {
        struct buf *b = wrk_buf_get(w, BUF_STD);
        if (!b)
            break; /* receives see ENOBUFS and come back via the ready list */
        uint16_t bid = u->empty[--u->n_empty];
        u->bufs[bid] = b;
        io_uring_buf_ring_add(u->br, b->rb.mem, BUF_STD, bid, mask, added++);
    }
    if (added)
        io_uring_buf_ring_advance(u->br, added);
}

static void accept_arm(struct wrk *w, struct iou *u)
{
    if (u->accept_armed || w->lfd < 0 || w->stopping)
        return;
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe) {
        w->accept_retry = true;
        return;
    }
    io_uring_prep_multishot_accept(sqe, w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, UD_ACCEPT);
    u->accept_armed = true;
}

void iou_accept_arm(struct wrk *w)
{
    accept_arm(w, w->ur);
}

/* A multishot POLLIN on fd; tag's completions come on each wake-up.
 * Returns false when no SQE could be had (retried after the next batch). */
static bool poll_arm(struct iou *u, int fd, uint64_t tag)
{
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe)
        return false;
    io_uring_prep_poll_multishot(sqe, fd, POLLIN);
    io_uring_sqe_set_data64(sqe, tag);
    return true;
}

int iou_open(struct wrk *w)
{
    struct iou *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    struct io_uring_params p = {
        .flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
                 IORING_SETUP_DEFER_TASKRUN,
        .cq_entries = IOU_CQ,
    };
    int rc = io_uring_queue_init_params(IOU_SQ, &u->ring, &p);
    if (rc == -EINVAL) { /* before Linux 6.1: no deferred task work */
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
        p.cq_entries = IOU_CQ;
        rc = io_uring_queue_init_params(IOU_SQ, &u->ring, &p);
    }
    if (rc < 0) {
        free(u);
        return rc;
    }
    /* liburing 2.3 has no io_uring_setup_buf_ring: map and register it here. */
    u->br_bytes = IOU_NBUF * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, u->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        rc = -errno;
        goto fail_ring;
    }
    u->br = mem;
    io_uring_buf_ring_init(u->br);
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)mem, .ring_entries = IOU_NBUF, .bgid = IOU_BGID};
    rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (rc < 0)
        goto fail_map;
    for (unsigned i = 0; i < IOU_NBUF; i++)
        u->empty[u->n_empty++] = (uint16_t)(IOU_NBUF - 1 - i);
    w->ur = u;
    bufs_refill(w, u);
    accept_arm(w, u);
    u->epoll_armed = poll_arm(u, w->epfd, UD_EPOLL);
    /* Relay wake-ups straight from the ring rather than through the epoll
     * set: one syscall less per wake-up. */
    u->relay_fd = relay_wake_fd(w);
    if (u->relay_fd >= 0 && epoll_ctl(w->epfd, EPOLL_CTL_DEL, u->relay_fd, NULL) == 0)
        u->relay_armed = poll_arm(u, u->relay_fd, UD_RELAY);
    else
        u->relay_fd = -1; /* stays in the epoll set */
    return 0;
fail_map:
    munmap(mem, u->br_bytes);
fail_ring:
    io_uring_queue_exit(&u->ring);
    free(u);
    return rc;
}

/* Clear bits of c->io; a closed conn whose last operation ended closes its
 * fd (kept open until now so no queued operation can reach a new conn that
 * got the same number) and is retired. */
static void io_clear(struct wrk *w, struct iou *u, struct conn *c, uint8_t bits)
{
    c->io &= (uint8_t)~bits;
    if (c->state == CS_CLOSED && c->io == 0) {
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        u->zombies--;
        wrk_retire(w, c);
    }
}

/* An SQE for an operation c cannot live without; NULL (and c closed) when
 * the queue cannot take one even after submitting. */
static struct io_uring_sqe *sqe_or_close(struct wrk *w, struct conn *c)
{
    struct io_uring_sqe *sqe = sqe_get(w->ur);
    if (!sqe)
        conn_close(w, c);
    return sqe;
}

void iou_recv_arm(struct wrk *w, struct conn *c)
{
    if (c->io & IOB_RECV)
        return;
    struct io_uring_sqe *sqe = sqe_or_close(w, c);
    if (!sqe)
        return;
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = IOU_BGID;
    io_uring_sqe_set_data64(sqe, UD(c, UD_RECV));
    c->io |= IOB_RECV;
}

void iou_recv_cancel(struct wrk *w, struct conn *c)
{
    if (!(c->io & IOB_RECV) || (c->io & IOB_RCANCEL))
        return;
    struct io_uring_sqe *sqe = sqe_get(w->ur);
    if (!sqe)
        return; /* keeps receiving into c->in; tried again on the next bytes */
    io_uring_prep_cancel64(sqe, UD(c, UD_RECV), 0);
    io_uring_sqe_set_data64(sqe, UD_NOP);
    c->io |= IOB_RCANCEL;
}

/* poll_first: the socket was full; wait for room rather than try at once. */
static bool send_submit(struct wrk *w, struct iou *u, struct iou_send *s, bool poll_first)
{
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe)
        return false;
    size_t len = rb_len(&s->b->rb);
    uint64_t zc = w->cfg->zc_threshold;
    /* WebSocket output: the kernel finishes the send (fewer completions).
     * HTTP and draining output: a short send completes so its progress
     * counts against the stall timers, as with epoll. */
    int flags = MSG_NOSIGNAL | (s->c->state == CS_WS ? MSG_WAITALL : 0);
    if (zc && len >= zc)
        io_uring_prep_send_zc(sqe, s->c->fd, rb_data(&s->b->rb), len, flags, 0);
    else
        io_uring_prep_send(sqe, s->c->fd, rb_data(&s->b->rb), len, flags);
    if (poll_first)
        sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    io_uring_sqe_set_data64(sqe, UD(s, UD_SEND));
    s->refs++;
    return true;
}

static void send_release(struct wrk *w, struct iou *u, struct iou_send *s)
{
    wrk_buf_put(w, s->b);
    s->b = NULL;
    s->next = u->free_sends;
    u->free_sends = s;
    u->sends_out--;
}

bool iou_send(struct wrk *w, struct conn *c)
{
    struct iou *u = w->ur;
    if ((c->io & IOB_SEND) || !c->out || rb_len(&c->out->rb) == 0)
        return true;
    struct iou_send *s = u->free_sends;
    if (s)
        u->free_sends = s->next;
    else if ((s = malloc(sizeof *s)) != NULL) { /* grows to the most sends ever in flight */
        s->all = u->all_sends;
        u->all_sends = s;
    } else {
        conn_close(w, c);
        return false;
    }
    s->c = c;
    s->b = c->out;
    s->next = NULL;
    s->refs = 0;
    c->out = NULL;
    u->sends_out++;
    if (!send_submit(w, u, s, false)) {
        send_release(w, u, s);
        conn_close(w, c);
        return false;
    }
    c->io |= IOB_SEND;
    return true;
}

void iou_poll_out(struct wrk *w, struct conn *c)
{
    if (c->io & IOB_POLL)
        return;
    struct io_uring_sqe *sqe = sqe_or_close(w, c);
    if (!sqe)
        return;
    io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
    io_uring_sqe_set_data64(sqe, UD(c, UD_POLL));
    c->io |= IOB_POLL;
}

void iou_conn_closing(struct wrk *w, struct conn *c)
{
    struct iou *u = w->ur;
    if (!c->io)
        return;
    u->zombies++; /* the fd stays open until the last completion (io_clear) */
    if (c->io & IOB_SEND) {
        /* The stream is cut short anyway: reset it, so the kernel drops
         * the queued bytes now and a SEND_ZC notification comes at once
         * rather than when (if ever) the peer reads. */
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    struct io_uring_sqe *sqe = sqe_get(u);
    if (sqe) {
        io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, UD_NOP);
    } else {
        shutdown(c->fd, SHUT_RDWR); /* ends them anyway: receives see EOF, sends fail */
    }
}

void iou_listener_stop(struct wrk *w)
{
    struct iou *u = w->ur;
    if (!u->accept_armed)
        return;
    struct io_uring_sqe *sqe = sqe_get(u);
    if (sqe) {
        io_uring_prep_cancel64(sqe, UD_ACCEPT, 0);
        io_uring_sqe_set_data64(sqe, UD_NOP);
        io_uring_submit(&u->ring);
    }
}

static void on_recv(struct wrk *w, struct iou *u, struct conn *c, int res, unsigned flags)
{
    struct buf *b = NULL;
    if (flags & IORING_CQE_F_BUFFER) {
        uint16_t bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
        b = u->bufs[bid];
        u->bufs[bid] = NULL;
        u->empty[u->n_empty++] = bid;
    }
    bool more = flags & IORING_CQE_F_MORE;
    if (c->state == CS_CLOSED) {
        if (b)
            wrk_buf_put(w, b);
        if (!more)
            io_clear(w, u, c, IOB_RECV | IOB_RCANCEL);
        return;
    }
    if (!more)
        c->io &= (uint8_t)~(IOB_RECV | IOB_RCANCEL);
    if (res > 0 && b) {
        conn_on_recv(w, c, b, (size_t)res);
        if (!more && c->state != CS_CLOSED)
            wrk_ready_add(w, c); /* ended with data (CQ overflow): arm again */
        return;
    }
    if (b)
        wrk_buf_put(w, b);
    if (res > 0) { /* bytes without a buffer: cannot happen with buffer select */
        conn_close(w, c);
        return;
    }
    if (!more)
        conn_on_recv_end(w, c, res);
}

static void on_send(struct wrk *w, struct iou *u, struct iou_send *s, int res, unsigned flags)
{
    if (flags & IORING_CQE_F_NOTIF) { /* SEND_ZC: the kernel let go of the bytes */
        if (--s->refs == 0 && !s->c)
            send_release(w, u, s);
        return;
    }
    if (flags & IORING_CQE_F_MORE)
        s->refs++; /* a notification follows */
    s->refs--;
    struct conn *c = s->c;
    bool failed = false;
    if (c->state != CS_CLOSED) {
        if (res > 0) {
            rb_consume(&s->b->rb, (size_t)res);
            WRK_ADD(w->st.bytes_out[c->ep], res);
        }
        if (res == -EAGAIN || res == -EINTR || (res > 0 && rb_len(&s->b->rb) > 0)) {
            /* the rest, in order: nothing else is in flight */
            if (send_submit(w, u, s, res <= 0))
                return;
            failed = true;
        } else if (res < 0) {
            failed = true;
        }
    }
    s->c = NULL;
    if (s->refs == 0)
        send_release(w, u, s);
    bool closed = c->state == CS_CLOSED;
    io_clear(w, u, c, IOB_SEND); /* may retire a closed c */
    if (closed)
        return;
    if (failed)
        conn_close(w, c);
    else
        conn_on_sent(w, c);
}

static void on_accept(struct wrk *w, struct iou *u, int res, unsigned flags)
{
    if (!(flags & IORING_CQE_F_MORE))
        u->accept_armed = false;
    if (res >= 0) {
        if (w->lfd < 0)
            close(res); /* raced with the stop */
        else
            wrk_accept_fd(w, res);
    } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
        /* The sync path sheds with the spare fd and logs; then we re-arm. */
        w->accept_retry = true;
        return;
    }
    if (!u->accept_armed && res != -ECANCELED)
        accept_arm(w, u);
}

static void handle_cqes(struct wrk *w, struct iou *u)
{
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
        uint64_t ud = cqe->user_data;
        int res = cqe->res;
        unsigned flags = cqe->flags;
        io_uring_cqe_seen(&u->ring, cqe);
        void *ptr = (void *)(uintptr_t)(ud & ~(uint64_t)UD_TAGS);
        switch (ud & UD_TAGS) {
        case UD_RECV:
            on_recv(w, u, ptr, res, flags);
            break;
        case UD_SEND:
            on_send(w, u, ptr, res, flags);
            break;
        case UD_POLL: {
            struct conn *c = ptr;
            bool closed = c->state == CS_CLOSED;
            io_clear(w, u, c, IOB_POLL);
            if (!closed)
                conn_on_writable(w, c);
            break;
        }
        case UD_ACCEPT:
            on_accept(w, u, res, flags);
            break;
        case UD_EPOLL:
            if (!(flags & IORING_CQE_F_MORE))
                u->epoll_armed = false;
            wrk_epoll_pass(w, 0);
            break;
        case UD_RELAY:
            if (!(flags & IORING_CQE_F_MORE))
                u->relay_armed = false;
            relay_drain(w); /* resets the eventfd; the loop's wrk_flush_writes takes the inbox */
            break;
        default: /* UD_NOP: cancellations */
            break;
        }
        if (u->n_empty > IOU_NBUF / 2)
            bufs_refill(w, u);
    }
    bufs_refill(w, u);
    if (!u->epoll_armed)
        u->epoll_armed = poll_arm(u, w->epfd, UD_EPOLL);
    if (u->relay_fd >= 0 && !u->relay_armed)
        u->relay_armed = poll_arm(u, u->relay_fd, UD_RELAY);
}

void iou_wait(struct wrk *w, int timeout_ms)
{
    struct iou *u = w->ur;
    /* A poll the ring could not take (no SQE even after a submit) is tried
     * again after each batch; meanwhile do not sleep past 50 ms, or a stop
     * or relay wake-up could wait for unrelated traffic. */
    if ((!u->epoll_armed || (u->relay_fd >= 0 && !u->relay_armed)) && (timeout_ms < 0 || timeout_ms > 50))
        timeout_ms = 50;
    if (timeout_ms == 0) {
        io_uring_submit_and_get_events(&u->ring);
    } else {
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts, *tsp = NULL;
        if (timeout_ms > 0) {
            ts.tv_sec = timeout_ms / 1000;
            ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000LL;
            tsp = &ts;
        }
        io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, tsp, NULL);
    }
    wrk_update_now(w);
    handle_cqes(w, u);
}

void iou_close(struct wrk *w, unsigned ms)
{
    struct iou *u = w->ur;
    uint64_t until = wrk_mono_ms() + ms;
    while ((u->zombies > 0 || u->sends_out > 0) && wrk_mono_ms() < until)
        iou_wait(w, 10);
    if (u->zombies > 0 || u->sends_out > 0)
        log_warn("worker %d: %u connections and %u sends still in the ring at exit", w->id,
                 u->zombies, u->sends_out);
    io_uring_queue_exit(&u->ring); /* the kernel lets go of the buffers here */
    munmap(u->br, u->br_bytes);
    for (unsigned i = 0; i < IOU_NBUF; i++)
        if (u->bufs[i])
            wrk_buf_put(w, u->bufs[i]);
    while (u->all_sends) { /* with any whose SEND_ZC notification never came */
        struct iou_send *s = u->all_sends;
        u->all_sends = s->all;
        if (s->b)
            wrk_buf_put(w, s->b);
        free(s);
    }
    free(u);
    w->ur = NULL;
}

#else /* built without liburing: the backend is never chosen */

bool iou_usable(const char **why)
{
    *why = "built without liburing";
    return false;
}
int iou_open(struct wrk *w) { (void)w; return -ENOSYS; }
void iou_wait(struct wrk *w, int timeout_ms) { (void)w, (void)timeout_ms; }
void iou_listener_stop(struct wrk *w) { (void)w; }
void iou_accept_arm(struct wrk *w) { (void)w; }
void iou_close(struct wrk *w, unsigned ms) { (void)w, (void)ms; }
void iou_recv_arm(struct wrk *w, struct conn *c) { (void)w, (void)c; }
void iou_recv_cancel(struct wrk *w, struct conn *c) { (void)w, (void)c; }
bool iou_send(struct wrk *w, struct conn *c) { (void)w, (void)c; return true; }
void iou_poll_out(struct wrk *w, struct conn *c) { (void)w, (void)c; }
void iou_conn_closing(struct wrk *w, struct conn *c) { (void)w, (void)c; }

#endif
