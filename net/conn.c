/* One connection's protocol work: HTTP requests (static files, upgrades),
 * then WebSocket frames echoed straight out of the receive buffer.
 *
 * The echo data path: bytes are read into c->in; ws_session_feed parses and
 * unmasks each frame in place; a reply is a header in w->slab plus an iovec
 * pointing at the payload inside c->in; after the batch one writev sends
 * every reply; whatever the socket did not take is copied once into c->out;
 * only then are the input bytes consumed. Both buffers go back to the
 * worker's pool as soon as they are empty. */
#include <errno.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_acked (glibc's lacks it) */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/log.h"
#include "net/metrics.h"
#include "net/relay.h"
#include "net/static_files.h"
#include "net/wrk.h"

enum {
    CF_EOF = 64,    /* close once output drains: the peer sent EOF or its close frame */
    CF_RDHUP = 128, /* epoll reported the peer's FIN: read on to the EOF */
};

static const struct http_limits http_lim = {HTTP_MAX_LINE, HTTP_MAX_HEAD};
static const char echo_prefix[] = "echo:";

static void conn_process(struct wrk *w, struct conn *c);
static bool flush_iov(struct wrk *w, struct conn *c);
static bool out_acked_moved(struct conn *c);

/* Enter DRAIN: from a WebSocket state last_rx held a tick; make it the
 * peer's acknowledged-byte count now, so the first stall check compares
 * like with like (see conn_timeout). */
static void conn_drain(struct wrk *w, struct conn *c)
{
    bool from_ws = c->state == CS_WS || c->state == CS_CLOSING;
    conn_set_state(w, c, CS_DRAIN);
    if (from_ws)
        out_acked_moved(c);
}

/* ---- output ------------------------------------------------------------------ */

/* Append n bytes to *bp, taking or growing the buffer as needed. */
static bool buf_append(struct wrk *w, struct buf **bp, const void *p, size_t n)
{
    if (n == 0)
        return true;
    if (!*bp) {
        *bp = wrk_buf_get(w, n);
        if (!*bp)
            return false;
    }
    struct buf *b = *bp;
    if (rb_append(&b->rb, p, n))
        return true;
    /* Grow geometrically so a long backlog is copied O(1) times per byte. */
    size_t want = rb_len(&b->rb) + n;
    if (want < 2 * b->rb.cap)
        want = 2 * b->rb.cap;
    struct buf *nb = wrk_buf_get(w, want);
    if (!nb)
        return false;
    rb_append(&nb->rb, rb_data(&b->rb), rb_len(&b->rb));
    wrk_buf_put(w, b);
    *bp = nb;
    return rb_append(&nb->rb, p, n);
}

static bool out_append(struct wrk *w, struct conn *c, const void *p, size_t n)
{
    return buf_append(w, &c->out, p, n);
}

/* Output not yet handed to the kernel: queued in c->out, in an io_uring
 * send still in flight, or relay frames queued for a member. */
static bool out_busy(const struct conn *c)
{
    return (c->out && rb_len(&c->out->rb) > 0) || (c->io & IOB_SEND) || (c->rm && relay_backlog(c) > 0);
}

static void out_release_if_empty(struct wrk *w, struct conn *c)
{
    if (c->out && rb_len(&c->out->rb) == 0) {
        wrk_buf_put(w, c->out);
        c->out = NULL;
    }
}

static void in_release_if_empty(struct wrk *w, struct conn *c)
{
    if (c->in && rb_len(&c->in->rb) == 0) {
        wrk_buf_put(w, c->in);
        c->in = NULL;
    }
}

/* After output shrank: leave DRAIN when done, resume a paused reader. */
static void out_drained_some(struct wrk *w, struct conn *c)
{
    size_t pending = c->out ? rb_len(&c->out->rb) : 0;
    if (c->io & IOB_SEND)
        pending++; /* counts as not drained; the backlog is c->out's */
    size_t owed = pending + (c->rm ? relay_backlog(c) : 0); /* a relay member's queue drains too */
    if (owed == 0 && c->state == CS_DRAIN && !(c->flags & CF_SHUT_WR)) {
        if (c->flags & CF_EOF) {
            conn_close(w, c);
            return;
        }
        /* Lingering close: no RST while the peer may still be reading. */
        shutdown(c->fd, SHUT_WR);
        c->flags |= CF_SHUT_WR;
    }
    if ((c->flags & CF_PAUSED) && pending <= w->cfg->max_backlog / 2) {
        c->flags &= (uint8_t)~CF_PAUSED;
        wrk_ready_add(w, c);
    }
}

