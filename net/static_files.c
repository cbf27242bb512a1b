/* Static-file resolver; the contract is in static_files.h. The path check
 * runs first and on its own would keep every request under the root; the
 * openat2 scope would too. Either can be wrong without the other leaking. */
#include "net/static_files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SFILES_RESOLVE (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
/* openat2 returns EAGAIN when a concurrent rename or mount could have let a
 * ".." (ours are refused, but a relative symlink's target may hold one) slip
 * out of the root; openat2(2) says to retry. A few times is enough. */
#define SFILES_OPEN_TRIES 4

static const char INDEX_NAME[] = "index.html";

struct sfiles {
    int dirfd;  /* O_PATH descriptor of the root; every open is beneath it */
    char *root; /* canonical absolute path, from realpath(3) */
};

static long openat2_raw(int dirfd, const char *path, uint64_t flags)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags;
    how.resolve = SFILES_RESOLVE;
    return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

int sfiles_open(struct sfiles **out, const char *root)
{
    int rc;
    char *canon = realpath(root, NULL);
    if (!canon)
        return -errno;
    int fd = open(canon, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto fail_canon;
    }
    /* Fail here, not on the first request, if the kernel lacks openat2. */
    long probe = openat2_raw(fd, ".", O_PATH | O_CLOEXEC);
    if (probe < 0) {
        rc = -errno;
        goto fail_fd;
    }
    close((int)probe);
    struct sfiles *sf = malloc(sizeof *sf);
    if (!sf) {
        rc = -ENOMEM;
        goto fail_fd;
    }
    sf->dirfd = fd;
    sf->root = canon;
    *out = sf;
    return 0;
fail_fd:
    close(fd);
fail_canon:
    free(canon);
    return rc;
}

void sfiles_close(struct sfiles *sf)
{
    if (!sf)
        return;
    close(sf->dirfd);
    free(sf->root);
    free(sf);
}

const char *sfiles_root(const struct sfiles *sf)
{
    return sf->root;
}

/* ---- target syntax ----------------------------------------------------------- */

static int hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (uint8_t)(c | 0x20);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* RFC 3986 §3.3 pchar minus pct-encoded: unreserved / sub-delims / ":" / "@". */
static bool is_pchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    switch (c) {
    case '-': case '.': case '_': case '~':                       /* unreserved */
    case '!': case '$': case '&': case '\'': case '(': case ')':  /* sub-delims */
    case '*': case '+': case ',': case ';': case '=':
    case ':': case '@':
        return true;
    default:
        return false;
    }
}

/* Check that [t, t + len) is origin-form (RFC 9112 §3.2.1: absolute-path
 * ["?" query]) with well-formed escapes, and that no escape in the path
 * decodes to NUL or a separator. Returns the path's length (up to the first
 * '?') or -400. Every "malformed" verdict comes from here, so a bad target
 * is 400 whatever else is wrong with it. */
static long check_target(const uint8_t *t, size_t len)
{
    if (len == 0 || t[0] != '/' || len > LONG_MAX)
        return -400;
    size_t path_len = len;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = t[i];
        if (c == '%') {
            if (len - i < 3)
                return -400;
            int hi = hex_value(t[i + 1]), lo = hex_value(t[i + 2]);
            if (hi < 0 || lo < 0)
                return -400;
            int v = hi << 4 | lo;
            if (i < path_len && (v == 0 || v == '/' || v == '\\'))
                return -400;
            i += 2;
        } else if (c == '?') {
            if (path_len == len)
                path_len = i;
        } else if (c != '/' && !is_pchar(c)) {
            return -400;
        }
    }
    return (long)path_len;
}

/* ---- path building ------------------------------------------------------------ */

/* Decode the path [p, end) (already checked by check_target, starting after
 * its leading '/') into rel as a relative name: segments joined by '/', no
 * leading '/'. A trailing empty segment ("/" or "/dir/") becomes index.html
 * and sets *dir_index. Returns the name's length or -404. */
