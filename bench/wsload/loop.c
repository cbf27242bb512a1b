/* One wsload worker: its own epoll instance (edge-triggered), its own
 * connections, counters and histograms.
 *
 * Payloads are never stored. Message seq from source src has a size and a
 * start offset into the shared pattern table that are pure functions of
 * (src, seq), so a reply is verified byte for byte, streaming, as it is read,
 * against what must have been sent; a reply that comes back out of order
 * has the wrong bytes (or size). Only a frame header (<= 14 bytes) and a
 * control payload (<= 125) are ever carried between reads, so a connection
 * costs a few hundred bytes whatever the message size.
 *
 * Sending builds as many frames as fit into the worker's 256 KiB scratch,
 * masks them (fresh key per frame) and writes them with one send(); only a
 * short write hands the scratch over to the connection as its pending
 * buffer (no copy) and takes the connection's empty one in exchange.
 *
 * Phases: CONNECT (open and handshake, at most WL_MAX_PENDING at a time) ->
 * WAIT (main sets t0) -> RUN (send until t0 + warm-up + duration; idle: hold
 * until t0 + duration) -> DRAIN (no new messages; wait for replies in flight)
 * -> CLOSE (close handshake) -> exit. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/hs.h"
#include "core/ws_frame.h"
#include "core/ws_unmask.h"
#include "bench/wsload/wsload.h"

#define WL_CHUNK (256 * 1024)    /* bytes generated per send(); 256 KiB: w3 (64 KiB messages)
                                  * costs ~1 us less per message in the kernel than with 64 KiB */
#define WL_RBUF (256 * 1024)     /* bytes per read() */
#define WL_MAX_PENDING 128       /* connects + handshakes in progress per worker */
#define WL_MAX_EVENTS 256
#define WL_HS_CAP 4096           /* handshake response head */
#define WL_CTL_CAP (4 * (WS_MAX_HDR + WS_MAX_CTRL_PAYLOAD))
#define WL_SEND_ROUNDS 8         /* chunks per connection per flush, for fairness */
#define WL_CONNECT_TIMEOUT_NS (10 * 1000000000ull)
#define WL_DRAIN_NS (3 * 1000000000ull)
#define WL_CLOSE_NS (2 * 1000000000ull)
#define WL_MAX_LOG 5

enum cstate { C_NEW, C_CONNECTING, C_HS, C_OPEN, C_CLOSING, C_DONE };
enum crole { R_ECHO, R_PUB, R_SUB, R_IDLE };
enum phase { P_CONNECT, P_WAIT, P_RUN, P_DRAIN, P_CLOSE, P_EXIT };

struct conn {
    int fd;
    uint8_t state;        /* enum cstate */
    uint8_t role;         /* enum crole */
    bool dirty;           /* on the worker's flush list */
    bool want_out;        /* a send hit EAGAIN: wait for EPOLLOUT */
    bool tx_in_msg;       /* a message is partly generated */
    bool failed;
    uint32_t id;          /* global connection index; also the echo source id */
    uint32_t sched;       /* index in the open-loop schedule (echo: id; relay: publisher) */
    uint64_t deadline_ns; /* connect/handshake */

    /* Sending. */
    uint64_t tx_seq;      /* next message to start */
    uint64_t due_seq;     /* open loop: messages whose intended time has come */
    uint64_t tx_len, tx_off;
    uint32_t tx_pat;
    uint8_t tx_key[4];
    uint8_t *pend;        /* generated, unsent bytes (after a short write); WL_CHUNK + 64 */
    size_t pend_off, pend_len;
    uint64_t *sent_ns;    /* closed loop: send time of seq at [seq & ring_mask] */
    uint8_t ctl[WL_CTL_CAP]; /* control frames waiting to go out */
    size_t ctl_len;

    /* Receiving. */
    uint64_t rx_seq;      /* echo: next reply expected */
    uint8_t hdr[WS_MAX_HDR];
    uint8_t hdr_n;        /* partial frame header bytes in hdr */
    bool in_frame;        /* between a frame's header and the end of its payload */
    bool fr_fin, fr_masked;
    uint8_t fr_op;
    uint8_t fr_key[4];
    uint64_t fr_left, fr_off;
    uint8_t msg_op;       /* opcode of the open message, 0 when none */
    bool msg_known;       /* msg_len / msg_pat / msg_seq are set */
    uint64_t msg_off, msg_len, msg_src, msg_seq;
    uint32_t msg_pat;
    uint8_t ctlbuf[WS_MAX_CTRL_PAYLOAD];
    uint8_t rh[WL_RELAY_HDR]; /* relay subscriber: header of the open message */
    uint64_t *next_seq;   /* relay subscriber: next seq per publisher */

    /* Handshake. */
    char *hs;             /* response head so far (WL_HS_CAP), freed once open */
    size_t hs_len;
    char accept[HS_ACCEPT_LEN + 1];
};

struct worker {
    struct wl_thread *t;
    struct wl_run *run;
    const struct wl_opts *o;
    int epfd;
    struct conn *c;
    size_t n;
    struct conn **sched;      /* open-loop participants in schedule order */
    size_t n_sched;
    uint64_t sched_total;     /* participants over all workers */
    size_t cur_j;             /* schedule cursor: participant sched[cur_j], round cur_k */
    uint64_t cur_k;
    uint64_t cur_next;        /* intended time of the cursor (ns, absolute) */
    struct conn **dirty;
    size_t n_dirty;
    size_t next_connect, n_pending, n_settled;
    uint64_t t0, t_warm, t_end, t_drain, t_close;
    enum phase ph;
    uint64_t ring_mask;
    uint64_t rng;
    uint8_t *wbuf;            /* WL_CHUNK + slack */
    uint8_t *rbuf;            /* WL_RBUF */
    uint8_t op;               /* WS_OP_TEXT or WS_OP_BINARY */
    uint64_t next_check;      /* connect phase: next timeout scan */
    bool started;             /* closed loop: first messages handed out */
    bool self_echo;           /* relay: ?echo=1, publishers get their own messages too */
    /* Closed-loop relay (-p without -r; one thread holds every connection):
     * a publisher keeps at most -p messages not yet delivered to everyone. */
    uint32_t *rl_cnt;         /* [pub * ring + (seq & ring_mask)]: receivers that have seq */
    uint64_t *rl_done;        /* [pub]: messages delivered to every receiver */
    uint32_t rl_expect;       /* receivers per message */
};