/* Write as much of c->out as the socket takes. Returns false if c closed. */
static bool out_flush(struct wrk *w, struct conn *c)
{
    if (w->ur && !c->rm) { /* io_uring: a send per conn in flight at a time */
        if (c->out && !iou_send(w, c))
            return false;
        out_release_if_empty(w, c);
        out_drained_some(w, c);
        return c->state != CS_CLOSED;
    }
    /* Relay members under io_uring also write here (net/relay.c sends
     * straight from its shared frames); an io_uring send from before the
     * upgrade goes first. */
    if (c->io & IOB_SEND)
        return true;
    while (c->out && rb_len(&c->out->rb) > 0) {
        ssize_t n = send(c->fd, rb_data(&c->out->rb), rb_len(&c->out->rb), MSG_NOSIGNAL);
        if (n > 0) {
            rb_consume(&c->out->rb, (size_t)n);
            WRK_ADD(w->st.bytes_out[c->ep], n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (w->ur)
                iou_poll_out(w, c);
            break;
        }
        conn_close(w, c);
        return false;
    }
    out_release_if_empty(w, c);
    out_drained_some(w, c);
    return c->state != CS_CLOSED;
}

/* Send the batch gathered in w->iov with one writev; copy what the socket
 * did not take into c->out. Returns false if c closed. */
static bool conn_flush(struct wrk *w, struct conn *c)
{
    if (c->state == CS_CLOSED)
        return false;
    if (w->n_iov > 0 && !flush_iov(w, c))
        return false;
    if (w->ur && c->out && !c->rm && !iou_send(w, c))
        return false;
    /* Replies may also have gone straight into c->out (output was pending). */
    if (c->out && rb_len(&c->out->rb) > w->cfg->max_backlog && !(c->flags & CF_PAUSED)) {
        c->flags |= CF_PAUSED;
        WRK_INC(w->st.pauses);
    }
    if (!out_busy(c) && c->state == CS_DRAIN) {
        out_drained_some(w, c); /* everything sent: shut down writes now */
        return c->state != CS_CLOSED;
    }
    return true;
}

/* The sendmsg half of conn_flush. */
static bool flush_iov(struct wrk *w, struct conn *c)
{
    size_t n_iov = w->n_iov;
    w->n_iov = 0;
    w->slab_used = 0;
    w->slab_iov = 0;
    /* sendmsg/recv rather than writev/read: the socket calls skip the VFS
     * layer (file position lock, iter checks) on every message. */
    struct msghdr mh = {.msg_iov = w->iov, .msg_iovlen = n_iov};
    ssize_t n;
    do
        n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN) {
            conn_close(w, c);
            return false;
        }
        n = 0;
    }
    WRK_ADD(w->st.bytes_out[c->ep], n);
    size_t done = (size_t)n;
    for (size_t i = 0; i < n_iov; i++) {
        size_t len = w->iov[i].iov_len;
        if (done >= len) {
            done -= len;
            continue;
        }
        if (!out_append(w, c, (uint8_t *)w->iov[i].iov_base + done, len - done)) {
            conn_close(w, c);
            return false;
        }
        done = 0;
    }
    return true;
}

/* Append n bytes to the slab as reply bytes, growing the last iovec when it
 * already ends at the slab's end, so a run of small replies is one iovec.
 * The caller has checked that the slab and w->iov have room. */
static void slab_put(struct wrk *w, struct conn *c, const void *p, size_t n)
{
    if (n == 0)
        return;
    uint8_t *dst = w->slab + w->slab_used;
    memcpy(dst, p, n);
    w->slab_used += n;
    w->iov_owner = c;
    if (w->slab_iov && w->slab_iov == w->n_iov) {
        w->iov[w->n_iov - 1].iov_len += n;
        return;
    }
    w->iov[w->n_iov++] = (struct iovec){dst, n};
    w->slab_iov = w->n_iov;
}

/* Queue a frame whose payload is a followed by b (either may be empty).
 * Payloads up to WRK_PACK_MAX are packed with their header into the slab:
 * the kernel copies a long run of tiny iovecs much more slowly than one run
 * of the same bytes (see the note at WRK_PACK_MAX). Longer payloads are
 * referenced where they lie, never copied. When output is already pending,
 * order demands the frame goes behind it into c->out. Returns false if c
 * closed. */
