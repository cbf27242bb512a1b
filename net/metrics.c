/* Prometheus exposition of the per-worker counters (see net/metrics.h). Not
 * on any hot path: it allocates, formats with stdio and walks every worker. */
#include "net/metrics.h"

#include <stdio.h>
#include <stdlib.h>

#include "net/log.h"
#include "net/relay.h"
#include "net/wrk.h"

#define METRICS_MAX_WORKERS 256

static struct wrk *workers[METRICS_MAX_WORKERS];
static int n_workers;

void metrics_set_workers(struct wrk *const *ws, int n)
{
    if (n > METRICS_MAX_WORKERS)
        n = METRICS_MAX_WORKERS;
    for (int i = 0; i < n; i++)
        workers[i] = ws[i];
    n_workers = n;
}

static uint64_t ld(const wrk_ctr *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Sum one counter over every worker: off is its byte offset in wrk_stats. */
static uint64_t sum_at(size_t off)
{
    uint64_t s = 0;
    for (int i = 0; i < n_workers; i++)
        s += ld((const wrk_ctr *)((const char *)&workers[i]->st + off));
    return s;
}

#define SUM(field) sum_at(offsetof(struct wrk_stats, field))

static const char *const ep_names[EP__COUNT] = {"http", "websocket", "echo", "relay"};
static const char *const state_names[CS__COUNT] = {"http", "websocket", "closing", "draining", NULL};

static void head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric with one unlabelled sample. */
static void single(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
    head(f, name, type, help);
    fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

static void per_endpoint(FILE *f, const char *name, const char *help, size_t base)
{
    head(f, name, "counter", help);
    for (int e = 0; e < EP__COUNT; e++)
        fprintf(f, "%s{endpoint=\"%s\"} %llu\n", name, ep_names[e],
                (unsigned long long)sum_at(base + (size_t)e * sizeof(wrk_ctr)));
}

static void close_codes(FILE *f, const char *name, const char *help, size_t base)
{
    head(f, name, "counter", help);
    for (unsigned s = 0; s < WRK_CLOSE_SLOTS; s++) {
        uint64_t v = sum_at(base + s * sizeof(wrk_ctr));
        if (v == 0 && s != 0)
            continue; /* every code is a series once seen; 1000 always shows */
        if (s < 16)
            fprintf(f, "%s{code=\"%u\"} %llu\n", name, 1000 + s, (unsigned long long)v);
        else
            fprintf(f, "%s{code=\"%s\"} %llu\n", name, s == 16 ? "none" : "other",
                    (unsigned long long)v);
    }
}

char *metrics_render(size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    head(f, "wsrelay_connections", "gauge", "Open connections by state.");
    for (int s = 0; s < CS_CLOSED; s++)
        fprintf(f, "wsrelay_connections{state=\"%s\"} %llu\n", state_names[s],
                (unsigned long long)sum_at(offsetof(struct wrk_stats, conns) + (size_t)s * sizeof(wrk_ctr)));
    single(f, "wsrelay_accepted_total", "counter", "Connections accepted.", SUM(accepted));
    single(f, "wsrelay_refused_total", "counter", "Connections refused (limit or out of descriptors).",
           SUM(refused));
    single(f, "wsrelay_closed_total", "counter", "Connections closed.", SUM(closed));
    single(f, "wsrelay_http_requests_total", "counter", "HTTP requests parsed.", SUM(http_requests));
    single(f, "wsrelay_upgrades_total", "counter", "WebSocket upgrades completed.", SUM(upgrades));
    per_endpoint(f, "wsrelay_messages_in_total", "WebSocket messages received, by endpoint.",
                 offsetof(struct wrk_stats, msgs_in));
    per_endpoint(f, "wsrelay_messages_out_total", "WebSocket frames sent (data and control), by endpoint.",
                 offsetof(struct wrk_stats, msgs_out));
    per_endpoint(f, "wsrelay_bytes_in_total", "Bytes read from sockets, by endpoint (http: before upgrade).",
                 offsetof(struct wrk_stats, bytes_in));
    per_endpoint(f, "wsrelay_bytes_out_total", "Bytes written to sockets, by endpoint.",
                 offsetof(struct wrk_stats, bytes_out));
    close_codes(f, "wsrelay_close_codes_sent_total", "Close frames sent, by status code.",
                offsetof(struct wrk_stats, close_sent));
    close_codes(f, "wsrelay_close_codes_received_total", "Close frames received, by status code.",
                offsetof(struct wrk_stats, close_rcvd));
    head(f, "wsrelay_protocol_errors_total", "counter", "WebSocket sessions failed, by kind.");
    for (int k = 1; k < WS_ERR__COUNT; k++)
        fprintf(f, "wsrelay_protocol_errors_total{kind=\"%s\"} %llu\n", ws_err_name((enum ws_err_kind)k),
                (unsigned long long)sum_at(offsetof(struct wrk_stats, ws_errors) + (size_t)k * sizeof(wrk_ctr)));
    single(f, "wsrelay_backpressure_pauses_total", "counter",
           "Times a connection stopped being read because its output passed --max-backlog.", SUM(pauses));
    single(f, "wsrelay_relay_deliveries_total", "counter", "Relay messages written in full to a member.",
           SUM(relay_deliveries));
    head(f, "wsrelay_relay_slow_consumer_total", "counter", "Slow relay members handled, by action (--slow-consumer).");
    fprintf(f, "wsrelay_relay_slow_consumer_total{action=\"close\"} %llu\n",
            (unsigned long long)SUM(relay_slow_closes));
    fprintf(f, "wsrelay_relay_slow_consumer_total{action=\"drop\"} %llu\n",
            (unsigned long long)SUM(relay_drops));
    single(f, "wsrelay_relay_queue_slots", "gauge",
           "Delivery-queue slots allocated for relay members (a pointer each; a ring emptied after a burst is freed).",
           SUM(relay_queue_slots));
    single(f, "wsrelay_relay_channels", "gauge", "Relay channels with at least one member.", relay_channels());
    head(f, "wsrelay_relay_members", "gauge", "Relay members, by worker.");
    for (int i = 0; i < n_workers; i++)
        fprintf(f, "wsrelay_relay_members{worker=\"%d\"} %llu\n", i, (unsigned long long)relay_members(i));
    head(f, "wsrelay_loop_iterations_total", "counter", "Event-loop iterations, by worker.");
    for (int i = 0; i < n_workers; i++)
        fprintf(f, "wsrelay_loop_iterations_total{worker=\"%d\"} %llu\n", i,
                (unsigned long long)ld(&workers[i]->st.loops));
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

void metrics_log_summary(void)
{
    uint64_t open = 0, in = 0, out = 0, members = 0;
    for (int s = 0; s < CS_CLOSED; s++)
        open += sum_at(offsetof(struct wrk_stats, conns) + (size_t)s * sizeof(wrk_ctr));
    for (int e = 0; e < EP__COUNT; e++) {
        in += sum_at(offsetof(struct wrk_stats, msgs_in) + (size_t)e * sizeof(wrk_ctr));
        out += sum_at(offsetof(struct wrk_stats, msgs_out) + (size_t)e * sizeof(wrk_ctr));
    }
    for (int i = 0; i < n_workers; i++)
        members += relay_members(i);
    log_info("stats: conns=%llu accepted=%llu msgs_in=%llu msgs_out=%llu relay: channels=%llu "
             "members=%llu deliveries=%llu slow_closes=%llu drops=%llu",
             (unsigned long long)open, (unsigned long long)SUM(accepted), (unsigned long long)in,
             (unsigned long long)out, (unsigned long long)relay_channels(), (unsigned long long)members,
             (unsigned long long)SUM(relay_deliveries), (unsigned long long)SUM(relay_slow_closes),
             (unsigned long long)SUM(relay_drops));
}