uint64_t wl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t mix2(uint64_t src, uint64_t seq)
{
    uint64_t s = src * 0x100000001b3ull ^ (seq + 0x5bd1e995u);
    return splitmix(&s);
}

uint64_t wl_msg_size(const struct wl_opts *o, uint64_t src, uint64_t seq)
{
    if (o->size_min == o->size_max)
        return o->size_min;
    return o->size_min + mix2(src, seq) % (o->size_max - o->size_min + 1);
}

uint32_t wl_msg_pat(uint64_t src, uint64_t seq)
{
    return (uint32_t)(mix2(src ^ 0xabcdefull, seq) >> 40) & (WL_PAT_LEN - 1);
}

/* ---- errors ------------------------------------------------------------------------ */

static void log_conn(struct worker *w, const struct conn *c, const char *what)
{
    struct wl_thread *t = w->t;
    atomic_store_explicit(&t->prog_errors,
                          atomic_load_explicit(&t->prog_errors, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (t->logged++ < WL_MAX_LOG)
        fprintf(stderr, "wsload: conn %u: %s\n", c->id, what);
    else if (t->logged == WL_MAX_LOG + 1)
        fprintf(stderr, "wsload: thread %u: further errors not shown\n", t->idx);
}

static void conn_drop(struct worker *w, struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    if (c->state == C_CONNECTING || c->state == C_HS) {
        w->n_pending--;
        w->n_settled++;
    }
    c->state = C_DONE;
    free(c->hs);
    c->hs = NULL;
}

/* A broken connection: count it, say why (rate-limited), close it. */
static void conn_fail(struct worker *w, struct conn *c, bool mismatch, const char *what)
{
    if (c->failed)
        return;
    c->failed = true;
    if (mismatch)
        w->t->mismatches++;
    else
        w->t->errors++;
    log_conn(w, c, what);
    conn_drop(w, c);
}

static void mark_dirty(struct worker *w, struct conn *c)
{
    if (!c->dirty && c->state >= C_OPEN && c->state != C_DONE) {
        c->dirty = true;
        w->dirty[w->n_dirty++] = c;
    }
}

/* ---- payload generation and verification ------------------------------------------- */

static const uint8_t no_key[4];

/* Write payload bytes [off, off + n) of a message with pattern start pat,
 * masked with key (payload offset off has phase off & 3). */
static void pat_mask_copy(const uint8_t *pat, uint32_t start, uint64_t off, uint8_t *dst, size_t n,
                          const uint8_t key[4])
{
    while (n) {
        size_t at = (size_t)((start + off) & (WL_PAT_LEN - 1));
        size_t k = n < WL_PAT_LEN ? n : WL_PAT_LEN;
        wl_mask_copy(dst, pat + at, k, key, (size_t)(off & 3));
        dst += k;
        off += k;
        n -= k;
    }
}

/* Whether p[0, n), unmasked with key (no_key: as it is), is payload
 * [off, off + n) of the message with pattern start pat. */
static bool pat_equal(const uint8_t *pat, uint32_t start, uint64_t off, const uint8_t *p, size_t n,
                      const uint8_t key[4], size_t phase)
{
    while (n) {
        size_t at = (size_t)((start + off) & (WL_PAT_LEN - 1));
        size_t k = n < WL_PAT_LEN ? n : WL_PAT_LEN;
        if (!wl_mask_equal(p, pat + at, k, key, phase))
            return false;
        p += k;
        off += k;
        phase += k;
        n -= k;
    }
    return true;
}

static void relay_hdr(uint8_t out[WL_RELAY_HDR], uint64_t pub, uint64_t seq)
{
    char tmp[WL_RELAY_HDR + 1];
    snprintf(tmp, sizeof tmp, "R%08x%016llx ", (unsigned)pub, (unsigned long long)seq);
    memcpy(out, tmp, WL_RELAY_HDR);
}

/* The first message c may not start yet: messages tx_seq up to (not
 * including) the result may go out now. */
static uint64_t start_limit(const struct worker *w, const struct conn *c, uint64_t now)
{
    if (w->ph != P_RUN || now >= w->t_end || now < w->t0)
        return c->tx_seq;
    switch (c->role) {
    case R_ECHO: {
        uint64_t lim = c->rx_seq + w->o->pipeline;
        return w->o->rate > 0 && c->due_seq < lim ? c->due_seq : lim;
    }
    case R_PUB:
        if (w->o->rate > 0)
            return c->due_seq;
        return w->rl_done[c->sched] + w->o->pipeline;
    default:
        return c->tx_seq;
    }
}

static bool can_start(const struct worker *w, const struct conn *c, uint64_t now)
{
    return c->tx_seq < start_limit(w, c, now);
}

/* Generate frames for c into dst[0, cap): queued control frames, then new
 * messages while allowed. Returns bytes written. */
static size_t fill(struct worker *w, struct conn *c, uint8_t *dst, size_t cap, uint64_t now)
{
    size_t n = 0;
    uint64_t lim = start_limit(w, c, now); /* sending changes none of its inputs */
    for (;;) {
        if (!c->tx_in_msg) {
            if (c->ctl_len && c->ctl_len <= cap - n) {
                memcpy(dst + n, c->ctl, c->ctl_len);
                n += c->ctl_len;
                c->ctl_len = 0;
            }
            if (cap - n <= WS_MAX_HDR || c->tx_seq >= lim)
                break;
            uint64_t src = c->role == R_PUB ? c->sched : c->id;
            c->tx_len = wl_msg_size(w->o, src, c->tx_seq);
            c->tx_pat = wl_msg_pat(src, c->tx_seq);
            c->tx_off = 0;
            uint64_t r = splitmix(&w->rng);
            memcpy(c->tx_key, &r, 4);
            n += ws_frame_header_encode(dst + n, w->op, true, c->tx_len, c->tx_key);
            if (c->sent_ns)
                c->sent_ns[c->tx_seq & w->ring_mask] = now;
            c->tx_in_msg = true;
        }
        size_t k = cap - n;
        if (k > c->tx_len - c->tx_off)
            k = (size_t)(c->tx_len - c->tx_off);
        if (k == 0 && c->tx_len != c->tx_off)
            break; /* buffer full mid-message */
        uint8_t *p = dst + n;
        pat_mask_copy(w->run->pat, c->tx_pat, c->tx_off, p, k, c->tx_key);
        if (c->role == R_PUB && c->tx_off < WL_RELAY_HDR) {
            uint8_t rh[WL_RELAY_HDR];
            relay_hdr(rh, c->sched, c->tx_seq);
            size_t m = WL_RELAY_HDR - (size_t)c->tx_off;
            wl_mask_copy(p, rh + c->tx_off, m < k ? m : k, c->tx_key, (size_t)(c->tx_off & 3));
        }
        n += k;
        c->tx_off += k;
        if (c->tx_off == c->tx_len) {
            c->tx_in_msg = false;
            c->tx_seq++;
            w->t->sent++;
        }
    }
    return n;
}

static void flush(struct worker *w, struct conn *c, uint64_t now)
{
    if (c->want_out || c->state < C_OPEN || c->state == C_DONE)
        return;
    if (c->pend_len) {
        ssize_t r = send(c->fd, c->pend + c->pend_off, c->pend_len, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->want_out = true;
                return;
            }
            char m[128];
            snprintf(m, sizeof m, "send: %s", strerror(errno));
            conn_fail(w, c, false, m);
            return;
        }
        c->pend_off += (size_t)r;
        c->pend_len -= (size_t)r;
        if (c->pend_len) {
            c->want_out = true;
            return;
        }
        c->pend_off = 0;
    }
    for (int round = 0; round < WL_SEND_ROUNDS; round++) {
        size_t n = fill(w, c, w->wbuf, WL_CHUNK, now);
        if (n == 0)
            return;
        ssize_t r = send(c->fd, w->wbuf, n, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                char m[128];
                snprintf(m, sizeof m, "send: %s", strerror(errno));
                conn_fail(w, c, false, m);
                return;
            }
            r = 0;
        }
        if ((size_t)r < n) {
            if (!c->pend && !(c->pend = malloc(WL_CHUNK))) {
                conn_fail(w, c, false, "out of memory");
                return;
            }
            memcpy(c->pend, w->wbuf + r, n - (size_t)r);
            c->pend_off = 0;
            c->pend_len = n - (size_t)r;
            c->want_out = true;
            return;
        }
    }
    mark_dirty(w, c); /* more to send: come back after the other connections */
}