static bool ws_queue(struct wrk *w, struct conn *c, uint8_t op,
                     const void *a, size_t alen, const void *b, size_t blen)
{
    uint8_t hdr[WS_MAX_HDR];
    size_t len = alen + blen;
    size_t hlen = ws_frame_header_encode(hdr, op, true, (uint64_t)len, NULL);
    WRK_INC(w->st.msgs_out[c->ep]);
    /* io_uring: replies gather in c->out, which stays put until its send
     * completes (the slab is reused by the next conn at once). */
    if (c->out || c->rm || w->ur) {
        if (c->rm) /* relay: never cut into a partly sent message; net/relay.c flushes */
            relay_kick(w, c);
        /* One reservation for the whole frame when it fits (the usual
         * case, also for the first reply after a send took c->out); else
         * grow through out_append. */
        if (!c->out && !(c->out = wrk_buf_get(w, hlen + len))) {
            conn_close(w, c);
            return false;
        }
        size_t avail;
        uint8_t *dst = rb_reserve(&c->out->rb, hlen + len, &avail);
        if (dst) {
            memcpy(dst, hdr, hlen);
            if (alen)
                memcpy(dst + hlen, a, alen);
            if (blen)
                memcpy(dst + hlen + alen, b, blen);
            rb_commit(&c->out->rb, hlen + len);
            return true;
        }
        return (out_append(w, c, hdr, hlen) && out_append(w, c, a, alen) &&
                out_append(w, c, b, blen)) || (conn_close(w, c), false);
    }
    bool pack = len <= WRK_PACK_MAX;
    size_t slab_need = hlen + (pack ? len : 0);
    if (w->n_iov + 3 > WRK_IOV || w->slab_used + slab_need > WRK_SLAB) {
        if (!conn_flush(w, c))
            return false;
        if (c->out)
            return ws_queue(w, c, op, a, alen, b, blen);
    }
    slab_put(w, c, hdr, hlen);
    if (pack) {
        slab_put(w, c, a, alen);
        slab_put(w, c, b, blen);
        return true;
    }
    w->iov_owner = c;
    if (alen)
        w->iov[w->n_iov++] = (struct iovec){(void *)a, alen};
    if (blen)
        w->iov[w->n_iov++] = (struct iovec){(void *)b, blen};
    return true;
}

/* Queue a close frame and note it in the session. Returns false if c closed. */
static bool ws_queue_close(struct wrk *w, struct conn *c, uint16_t code, const char *reason)
{
    uint8_t frame[WS_MAX_HDR + WS_MAX_CTRL_PAYLOAD];
    size_t rlen = reason ? strlen(reason) : 0;
    size_t n = ws_session_close(&c->u.ws, code, reason, rlen, NULL, frame);
    WRK_INC(w->st.msgs_out[c->ep]);
    WRK_INC(w->st.close_sent[wrk_close_slot(code)]);
    if (c->rm)
        relay_close_queued(w, c); /* leave the channel; the close goes last */
    if (c->out || c->rm || w->ur)
        return out_append(w, c, frame, n) || (conn_close(w, c), false);
    if (w->n_iov + 1 > WRK_IOV || w->slab_used + n > WRK_SLAB) {
        if (!conn_flush(w, c))
            return false;
        if (c->out)
            return out_append(w, c, frame, n) || (conn_close(w, c), false);
    }
    slab_put(w, c, frame, n);
    return true;
}

/* ---- WebSocket ------------------------------------------------------------- */

static void ws_arm_timer(struct wrk *w, struct conn *c)
{
    uint32_t next = WHEEL_SLOTS - 1; /* every conn stays on the wheel */
    uint32_t quiet = w->now - c->last_rx;
    if (w->idle_ticks) {
        uint32_t left = w->idle_ticks > quiet ? w->idle_ticks - quiet : 1;
        if (left < next)
            next = left;
    }
    if (w->ping_ticks && !(c->flags & CF_PING_OUT)) {
        uint32_t left = w->ping_ticks > quiet ? w->ping_ticks - quiet : 1;
        if (left < next)
            next = left;
    }
    wrk_timer_set(w, c, next);
}

/* Start the closing handshake from our side (shutdown, idle). */
static void ws_start_close(struct wrk *w, struct conn *c, uint16_t code, const char *reason)
{
    if (!ws_queue_close(w, c, code, reason) || !conn_flush(w, c))
        return;
    conn_set_state(w, c, CS_CLOSING);
    wrk_timer_set(w, c, w->close_ticks);
}

static bool ws_reply(struct wrk *w, struct conn *c, uint8_t op, const uint8_t *p, size_t len)
{
    if (c->ep == EP_RELAY) {
        relay_publish(w, c, op, p, len);
        return c->state != CS_CLOSED;
    }
    if (c->ep == EP_PREFIX)
        return ws_queue(w, c, op, echo_prefix, sizeof echo_prefix - 1, p, len);
    return ws_queue(w, c, op, p, len, NULL, 0);
}

/* A fragment (or streamed piece) of a message that is not one whole frame:
 * assemble it, and echo the whole message when it ends. */
