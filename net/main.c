/* wsrelay: flags, start-up, signals. The work happens in net/worker.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/ws_unmask.h"
#include "net/config.h"
#include "net/io.h"
#include "net/log.h"
#include "net/metrics.h"
#include "net/relay.h"
#include "net/static_files.h"
#include "net/worker.h"

#define WSR_VERSION "0.1.0"
#define MAX_THREADS 256

static const char usage[] =
    "usage: wsrelay [options]\n"
    "  --host ADDR             listen address (default 0.0.0.0; IPv6 such as :: or ::1 accepted)\n"
    "  --port N                listen port (default 8080; 0 picks a free one)\n"
    "  --threads N             worker threads (default: online CPUs)\n"
    "  --static DIR            static root served over HTTP (default: the repo's static/)\n"
    "  --max-message BYTES     largest WebSocket message (default 16M; K/M/G suffixes)\n"
    "  --max-frame BYTES       largest frame payload (default: --max-message)\n"
    "  --max-connections N     open connections before new ones get 503 (default 10000)\n"
    "  --max-backlog BYTES     unsent bytes per connection before it is paused (default 1M)\n"
    "  --slow-consumer POLICY  relay member past --max-backlog: close (1013, default) or drop\n"
    "                          (whole messages for that member only; counted either way)\n"
    "  --stats-interval S      log a one-line summary every S seconds (default 0 = off)\n"
    "  --io BACKEND            uring (io_uring, the default where built with liburing) or epoll;\n"
    "                          where the kernel does not allow io_uring, one log line and epoll\n"
    "  --zc-threshold BYTES    io_uring: send replies of at least this many bytes with SEND_ZC\n"
    "                          (default 0 = never; see README)\n"
    "  --handshake-timeout S   time to send a complete HTTP request (default 10; \"500ms\" works too)\n"
    "  --idle-timeout S        close a WebSocket silent this long with 1001 (default 120; 0 = off)\n"
    "  --ping-interval S       ping a WebSocket silent this long (default 30; 0 = off)\n"
    "  --close-timeout S       wait this long for the peer's close (default 5)\n"
    "  --origin URL            allow this Origin (repeatable; default: any)\n"
    "  --log-level LEVEL       error, warn, info or debug (default info)\n"
    "  --help, --version\n";

__attribute__((noreturn)) static void bad_flag(const char *flag, const char *value, const char *why)
{
    if (value)
        fprintf(stderr, "wsrelay: %s: bad value '%s': %s\n", flag, value, why);
    else
        fprintf(stderr, "wsrelay: %s\n", why);
    exit(2);
}

/* "123", "64K", "16M", "1G" (powers of 1024). */
static uint64_t parse_size(const char *flag, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-')
        bad_flag(flag, s, "expected a size such as 65536, 64K or 16M");
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        bad_flag(flag, s, "expected a size such as 65536, 64K or 16M");
    int shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10, end++;
    else if (*end == 'M' || *end == 'm')
        shift = 20, end++;
    else if (*end == 'G' || *end == 'g')
        shift = 30, end++;
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        bad_flag(flag, s, "expected a size such as 65536, 64K or 16M");
    v <<= shift;
    if (v < min || v > max) {
        char why[96];
        snprintf(why, sizeof why, "must be between %llu and %llu",
                 (unsigned long long)min, (unsigned long long)max);
        bad_flag(flag, s, why);
    }
    return v;
}

/* Seconds ("10", "0.5") or milliseconds ("500ms"), as milliseconds. */
static uint32_t parse_duration(const char *flag, const char *s, bool zero_ok)
{
    char *end;
    errno = 0;
    if (strspn(s, "0123456789.") == 0 || s[strspn(s, "0123456789.")] == 'x' ||
        s[strspn(s, "0123456789.")] == 'e' || s[strspn(s, "0123456789.")] == 'E')
        bad_flag(flag, s, "expected seconds (e.g. 10, 0.5 or 500ms)");
    double v = strtod(s, &end);
    double ms = v * 1000.0;
    if (strcmp(end, "ms") == 0)
        ms = v;
    else if (strcmp(end, "s") != 0 && *end)
        end = NULL;
    if (errno || !end || end == s || !(ms >= 0) || ms > 86400000.0 || (!zero_ok && ms < 1))
        bad_flag(flag, s, zero_ok ? "expected seconds >= 0 (e.g. 10, 0.5 or 500ms)"
                                  : "expected seconds > 0 (e.g. 10, 0.5 or 500ms)");
    return (uint32_t)(ms + 0.5);
}