/* Queue a masked control frame (pong, close). False when there is no room. */
static bool queue_ctl(struct worker *w, struct conn *c, uint8_t op, const uint8_t *p, size_t len)
{
    if (c->ctl_len + WS_MAX_HDR + len > sizeof c->ctl)
        return false;
    uint8_t key[4];
    uint64_t r = splitmix(&w->rng);
    memcpy(key, &r, 4);
    uint8_t *d = c->ctl + c->ctl_len;
    size_t h = ws_frame_header_encode(d, op, true, len, key);
    memcpy(d + h, p, len);
    ws_unmask(d + h, len, key, 0);
    c->ctl_len += h + len;
    mark_dirty(w, c);
    return true;
}

/* ---- receiving ---------------------------------------------------------------------- */

static void record(struct worker *w, uint64_t lat, uint64_t bytes, uint64_t now)
{
    struct wl_thread *t = w->t;
    if (now < w->t0)
        return;
    size_t i = wl_hist_index(lat);
    wl_hist_bump(&t->prog, i);
    atomic_store_explicit(&t->prog_msgs, atomic_load_explicit(&t->prog_msgs, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&t->prog_bytes,
                          atomic_load_explicit(&t->prog_bytes, memory_order_relaxed) + bytes,
                          memory_order_relaxed);
    if (now >= w->t_warm && now < w->t_end) {
        wl_hist_add_at(&t->lat, i, lat);
        t->msgs++;
        t->bytes += bytes;
    }
}

/* Intended send time of message seq of schedule participant s (open loop). */
static uint64_t intended(const struct worker *w, uint64_t s, uint64_t seq)
{
    unsigned __int128 idx = (unsigned __int128)seq * w->sched_total + s;
    return w->t0 + (uint64_t)((double)idx * 1e9 / w->o->rate);
}

static int msg_begin(struct worker *w, struct conn *c, uint8_t op)
{
    const struct wl_opts *o = w->o;
    if (c->role == R_IDLE) {
        conn_fail(w, c, false, "unexpected data message from the server");
        return -1;
    }
    if (op != w->op) {
        conn_fail(w, c, true, "reply opcode differs from the message's");
        return -1;
    }
    c->msg_op = op;
    c->msg_off = 0;
    c->msg_known = false;
    if (c->role == R_ECHO) {
        if (c->rx_seq == c->tx_seq) {
            conn_fail(w, c, true, "reply to a message never sent");
            return -1;
        }
        c->msg_src = c->id;
        c->msg_seq = c->rx_seq;
        c->msg_len = (o->raw ? 0 : o->prefix_len) + wl_msg_size(o, c->id, c->rx_seq);
        c->msg_pat = wl_msg_pat(c->id, c->rx_seq);
        c->msg_known = true;
    }
    return 0;
}

/* Relay: every member receives every other member's messages; its own
 * only when the channel was joined with ?echo=1. */
static bool relay_expects(const struct worker *w, const struct conn *c, unsigned pub)
{
    return c->role != R_PUB || pub != c->sched || w->self_echo;
}

/* Relay: the first WL_RELAY_HDR bytes name publisher and sequence. */
static int relay_identify(struct worker *w, struct conn *c)
{
    char s[WL_RELAY_HDR + 1];
    memcpy(s, c->rh, WL_RELAY_HDR);
    s[WL_RELAY_HDR] = 0;
    unsigned pub;
    unsigned long long seq;
    char sp;
    if (s[0] != 'R' || sscanf(s + 1, "%8x%16llx%c", &pub, &seq, &sp) != 3 || sp != ' ' ||
        pub >= w->o->publishers || !relay_expects(w, c, pub)) {
        conn_fail(w, c, true, "relay message without a valid header");
        return -1;
    }
    if (seq != c->next_seq[pub]) {
        char m[160];
        snprintf(m, sizeof m, "relay: publisher %u message %llu arrived, expected %llu (%s)", pub, seq,
                 (unsigned long long)c->next_seq[pub], seq > c->next_seq[pub] ? "lost" : "out of order");
        conn_fail(w, c, true, m);
        return -1;
    }
    c->msg_src = pub;
    c->msg_seq = seq;
    c->msg_len = wl_msg_size(w->o, pub, seq);
    c->msg_pat = wl_msg_pat(pub, seq);
    c->msg_known = true;
    uint8_t want[WL_RELAY_HDR];
    relay_hdr(want, pub, seq);
    if (memcmp(want, c->rh, WL_RELAY_HDR) != 0) {
        conn_fail(w, c, true, "relay header not in canonical form");
        return -1;
    }
    return 0;
}

/* Verify n payload bytes at message offset c->msg_off. key: the frame's
 * mask (raw echo frames come back masked; they are checked without being
 * unmasked first) at phase, or no_key. Only raw echoes are masked, so a
 * masked reply has neither a relay header nor a prefix. */
static int msg_bytes(struct worker *w, struct conn *c, uint8_t *p, size_t n, const uint8_t key[4], size_t phase)
{
    const struct wl_opts *o = w->o;
    if (!c->msg_known) { /* relay: gather the header first */
        size_t m = WL_RELAY_HDR - (size_t)c->msg_off;
        if (m > n)
            m = n;
        memcpy(c->rh + c->msg_off, p, m);
        c->msg_off += m;
        p += m;
        phase += m;
        n -= m;
        if (c->msg_off < WL_RELAY_HDR)
            return 0;
        if (relay_identify(w, c) < 0)
            return -1;
    }
    if (c->msg_off + n > c->msg_len) {
        char m[160];
        snprintf(m, sizeof m, "message %llu: reply longer than the %llu bytes expected",
                 (unsigned long long)c->msg_seq, (unsigned long long)c->msg_len);
        conn_fail(w, c, true, m);
        return -1;
    }
    size_t plen = (c->role == R_ECHO && !o->raw) ? o->prefix_len : 0;
    if (c->msg_off < plen) {
        size_t m = plen - (size_t)c->msg_off;
        if (m > n)
            m = n;
        if (memcmp(p, o->prefix + c->msg_off, m) != 0) {
            conn_fail(w, c, true, "reply does not start with the expected prefix");
            return -1;
        }
        c->msg_off += m;
        p += m;
        phase += m;
        n -= m;
    }
    uint64_t poff = c->msg_off - plen;
    size_t skip = 0;
    if (c->next_seq && poff < WL_RELAY_HDR) /* header already checked */
        skip = (size_t)(WL_RELAY_HDR - poff) < n ? (size_t)(WL_RELAY_HDR - poff) : n;
    if (!pat_equal(w->run->pat, c->msg_pat, poff + skip, p + skip, n - skip, key, phase + skip)) {
        ws_unmask(p, n, key, phase); /* for the report: the bytes as sent */
        size_t bad = skip;
        uint8_t exp = 0;
        for (; bad < n; bad++) {
            pat_mask_copy(w->run->pat, c->msg_pat, poff + bad, &exp, 1, no_key);
            if (exp != p[bad])
                break;
        }
        char m[200];
        snprintf(m, sizeof m, "message %llu (%llu bytes): mismatch at payload byte %llu: got 0x%02x, want 0x%02x",
                 (unsigned long long)c->msg_seq, (unsigned long long)(c->msg_len - plen),
                 (unsigned long long)(poff + bad), bad < n ? p[bad] : 0, exp);
        conn_fail(w, c, true, m);
        return -1;
    }
    c->msg_off += n;
    return 0;
}

/* Closed-loop relay: one receiver has publisher pub's message seq. When
 * every receiver has the oldest outstanding ones, the publisher may send on. */
static void relay_delivered(struct worker *w, uint32_t pub, uint64_t seq, uint64_t now)
{
    uint32_t *cnt = w->rl_cnt + (size_t)pub * (w->ring_mask + 1);
    cnt[seq & w->ring_mask]++;
    bool moved = false;
    while (w->rl_done[pub] <= seq && cnt[w->rl_done[pub] & w->ring_mask] == w->rl_expect) {
        cnt[w->rl_done[pub] & w->ring_mask] = 0;
        w->rl_done[pub]++;
        moved = true;
    }
    if (moved && can_start(w, &w->c[pub], now))
        mark_dirty(w, &w->c[pub]);
}

static int msg_end(struct worker *w, struct conn *c, uint64_t now)
{
    if (!c->msg_known || c->msg_off != c->msg_len) {
        char m[160];
        snprintf(m, sizeof m, "message %llu: reply of %llu bytes, expected %llu",
                 (unsigned long long)c->msg_seq, (unsigned long long)c->msg_off,
                 (unsigned long long)c->msg_len);
        conn_fail(w, c, true, m);
        return -1;
    }
    uint64_t sent;
    if (c->next_seq && w->rl_cnt)
        sent = w->c[c->msg_src].sent_ns[c->msg_seq & w->ring_mask];
    else if (c->next_seq)
        sent = intended(w, c->msg_src, c->msg_seq);
    else if (c->sent_ns)
        sent = c->sent_ns[c->msg_seq & w->ring_mask];
    else
        sent = intended(w, c->sched, c->msg_seq);
    uint64_t plen = (c->role == R_ECHO && !w->o->raw) ? w->o->prefix_len : 0;
    record(w, now > sent ? now - sent : 0, c->msg_len - plen, now);
    if (c->next_seq) {
        c->next_seq[c->msg_src]++;
        if (w->rl_cnt)
            relay_delivered(w, (uint32_t)c->msg_src, c->msg_seq, now);
    } else {
        c->rx_seq++;
        if (can_start(w, c, now))
            mark_dirty(w, c);
    }
    c->msg_op = 0;
    return 0;
}

static int frame_begin(struct worker *w, struct conn *c, const struct ws_frame *f)
{
    char m[160];
    if (f->rsv) {
        conn_fail(w, c, false, "server frame with RSV bits set");
        return -1;
    }
    if (f->masked != w->o->raw) {
        /* RFC 6455 §5.1: a server MUST NOT mask; a raw echo returns our masks. */
        conn_fail(w, c, false, f->masked ? "masked frame from the server" : "unmasked frame from the raw peer");
        return -1;
    }
    c->fr_op = f->opcode;
    c->fr_fin = f->fin;
    c->fr_masked = f->masked;
    memcpy(c->fr_key, f->mask, 4);
    c->fr_left = f->len;
    c->fr_off = 0;
    c->in_frame = true;
    switch (f->opcode) {
    case WS_OP_CONT:
        if (!c->msg_op) {
            conn_fail(w, c, false, "continuation frame with no message open");
            return -1;
        }
        return 0;
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        if (c->msg_op) {
            conn_fail(w, c, false, "new data frame inside a fragmented message");
            return -1;
        }
        return msg_begin(w, c, f->opcode);
    case WS_OP_PING:
    case WS_OP_PONG:
    case WS_OP_CLOSE:
        if (!f->fin || f->len > WS_MAX_CTRL_PAYLOAD) {
            conn_fail(w, c, false, "fragmented or oversized control frame");
            return -1;
        }
        return 0;
    default:
        snprintf(m, sizeof m, "reserved opcode 0x%x from the server", f->opcode);
        conn_fail(w, c, false, m);
        return -1;
    }
}

static int frame_end(struct worker *w, struct conn *c, uint64_t now)
{
    c->in_frame = false;
    size_t len = (size_t)c->fr_off;
    switch (c->fr_op) {
    case WS_OP_PING:
        if (c->state == C_OPEN && !queue_ctl(w, c, WS_OP_PONG, c->ctlbuf, len)) {
            conn_fail(w, c, false, "too many pings queued");
            return -1;
        }
        return 0;
    case WS_OP_PONG:
        return 0;
    case WS_OP_CLOSE:
        if (c->state == C_CLOSING) { /* the answer to our close */
            conn_drop(w, c);
            return -1;
        } else {
            char m[128];
            unsigned code = len >= 2 ? (unsigned)c->ctlbuf[0] << 8 | c->ctlbuf[1] : 1005;
            snprintf(m, sizeof m, "server sent close %u during the run", code);
            conn_fail(w, c, false, m);
            return -1;
        }
    default:
        if (c->fr_fin)
            return msg_end(w, c, now);
        return 0;
    }
}

/* The common case without the frame state machine: [p, end) starts with a
 * whole unfragmented reply to echo message rx_seq, with the opcode, mask
 * bit, length, prefix and payload it must have. Returns its bytes, or 0 when
 * anything differs or is incomplete, and the general path (which says what
 * is wrong) takes over. 64-bit lengths go that way too: at 64 KiB and more
 * the state machine costs nothing next to the payload. */
static size_t rx_echo_fast(struct worker *w, struct conn *c, const uint8_t *p, const uint8_t *end, uint64_t now)
{
    const struct wl_opts *o = w->o;
    size_t avail = (size_t)(end - p), h = 2;
    if (avail < 2 || c->rx_seq == c->tx_seq || p[0] != (0x80 | w->op) || (p[1] >> 7) != o->raw)
        return 0;
    uint64_t len = p[1] & 0x7f;
    if (len == 126) {
        if (avail < 4 || (len = (uint64_t)p[2] << 8 | p[3]) < 126)
            return 0;
        h = 4;
    } else if (len == 127) {
        return 0;
    }
    const uint8_t *key = no_key;
    if (o->raw) {
        key = p + h; /* RFC 6455 §5.2: the masking key follows the length */
        h += 4;
    }
    size_t plen = o->raw ? 0 : o->prefix_len;
    if (avail < h || avail - h < len || len != plen + wl_msg_size(o, c->id, c->rx_seq) ||
        (plen && memcmp(p + h, o->prefix, plen) != 0) ||
        !pat_equal(w->run->pat, wl_msg_pat(c->id, c->rx_seq), 0, p + h + plen, (size_t)len - plen, key, plen))
        return 0;
    uint64_t sent = c->sent_ns ? c->sent_ns[c->rx_seq & w->ring_mask] : intended(w, c->sched, c->rx_seq);
    record(w, now > sent ? now - sent : 0, len - plen, now);
    c->rx_seq++;
    if (!c->dirty && can_start(w, c, now))
        mark_dirty(w, c);
    return h + (size_t)len;
}

/* Parse and verify server frames in [p, end). Returns -1 once c is closed. */
static int rx_frames(struct worker *w, struct conn *c, uint8_t *p, uint8_t *end, uint64_t now)
{
    while (p < end || (c->in_frame && c->fr_left == 0)) {
        if (!c->in_frame) {
            size_t fast;
            if (c->role == R_ECHO && !c->hdr_n && !c->msg_op && (fast = rx_echo_fast(w, c, p, end, now)) > 0) {
                p += fast;
                continue;
            }
            struct ws_frame f;
            ptrdiff_t h;
            if (c->hdr_n) {
                size_t take = WS_MAX_HDR - c->hdr_n;
                if (take > (size_t)(end - p))
                    take = (size_t)(end - p);
                memcpy(c->hdr + c->hdr_n, p, take);
                h = ws_frame_parse(c->hdr, c->hdr + c->hdr_n + take, &f);
                if (h == 0) {
                    c->hdr_n = (uint8_t)(c->hdr_n + take);
                    return 0;
                }
                if (h > 0)
                    p += (size_t)h - c->hdr_n;
                c->hdr_n = 0;
            } else {
                h = ws_frame_parse(p, end, &f);
                if (h == 0) {
                    memcpy(c->hdr, p, (size_t)(end - p));
                    c->hdr_n = (uint8_t)(end - p);
                    return 0;
                }
                if (h > 0)
                    p += h;
            }
            if (h < 0) {
                conn_fail(w, c, false, "malformed frame header from the server");
                return -1;
            }
            if (frame_begin(w, c, &f) < 0)
                return -1;
            continue;
        }
        size_t k = (size_t)(end - p);
        if (k > c->fr_left)
            k = (size_t)c->fr_left;
        if (c->fr_op >= WS_OP_CLOSE) {
            if (c->fr_masked)
                ws_unmask(p, k, c->fr_key, (size_t)(c->fr_off & 3));
            memcpy(c->ctlbuf + c->fr_off, p, k);
        } else if (msg_bytes(w, c, p, k, c->fr_masked ? c->fr_key : no_key, (size_t)(c->fr_off & 3)) < 0) {
            return -1;
        }
        p += k;
        c->fr_off += k;
        c->fr_left -= k;
        if (c->fr_left == 0 && frame_end(w, c, now) < 0)
            return -1;
    }
    return 0;
}

/* ---- connecting and the handshake ---------------------------------------------------- */

static void b64(const uint8_t *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = tab[(v >> 6) & 63];
        *out++ = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = '=';
        *out++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = tab[(v >> 6) & 63];
        *out++ = '=';
    }
    *out = 0;
}