static long build_rel(const uint8_t *p, const uint8_t *end, char *rel, size_t cap,
                      bool *dir_index)
{
    size_t n = 0;
    *dir_index = false;
    for (;;) {
        const uint8_t *seg_end = memchr(p, '/', (size_t)(end - p));
        if (!seg_end)
            seg_end = end;
        if (p == seg_end) {
            if (seg_end != end)
                return -404; /* "//x" or "/a//b": never produced by a client's own links */
            *dir_index = true;
            break;
        }
        size_t seg = n;
        while (p < seg_end) {
            uint8_t c = *p;
            if (c == '%') {
                c = (uint8_t)(hex_value(p[1]) << 4 | hex_value(p[2]));
                p += 3;
            } else {
                p++;
            }
            if (n + 1 >= cap)
                return -404; /* longer than any path the kernel would open */
            rel[n++] = (char)c;
        }
        size_t seg_len = n - seg;
        /* Dot segments are refused, not resolved: a client's links never
         * contain them once its URL parser has run (RFC 3986 §5.2.4). */
        if (rel[seg] == '.' && (seg_len == 1 || (seg_len == 2 && rel[seg + 1] == '.')))
            return -404;
        if (rel[seg] == '.') /* hidden: .git, .env, .htpasswd */
            return -404;
        if (seg_len > NAME_MAX)
            return -404;
        if (seg_end == end)
            break;
        if (n + 1 >= cap)
            return -404;
        rel[n++] = '/';
        p = seg_end + 1;
    }
    if (*dir_index) {
        if (n + sizeof INDEX_NAME > cap)
            return -404;
        memcpy(rel + n, INDEX_NAME, sizeof INDEX_NAME);
        n += sizeof INDEX_NAME - 1;
    }
    rel[n] = '\0';
    return (long)n;
}

/* ---- content types -------------------------------------------------------------- */

struct ctype_ent {
    const char *ext; /* lower case, without the dot */
    const char *ctype;
};

static const struct ctype_ent CTYPES[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json"}, /* RFC 8259 §11: no charset parameter */
    {"map", "application/json"},  /* source maps are JSON */
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"ico", "image/x-icon"},
    {"webp", "image/webp"},
    {"wasm", "application/wasm"},
    {"txt", "text/plain; charset=utf-8"},
};

static const char OCTET_STREAM[] = "application/octet-stream";

/* Content-Type for the last segment of rel, by its extension, ignoring case. */
static const char *ctype_for(const char *rel, size_t len)
{
    const char *name = memrchr(rel, '/', len);
    name = name ? name + 1 : rel;
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return OCTET_STREAM;
    const char *ext = dot + 1;
    size_t ext_len = strlen(ext);
    for (size_t i = 0; i < sizeof CTYPES / sizeof CTYPES[0]; i++)
        if (strlen(CTYPES[i].ext) == ext_len && strncasecmp(ext, CTYPES[i].ext, ext_len) == 0)
            return CTYPES[i].ctype;
    return OCTET_STREAM;
}

/* ---- opening ---------------------------------------------------------------------- */

/* HTTP status for a failed open: the server's own trouble is 500, anything
 * about the name (absent, escapes the root, loops, no permission) is 404. */
static int status_for_errno(int err)
{
    switch (err) {
    case EMFILE: case ENFILE: case ENOMEM: case ENOSYS: case EINVAL: case EAGAIN: case EIO:
        return -500;
    default:
        return -404;
    }
}

/* Open rel beneath the root and fstat it. O_NONBLOCK keeps a FIFO planted
 * under the root from stalling the worker; O_NOCTTY keeps a tty from
 * becoming ours. Returns the fd or -errno. */
static int open_stat(const struct sfiles *sf, const char *rel, struct stat *st)
{
    long fd;
    int tries = 0;
    do {
        fd = openat2_raw(sf->dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    } while (fd < 0 && (errno == EAGAIN || errno == EINTR) && ++tries < SFILES_OPEN_TRIES);
    if (fd < 0)
        return -errno;
    if (fstat((int)fd, st) < 0) {
        int rc = -errno;
        close((int)fd);
        return rc;
    }
    return (int)fd;
}

int sfiles_lookup(const struct sfiles *sf, const uint8_t *target, size_t len,
                  struct sfile *out)
{
    long path_len = check_target(target, len);
    if (path_len < 0)
        return (int)path_len;

    char rel[PATH_MAX];
    bool dir_index;
    long n = build_rel(target + 1, target + path_len, rel, sizeof rel, &dir_index);
    if (n < 0)
        return (int)n;

    struct stat st;
    int fd = open_stat(sf, rel, &st);
    if (fd < 0)
        return status_for_errno(-fd);
    if (S_ISDIR(st.st_mode) && !dir_index) {
        /* "/dir" without the slash: serve the directory's index like "/dir/". */
        close(fd);
        if ((size_t)n + 1 + sizeof INDEX_NAME > sizeof rel)
            return -404;
        rel[n++] = '/';
        memcpy(rel + n, INDEX_NAME, sizeof INDEX_NAME);
        n += (long)sizeof INDEX_NAME - 1;
        fd = open_stat(sf, rel, &st);
        if (fd < 0)
            return status_for_errno(-fd);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -404;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        close(fd);
        return -500;
    }
    out->fd = fd;
    out->size = (uint64_t)st.st_size;
    out->ctype = ctype_for(rel, (size_t)n);
    out->mtime = (int64_t)st.st_mtim.tv_sec;
    return 0;
}
