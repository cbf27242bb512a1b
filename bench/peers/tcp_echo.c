/* tcp_echo PORT: a raw TCP echo server on 127.0.0.1, the physical limit of
 * the echo workload. One thread, one epoll instance, edge-triggered. Bytes
 * are read into one shared 256 KiB buffer and written straight back; only
 * what the socket does not take is copied into the connection's backlog,
 * and while a backlog exists the connection is not read (backpressure), so
 * memory per connection stays bounded. `wsload --raw` drives it with the
 * same masked frames it would send a WebSocket server. Port 0 picks a free
 * port; "listening on 127.0.0.1:PORT" on stdout says it is ready. SIGINT or
 * SIGTERM exits 0. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_LEN (256 * 1024) /* per read(); also the most one connection may owe */
#define MAX_EVENTS 256

struct peer {
    int fd;
    uint8_t *out;   /* unsent echo bytes, BUF_LEN when allocated */
    size_t out_off, out_len;
    bool eof;       /* the client shut down its side */
};

static uint8_t buf[BUF_LEN];
static char lsn_tag, sig_tag;

static void peer_close(int epfd, struct peer *p)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
    free(p->out);
    free(p);
}

/* Send the backlog. Returns 1 when it is empty, 0 when the socket is full,
 * -1 on a dead connection. */
static int drain(struct peer *p)
{
    while (p->out_len) {
        ssize_t w = send(p->fd, p->out + p->out_off, p->out_len, MSG_NOSIGNAL);
        if (w < 0)
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        p->out_off += (size_t)w;
        p->out_len -= (size_t)w;
    }
    p->out_off = 0;
    return 1;
}

/* Read and echo until EAGAIN, a short read, EOF or a backlog. hup: the
 * event said the peer hung up, so read on to EOF. Returns -1 to close. */
static int pump(struct peer *p, bool hup)
{
    int rc = drain(p);
    if (rc <= 0)
        return rc;
    while (!p->eof) {
        ssize_t r = read(p->fd, buf, sizeof buf);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        }
        if (r == 0) {
            p->eof = true;
            break;
        }
        ssize_t w = send(p->fd, buf, (size_t)r, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -1;
            w = 0;
        }
        if (w < r) { /* keep the rest; stop reading until EPOLLOUT drains it */
            if (!p->out && !(p->out = malloc(BUF_LEN)))
                return -1;
            memcpy(p->out, buf + w, (size_t)(r - w));
            p->out_off = 0;
            p->out_len = (size_t)(r - w);
            return 0;
        }
        /* Edge-triggered: a short read drained the socket, and bytes that
         * arrive later raise a new edge; the read that would only say
         * EAGAIN is skipped (as wsrelay does). No edge follows EOF. */
        if ((size_t)r < sizeof buf && !hup)
            return 0;
    }
    /* EOF with nothing owed: echo is complete, close. */
    return p->out_len ? 0 : -1;
}

static int open_listener(uint16_t port, uint16_t *bound)
{
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, SOMAXCONN) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *bound = ntohs(sa.sin_port);
    return fd;
}

static void accept_all(int epfd, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("tcp_echo: accept"); /* e.g. EMFILE: try again on the next edge */
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct peer *p = calloc(1, sizeof *p);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = p};
        if (!p || (p->fd = fd, epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)) {
            close(fd);
            free(p);
        }
    }
}

int main(int argc, char **argv)
{
    char *e;
    unsigned long port = argc == 2 ? strtoul(argv[1], &e, 10) : 0;
    if (argc != 2 || *e || !*argv[1] || port > 65535) {
        fprintf(stderr, "usage: tcp_echo PORT (0 = any free port)\n");
        return 2;
    }
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    uint16_t bound;
    int lfd = open_listener((uint16_t)port, &bound);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (lfd < 0 || sfd < 0 || epfd < 0) {
        perror("tcp_echo: setup");
        return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = &lsn_tag};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
    ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &sig_tag};
    epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);
    printf("listening on 127.0.0.1:%u\n", bound);
    fflush(stdout);

    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(epfd, evs, MAX_EVENTS, -1);
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &sig_tag)
                return 0;
            if (tag == &lsn_tag) {
                accept_all(epfd, lfd);
                continue;
            }
            struct peer *p = tag;
            if ((evs[i].events & EPOLLERR) || pump(p, evs[i].events & (EPOLLRDHUP | EPOLLHUP)) < 0)
                peer_close(epfd, p);
        }
    }
}