static void conn_opened(struct worker *w, struct conn *c)
{
    c->state = C_OPEN;
    w->n_pending--;
    w->n_settled++;
    w->t->opened++;
    free(c->hs);
    c->hs = NULL;
}

static void start_connect(struct worker *w, struct conn *c, uint64_t now)
{
    const struct wl_opts *o = w->o;
    char m[160];
    c->state = C_CONNECTING;
    c->deadline_ns = now + WL_CONNECT_TIMEOUT_NS;
    w->n_pending++;
    c->fd = socket(o->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(m, sizeof m, "socket: %s", strerror(errno));
        conn_fail(w, c, false, m);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (o->n_src) {
        const struct sockaddr_storage *s = &o->src[c->id % o->n_src];
        /* Pick the port at connect(), per destination, so each source address
         * gets its own whole ephemeral range. */
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        socklen_t sl = s->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        if (bind(c->fd, (const struct sockaddr *)s, sl) < 0) {
            snprintf(m, sizeof m, "bind source: %s", strerror(errno));
            conn_fail(w, c, false, m);
            return;
        }
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        snprintf(m, sizeof m, "epoll_ctl: %s", strerror(errno));
        conn_fail(w, c, false, m);
        return;
    }
    if (connect(c->fd, (const struct sockaddr *)&o->dst, o->dst_len) < 0 && errno != EINPROGRESS) {
        snprintf(m, sizeof m, "connect: %s", strerror(errno));
        conn_fail(w, c, false, m);
    }
}

static void send_handshake(struct worker *w, struct conn *c)
{
    const struct wl_opts *o = w->o;
    uint8_t key[16];
    uint64_t a = splitmix(&w->rng), b = splitmix(&w->rng);
    memcpy(key, &a, 8);
    memcpy(key + 8, &b, 8);
    char k64[25];
    b64(key, 16, k64);
    hs_accept((const uint8_t *)k64, 24, c->accept);
    char req[1600];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                     "User-Agent: wsload\r\n\r\n",
                     o->path, o->host_hdr, k64);
    if (n < 0 || (size_t)n >= sizeof req) {
        conn_fail(w, c, false, "request too long");
        return;
    }
    ssize_t r = send(c->fd, req, (size_t)n, MSG_NOSIGNAL);
    if (r != n) { /* a fresh socket takes 1.5 KB whole */
        conn_fail(w, c, false, "could not send the upgrade request");
        return;
    }
    c->hs = malloc(WL_HS_CAP + 1);
    if (!c->hs) {
        conn_fail(w, c, false, "out of memory");
        return;
    }
    c->hs_len = 0;
    c->state = C_HS;
}

