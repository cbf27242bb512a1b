#ifndef NET_CONFIG_H
#define NET_CONFIG_H
/* Run-time configuration, filled by net/main.c from flags and read-only
 * once the workers start. */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/socket.h>

struct wsr_config {
    struct sockaddr_storage addr; /* listen address; port 0 = pick one */
    socklen_t addrlen;
    int threads;
    const char *static_dir;
    uint64_t max_message;       /* bytes per WebSocket message */
    uint64_t max_frame;         /* bytes per frame payload */
    uint32_t max_connections;   /* per process */
    uint64_t max_backlog;       /* unsent bytes before a conn is paused */
    uint32_t handshake_timeout_ms;
    uint32_t idle_timeout_ms;   /* 0 = off */
    uint32_t ping_interval_ms;  /* 0 = off */
    uint32_t close_timeout_ms;
    const char **origins;       /* allow-list; n_origins == 0 means any */
    size_t n_origins;
    bool slow_drop;             /* relay: drop messages for a slow member instead of closing it */
    uint32_t stats_interval_ms; /* 0 = no periodic summary */
    int io;                     /* enum wsr_io (net/io.h): the backend every worker uses */
    uint64_t zc_threshold;      /* io_uring: sends of at least this many bytes use SEND_ZC; 0 = never */
};

#endif
