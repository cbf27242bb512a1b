/* Relay channels: the registry, per-worker inboxes, delivery queues and the
 * per-loop-pass flush. See net/relay.h for the design.
 *
 * Threads: the registry (channel table, member counts) is guarded by one
 * mutex taken on join and leave only. A channel's member list on worker i,
 * a member and its queue, and worker i's dirty list are touched by worker i
 * alone. What crosses threads: the inboxes (lock-free), a channel's
 * per-worker member counts (atomics read on publish), and the reference
 * counts of messages and channels. */
#include "net/relay.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/ws_frame.h"
#include "net/config.h"
#include "net/wrk.h"

/* The idle echo connection stays small (issue 7: at most 160 bytes). */
_Static_assert(sizeof(struct conn) <= 160, "struct conn grew past 160 bytes");

#define RELAY_BUCKETS 1024   /* registry hash buckets (chained) */
#define RELAY_IOV 256        /* iovecs per member sendmsg */
#define RELAY_PACK (32 * 1024) /* per-worker scratch for packed frames */
/* Frames (header + payload) up to this many bytes are copied into the
 * scratch rather than referenced: the same cut as the echo's slab. */
#define RELAY_PACK_MAX (WRK_PACK_MAX + WS_MAX_HDR)
#define RELAY_Q0 8           /* first delivery ring size; doubles when full */
#define RELAY_Q_KEEP 64      /* rings up to this size are kept; see member_flush */

/* One published frame, shared by every member it goes to. */
struct relay_msg {
    atomic_uint refs;        /* queue slots + inbox entries + the publisher's */
    size_t len;              /* frame bytes (header + payload) */
    struct relay_chan *ch;   /* for inbox entries: whose members get it */
    uint8_t *frame;          /* after nodes[] */
    struct relay_node nodes[]; /* nodes[i]: the entry in worker i's inbox */
};

struct relay_chan {
    struct relay_chan *h_next; /* bucket chain, under reg.mu */
    atomic_uint refs;          /* 1 while in the registry + 1 per inbox entry */
    uint32_t members;          /* under reg.mu */
    uint32_t hash;
    uint8_t name_len;
    char name[RELAY_NAME_MAX];
    _Atomic uint32_t *nw;      /* [worker] members there: written under reg.mu, read on publish */
    struct relay_member **local; /* [worker] member list: that worker only */
};

struct relay_member {
    struct conn *c;
    struct relay_chan *ch;               /* NULL once it left the channel */
    struct relay_member *next, *prev;    /* ch->local[worker] */
    struct relay_member *d_next, *d_prev; /* the worker's dirty list */
    struct relay_msg **q;                /* ring of queued messages, oldest at q_head */
    uint32_t q_head, q_n, q_cap;         /* q_cap: 0 or a power of two */
    uint32_t q_hwm;                      /* most queued since the queue last emptied */
    uint32_t tried;                      /* loop pass of member_push's last flush of a blocked member */
    bool blocked;                        /* the socket refused bytes; cleared on EPOLLOUT */
    bool echo;                           /* gets its own messages too */
    bool dirty;                          /* on the dirty list */
    size_t off;                          /* bytes of q[q_head] already sent */
    size_t backlog;                      /* queued bytes not yet sent */
};

/* Per-worker relay state. The inbox line is written by other workers; the
 * rest by the owner (and the member gauge under reg.mu). */
struct rslot {
    struct relay_inbox inbox;
    int efd;                             /* wakes the owner; in its epoll set */
    struct relay_member *dirty __attribute__((aligned(64)));
    uint8_t *pack;                       /* RELAY_PACK bytes: member_flush's scratch */
    /* [2 * worker], [2 * worker + 1]: newest and oldest of this pass's
     * entries for that worker's inbox (out_n of them in all). */
    struct relay_node **out;
    uint32_t out_n;
    _Atomic uint64_t members;            /* gauge, under reg.mu */
} __attribute__((aligned(64)));

static struct {
    pthread_mutex_t mu;
    struct relay_chan *buckets[RELAY_BUCKETS];
    _Atomic uint64_t channels;           /* gauge, under mu */
    int n_workers;
    const struct wsr_config *cfg;
    struct rslot *slots;                 /* NULL: relay_init not called */
} reg = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- inbox ---------------------------------------------------------------- */