/* Value of header name in the head [h, end), or NULL; *len gets its length. */
static const char *find_header(const char *h, const char *end, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    const char *line = memchr(h, '\n', (size_t)(end - h)); /* skip the status line */
    while (line && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *len = (size_t)(ve - v);
            return v;
        }
        line = eol;
    }
    return NULL;
}

static bool has_token(const char *v, size_t len, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i + tl <= len; i++)
        if (strncasecmp(v + i, tok, tl) == 0 && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
            (i + tl == len || v[i + tl] == ',' || v[i + tl] == ' '))
            return true;
    return false;
}

/* Bytes arrived during the handshake: judge the 101 (RFC 6455 §4.1, the
 * client's checks) and pass any bytes after the head to the frame parser. */
static int rx_handshake(struct worker *w, struct conn *c, uint8_t *p, size_t n, uint64_t now)
{
    size_t room = WL_HS_CAP - c->hs_len;
    size_t take = n < room ? n : room;
    memcpy(c->hs + c->hs_len, p, take);
    size_t old = c->hs_len;
    c->hs_len += take;
    c->hs[c->hs_len] = 0;
    char *e = strstr(c->hs + (old > 3 ? old - 3 : 0), "\r\n\r\n");
    if (!e) {
        if (c->hs_len == WL_HS_CAP) {
            conn_fail(w, c, false, "handshake response head too large");
            return -1;
        }
        return 0;
    }
    char *end = e + 4;
    char m[200];
    int status = 0;
    if (sscanf(c->hs, "HTTP/1.1 %d", &status) != 1 || status != 101) {
        char *eol = strchr(c->hs, '\r');
        snprintf(m, sizeof m, "handshake refused: %.*s", eol ? (int)(eol - c->hs) : 40, c->hs);
        conn_fail(w, c, false, m);
        return -1;
    }
    size_t vl;
    const char *v = find_header(c->hs, end, "Upgrade", &vl);
    if (!v || !has_token(v, vl, "websocket")) {
        conn_fail(w, c, false, "101 without Upgrade: websocket");
        return -1;
    }
    v = find_header(c->hs, end, "Connection", &vl);
    if (!v || !has_token(v, vl, "upgrade")) {
        conn_fail(w, c, false, "101 without Connection: upgrade");
        return -1;
    }
    v = find_header(c->hs, end, "Sec-WebSocket-Accept", &vl);
    if (!v || vl != HS_ACCEPT_LEN || memcmp(v, c->accept, HS_ACCEPT_LEN) != 0) {
        conn_fail(w, c, false, "wrong or missing Sec-WebSocket-Accept");
        return -1;
    }
    size_t head = (size_t)(end - c->hs) - old; /* of this call's bytes */
    conn_opened(w, c);
    if (head < n)
        return rx_frames(w, c, p + head, p + n, now);
    return 0;
}