static bool ws_on_piece(struct wrk *w, struct conn *c, const struct ws_event *ev)
{
    if (ev->msg_first && c->frag)
        c->frag->len = 0;
    size_t have = c->frag ? c->frag->len : 0;
    if (!c->frag || c->frag->cap - have < ev->len) {
        size_t cap = c->frag ? c->frag->cap : 0;
        size_t want = have + ev->len;
        cap = cap ? cap : 4096;
        while (cap < want)
            cap *= 2;
        struct frag *nf = realloc(c->frag, sizeof *nf + cap);
        if (!nf) {
            conn_close(w, c);
            return false;
        }
        nf->len = have;
        nf->cap = cap;
        c->frag = nf;
    }
    memcpy(c->frag->data + have, ev->p, ev->len);
    c->frag->len = have + ev->len;
    if (!ev->msg_last)
        return true;
    WRK_INC(w->st.msgs_in[c->ep]);
    /* Send now: the next message may reallocate the assembly buffer. */
    if (!ws_reply(w, c, ev->opcode, c->frag->data, c->frag->len) || !conn_flush(w, c))
        return false;
    free(c->frag);
    c->frag = NULL;
    return true;
}

static void ws_process(struct wrk *w, struct conn *c)
{
    struct rb *in = &c->in->rb;
    uint8_t *base = rb_data(in), *p = base, *end = base + rb_len(in);
    while (p < end && !(c->flags & CF_PAUSED)) {
        struct ws_event ev;
        ptrdiff_t n = ws_session_feed(&c->u.ws, p, end, &ev);
        if (n < 0) {
            WRK_INC(w->st.ws_errors[c->u.ws.err]);
            log_debug("fd %d: %s, closing with %u", c->fd, ws_err_name(c->u.ws.err),
                      ws_close_code_for(n));
            p = end; /* nothing after a failure is looked at */
            if (c->state == CS_WS && !ws_queue_close(w, c, ws_close_code_for(n), ws_err_name(c->u.ws.err)))
                return;
            conn_drain(w, c);
            wrk_timer_set(w, c, w->close_ticks);
            break;
        }
        if (n == 0)
            break;
        p += n;
        switch (ev.type) {
        case WS_EV_DATA:
            if (ev.msg_first && ev.msg_last && ev.frame_last) {
                WRK_INC(w->st.msgs_in[c->ep]);
                if (!ws_reply(w, c, ev.opcode, ev.p, ev.len))
                    return;
            } else if (!ws_on_piece(w, c, &ev)) {
                return;
            }
            break;
        case WS_EV_PING:
            if (!c->u.ws.close_sent && !ws_queue(w, c, WS_OP_PONG, ev.p, ev.len, NULL, 0))
                return;
            break;
        case WS_EV_PONG:
            break;
        case WS_EV_CLOSE:
            WRK_INC(w->st.close_rcvd[wrk_close_slot(ev.code)]);
            /* RFC 6455 §5.5.1: answer with a close (echoing the code), then
             * the server closes the TCP connection. */
            if (c->state == CS_WS &&
                !ws_queue_close(w, c, ev.code == 1005 ? 0 : ev.code, NULL))
                return;
            /* The handshake is complete once our close is out: close TCP
             * then (RFC 6455 §7.1.1: the server closes first), no linger. */
            c->flags |= CF_EOF;
            conn_drain(w, c);
            wrk_timer_set(w, c, w->close_ticks);
            if (c->rm)
                relay_kick(w, c); /* its flush shuts down writes once all is sent */
            p = end;
            break;
        case WS_EV_NONE:
            break;
        }
        if (c->state == CS_CLOSED)
            return;
    }
    if (!conn_flush(w, c))
        return;
    rb_consume(in, (size_t)(p - base));
    if (rb_len(in) == 0) {
        in_release_if_empty(w, c);
    } else if (c->u.ws.need > in->cap) {
        /* A frame bigger than the buffer: give it room to arrive whole so it
         * is echoed without a copy. ws_session_feed already checked it
         * against --max-frame. */
        struct buf *nb = wrk_buf_get(w, c->u.ws.need);
        if (!nb) {
            conn_close(w, c);
            return;
        }
        rb_append(&nb->rb, rb_data(in), rb_len(in));
        wrk_buf_put(w, c->in);
        c->in = nb;
    }
}

/* ---- HTTP ------------------------------------------------------------------ */

/* Queue a response with a short body. close: Connection: close, then DRAIN. */
static void http_respond(struct wrk *w, struct conn *c, int status, const char *ctype,
                         const char *extra, const char *body, bool head_only, bool close_after)
{
    char hdr[512];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nServer: wsrelay\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n%s%s\r\n",
                     status, http_reason(status), ctype ? ctype : "text/plain; charset=utf-8",
                     blen, extra ? extra : "", close_after ? "Connection: close\r\n" : "");
    if (!out_append(w, c, hdr, (size_t)n) || (!head_only && !out_append(w, c, body, blen))) {
        conn_close(w, c);
        return;
    }
    if (close_after) {
        conn_drain(w, c);
        wrk_timer_set(w, c, w->close_ticks);
    }
}

