/* lws_echo PORT: a WebSocket echo server on libwebsockets, written the way the
 * library's documentation asks, as a peer for bench/compare.sh. One thread,
 * lws's own default event loop. Only /echo is served: each message comes
 * back as it came, same type, same bytes. Text is UTF-8 checked by lws
 * (LWS_SERVER_OPTION_VALIDATE_UTF8), as wsrelay checks it. Port 0 picks a
 * free port; "listening on 127.0.0.1:PORT" on stdout says it is ready.
 * SIGINT or SIGTERM exits 0.
 *
 * Messages may arrive in pieces (frames, and frames larger than the rx
 * buffer), so each connection assembles the current message and keeps a FIFO
 * of complete ones. lws allows one lws_write() per WRITEABLE callback, so
 * each writable turn sends one message and asks for the next turn. While a
 * connection owes more than ECHO_MAX_OWED bytes its reads are paused
 * (lws_rx_flow_control), so memory per connection stays bounded. */
#include <libwebsockets.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ECHO_MAX_MESSAGE (16u << 20) /* as wsrelay's --max-message default */
#define ECHO_MAX_OWED (1u << 20)     /* as wsrelay's --max-backlog default */
#define ECHO_RX_BUF 65536            /* bytes lws hands us per RECEIVE at most */

/* One message: LWS_PRE bytes of room for lws's frame header, then payload. */
struct echo_msg {
    struct echo_msg *next;
    size_t len, cap; /* payload bytes, payload room */
    bool binary;
    unsigned char buf[]; /* LWS_PRE + cap */
};

/* Per connection; lws zeroes it before ESTABLISHED. */
struct echo_sess {
    struct echo_msg *cur;         /* being assembled, or NULL */
    struct echo_msg *head, *tail; /* complete, waiting to be sent */
    size_t owed;                  /* payload bytes in head..tail */
    bool paused;                  /* rx flow control is off */
};

static struct lws_context *ctx;
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
    lws_cancel_service(ctx); /* wakes the service loop */
}

static void sess_free(struct echo_sess *s)
{
    free(s->cur);
    s->cur = NULL;
    while (s->head) {
        struct echo_msg *m = s->head;
        s->head = m->next;
        free(m);
    }
    s->tail = NULL;
    s->owed = 0;
}

/* Append [p, p + len) to the message being assembled. Returns false when the
 * message would pass ECHO_MAX_MESSAGE or memory runs out. */
static bool sess_append(struct echo_sess *s, const void *p, size_t len, bool binary)
{
    struct echo_msg *m = s->cur;
    if (!m) {
        size_t cap = len > 256 ? len : 256;
        m = malloc(sizeof *m + LWS_PRE + cap);
        if (!m)
            return false;
        m->next = NULL;
        m->len = 0;
        m->cap = cap;
        m->binary = binary;
        s->cur = m;
    }
    if (len > ECHO_MAX_MESSAGE - m->len)
        return false;
    if (m->len + len > m->cap) {
        size_t cap = m->cap;
        while (cap < m->len + len)
            cap *= 2;
        if (cap > ECHO_MAX_MESSAGE)
            cap = ECHO_MAX_MESSAGE;
        struct echo_msg *g = realloc(m, sizeof *m + LWS_PRE + cap);
        if (!g)
            return false;
        m = g;
        m->cap = cap;
        s->cur = m;
    }
    memcpy(m->buf + LWS_PRE + m->len, p, len);
    m->len += len;
    return true;
}

static int cb_echo(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct echo_sess *s = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char uri[64];
        int n = lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
        return (n == 5 && memcmp(uri, "/echo", 5) == 0) ? 0 : 1; /* nonzero refuses the upgrade */
    }
    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof *s);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (!sess_append(s, in, len, lws_frame_is_binary(wsi) != 0)) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
            return -1;
        }
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
            struct echo_msg *m = s->cur;
            s->cur = NULL;
            if (s->tail)
                s->tail->next = m;
            else
                s->head = m;
            s->tail = m;
            s->owed += m->len;
            if (s->owed > ECHO_MAX_OWED && !s->paused) {
                s->paused = true;
                lws_rx_flow_control(wsi, 0);
            }
            lws_callback_on_writable(wsi);
        }
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        struct echo_msg *m = s->head;
        if (!m)
            return 0;
        int n = lws_write(wsi, m->buf + LWS_PRE, m->len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        if (n < 0 || (size_t)n < m->len)
            return -1;
        s->head = m->next;
        if (!s->head)
            s->tail = NULL;
        s->owed -= m->len;
        free(m);
        if (s->paused && s->owed <= ECHO_MAX_OWED / 2) {
            s->paused = false;
            lws_rx_flow_control(wsi, 1);
        }
        if (s->head)
            lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_CLOSED:
        sess_free(s);
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {.name = "echo",
     .callback = cb_echo,
     .per_session_data_size = sizeof(struct echo_sess),
     .rx_buffer_size = ECHO_RX_BUF},
    {0},
};

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: lws_echo PORT\n");
        return 2;
    }
    char *end;
    long port = strtol(argv[1], &end, 10);
    if (*end || port < 0 || port > 65535) {
        fprintf(stderr, "lws_echo: bad port %s\n", argv[1]);
        return 2;
    }
    lws_set_log_level(LLL_ERR, NULL);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = (int)port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.count_threads = 1;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
    info.vhost_name = "localhost";
    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "lws_echo: lws_create_context failed\n");
        return 1;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(ctx, "localhost");
    int bound = vh ? lws_get_vhost_listen_port(vh) : (int)port;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    printf("listening on 127.0.0.1:%d\n", bound);
    fflush(stdout);
    while (!stopping && lws_service(ctx, 0) >= 0)
        ;
    lws_context_destroy(ctx);
    return 0;
}
