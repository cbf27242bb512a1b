#ifndef NET_STATIC_FILES_H
#define NET_STATIC_FILES_H
/* Static-file resolver: maps an HTTP request-target to an open regular file
 * under one root directory. Confinement has two layers that do not depend on
 * each other: the decoded path is checked segment by segment (no "..", no
 * ".", no hidden names, no empty interior segments, no encoded separators),
 * and the open itself is openat2(2) with RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS relative to a descriptor of the root, so neither
 * ".." nor a symlink (absolute, or relative and climbing out) can leave it.
 * A relative symlink whose target stays under the root is followed. */
#include <stddef.h>
#include <stdint.h>

struct sfiles; /* opaque: the root's descriptor and canonical name */

/* An opened file. fd is O_RDONLY | O_CLOEXEC (blocking mode) and belongs to
 * the caller, who closes it. ctype is a static string. */
struct sfile {
    int fd;
    uint64_t size;     /* bytes, from fstat at open */
    const char *ctype; /* Content-Type value, chosen by extension */
    int64_t mtime;     /* seconds since the epoch, from fstat at open */
};

/* Open root (which must name a directory, possibly through symlinks) and
 * keep a descriptor of it for the lifetime of *out. Returns 0 with *out set,
 * or -errno (-ENOTDIR, -ENOENT, -EACCES, -ENOMEM, ...). Free with
 * sfiles_close. */
int sfiles_open(struct sfiles **out, const char *root);

/* Close the root descriptor and free sf. NULL is a no-op. Files already
 * returned by sfiles_lookup stay open. */
void sfiles_close(struct sfiles *sf);

/* The root as an absolute, canonical path (no symlinks, no "." or ".."),
 * resolved at sfiles_open. Owned by sf. */
const char *sfiles_root(const struct sfiles *sf);

/* Resolve the request-target [target, target + len) (raw bytes as sent; a
 * "?query" is validated and ignored) to a regular file under the root.
 * "/" and "/dir/" map to index.html; "/dir" naming a directory also maps to
 * its index.html. Returns 0 with *out filled, or a negative HTTP status:
 *   -400  malformed: not origin-form (RFC 9112 §3.2.1), a byte outside
 *         RFC 3986 pchar / "/" (raw NUL, space, '\\', '#', controls, non-ASCII),
 *         a bad %-escape, or an escape decoding to NUL, '/' or '\\';
 *   -404  absent, not a regular file, a directory without index.html, a
 *         segment that is ".", "..", starts with '.', or is empty before the
 *         last one ("//x"), a path longer than PATH_MAX, or anything whose
 *         resolution would leave the root;
 *   -500  the server itself failed (out of descriptors or memory).
 * Percent-decoding happens exactly once ("%252e" is the literal name "%2e").
 * sf is not modified, so workers may call this concurrently. On failure *out
 * is untouched and no descriptor is left open. */
int sfiles_lookup(const struct sfiles *sf, const uint8_t *target, size_t len,
                  struct sfile *out);

#endif /* NET_STATIC_FILES_H */