/* ---- events ---------------------------------------------------------------------------- */

static void on_event(struct worker *w, struct conn *c, uint32_t evs)
{
    char m[160];
    if (c->state == C_DONE)
        return;
    if (c->state == C_CONNECTING) {
        if (!(evs & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            snprintf(m, sizeof m, "connect: %s", strerror(err));
            conn_fail(w, c, false, m);
            return;
        }
        if (w->o->raw) {
            conn_opened(w, c);
        } else {
            send_handshake(w, c);
            return;
        }
    }
    if (evs & EPOLLOUT) {
        c->want_out = false;
        mark_dirty(w, c);
    }
    if (!(evs & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return;
    for (;;) {
        ssize_t r = recv(c->fd, w->rbuf, WL_RBUF, 0);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            snprintf(m, sizeof m, "read: %s", strerror(errno));
            conn_fail(w, c, false, m);
            return;
        }
        if (r == 0) {
            if (c->state == C_CLOSING && w->o->raw)
                conn_drop(w, c);
            else
                conn_fail(w, c, false, c->state == C_CLOSING ? "server closed TCP without a close frame"
                                                              : "server closed the connection");
            return;
        }
        uint64_t now = wl_now_ns(); /* per read: latency is not smeared over a batch */
        int rc = c->state == C_HS ? rx_handshake(w, c, w->rbuf, (size_t)r, now)
                                  : rx_frames(w, c, w->rbuf, w->rbuf + r, now);
        if (rc < 0 || c->state == C_DONE)
            return;
        /* Edge-triggered: a short read drained the socket, and bytes that
         * arrive later raise a new edge, so the recv() that would only say
         * EAGAIN is skipped. Not after a hang-up: no edge follows EOF. */
        if ((size_t)r < WL_RBUF && !(evs & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
            return;
    }
}

/* ---- open-loop schedule ------------------------------------------------------------------ */

/* Hand out every send whose intended time has come. The worker's
 * participants have increasing schedule indices, so walking (round, index)
 * visits intended times in order. */
static void schedule_due(struct worker *w, uint64_t now)
{
    while (w->n_sched && w->cur_next <= now && w->cur_next < w->t_end) {
        struct conn *c = w->sched[w->cur_j];
        c->due_seq = w->cur_k + 1;
        if (can_start(w, c, now))
            mark_dirty(w, c);
        if (++w->cur_j == w->n_sched) {
            w->cur_j = 0;
            w->cur_k++;
        }
        w->cur_next = intended(w, w->sched[w->cur_j]->sched, w->cur_k);
    }
}

/* ---- phases ------------------------------------------------------------------------------ */

static bool drained(struct worker *w)
{
    for (size_t i = 0; i < w->n; i++) {
        struct conn *c = &w->c[i];
        if (c->state != C_OPEN)
            continue;
        if (c->pend_len || c->tx_in_msg)
            return false;
        if (c->role == R_ECHO && c->rx_seq != c->tx_seq)
            return false;
        if (c->next_seq)
            for (unsigned p = 0; p < w->o->publishers; p++)
                if (relay_expects(w, c, p) &&
                    c->next_seq[p] != atomic_load_explicit(&w->run->pub_final[p], memory_order_acquire))
                    return false;
    }
    return true;
}

static void publish_finals(struct worker *w)
{
    for (size_t i = 0; i < w->n; i++) {
        struct conn *c = &w->c[i];
        if (c->role == R_PUB && (c->state == C_DONE || (!c->tx_in_msg && !c->pend_len)) &&
            atomic_load_explicit(&w->run->pub_final[c->sched], memory_order_relaxed) == UINT64_MAX)
            atomic_store_explicit(&w->run->pub_final[c->sched], c->tx_seq, memory_order_release);
    }
}

static void report_missing(struct worker *w)
{
    for (size_t i = 0; i < w->n; i++) {
        struct conn *c = &w->c[i];
        if (c->state != C_OPEN)
            continue;
        uint64_t miss = 0;
        if (c->role == R_ECHO)
            miss = c->tx_seq - c->rx_seq;
        if (c->next_seq)
            for (unsigned p = 0; p < w->o->publishers; p++) {
                if (!relay_expects(w, c, p))
                    continue;
                uint64_t fin = atomic_load_explicit(&w->run->pub_final[p], memory_order_acquire);
                if (fin != UINT64_MAX && fin > c->next_seq[p])
                    miss += fin - c->next_seq[p];
            }
        if (miss || c->pend_len || c->tx_in_msg) {
            char m[160];
            snprintf(m, sizeof m, "%llu message(s) never arrived within %.0f s after the run",
                     (unsigned long long)miss, WL_DRAIN_NS / 1e9);
            conn_fail(w, c, false, m);
        }
    }
}

static void start_close(struct worker *w)
{
    static const uint8_t normal[2] = {1000 >> 8, 1000 & 0xff};
    for (size_t i = 0; i < w->n; i++) {
        struct conn *c = &w->c[i];
        if (c->state != C_OPEN)
            continue;
        c->state = C_CLOSING;
        if (w->o->raw)
            shutdown(c->fd, SHUT_WR); /* the echo peer closes after EOF */
        else {
            c->ctl_len = 0; /* unanswered pings no longer matter */
            queue_ctl(w, c, WS_OP_CLOSE, normal, 2);
        }
    }
}

static bool all_done(const struct worker *w)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->c[i].state != C_DONE)
            return false;
    return true;
}

static void check_timeouts(struct worker *w, uint64_t now)
{
    for (size_t i = 0; i < w->n; i++) {
        struct conn *c = &w->c[i];
        if ((c->state == C_CONNECTING || c->state == C_HS) && now >= c->deadline_ns)
            conn_fail(w, c, false, c->state == C_HS ? "handshake timed out" : "connect timed out");
    }
}

#define MS 1000000ull

/* Advance the phase machine; returns the wait until it next needs a turn, in
 * ns (epoll_pwait2 takes ns: a send due in 20 us must not wait for 1 ms). */
static uint64_t step_phase(struct worker *w, uint64_t now)
{
    const struct wl_opts *o = w->o;
    switch (w->ph) {
    case P_CONNECT:
        if (now >= w->next_check) { /* a scan of every connection: not on each wake-up */
            check_timeouts(w, now);
            w->next_check = now + 100000000ull;
        }
        while (w->n_pending < WL_MAX_PENDING && w->next_connect < w->n)
            start_connect(w, &w->c[w->next_connect++], now);
        if (w->n_settled < w->n)
            return 100 * MS;
        atomic_fetch_add(&w->run->ready, 1);
        w->ph = P_WAIT;
        /* fall through */
    case P_WAIT: {
        uint64_t t0 = atomic_load_explicit(&w->run->t0_ns, memory_order_acquire);
        if (!t0)
            return 5 * MS;
        w->t0 = t0;
        if (o->mode == WL_MODE_IDLE) {
            w->t_warm = t0;
            w->t_end = t0 + (uint64_t)(o->duration * 1e9);
        } else {
            w->t_warm = t0 + (uint64_t)(o->warmup * 1e9);
            w->t_end = w->t_warm + (uint64_t)(o->duration * 1e9);
        }
        w->cur_next = w->n_sched ? intended(w, w->sched[0]->sched, 0) : UINT64_MAX;
        w->ph = P_RUN;
    }
        /* fall through */
    case P_RUN:
        if (now < w->t0)
            return w->t0 - now;
        if (now < w->t_end) {
            if (o->rate > 0) {
                schedule_due(w, now);
            } else if (!w->started) { /* later sends are triggered by replies */
                w->started = true;
                for (size_t i = 0; i < w->n; i++)
                    if ((w->c[i].role == R_ECHO || w->c[i].role == R_PUB) && can_start(w, &w->c[i], now))
                        mark_dirty(w, &w->c[i]);
            }
            uint64_t wait = w->t_end - now;
            if (o->rate > 0 && w->n_sched && w->cur_next - now < wait)
                wait = w->cur_next - now; /* cur_next > now after schedule_due */
            return wait < 100 * MS ? wait : 100 * MS;
        }
        w->ph = P_DRAIN;
        w->t_drain = now + WL_DRAIN_NS;
        /* fall through */
    case P_DRAIN:
        publish_finals(w);
        if (!drained(w) && now < w->t_drain)
            return 10 * MS;
        if (now >= w->t_drain)
            report_missing(w);
        start_close(w);
        w->ph = P_CLOSE;
        w->t_close = now + WL_CLOSE_NS;
        return 0;
    case P_CLOSE:
        if (all_done(w))
            w->ph = P_EXIT;
        else if (now >= w->t_close) {
            for (size_t i = 0; i < w->n; i++)
                if (w->c[i].state != C_DONE) {
                    w->t->close_timeouts++;
                    conn_drop(w, &w->c[i]);
                }
            w->ph = P_EXIT;
        }
        return 10 * MS;
    case P_EXIT:
        return 0;
    }
    return 10 * MS;
}

/* The hot path: wait, dispatch, advance phases, write everything marked. */
static void run_loop(struct worker *w)
{
    struct epoll_event evs[WL_MAX_EVENTS];
    uint64_t timeout = step_phase(w, wl_now_ns());
    bool have_pwait2 = true;
    while (w->ph != P_EXIT) {
        int n;
        if (have_pwait2) {
            struct timespec ts = {.tv_sec = (time_t)(timeout / 1000000000ull),
                                  .tv_nsec = (long)(timeout % 1000000000ull)};
            n = epoll_pwait2(w->epfd, evs, WL_MAX_EVENTS, &ts, NULL);
            if (n < 0 && errno == ENOSYS) { /* kernel < 5.11: ms timeouts, rounded up */
                have_pwait2 = false;
                continue;
            }
        } else {
            n = epoll_wait(w->epfd, evs, WL_MAX_EVENTS, (int)((timeout + MS - 1) / MS));
        }
        for (int i = 0; i < n; i++)
            on_event(w, evs[i].data.ptr, evs[i].events);
        uint64_t now = wl_now_ns();
        timeout = step_phase(w, now);
        /* flush() may re-mark a connection with more to send; those go next round. */
        size_t nd = w->n_dirty;
        w->n_dirty = 0;
        for (size_t i = 0; i < nd; i++)
            w->dirty[i]->dirty = false;
        for (size_t i = 0; i < nd; i++)
            flush(w, w->dirty[i], now);
        if (w->n_dirty)
            timeout = 0;
    }
}

static int worker_init(struct worker *w, struct wl_thread *t)
{
    const struct wl_opts *o = t->run->o;
    memset(w, 0, sizeof *w);
    w->epfd = -1;
    w->t = t;
    w->run = t->run;
    w->o = o;
    w->op = o->text ? WS_OP_TEXT : WS_OP_BINARY;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0)
        return -1;
    if (getrandom(&w->rng, sizeof w->rng, 0) != sizeof w->rng)
        w->rng = wl_now_ns() ^ ((uint64_t)t->idx << 32);
    /* Connections idx, idx + threads, ...: with relay publishers first, each
     * worker gets its share of publishers and of subscribers. */
    for (uint64_t id = t->idx; id < o->conns; id += o->threads)
        w->n++;
    uint64_t ring = 1;
    while (ring < o->pipeline)
        ring <<= 1;
    w->ring_mask = ring - 1;
    w->c = calloc(w->n ? w->n : 1, sizeof *w->c);
    w->dirty = calloc(w->n ? w->n : 1, sizeof *w->dirty);
    w->sched = calloc(w->n ? w->n : 1, sizeof *w->sched);
    w->wbuf = malloc(WL_CHUNK + 64);
    w->rbuf = malloc(WL_RBUF + 64);
    if (!w->c || !w->dirty || !w->sched || !w->wbuf || !w->rbuf)
        return -1;
    w->self_echo = strstr(o->path, "echo=1") != NULL;
    if (o->mode == WL_MODE_RELAY && o->rate <= 0) { /* main.c allows this with one thread only */
        w->rl_cnt = calloc((size_t)o->publishers * ring, sizeof *w->rl_cnt);
        w->rl_done = calloc(o->publishers, sizeof *w->rl_done);
        if (!w->rl_cnt || !w->rl_done)
            return -1;
        w->rl_expect = (uint32_t)(o->conns - 1 + (w->self_echo ? 1 : 0));
    }
    w->sched_total = o->mode == WL_MODE_RELAY ? o->publishers : o->conns;
    for (size_t j = 0; j < w->n; j++)
        w->c[j].fd = -1;
    size_t i = 0;
    for (uint64_t id = t->idx; id < o->conns; id += o->threads, i++) {
        struct conn *c = &w->c[i];
        c->fd = -1;
        c->id = (uint32_t)id;
        c->sched = (uint32_t)id;
        if (o->mode == WL_MODE_IDLE)
            c->role = R_IDLE;
        else if (o->mode == WL_MODE_ECHO)
            c->role = R_ECHO;
        else
            c->role = id < o->publishers ? R_PUB : R_SUB;
        if ((c->role == R_ECHO || c->role == R_PUB) && o->rate <= 0 &&
            !(c->sent_ns = calloc(ring, sizeof *c->sent_ns)))
            return -1;
        if ((c->role == R_SUB || c->role == R_PUB) && !(c->next_seq = calloc(o->publishers, sizeof *c->next_seq)))
            return -1;
        if (o->rate > 0 && (c->role == R_ECHO || c->role == R_PUB))
            w->sched[w->n_sched++] = c;
    }
    return 0;
}

static void worker_fini(struct worker *w)
{
    for (size_t i = 0; w->c && i < w->n; i++) {
        if (w->c[i].fd >= 0)
            close(w->c[i].fd);
        free(w->c[i].pend);
        free(w->c[i].sent_ns);
        free(w->c[i].next_seq);
        free(w->c[i].hs);
    }
    free(w->c);
    free(w->dirty);
    free(w->sched);
    free(w->rl_cnt);
    free(w->rl_done);
    free(w->wbuf);
    free(w->rbuf);
    if (w->epfd >= 0)
        close(w->epfd);
}

void *wl_thread_main(void *arg)
{
    struct wl_thread *t = arg;
    struct worker w;
    /* A descriptor table of its own: while a table is shared by threads,
     * every send() and recv() takes and drops a reference on its socket
     * (atomics, about 2% of the worker's time in w2); with a private one
     * the kernel skips that. Nobody else uses the worker's sockets. */
    (void)unshare(CLONE_FILES);
    if (worker_init(&w, t) < 0) {
        fprintf(stderr, "wsload: thread %u: setup failed: %s\n", t->idx, strerror(errno));
        t->errors++;
        atomic_fetch_add(&t->run->ready, 1);
        worker_fini(&w);
        return NULL;
    }
    run_loop(&w);
    worker_fini(&w);
    return NULL;
}