static void http_error(struct wrk *w, struct conn *c, int status)
{
    char body[64];
    snprintf(body, sizeof body, "%d %s\n", status, http_reason(status));
    http_respond(w, c, status, NULL, NULL, body, false, true);
}

static bool is_method(const struct http_req *r, const char *m)
{
    size_t n = strlen(m);
    return r->method_len == n && memcmp(r->method, m, n) == 0;
}

static bool path_is(const uint8_t *p, size_t len, const char *s)
{
    size_t n = strlen(s);
    return len == n && memcmp(p, s, n) == 0;
}

static void http_upgrade(struct wrk *w, struct conn *c, const struct http_req *req,
                         size_t path_len)
{
    enum conn_ep ep = EP_NONE;
    if (path_is(req->target, path_len, "/websocket"))
        ep = EP_PREFIX;
    else if (path_is(req->target, path_len, "/echo"))
        ep = EP_ECHO;
    else if (path_len >= 7 && memcmp(req->target, "/relay/", 7) == 0) {
        if (!relay_name_ok(req->target + 7, path_len - 7)) {
            http_error(w, c, 400);
            return;
        }
        ep = EP_RELAY;
    }
    if (ep == EP_NONE) {
        http_error(w, c, 404);
        return;
    }
    struct hs_result res;
    int status = hs_check(&w->hsc, req, &res);
    char resp[512];
    if (status != 0) {
        ptrdiff_t n = hs_response_error(status, resp, sizeof resp);
        if (n < 0 || !out_append(w, c, resp, (size_t)n)) {
            conn_close(w, c);
            return;
        }
        conn_drain(w, c);
        wrk_timer_set(w, c, w->close_ticks);
        return;
    }
    ptrdiff_t n = hs_response_101(&res, resp, sizeof resp);
    if (n < 0 || !out_append(w, c, resp, (size_t)n)) {
        conn_close(w, c);
        return;
    }
    WRK_INC(w->st.upgrades);
    conn_set_state(w, c, CS_WS);
    c->ep = (uint8_t)ep;
    memset(&c->u.ws, 0, sizeof c->u.ws);
    c->u.ws.max_frame = w->cfg->max_frame;
    c->u.ws.max_message = w->cfg->max_message;
    c->last_rx = w->now;
    ws_arm_timer(w, c);
    if (ep == EP_RELAY &&
        relay_join(w, c, req->target + 7, path_len - 7,
                   relay_query_echo(req->target + path_len, req->target_len - path_len)) < 0)
        conn_close(w, c);
}

