/* fanout_floor: the physical limit of the relay workload r1 on this machine.
 *
 * r1 (bench/relay.sh) is one publisher and 1,000 subscribers with up to 16
 * messages of 32 bytes not yet delivered to everyone. However a server
 * batches, it must make at least one send per subscriber per window of 16
 * frames (34 bytes each on the wire), and over loopback each send also runs
 * the receiver's TCP processing on the sender's CPU. This program does only
 * that: it sends BYTES to each of CONNS loopback connections in turn, the
 * bytes already prepared (no framing, no queues, no user-space work), while
 * a forked reader on another CPU drains every socket with edge-triggered
 * epoll the way wsload does. It reports the sender's CPU time per send and
 * per FRAME-byte delivery: what a relay could reach if its own code cost
 * nothing.
 *
 *   fanout_floor [-c CONNS] [-s BYTES] [-f FRAME] [-d SECONDS] [-w SECONDS]
 *                [--sender-cpu N] [--reader-cpu N] [--json]
 *
 * Defaults match r1: 1000 connections, 544-byte sends (16 frames of 34),
 * 3 s measured after 1 s of warm-up, sender on CPU 0, reader on CPU 1.
 * A send the socket refuses (the reader fell behind) is not counted as a
 * send, one it takes in part is; both are reported. The reader counts the
 * bytes it drained, and they must equal the bytes the sends took.
 * Exit status: 0, 1 on a failure, 2 on a bad flag. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void usage_exit(const char *why)
{
    fprintf(stderr, "fanout_floor: %s\n"
                    "usage: fanout_floor [-c CONNS] [-s BYTES] [-f FRAME] [-d SECONDS] [-w SECONDS]\n"
                    "                    [--sender-cpu N] [--reader-cpu N] [--json]\n",
            why);
    exit(2);
}

static long parse_num(const char *s, long lo, long hi, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s must be an integer in %ld..%ld, not '%s'", what, lo, hi, s);
        usage_exit(msg);
    }
    return v;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* utime + stime of process pid, in seconds (0 when unreadable). */
static double proc_cpu_s(pid_t pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    char *p = strrchr(line, ')'); /* the command name may hold spaces */
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0) {
        perror("fanout_floor: sched_setaffinity");
        exit(1);
    }
}

/* The reader: drain the conns sockets in fds until each sees EOF, then
 * write the number of bytes read to out_fd. Returns 0, or 1 when a socket
 * failed (a reset, say) or nothing came for 10 s. */
static int reader(const int *fds, int conns, int cpu, int out_fd)
{
    pin(cpu);
    int ep = epoll_create1(0);
    if (ep < 0)
        return 1;
    for (int i = 0; i < conns; i++) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET | EPOLLRDHUP, .data.fd = fds[i]};
        if (fcntl(fds[i], F_SETFL, O_NONBLOCK) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0)
            return 1;
    }
    static uint8_t buf[256 * 1024];
    struct epoll_event evs[256];
    uint64_t total = 0;
    int open = conns;
    while (open > 0) {
        int n = epoll_wait(ep, evs, 256, 10000);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 1; /* nothing for 10 s: the sender is stuck */
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            for (;;) {
                ssize_t r = recv(fd, buf, sizeof buf, 0);
                if (r > 0) {
                    total += (uint64_t)r;
                    continue;
                }
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0 && errno == EAGAIN)
                    break;
                if (r < 0)
                    return 1;
                close(fd); /* EOF: the sender is done with this one */
                open--;
                break;
            }
        }
    }
    return write(out_fd, &total, sizeof total) == (ssize_t)sizeof total ? 0 : 1;
}