static long parse_int(const char *flag, const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        char why[96];
        snprintf(why, sizeof why, "expected a whole number from %ld to %ld", min, max);
        bad_flag(flag, s, why);
    }
    return v;
}

/* The repo's static/: ./static when run from the repo, else next to the
 * binary's build folder (build/<variant>/wsrelay → ../../static). */
static const char *default_static(void)
{
    static char path[PATH_MAX];
    struct stat st;
    if (stat("static", &st) == 0 && S_ISDIR(st.st_mode))
        return "static";
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
    if (n > 0) {
        path[n] = 0;
        char *slash = strrchr(path, '/');
        if (slash) {
            strcpy(slash, "/../../static");
            if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
                return path;
        }
    }
    return "static";
}

static void parse_host(struct wsr_config *cfg, const char *host, uint16_t port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0)
        bad_flag("--host", host, gai_strerror(rc));
    memcpy(&cfg->addr, res->ai_addr, res->ai_addrlen);
    cfg->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
}

int main(int argc, char **argv)
{
    enum { O_HOST = 256, O_PORT, O_THREADS, O_STATIC, O_MAXMSG, O_MAXFRAME, O_MAXCONN,
           O_BACKLOG, O_HSTO, O_IDLE, O_PING, O_CLOSE, O_ORIGIN, O_LOG, O_HELP, O_VERSION, O_SLOW, O_STATS, O_IO, O_ZC };
    static const struct option opts[] = {
        {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},
        {"threads", required_argument, 0, O_THREADS},
        {"static", required_argument, 0, O_STATIC},
        {"max-message", required_argument, 0, O_MAXMSG},
        {"max-frame", required_argument, 0, O_MAXFRAME},
        {"max-connections", required_argument, 0, O_MAXCONN},
        {"max-backlog", required_argument, 0, O_BACKLOG},
        {"handshake-timeout", required_argument, 0, O_HSTO},
        {"idle-timeout", required_argument, 0, O_IDLE},
        {"ping-interval", required_argument, 0, O_PING},
        {"close-timeout", required_argument, 0, O_CLOSE},
        {"origin", required_argument, 0, O_ORIGIN},
        {"log-level", required_argument, 0, O_LOG},
        {"slow-consumer", required_argument, 0, O_SLOW},
        {"stats-interval", required_argument, 0, O_STATS},
        {"io", required_argument, 0, O_IO},
        {"zc-threshold", required_argument, 0, O_ZC},
        {"help", no_argument, 0, O_HELP},
        {"version", no_argument, 0, O_VERSION},
        {0, 0, 0, 0},
    };
    struct wsr_config cfg = {
        .threads = (int)sysconf(_SC_NPROCESSORS_ONLN),
        .max_message = 16u << 20,
        .max_connections = 10000,
        .max_backlog = 1u << 20,
        .handshake_timeout_ms = 10000,
        .idle_timeout_ms = 120000,
        .ping_interval_ms = 30000,
        .close_timeout_ms = 5000,
        /* io_uring where built and allowed: it measured cheaper per message
         * on small echoes (bench/RESULTS.md, "I/O backends"). */
#ifdef WSR_HAVE_URING
        .io = WSR_IO_URING,
#else
        .io = WSR_IO_EPOLL,
#endif
    };
    bool io_set = false;
    const char *host = "0.0.0.0", *static_dir = NULL;
    long port = 8080;
    bool frame_set = false;
    static const char *origins[64];

    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        const char *flag = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
        switch (o) {
        case O_HOST: host = optarg; break;
        case O_PORT: port = parse_int("--port", optarg, 0, 65535); break;
        case O_THREADS: cfg.threads = (int)parse_int("--threads", optarg, 1, MAX_THREADS); break;
        case O_STATIC: static_dir = optarg; break;
        case O_MAXMSG: cfg.max_message = parse_size("--max-message", optarg, 1, 1ull << 31); break;
        case O_MAXFRAME:
            cfg.max_frame = parse_size("--max-frame", optarg, 1, 1ull << 31);
            frame_set = true;
            break;
        case O_MAXCONN:
            cfg.max_connections = (uint32_t)parse_int("--max-connections", optarg, 1, 10000000);
            break;
        case O_BACKLOG: cfg.max_backlog = parse_size("--max-backlog", optarg, 1024, 1ull << 32); break;
        case O_HSTO: cfg.handshake_timeout_ms = parse_duration("--handshake-timeout", optarg, false); break;
        case O_IDLE: cfg.idle_timeout_ms = parse_duration("--idle-timeout", optarg, true); break;
        case O_PING: cfg.ping_interval_ms = parse_duration("--ping-interval", optarg, true); break;
        case O_CLOSE: cfg.close_timeout_ms = parse_duration("--close-timeout", optarg, false); break;
        case O_ORIGIN:
            if (cfg.n_origins == sizeof origins / sizeof origins[0])
                bad_flag("--origin", optarg, "too many origins (at most 64)");
            origins[cfg.n_origins++] = optarg;
            break;
        case O_LOG: {
            int lvl = log_level_parse(optarg);
            if (lvl < 0)
                bad_flag("--log-level", optarg, "expected error, warn, info or debug");
            log_set_level((enum log_level)lvl);
            break;
        }
        case O_IO:
            io_set = true;
            if (strcmp(optarg, "epoll") == 0)
                cfg.io = WSR_IO_EPOLL;
            else if (strcmp(optarg, "uring") == 0 || strcmp(optarg, "io_uring") == 0)
                cfg.io = WSR_IO_URING;
            else
                bad_flag("--io", optarg, "expected epoll or uring");
            break;
        case O_ZC: cfg.zc_threshold = parse_size("--zc-threshold", optarg, 0, 1ull << 31); break;
        case O_SLOW:
            if (strcmp(optarg, "close") == 0)
                cfg.slow_drop = false;
            else if (strcmp(optarg, "drop") == 0)
                cfg.slow_drop = true;
            else
                bad_flag("--slow-consumer", optarg, "expected close or drop");
            break;
        case O_STATS: cfg.stats_interval_ms = parse_duration("--stats-interval", optarg, true); break;
        case O_HELP: fputs(usage, stdout); return 0;
        case O_VERSION: printf("wsrelay " WSR_VERSION "\n"); return 0;
        case ':': {
            char why[128];
            snprintf(why, sizeof why, "flag %s needs a value (see --help)", flag);
            bad_flag(flag, NULL, why);
        }
        default: {
            char why[160];
            snprintf(why, sizeof why, "unknown flag '%s' (see --help)", flag);
            bad_flag(flag, NULL, why);
        }
        }
    }
    if (optind < argc) {
        char why[160];
        snprintf(why, sizeof why, "unexpected argument '%s' (see --help)", argv[optind]);
        bad_flag(argv[optind], NULL, why);
    }
    if (cfg.threads < 1)
        cfg.threads = 1;
    if (cfg.threads > MAX_THREADS)
        cfg.threads = MAX_THREADS;
    if (!frame_set || cfg.max_frame > cfg.max_message)
        cfg.max_frame = cfg.max_message;
    cfg.origins = origins;
    parse_host(&cfg, host, (uint16_t)port);

    struct sfiles *sf;
    if (!static_dir)
        static_dir = default_static();
    int rc = sfiles_open(&sf, static_dir);
    if (rc < 0) {
        fprintf(stderr, "wsrelay: --static: cannot open '%s': %s\n", static_dir, strerror(-rc));
        return 2;
    }
    cfg.static_dir = sfiles_root(sf);

    /* Signals go to this thread only (sigwait below); workers never see them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = relay_init(cfg.threads, &cfg);
    if (rc < 0) {
        fprintf(stderr, "wsrelay: cannot set up relay: %s\n", strerror(-rc));
        return 1;
    }
    if (cfg.io == WSR_IO_URING) {
        const char *why;
        if (!iou_usable(&why)) {
            if (io_set)
                log_warn("io_uring unavailable (%s): using epoll", why);
            else
                log_info("io_uring unavailable (%s): using epoll", why);
            cfg.io = WSR_IO_EPOLL;
        }
    }
    struct wrk *workers[MAX_THREADS];
    int n = 0;
    for (; n < cfg.threads; n++) {
        rc = wrk_new(&workers[n], n, &cfg, sf, (struct sockaddr *)&cfg.addr, cfg.addrlen);
        if (rc < 0) {
            fprintf(stderr, "wsrelay: cannot listen on %s port %ld: %s\n", host,
                    port ? port : (long)0, strerror(-rc));
            return 1;
        }
        if (n == 0) { /* with --port 0 the rest join the port the first got */
            uint16_t p = wrk_port(workers[0]);
            if (cfg.addr.ss_family == AF_INET6)
                ((struct sockaddr_in6 *)&cfg.addr)->sin6_port = htons(p);
            else
                ((struct sockaddr_in *)&cfg.addr)->sin_port = htons(p);
        }
    }
    metrics_set_workers(workers, n);
    for (int i = 0; i < n; i++) {
        rc = wrk_start(workers[i]);
        if (rc < 0) {
            fprintf(stderr, "wsrelay: cannot start worker: %s\n", strerror(-rc));
            return 1;
        }
    }
    char addr[INET6_ADDRSTRLEN];
    if (cfg.addr.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&cfg.addr)->sin6_addr, addr, sizeof addr);
        printf("wsrelay " WSR_VERSION " listening on [%s]:%u", addr, wrk_port(workers[0]));
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&cfg.addr)->sin_addr, addr, sizeof addr);
        printf("wsrelay " WSR_VERSION " listening on %s:%u", addr, wrk_port(workers[0]));
    }
    /* A worker whose own ring could not be set up serves with epoll (it
     * logged why): say what actually runs. */
    int on_uring = 0;
    for (int i = 0; i < n; i++)
        on_uring += wrk_on_uring(workers[i]);
    char backend[48];
    if (on_uring == 0 || on_uring == n)
        snprintf(backend, sizeof backend, "%s", on_uring ? "uring" : "epoll");
    else
        snprintf(backend, sizeof backend, "mixed(uring %d,epoll %d)", on_uring, n - on_uring);
    printf(" threads=%d backend=%s unmask=%s static=%s\n", n, backend, ws_unmask_impl(), cfg.static_dir);
    fflush(stdout);

    int sig;
    if (cfg.stats_interval_ms == 0) {
        sigwait(&sigs, &sig);
    } else {
        struct timespec every = {(time_t)(cfg.stats_interval_ms / 1000),
                                 (long)(cfg.stats_interval_ms % 1000) * 1000000L};
        while ((sig = sigtimedwait(&sigs, NULL, &every)) < 0)
            if (errno == EAGAIN)
                metrics_log_summary();
    }
    log_info("%s: closing connections (up to %.1f s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
             cfg.close_timeout_ms / 1000.0);
    for (int i = 0; i < n; i++)
        wrk_stop(workers[i]);
    /* While the close handshakes run, a second SIGINT/SIGTERM ends the
     * process at once (status 1): the operator's way out of a long
     * --close-timeout. */
    for (int i = 0; i < n; i++) {
        while (!wrk_join_for(workers[i], 100)) {
            struct timespec now = {0, 0};
            if (sigtimedwait(&sigs, NULL, &now) >= 0) {
                log_warn("second signal: exiting without waiting for close handshakes");
                _exit(1);
            }
        }
    }
    for (int i = 0; i < n; i++)
        wrk_free(workers[i]);
    relay_fini();
    sfiles_close(sf);
    return 0;
}