bool relay_inbox_push_chain(struct relay_inbox *q, struct relay_node *newest,
                            struct relay_node *oldest)
{
    struct relay_node *old = atomic_load_explicit(&q->head, memory_order_relaxed);
    do
        oldest->next = old;
    while (!atomic_compare_exchange_weak_explicit(&q->head, &old, newest, memory_order_release,
                                                  memory_order_relaxed));
    return old == NULL;
}

bool relay_inbox_push(struct relay_inbox *q, struct relay_node *n)
{
    return relay_inbox_push_chain(q, n, n);
}

struct relay_node *relay_inbox_take(struct relay_inbox *q)
{
    struct relay_node *n = atomic_exchange_explicit(&q->head, NULL, memory_order_acquire);
    struct relay_node *fifo = NULL;
    while (n) { /* the stack is newest first: reverse it */
        struct relay_node *next = n->next;
        n->next = fifo;
        fifo = n;
        n = next;
    }
    return fifo;
}

/* ---- names ------------------------------------------------------------------ */

bool relay_name_ok(const uint8_t *p, size_t len)
{
    if (len == 0 || len > RELAY_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = p[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool relay_query_echo(const uint8_t *p, size_t len)
{
    if (len > 0 && p[0] == '?')
        p++, len--;
    while (len > 0) {
        size_t n = 0;
        while (n < len && p[n] != '&')
            n++;
        if (n == 6 && memcmp(p, "echo=1", 6) == 0)
            return true;
        p += n;
        len -= n;
        if (len > 0)
            p++, len--;
    }
    return false;
}

static uint32_t name_hash(const uint8_t *p, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* ---- reference counts --------------------------------------------------------- */

static void msg_unref(struct relay_msg *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        free(m);
}

static void chan_unref(struct relay_chan *ch)
{
    if (atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) == 1)
        free(ch);
}

static struct relay_msg *msg_of(struct relay_node *n, int worker)
{
    return (struct relay_msg *)((char *)(n - worker) - offsetof(struct relay_msg, nodes));
}

/* ---- set-up ------------------------------------------------------------------- */

int relay_init(int n_workers, const struct wsr_config *cfg)
{
    struct rslot *s = aligned_alloc(64, (size_t)n_workers * sizeof *s);
    if (!s)
        return -ENOMEM;
    memset(s, 0, (size_t)n_workers * sizeof *s);
    for (int i = 0; i < n_workers; i++) {
        s[i].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (s[i].efd >= 0) {
            s[i].pack = malloc(RELAY_PACK);
            s[i].out = calloc(2 * (size_t)n_workers, sizeof *s[i].out);
        }
        if (!s[i].pack || !s[i].out) {
            int rc = s[i].efd < 0 ? -errno : -ENOMEM;
            i++;
            while (i-- > 0) {
                if (s[i].efd >= 0)
                    close(s[i].efd);
                free(s[i].pack);
                free(s[i].out);
            }
            free(s);
            return rc;
        }
    }
    reg.n_workers = n_workers;
    reg.cfg = cfg;
    reg.slots = s;
    return 0;
}

static void out_push(int from);

void relay_fini(void)
{
    if (!reg.slots)
        return;
    for (int i = 0; i < reg.n_workers; i++)
        out_push(i); /* a publish in a worker's last pass; freed below */
    for (int i = 0; i < reg.n_workers; i++) {
        struct relay_node *n = relay_inbox_take(&reg.slots[i].inbox);
        while (n) {
            struct relay_node *next = n->next;
            struct relay_msg *m = msg_of(n, i);
            chan_unref(m->ch);
            msg_unref(m);
            n = next;
        }
        close(reg.slots[i].efd);
        free(reg.slots[i].pack);
        free(reg.slots[i].out);
    }
    for (size_t b = 0; b < RELAY_BUCKETS; b++) {
        while (reg.buckets[b]) { /* only if a worker left members behind */
            struct relay_chan *ch = reg.buckets[b];
            reg.buckets[b] = ch->h_next;
            free(ch);
        }
    }
    free(reg.slots);
    reg.slots = NULL;
}

int relay_attach(struct wrk *w)
{
    if (!reg.slots)
        return 0;
    struct rslot *s = &reg.slots[w->id];
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = s};
    return epoll_ctl(w->epfd, EPOLL_CTL_ADD, s->efd, &ev) < 0 ? -errno : 0;
}

void *relay_wake_tag(const struct wrk *w)
{
    return reg.slots ? &reg.slots[w->id] : NULL;
}

int relay_wake_fd(const struct wrk *w)
{
    return reg.slots ? reg.slots[w->id].efd : -1;
}

/* ---- membership ------------------------------------------------------------------ */

int relay_join(struct wrk *w, struct conn *c, const uint8_t *name, size_t len, bool echo)
{
    if (!reg.slots || w->id >= reg.n_workers || len == 0 || len > RELAY_NAME_MAX)
        return -EINVAL;
    struct relay_member *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    uint32_t h = name_hash(name, len);
    struct relay_chan **slot = &reg.buckets[h % RELAY_BUCKETS];
    pthread_mutex_lock(&reg.mu);
    struct relay_chan *ch = *slot;
    while (ch && !(ch->hash == h && ch->name_len == len && memcmp(ch->name, name, len) == 0))
        ch = ch->h_next;
    if (!ch) {
        size_t nw = (size_t)reg.n_workers;
        ch = calloc(1, sizeof *ch + nw * sizeof(struct relay_member *) + nw * sizeof(uint32_t));
        if (!ch) {
            pthread_mutex_unlock(&reg.mu);
            free(m);
            return -ENOMEM;
        }
        ch->local = (struct relay_member **)(ch + 1);
        ch->nw = (_Atomic uint32_t *)(ch->local + nw);
        atomic_init(&ch->refs, 1);
        ch->hash = h;
        ch->name_len = (uint8_t)len;
        memcpy(ch->name, name, len);
        ch->h_next = *slot;
        *slot = ch;
        atomic_store_explicit(&reg.channels, atomic_load_explicit(&reg.channels, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    }
    ch->members++;
    atomic_store_explicit(&ch->nw[w->id],
                          atomic_load_explicit(&ch->nw[w->id], memory_order_relaxed) + 1,
                          memory_order_release);
    WRK_INC(reg.slots[w->id].members);
    pthread_mutex_unlock(&reg.mu);

    m->c = c;
    m->ch = ch;
    m->echo = echo;
    m->next = ch->local[w->id];
    if (m->next)
        m->next->prev = m;
    ch->local[w->id] = m;
    c->rm = m;
    return 0;
}

/* Leave the channel (the queue stays). */
static void member_detach(struct wrk *w, struct relay_member *m)
{
    struct relay_chan *ch = m->ch;
    if (!ch)
        return;
    if (m->prev)
        m->prev->next = m->next;
    else
        ch->local[w->id] = m->next;
    if (m->next)
        m->next->prev = m->prev;
    m->next = m->prev = NULL;
    m->ch = NULL;
    bool last = false;
    pthread_mutex_lock(&reg.mu);
    atomic_store_explicit(&ch->nw[w->id],
                          atomic_load_explicit(&ch->nw[w->id], memory_order_relaxed) - 1,
                          memory_order_release);
    WRK_DEC(reg.slots[w->id].members);
    if (--ch->members == 0) {
        struct relay_chan **pp = &reg.buckets[ch->hash % RELAY_BUCKETS];
        while (*pp != ch)
            pp = &(*pp)->h_next;
        *pp = ch->h_next;
        WRK_DEC(reg.channels);
        last = true;
    }
    pthread_mutex_unlock(&reg.mu);
    if (last)
        chan_unref(ch); /* inbox entries still in flight keep it alive */
}

/* Give m's ring back (its messages already dropped or sent) and keep the
 * slots gauge. */
static void queue_free(struct wrk *w, struct relay_member *m)
{
    free(m->q);
    WRK_ADD(w->st.relay_queue_slots, -(int64_t)m->q_cap);
    m->q = NULL;
    m->q_cap = m->q_head = 0;
}

/* Drop queued messages from the tail; keep a partly sent head when asked. */
static void queue_drop(struct relay_member *m, bool keep_started)
{
    uint32_t keep = keep_started && m->off > 0 ? 1 : 0;
    while (m->q_n > keep) {
        struct relay_msg *msg = m->q[(m->q_head + m->q_n - 1) & (m->q_cap - 1)];
        m->q_n--;
        m->backlog -= msg->len - (m->q_n == 0 ? m->off : 0);
        msg_unref(msg);
    }
    if (m->q_n == 0)
        m->off = 0;
}

static void dirty_add(struct wrk *w, struct relay_member *m)
{
    struct rslot *s = &reg.slots[w->id];
    m->dirty = true;
    m->d_prev = NULL;
    m->d_next = s->dirty;
    if (s->dirty)
        s->dirty->d_prev = m;
    s->dirty = m;
}

static void dirty_del(struct wrk *w, struct relay_member *m)
{
    if (!m->dirty)
        return;
    if (m->d_prev)
        m->d_prev->d_next = m->d_next;
    else
        reg.slots[w->id].dirty = m->d_next;
    if (m->d_next)
        m->d_next->d_prev = m->d_prev;
    m->d_next = m->d_prev = NULL;
    m->dirty = false;
}

void relay_kick(struct wrk *w, struct conn *c)
{
    if (c->rm && !c->rm->dirty)
        dirty_add(w, c->rm);
}

void relay_writable(struct wrk *w, struct conn *c)
{
    struct relay_member *m = c->rm;
    if (m)
        m->blocked = false;
    if (m && !m->dirty && (m->q_n > 0 || (c->out && rb_len(&c->out->rb) > 0)))
        dirty_add(w, m);
}

size_t relay_backlog(const struct conn *c)
{
    return c->rm ? c->rm->backlog : 0;
}

void relay_eof(struct wrk *w, struct conn *c)
{
    struct relay_member *m = c->rm;
    if (!m)
        return;
    member_detach(w, m);
    if (m->q_n > 0)
        relay_kick(w, c);
}

void relay_close_queued(struct wrk *w, struct conn *c)
{
    struct relay_member *m = c->rm;
    if (!m)
        return;
    member_detach(w, m);
    queue_drop(m, true);
    relay_kick(w, c);
}

void relay_leave(struct wrk *w, struct conn *c)
{
    struct relay_member *m = c->rm;
    if (!m)
        return;
    member_detach(w, m);
    queue_drop(m, false);
    dirty_del(w, m);
    queue_free(w, m);
    free(m);
    c->rm = NULL;
}

/* ---- delivery ------------------------------------------------------------------- */

static void member_flush(struct wrk *w, struct relay_member *m);

static bool queue_grow(struct wrk *w, struct relay_member *m)
{
    uint32_t cap = m->q_cap ? m->q_cap * 2 : RELAY_Q0;
    struct relay_msg **nq = malloc(cap * sizeof *nq);
    if (!nq)
        return false;
    for (uint32_t i = 0; i < m->q_n; i++)
        nq[i] = m->q[(m->q_head + i) & (m->q_cap - 1)];
    free(m->q);
    WRK_ADD(w->st.relay_queue_slots, cap - m->q_cap);
    m->q = nq;
    m->q_cap = cap;
    m->q_head = 0;
    return true;
}

/* What m owes its socket, as the slow-consumer policy judges it: queued
 * frames and c->out, less the unsent rest of a head message longer than the
 * limit itself. Such a message goes to a member level with the stream, and
 * while it drains (a socket takes a few MiB at most) the member is judged on
 * what queues behind it; else a reader keeping up would be cut off by the
 * next message. Still bounded: one long head plus the limit, or two long
 * messages. */
static size_t member_pending(const struct relay_member *m, uint64_t limit)
{
    const struct conn *c = m->c;
    size_t pending = m->backlog + (c->out ? rb_len(&c->out->rb) : 0);
    if (m->q_n > 0 && m->q[m->q_head]->len > limit)
        pending -= m->q[m->q_head]->len - m->off;
    return pending;
}

/* Queue msg for m, or apply the slow-consumer policy. Returns 1 when msg
 * was queued (the caller adds the reference), else 0. */
static unsigned member_push(struct wrk *w, struct relay_member *m, struct relay_msg *msg)
{
    struct conn *c = m->c;
    if (!m->ch || c->state != CS_WS)
        return 0;
    /* io_uring: while an HTTP reply from before the upgrade is still in
     * flight, nothing queued here has been offered to the socket yet: allow
     * twice the limit (bounded: a peer that never reads that reply must not
     * grow the queue without end). */
    uint64_t limit = (c->io & IOB_SEND) ? 2 * w->cfg->max_backlog : w->cfg->max_backlog;
    size_t pending = member_pending(m, limit);
    if (pending > 0 && pending + msg->len > limit) {
        /* Deliveries leave once per loop pass, so a burst can pass the limit
         * before this member was offered a byte: judge only what its socket
         * refused, after trying to send what is queued. A socket that
         * refused bytes is tried once per pass (its writability may be in
         * this very batch, not yet handled), not once per message: a member
         * that never reads must not cost a failed send per publish. */
        uint32_t pass = (uint32_t)atomic_load_explicit(&w->st.loops, memory_order_relaxed);
        if (!m->blocked || m->tried != pass) {
            m->tried = pass;
            member_flush(w, m);
            if (c->state != CS_WS)
                return 0; /* the flush failed and closed it (m is gone) */
            pending = member_pending(m, limit);
        }
    }
    /* A message larger than the limit still goes to a member that is level
     * with the stream; whole messages only, never part of a frame. */
    if (pending > 0 && pending + msg->len > limit) {
        if (w->cfg->slow_drop) {
            WRK_INC(w->st.relay_drops);
            return 0;
        }
        WRK_INC(w->st.relay_slow_closes);
        conn_ws_close(w, c, 1013, "try again later");
        return 0;
    }
    if (m->q_n == m->q_cap && !queue_grow(w, m)) {
        /* Not the slow-consumer policy's drop: this member would miss a
         * message it is owed, so it is told instead (1011, counted with
         * the close codes sent). */
        conn_ws_close(w, c, 1011, "out of memory");
        return 0;
    }
    m->q[(m->q_head + m->q_n) & (m->q_cap - 1)] = msg;
    if (++m->q_n > m->q_hwm)
        m->q_hwm = m->q_n;
    m->backlog += msg->len;
    if (!m->dirty)
        dirty_add(w, m);
    return 1;
}

/* Give msg to this worker's members of ch (skipping the sender unless it
 * asked for echo). The caller holds a reference throughout. */
static void deliver_local(struct wrk *w, struct relay_chan *ch, struct relay_msg *msg,
                          const struct conn *sender)
{
    unsigned k = 0;
    struct relay_member *m = ch->local[w->id], *next;
    for (; m; m = next) {
        next = m->next; /* a slow close unlinks m, never next */
        if (m->c == sender && !m->echo)
            continue;
        k += member_push(w, m, msg);
    }
    if (k)
        atomic_fetch_add_explicit(&msg->refs, k, memory_order_relaxed);
}

void relay_publish(struct wrk *w, struct conn *c, uint8_t opcode, const uint8_t *p, size_t len)
{
    struct relay_member *me = c->rm;
    if (!me || !me->ch)
        return;
    struct relay_chan *ch = me->ch;
    int nw = reg.n_workers;
    size_t hlen = ws_frame_header_len(len, false);
    struct relay_msg *msg = malloc(sizeof *msg + (size_t)nw * sizeof(struct relay_node) + hlen + len);
    if (!msg) { /* nobody gets it: tell the publisher rather than lose it quietly */
        conn_ws_close(w, c, 1011, "out of memory");
        return;
    }
    msg->frame = (uint8_t *)(msg->nodes + nw);
    ws_frame_header_encode(msg->frame, opcode, true, (uint64_t)len, NULL);
    if (len)
        memcpy(msg->frame + hlen, p, len);
    msg->len = hlen + len;
    msg->ch = ch;
    atomic_init(&msg->refs, 1);
    /* One entry per other worker with members, never one per member; they
     * leave together at the end of the pass (out_push). */
    struct rslot *s = &reg.slots[w->id];
    uint32_t refs = 0;
    for (int i = 0; i < nw; i++) {
        if (i == w->id || atomic_load_explicit(&ch->nw[i], memory_order_acquire) == 0)
            continue;
        refs++;
        struct relay_node *n = &msg->nodes[i];
        n->next = s->out[2 * i];
        if (!n->next)
            s->out[2 * i + 1] = n;
        s->out[2 * i] = n;
        s->out_n++;
    }
    if (refs) {
        atomic_fetch_add_explicit(&msg->refs, refs, memory_order_relaxed);
        atomic_fetch_add_explicit(&ch->refs, refs, memory_order_relaxed);
    }
    deliver_local(w, ch, msg, c);
    msg_unref(msg);
}

/* Hand worker `from`'s collected entries to the other workers: one chain
 * per inbox, and a wake-up when that inbox was empty. */
static void out_push(int from)
{
    struct rslot *s = &reg.slots[from];
    if (s->out_n == 0)
        return;
    for (int i = 0; i < reg.n_workers; i++) {
        struct relay_node *newest = s->out[2 * i];
        if (!newest)
            continue;
        if (relay_inbox_push_chain(&reg.slots[i].inbox, newest, s->out[2 * i + 1])) {
            uint64_t one = 1;
            ssize_t r = write(reg.slots[i].efd, &one, sizeof one);
            (void)r; /* EAGAIN: the counter is saturated, a wake-up is pending anyway */
        }
        s->out[2 * i] = s->out[2 * i + 1] = NULL;
    }
    s->out_n = 0;
}

void relay_drain(struct wrk *w)
{
    uint64_t v;
    /* Reset before wrk_flush_writes takes the inbox: a push after the take
     * finds it empty and wakes us again. */
    ssize_t r = read(reg.slots[w->id].efd, &v, sizeof v);
    (void)r;
}

/* Deliver every entry in w's inbox to its members, oldest first. */
static void inbox_deliver(struct wrk *w)
{
    struct rslot *s = &reg.slots[w->id];
    if (!atomic_load_explicit(&s->inbox.head, memory_order_relaxed))
        return; /* a plain load: no exclusive cache line when empty */
    struct relay_node *n = relay_inbox_take(&s->inbox);
    while (n) {
        struct relay_node *next = n->next; /* n lives in msg, which may go below */
        struct relay_msg *msg = msg_of(n, w->id);
        struct relay_chan *ch = msg->ch;
        deliver_local(w, ch, msg, NULL);
        chan_unref(ch);
        msg_unref(msg);
        n = next;
    }
}

static void pop_head(struct wrk *w, struct relay_member *m)
{
    struct relay_msg *msg = m->q[m->q_head];
    m->q_head = (m->q_head + 1) & (m->q_cap - 1);
    m->q_n--;
    m->off = 0;
    WRK_INC(w->st.relay_deliveries);
    WRK_INC(w->st.msgs_out[EP_RELAY]);
    msg_unref(msg);
}

/* Account for `done` bytes sent from the queue, head first. */
static void queue_sent(struct wrk *w, struct relay_member *m, size_t done)
{
    while (done > 0 && m->q_n > 0) {
        size_t rest = m->q[m->q_head]->len - m->off;
        if (done < rest) {
            m->off += done;
            m->backlog -= done;
            return;
        }
        done -= rest;
        m->backlog -= rest;
        pop_head(w, m);
    }
}

/* One sendmsg's worth of a member's output, built by plan_add: frames up
 * to RELAY_PACK_MAX bytes are copied next to each other into the worker's
 * scratch so a run of them is one iovec (the kernel's per-iovec cost, see
 * WRK_PACK_MAX); longer ones are referenced where they lie. */
struct plan {
    struct iovec iov[RELAY_IOV];
    size_t n, want;
    uint8_t *pack;       /* the worker's scratch, RELAY_PACK bytes */
    size_t packed;       /* bytes used in pack */
    size_t pack_iov;     /* n when iov[n - 1] ends at pack + packed, else 0 */
};

/* Add [p, p + len) to the plan. Returns false (nothing added) when the plan
 * is full: it is sent and the rest goes in the next one. */
static bool plan_add(struct plan *pl, const uint8_t *p, size_t len)
{
    if (len <= RELAY_PACK_MAX) {
        if (pl->packed + len > RELAY_PACK)
            return false;
        uint8_t *dst = pl->pack + pl->packed;
        if (!pl->pack_iov || pl->pack_iov != pl->n) {
            if (pl->n == RELAY_IOV)
                return false;
            pl->iov[pl->n++] = (struct iovec){dst, 0};
            pl->pack_iov = pl->n;
        }
        memcpy(dst, p, len);
        pl->iov[pl->n - 1].iov_len += len;
        pl->packed += len;
    } else {
        if (pl->n == RELAY_IOV)
            return false;
        pl->iov[pl->n++] = (struct iovec){(void *)p, len};
    }
    pl->want += len;
    return true;
}

/* Free an empty ring larger than RELAY_Q_KEEP; the next push starts a new
 * one at RELAY_Q0. */
static void queue_trim(struct wrk *w, struct relay_member *m)
{
    if (m->q_n == 0 && m->q_cap > RELAY_Q_KEEP)
        queue_free(w, m);
}

/* Send m's pending output: the rest of a partly sent message first (nothing
 * may cut into a frame), then c->out (control frames, the 101), then the
 * queued messages; one send per plan until done or EAGAIN. Only what a send
 * took leaves the queue: unsent frames stay queued by reference, so the
 * copy in the scratch is never needed past the call. */
static void member_flush(struct wrk *w, struct relay_member *m)
{
    struct conn *c = m->c;
    if (c->io & IOB_SEND)
        return; /* io_uring: an HTTP reply from before the upgrade is in flight; its completion kicks us */
    struct plan pl;
    pl.pack = reg.slots[w->id].pack;
    for (;;) {
        size_t head = 0, outlen = c->out ? rb_len(&c->out->rb) : 0;
        uint32_t i = 0, mask = m->q_cap - 1;
        pl.n = pl.want = pl.packed = pl.pack_iov = 0;
        if (m->q_n > 0 && m->off > 0) {
            struct relay_msg *msg = m->q[m->q_head];
            head = msg->len - m->off;
            plan_add(&pl, msg->frame + m->off, head); /* an empty plan takes anything */
            i = 1;
        }
        bool room = true;
        if (outlen && !plan_add(&pl, rb_data(&c->out->rb), outlen))
            outlen = 0, room = false; /* next time: the partial head leaves alone first */
        for (; room && i < m->q_n; i++) {
            struct relay_msg *msg = m->q[(m->q_head + i) & mask];
            if (!plan_add(&pl, msg->frame, msg->len))
                break;
        }
        if (pl.n == 0)
            break;
        ssize_t r;
        if (pl.n == 1) { /* send: no msghdr or iovec array to copy in */
            do
                r = send(c->fd, pl.iov[0].iov_base, pl.iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
            while (r < 0 && errno == EINTR);
        } else {
            struct msghdr mh = {.msg_iov = pl.iov, .msg_iovlen = pl.n};
            do
                r = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
            while (r < 0 && errno == EINTR);
        }
        if (r < 0) {
            if (errno == EAGAIN) {
                m->blocked = true;
                if (w->ur)
                    iou_poll_out(w, c);
                break; /* EPOLLOUT (or the io_uring poll) brings us back */
            }
            conn_close(w, c);
            return;
        }
        size_t done = (size_t)r, k;
        WRK_ADD(w->st.bytes_out[EP_RELAY], done);
        if (head) {
            k = done < head ? done : head;
            queue_sent(w, m, k);
            done -= k;
        }
        if (outlen) {
            k = done < outlen ? done : outlen;
            rb_consume(&c->out->rb, k);
            done -= k;
        }
        queue_sent(w, m, done);
        if ((size_t)r < pl.want) {
            m->blocked = true;
            if (w->ur)
                iou_poll_out(w, c);
            break; /* the socket is full */
        }
    }
    if (c->state == CS_CLOSED)
        return; /* iou_poll_out found no SQE and closed c: m is gone */
    if (m->q_n == 0) {
        /* A burst grew the ring and is over (since the queue last emptied
         * it held no more than an eighth of it): give it back rather than
         * keep the largest size ever needed for the member's whole life. A
         * member that fills a large ring in every pass keeps it; one whose
         * passes alternate between more than an eighth and less regrows it
         * each time (a few mallocs per pass, next to a send of several µs).
         * On a channel that fell silent the keep-alive ping's flush comes
         * here. */
        if (m->q_cap >= 8 * m->q_hwm)
            queue_trim(w, m);
        m->q_hwm = 0;
    }
    conn_out_written(w, c); /* may close c (drain finished): m is gone then */
}

void wrk_flush_writes(struct wrk *w)
{
    if (!reg.slots)
        return;
    struct rslot *s = &reg.slots[w->id];
    struct relay_member *m;
    out_push(w->id);
    inbox_deliver(w);
    while ((m = s->dirty) != NULL) {
        dirty_del(w, m);
        if (m->c->state != CS_CLOSED)
            member_flush(w, m);
    }
}

bool relay_has_dirty(const struct wrk *w)
{
    return reg.slots && (reg.slots[w->id].dirty != NULL || reg.slots[w->id].out_n > 0);
}

uint64_t relay_channels(void)
{
    return atomic_load_explicit(&reg.channels, memory_order_relaxed);
}

uint64_t relay_members(int worker_id)
{
    if (!reg.slots || worker_id < 0 || worker_id >= reg.n_workers)
        return 0;
    return atomic_load_explicit(&reg.slots[worker_id].members, memory_order_relaxed);
}
