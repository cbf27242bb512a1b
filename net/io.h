#ifndef NET_IO_H
#define NET_IO_H
/* A worker's I/O backend. Two exist; the connection logic (net/conn.c),
 * timers, buffers and relay are shared, and only the calls below differ.
 *
 *   epoll   readiness: an edge-triggered epoll instance; conn.c reads with
 *           recv until EAGAIN and writes each batch with one sendmsg.
 *   uring   completions (net/io_uring.c, built when liburing is present):
 *           multishot accept; multishot receive into a ring of provided
 *           buffers that become the connection's input buffer without a
 *           copy; each connection's replies gathered in its output buffer
 *           and sent with one send per batch, all submitted with one
 *           io_uring_enter per loop pass. Relay wake-ups are a multishot
 *           poll on the relay eventfd; the stop eventfd stays in the epoll
 *           set, which the ring polls.
 *
 * Every function here is called by the worker's own thread. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wsr_io { WSR_IO_EPOLL, WSR_IO_URING };

struct wrk;
struct conn;

/* In-flight io_uring operations of a conn (struct conn's io field). A
 * closed conn is freed only once this is 0. */
enum {
    IOB_RECV = 1,    /* multishot receive armed */
    IOB_RCANCEL = 2, /* its cancellation requested (paused reader) */
    IOB_SEND = 4,    /* a send of the conn's output is in flight */
    IOB_POLL = 8,    /* a POLLOUT poll is armed (relay members' direct sends) */
};

/* Whether the io_uring backend can run here: built in, allowed by
 * /proc/sys/kernel/io_uring_disabled, and the kernel has what it needs
 * (multishot accept and receive, provided buffer rings). On false *why
 * says why in a few words. */
bool iou_usable(const char **why);

/* Set up w's ring; called on the worker's thread (the ring is
 * single-issuer). Returns 0 or -errno (the worker then uses epoll). */
int iou_open(struct wrk *w);

/* Wait up to timeout_ms (-1: no limit) for completions, after submitting
 * everything queued, and handle them. Updates w->now first. */
void iou_wait(struct wrk *w, int timeout_ms);

/* Stop accepting: cancel the multishot accept (before the listener is
 * closed). */
void iou_listener_stop(struct wrk *w);

/* Re-arm the multishot accept if it ended (resource shortage). */
void iou_accept_arm(struct wrk *w);

/* Handle completions until every closed conn has seen the last of its
 * operations (at most ms milliseconds), then free the ring. */
void iou_close(struct wrk *w, unsigned ms);

/* Per-connection operations. */
void iou_recv_arm(struct wrk *w, struct conn *c);    /* no-op when armed */
void iou_recv_cancel(struct wrk *w, struct conn *c); /* a paused reader stops receiving */
/* Send c->out if no send is in flight (it is taken from c; replies queued
 * meanwhile gather in a new c->out and leave when this one completes).
 * Returns false if c closed. */
bool iou_send(struct wrk *w, struct conn *c);
void iou_poll_out(struct wrk *w, struct conn *c);    /* conn_on_writable when writable */
void iou_conn_closing(struct wrk *w, struct conn *c); /* before close(c->fd) */

/* conn.c's side of the completions. */
struct buf;
/* n bytes arrived in b (a standard buffer, its rb empty, bytes at its
 * start): b becomes c->in, or is appended to it and returned. */
void conn_on_recv(struct wrk *w, struct conn *c, struct buf *b, size_t n);
/* The multishot receive ended with res: 0 (EOF), -ENOBUFS, -ECANCELED or
 * an error. */
void conn_on_recv_end(struct wrk *w, struct conn *c, int res);
/* A send of c's output completed (all of it, or the conn was closed). */
void conn_on_sent(struct wrk *w, struct conn *c);
/* POLLOUT fired. */
void conn_on_writable(struct wrk *w, struct conn *c);

#endif