static void http_static(struct wrk *w, struct conn *c, const struct http_req *req,
                        size_t path_len, bool close_after)
{
    bool head = is_method(req, "HEAD");
    if (!head && !is_method(req, "GET")) {
        http_respond(w, c, 405, NULL, "Allow: GET, HEAD\r\n", "405 Method Not Allowed\n",
                     false, true);
        return;
    }
    if (req->content_length > 0 || req->chunked) {
        http_error(w, c, 400); /* we serve no request bodies; do not guess framing */
        return;
    }
    if (path_is(req->target, path_len, "/healthz")) {
        http_respond(w, c, 200, NULL, "Cache-Control: no-store\r\n", "ok\n", head, close_after);
        return;
    }
    if (path_is(req->target, path_len, "/metrics")) {
        size_t mlen;
        char *body = metrics_render(&mlen);
        if (!body) {
            http_error(w, c, 503);
            return;
        }
        http_respond(w, c, 200, METRICS_CTYPE, "Cache-Control: no-store\r\n", body, head, close_after);
        free(body);
        return;
    }
    struct sfile f;
    int rc = sfiles_lookup(w->sf, req->target, req->target_len, &f);
    if (rc < 0) {
        char body[64];
        snprintf(body, sizeof body, "%d %s\n", -rc, http_reason(-rc));
        http_respond(w, c, -rc, NULL, NULL, body, head, close_after || -rc == 400);
        return;
    }
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 200 OK\r\nServer: wsrelay\r\nContent-Type: %s\r\n"
                     "Content-Length: %llu\r\nCache-Control: no-cache\r\n%s\r\n",
                     f.ctype, (unsigned long long)f.size,
                     close_after ? "Connection: close\r\n" : "");
    bool ok = out_append(w, c, hdr, (size_t)n);
    if (ok && !head && f.size > 0) {
        /* Make room for the whole file after what is queued, then read it
         * straight into the output buffer. */
        size_t need = rb_len(&c->out->rb) + f.size;
        if (c->out->rb.cap < need) {
            struct buf *nb = wrk_buf_get(w, need);
            ok = nb != NULL;
            if (ok) {
                rb_append(&nb->rb, rb_data(&c->out->rb), rb_len(&c->out->rb));
                wrk_buf_put(w, c->out);
                c->out = nb;
            }
        }
        size_t avail;
        uint8_t *dst = ok ? rb_reserve(&c->out->rb, f.size, &avail) : NULL;
        size_t got = 0;
        while (dst && got < f.size) {
            ssize_t r = pread(f.fd, dst + got, f.size - got, (off_t)got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        ok = dst && got == f.size;
        if (ok)
            rb_commit(&c->out->rb, got);
    }
    close(f.fd);
    if (!ok) {
        conn_close(w, c); /* headers may be queued already: the response cannot be mended */
        return;
    }
    if (close_after) {
        conn_drain(w, c);
        wrk_timer_set(w, c, w->close_ticks);
    }
}

static void http_handle(struct wrk *w, struct conn *c, const struct http_req *req)
{
    WRK_INC(w->st.http_requests);
    size_t path_len = 0;
    while (path_len < req->target_len && req->target[path_len] != '?')
        path_len++;
    const struct http_header *conn_h = http_find(req, "Connection");
    /* HTTP/1.0 closes after each response: its keep-alive needs an explicit
     * "Connection: keep-alive" answer, and a client that asked for it but
     * does not see one (ApacheBench -k) would otherwise wait for our close. */
    bool close_after = req->version_minor == 0 ||
                       (conn_h && http_has_token(conn_h->value, conn_h->value_len, "close"));
    /* An Upgrade to something else (h2c, ...) on a plain path is optional
     * for the server to honour (RFC 9110 §7.8): serve the request as if it
     * were absent. On a WebSocket path, hs_check judges it. */
    const struct http_header *up = http_find(req, "Upgrade");
    if (up && (http_has_token(up->value, up->value_len, "websocket") ||
               path_is(req->target, path_len, "/websocket") || path_is(req->target, path_len, "/echo") ||
               (path_len >= 7 && memcmp(req->target, "/relay/", 7) == 0)))
        http_upgrade(w, c, req, path_len);
    else
        http_static(w, c, req, path_len, close_after);
}

static void http_process(struct wrk *w, struct conn *c)
{
    while (c->state == CS_HTTP && c->in && rb_len(&c->in->rb) > 0) {
        /* Pipelined requests whose answers the client is not reading: stop
         * parsing until it catches up (resumed from the ready list). */
        if (c->out && rb_len(&c->out->rb) > w->cfg->max_backlog) {
            if (!out_flush(w, c))
                return;
            if (c->out && rb_len(&c->out->rb) > w->cfg->max_backlog) {
                if (!(c->flags & CF_PAUSED)) {
                    c->flags |= CF_PAUSED;
                    WRK_INC(w->st.pauses);
                }
                break;
            }
        }
        struct http_req req;
        uint8_t *p = rb_data(&c->in->rb);
        ptrdiff_t n = http_parse_request(&c->u.hp, &http_lim, p, p + rb_len(&c->in->rb), &req);
        if (n == 0)
            break;
        if (n < 0) {
            rb_consume(&c->in->rb, rb_len(&c->in->rb));
            http_error(w, c, http_error_status(n));
            break;
        }
        memset(&c->u.hp, 0, sizeof c->u.hp);
        http_handle(w, c, &req);
        if (c->state == CS_CLOSED)
            return;
        rb_consume(&c->in->rb, (size_t)n);
        if (c->state == CS_HTTP)
            wrk_timer_set(w, c, w->hs_ticks); /* the next request's deadline */
    }
    if (c->state == CS_DRAIN && c->in)
        rb_consume(&c->in->rb, rb_len(&c->in->rb));
    if (!out_flush(w, c))
        return;
    /* Frames may follow the upgrade request in the same read. */
    if (c->state == CS_WS && c->in && rb_len(&c->in->rb) > 0)
        ws_process(w, c);
}

/* ---- events ---------------------------------------------------------------- */

static void conn_process(struct wrk *w, struct conn *c)
{
    switch (c->state) {
    case CS_HTTP:
        http_process(w, c);
        break;
    case CS_WS:
    case CS_CLOSING:
        ws_process(w, c);
        break;
    case CS_DRAIN:
        rb_consume(&c->in->rb, rb_len(&c->in->rb));
        break;
    case CS_CLOSED:
        return;
    }
    if (c->state != CS_CLOSED)
        in_release_if_empty(w, c);
}

/* n new bytes are at the end of c->in: count them and process. */
static void conn_got(struct wrk *w, struct conn *c, size_t n)
{
    WRK_ADD(w->st.bytes_in[c->ep], n);
    /* WebSocket idleness only: in HTTP and DRAIN states last_rx holds the
     * peer's acknowledged bytes (conn_timeout), so a peer that trickles
     * bytes but never reads cannot keep itself alive. */
    if (c->state == CS_WS || c->state == CS_CLOSING) {
        c->last_rx = w->now;
        c->flags &= (uint8_t)~CF_PING_OUT;
    }
    conn_process(w, c);
}

/* The peer sent EOF: finish sending what is queued, or close now. */
static void conn_eof(struct wrk *w, struct conn *c)
{
    in_release_if_empty(w, c);
    relay_eof(w, c); /* a member stops receiving; what it is owed drains below */
    if (out_busy(c) && c->state != CS_CLOSED) {
        c->flags |= CF_EOF;
        conn_drain(w, c);
        wrk_timer_set(w, c, w->close_ticks);
        return;
    }
    conn_close(w, c);
}

/* io_uring: receive while there is reason to. */
static void conn_recv_arm(struct wrk *w, struct conn *c)
{
    if (c->state == CS_CLOSED)
        return;
    if (c->flags & CF_PAUSED) {
        iou_recv_cancel(w, c);
        return;
    }
    if (c->flags & CF_RDHUP) { /* EOF came while paused with bytes unread */
        conn_eof(w, c);
        return;
    }
    if (!(c->flags & CF_EOF))
        iou_recv_arm(w, c);
}

void conn_on_recv(struct wrk *w, struct conn *c, struct buf *b, size_t n)
{
    if (!c->in) {
        rb_commit(&b->rb, n); /* the kernel wrote at its start: adopt it */
        c->in = b;
    } else {
        bool ok = buf_append(w, &c->in, b->rb.mem, n);
        wrk_buf_put(w, b);
        if (!ok) {
            conn_close(w, c);
            return;
        }
    }
    conn_got(w, c, n);
    if (c->state != CS_CLOSED && (c->flags & CF_PAUSED))
        iou_recv_cancel(w, c); /* stop taking bytes until it catches up */
}

void conn_on_recv_end(struct wrk *w, struct conn *c, int res)
{
    if (res == 0) {
        if ((c->flags & CF_PAUSED) && c->in && rb_len(&c->in->rb) > 0)
            c->flags |= CF_RDHUP; /* process what is buffered first */
        else
            conn_eof(w, c);
        return;
    }
    if (res == -ENOBUFS || res == -ECANCELED || res == -EINTR || res == -EAGAIN) {
        wrk_ready_add(w, c); /* conn_resume arms it again when it should */
        return;
    }
    conn_close(w, c);
}

void conn_on_sent(struct wrk *w, struct conn *c)
{
    if (c->state == CS_CLOSED)
        return;
    if (c->rm) {
        relay_kick(w, c); /* the upgrade came while an HTTP reply was in flight */
        return;
    }
    out_flush(w, c);
}

void conn_on_writable(struct wrk *w, struct conn *c)
{
    if (c->state == CS_CLOSED)
        return;
    if (c->rm)
        relay_writable(w, c);
    else if (c->out)
        out_flush(w, c);
}

/* Read until EAGAIN, a short read, or the budget; process after each read. */
static void conn_on_readable(struct wrk *w, struct conn *c)
{
    if (w->ur) {
        conn_recv_arm(w, c);
        return;
    }
    for (int i = 0; i < WRK_READ_BUDGET; i++) {
        if (c->state == CS_CLOSED || (c->flags & CF_PAUSED))
            return;
        if (!c->in && !(c->in = wrk_buf_get(w, BUF_STD))) {
            conn_close(w, c);
            return;
        }
        /* Room for the rest of a partial frame in one go, rather than a
         * sliver at the end of the buffer followed by a move anyway. */
        size_t want = 1, have = rb_len(&c->in->rb);
        if (c->state == CS_WS && have && c->u.ws.need > have)
            want = (size_t)c->u.ws.need - have;
        size_t avail;
        uint8_t *dst = rb_reserve(&c->in->rb, want, &avail);
        if (!dst) { /* cannot happen: frames and heads are bounded below cap */
            conn_close(w, c);
            return;
        }
        ssize_t n = recv(c->fd, dst, avail, 0);
        if (n > 0) {
            rb_commit(&c->in->rb, (size_t)n);
            conn_got(w, c, (size_t)n);
            /* Edge-triggered: a short read drained the socket, and bytes
             * arriving later raise a new edge. */
            if ((size_t)n < avail && !(c->flags & CF_RDHUP))
                return;
            continue;
        }
        if (n == 0) {
            conn_eof(w, c);
            return;
        }
        if (errno == EINTR) {
            i--;
            continue;
        }
        if (errno == EAGAIN) {
            in_release_if_empty(w, c);
            return;
        }
        conn_close(w, c);
        return;
    }
    wrk_ready_add(w, c); /* budget spent: the kernel will not tell us again */
}

void conn_accepted(struct wrk *w, struct conn *c)
{
    WRK_INC(w->st.conns[CS_HTTP]); /* calloc'd: already CS_HTTP */
    wrk_timer_set(w, c, w->hs_ticks);
    if (w->ur)
        conn_recv_arm(w, c);
}

void conn_dispatch(struct wrk *w, struct conn *c, uint32_t events)
{
    if (c->state == CS_CLOSED)
        return;
    if (events & EPOLLERR) {
        conn_close(w, c);
        return;
    }
    if ((events & EPOLLOUT) && c->rm)
        relay_writable(w, c); /* flushed with the other members this pass */
    else if ((events & EPOLLOUT) && c->out && !out_flush(w, c))
        return;
    if (events & (EPOLLRDHUP | EPOLLHUP))
        c->flags |= CF_RDHUP;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
        conn_on_readable(w, c);
}

void conn_resume(struct wrk *w, struct conn *c)
{
    if (c->in && rb_len(&c->in->rb) > 0 && !(c->flags & CF_PAUSED))
        conn_process(w, c);
    conn_on_readable(w, c);
}

/* HTTP/DRAIN: true when the peer acknowledged bytes since the last call
 * (the kernel's count, so io_uring sends still in flight and a relay
 * member's sends count too); the count is kept in c->last_rx (set on
 * entering DRAIN; 0 from accept in HTTP). */
static bool out_acked_moved(struct conn *c)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof ti.tcpi_bytes_acked)
        return false;
    uint32_t acked = (uint32_t)ti.tcpi_bytes_acked;
    bool moved = acked != c->last_rx;
    c->last_rx = acked;
    return moved;
}