int main(int argc, char **argv)
{
    int conns = 1000, bytes = 544, frame = 34, scpu = 0, rcpu = 1;
    double dur = 3, warm = 1;
    bool json = false;
    enum { O_SCPU = 256, O_RCPU, O_JSON };
    static const struct option lo[] = {
        {"sender-cpu", required_argument, 0, O_SCPU},
        {"reader-cpu", required_argument, 0, O_RCPU},
        {"json", no_argument, 0, O_JSON},
        {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "c:s:f:d:w:", lo, NULL)) != -1) {
        switch (o) {
        case 'c': conns = (int)parse_num(optarg, 1, 15000, "-c"); break;
        case 's': bytes = (int)parse_num(optarg, 1, 1 << 20, "-s"); break;
        case 'f': frame = (int)parse_num(optarg, 1, 1 << 20, "-f"); break;
        case 'd': dur = (double)parse_num(optarg, 1, 3600, "-d"); break;
        case 'w': warm = (double)parse_num(optarg, 0, 3600, "-w"); break;
        case O_SCPU: scpu = (int)parse_num(optarg, 0, CPU_SETSIZE - 1, "--sender-cpu"); break;
        case O_RCPU: rcpu = (int)parse_num(optarg, 0, CPU_SETSIZE - 1, "--reader-cpu"); break;
        case O_JSON: json = true; break;
        default: usage_exit("unknown option");
        }
    }
    if (optind != argc)
        usage_exit("no operands are taken");
    signal(SIGPIPE, SIG_IGN);

    /* Both ends of every connection, then the fork: nothing can wait on a
     * peer that failed to come up. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)(2 * conns + 16)) {
        fprintf(stderr, "fanout_floor: %d connections need %d descriptors; the limit is %llu\n", conns,
                2 * conns + 16, (unsigned long long)rl.rlim_cur);
        return 1;
    }
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 64) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) {
        perror("fanout_floor: listen");
        return 1;
    }
    int *fds = calloc((size_t)conns, sizeof *fds);  /* the sender's ends */
    int *rfds = calloc((size_t)conns, sizeof *rfds); /* the reader's ends */
    uint8_t *msg = malloc((size_t)bytes);
    if (!fds || !rfds || !msg)
        return 1;
    for (int i = 0; i < bytes; i++)
        msg[i] = (uint8_t)(i * 131 + 7);
    int one = 1;
    for (int i = 0; i < conns; i++) {
        rfds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (rfds[i] < 0 || connect(rfds[i], (struct sockaddr *)&a, sizeof a) < 0 ||
            (fds[i] = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) < 0) {
            perror("fanout_floor: connecting");
            return 1;
        }
        setsockopt(rfds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    close(lfd);
    pin(scpu);
    int pfd[2];
    if (pipe(pfd) < 0) {
        perror("fanout_floor: pipe");
        return 1;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("fanout_floor: fork");
        return 1;
    }
    if (child == 0) {
        close(pfd[0]);
        for (int i = 0; i < conns; i++)
            close(fds[i]);
        _exit(reader(rfds, conns, rcpu, pfd[1]));
    }
    close(pfd[1]);
    for (int i = 0; i < conns; i++)
        close(rfds[i]);

    double t_start = now_s(), t_meas = t_start + warm, t_end = t_meas + dur;
    double c0 = 0, w0 = 0, r0 = 0;
    uint64_t sends = 0, short_sends = 0, refused = 0, base = 0, sent_bytes = 0;
    bool measuring = false, failed = false;
    for (;;) {
        for (int i = 0; i < conns; i++) {
            ssize_t n = send(fds[i], msg, (size_t)bytes, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    refused++; /* cheaper than a send: not counted as one */
                    continue;
                }
                perror("fanout_floor: send");
                failed = true;
                break;
            }
            sends++;
            sent_bytes += (uint64_t)n;
            if (n != bytes)
                short_sends++;
        }
        if (failed)
            break;
        double t = now_s();
        if (!measuring && t >= t_meas) {
            measuring = true;
            c0 = cpu_s();
            r0 = proc_cpu_s(child);
            w0 = t;
            base = sends;
            short_sends = refused = 0;
        } else if (measuring && t >= t_end) {
            break;
        }
    }
    double cpu = cpu_s() - c0, rcpu_s = proc_cpu_s(child) - r0, wall = now_s() - w0;
    uint64_t n = sends - base;
    for (int i = 0; i < conns; i++)
        close(fds[i]);
    uint64_t got = 0;
    ssize_t gr = read(pfd[0], &got, sizeof got);
    int st = 0;
    if (waitpid(child, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || gr != (ssize_t)sizeof got) {
        fprintf(stderr, "fanout_floor: the reader failed\n");
        failed = true;
    } else if (got != sent_bytes) {
        fprintf(stderr, "fanout_floor: the reader got %llu of the %llu bytes sent\n", (unsigned long long)got,
                (unsigned long long)sent_bytes);
        failed = true;
    }
    if (failed || n == 0)
        return 1;
    double per_send = cpu * 1e6 / (double)n;
    double per_frame = per_send * frame / bytes;
    if (json)
        printf("{\"conns\":%d,\"bytes\":%d,\"frame\":%d,\"sends\":%llu,\"short_sends\":%llu,\"refused\":%llu,"
               "\"sends_per_s\":%.1f,\"sender_cpu_pct\":%.1f,\"reader_cpu_pct\":%.1f,\"us_per_send\":%.3f,"
               "\"us_per_delivery\":%.4f}\n",
               conns, bytes, frame, (unsigned long long)n, (unsigned long long)short_sends,
               (unsigned long long)refused, (double)n / wall, cpu * 100 / wall, rcpu_s * 100 / wall, per_send,
               per_frame);
    else
        printf("fanout_floor: %d connections, %d-byte sends (%d-byte frames): %llu sends in %.2f s "
               "(%llu short, %llu refused), sender CPU %.0f%%, reader CPU %.0f%%\n"
               "  %.3f us of sender CPU per send, %.4f us per frame delivered\n",
               conns, bytes, frame, (unsigned long long)n, wall, (unsigned long long)short_sends,
               (unsigned long long)refused, cpu * 100 / wall, rcpu_s * 100 / wall, per_send, per_frame);
    return 0;
}
