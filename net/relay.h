#ifndef NET_RELAY_H
#define NET_RELAY_H
/* Relay channels (`GET /relay/<name>`): every message a member sends goes to
 * every other member of the channel, on every worker, in each publisher's
 * order.
 *
 * A published message is encoded once (header + payload) into a
 * reference-counted buffer. Members on the publisher's worker get a pointer
 * to it in their delivery queue at once; every other worker with members of
 * the channel gets one entry in its inbox (a multi-producer queue) and an
 * eventfd wake-up when that inbox was empty; a worker's entries for another
 * worker are collected during its loop pass and pushed with one
 * compare-and-swap at the pass's end, so a burst arrives as one batch.
 * Each worker takes its inbox once per pass, just before its members are
 * flushed, however many wake-ups came. Members with queued messages
 * sit on their worker's dirty list, flushed once per loop pass with one
 * send per member: small frames are copied side by side into a per-worker
 * scratch so they leave as one iovec, and what the socket refuses stays
 * queued by reference. A member's unsent bytes are bounded by --max-backlog:
 * past it the member is closed with 1013 or, with --slow-consumer=drop, the
 * whole message is dropped for that member alone. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wrk;
struct conn;
struct wsr_config;

/* ---- the inbox: an intrusive multi-producer, single-consumer queue -------- */

/* Producers push one node at a time with a CAS on head (a LIFO stack); the
 * consumer takes the whole stack with one exchange and reverses it, so it
 * sees nodes in push order, and each producer's nodes in that producer's
 * order. No node is ever popped singly, so there is no ABA problem. */
struct relay_node {
    struct relay_node *next;
};

struct relay_inbox {
    _Atomic(struct relay_node *) head;
};

/* Push n. Returns true when the inbox was empty before (the consumer may be
 * asleep: wake it). Safe from any number of threads at once. */
bool relay_inbox_push(struct relay_inbox *q, struct relay_node *n);

/* Push a chain of nodes with one compare-and-swap: newest is its head and
 * the chain runs by next down to oldest (whose next is overwritten), so the
 * consumer takes them oldest first, as if pushed one at a time. Returns
 * true when the inbox was empty before. */
bool relay_inbox_push_chain(struct relay_inbox *q, struct relay_node *newest,
                            struct relay_node *oldest);

/* Take every node pushed so far, oldest first, linked by next; NULL when
 * empty. Only one thread may take from an inbox. */
struct relay_node *relay_inbox_take(struct relay_inbox *q);

/* ---- channels --------------------------------------------------------------- */

#define RELAY_NAME_MAX 64

/* True when [p, p + len) is a channel name: 1..64 bytes of [A-Za-z0-9._-]. */
bool relay_name_ok(const uint8_t *p, size_t len);

/* True when the query string [p, p + len) (with or without its '?') has the
 * parameter echo=1. */
bool relay_query_echo(const uint8_t *p, size_t len);

/* Set up the registry and one inbox + eventfd per worker, before any worker
 * is created. Returns 0 or -errno. cfg must outlive the relay. */
int relay_init(int n_workers, const struct wsr_config *cfg);

/* Free what is left (inbox entries, channels) after every worker has been
 * joined. */
void relay_fini(void);

/* Register the worker's relay eventfd in its epoll set. Its events carry
 * relay_wake_tag(w) as data.ptr. Returns 0 or -errno (0 when relay_init was
 * never called: a process without relay). */
int relay_attach(struct wrk *w);
void *relay_wake_tag(const struct wrk *w);
/* The worker's relay eventfd, or -1 without relay (the io_uring backend
 * takes it out of the epoll set and polls it in its ring instead). */
int relay_wake_fd(const struct wrk *w);

/* ---- hooks called by net/conn.c and net/worker.c (owning worker only) ---- */

/* Make c (just upgraded) a member of channel name; echo: it also gets its
 * own messages. Returns 0 or -ENOMEM. */
int relay_join(struct wrk *w, struct conn *c, const uint8_t *name, size_t len, bool echo);

/* A complete message from member c: encode once, deliver to the channel. */
void relay_publish(struct wrk *w, struct conn *c, uint8_t opcode, const uint8_t *p, size_t len);

/* c is about to queue a close frame: leave the channel and drop every
 * message not yet started (a partly sent one is finished first, so the
 * close never cuts into a frame). */
void relay_close_queued(struct wrk *w, struct conn *c);

/* The peer of member c sent EOF: leave the channel but keep what is queued;
 * it drains like any other output before the conn closes (net/conn.c,
 * conn_eof). */
void relay_eof(struct wrk *w, struct conn *c);

/* Relay frame bytes c still owes its socket (0 when c is no member). */
size_t relay_backlog(const struct conn *c);

/* c has new bytes in c->out: flush it this loop pass. */
void relay_kick(struct wrk *w, struct conn *c);

/* EPOLLOUT on c: flush it this loop pass if anything is pending. */
void relay_writable(struct wrk *w, struct conn *c);

/* c is closing: leave, drop its queue, free the membership. */
void relay_leave(struct wrk *w, struct conn *c);

/* Inbox wake-up: reset the eventfd. The entries are taken and delivered
 * by the next wrk_flush_writes, together with any that come meanwhile. */
void relay_drain(struct wrk *w);

/* Once per loop pass: push this pass's publishes to the other workers'
 * inboxes, deliver what this worker's inbox holds, then one send per
 * member with pending output. */
void wrk_flush_writes(struct wrk *w);

/* True when some member or outgoing entry waits for wrk_flush_writes (the
 * loop must not sleep). */
bool relay_has_dirty(const struct wrk *w);

/* Process-wide gauges for /metrics: channels, members in all, and members
 * on worker id. */
uint64_t relay_channels(void);
uint64_t relay_members(int worker_id);

#endif