void conn_timeout(struct wrk *w, struct conn *c)
{
    switch (c->state) {
    case CS_HTTP:
    case CS_DRAIN:
        if (out_busy(c)) {
            /* Still sending: another period as long as the peer keeps
             * taking bytes (a stalled one goes 1-2 periods after it
             * stopped). Our own view of progress would come only with a
             * wake-up after half a send buffer (up to MiBs) has drained,
             * or, for an io_uring send of WebSocket output (MSG_WAITALL)
             * and a relay member's queue, not at all until the end: the
             * kernel is asked instead. */
            if (out_acked_moved(c)) {
                wrk_timer_set(w, c, c->state == CS_HTTP ? w->hs_ticks : w->close_ticks);
                return;
            }
            conn_close(w, c);
            return;
        }
        if (c->state == CS_DRAIN) {
            conn_close(w, c);
            return;
        }
        if (c->in && rb_len(&c->in->rb) > 0) {
            rb_consume(&c->in->rb, rb_len(&c->in->rb));
            http_error(w, c, 408);
            out_flush(w, c);
        } else {
            conn_close(w, c); /* idle keep-alive */
        }
        return;
    case CS_WS: {
        uint32_t quiet = w->now - c->last_rx;
        if (w->idle_ticks && quiet >= w->idle_ticks) {
            ws_start_close(w, c, 1001, "idle timeout");
            return;
        }
        if (w->ping_ticks && quiet >= w->ping_ticks && !(c->flags & CF_PING_OUT)) {
            c->flags |= CF_PING_OUT;
            if (!ws_queue(w, c, WS_OP_PING, "wsrelay", 7, NULL, 0) || !conn_flush(w, c))
                return;
        }
        ws_arm_timer(w, c);
        return;
    }
    case CS_CLOSING:
        conn_close(w, c);
        return;
    case CS_CLOSED:
        return;
    }
}

void conn_shutdown(struct wrk *w, struct conn *c)
{
    switch (c->state) {
    case CS_HTTP:
        conn_close(w, c);
        return;
    case CS_WS:
        ws_start_close(w, c, 1001, "server shutting down");
        return;
    default:
        return; /* already closing on its own timer */
    }
}

void conn_ws_close(struct wrk *w, struct conn *c, uint16_t code, const char *reason)
{
    if (c->state == CS_WS)
        ws_start_close(w, c, code, reason);
}

void conn_out_written(struct wrk *w, struct conn *c)
{
    out_release_if_empty(w, c);
    out_drained_some(w, c);
}
