/* Tests for net/static_files: a real directory tree under /tmp, with a
 * secret file *next to* the root so that any escape would find something to
 * serve, and symlinks that point inside, outside and at other directories. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/static_files.h"

static const char SECRET[] = "outside the root";

struct fixture {
    char base[64];       /* mkdtemp dir: holds secret.txt and www/ */
    char root[128];      /* base/www, the served root */
    char canon[256];     /* realpath of root */
    struct sfiles *sf;
};

static struct fixture fx;

/* ---- tree building ------------------------------------------------------------- */

static void put_file(const char *rel, const char *body)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", fx.root, rel);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(body, 1, strlen(body), f), strlen(body));
    assert_int_equal(fclose(f), 0);
}

static void put_dir(const char *rel)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", fx.root, rel);
    assert_int_equal(mkdir(path, 0755), 0);
}

static void put_link(const char *rel, const char *to)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", fx.root, rel);
    assert_int_equal(symlink(to, path), 0);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path); /* FTW_PHYS: a symlink is removed, never followed */
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(fx.base, sizeof fx.base, "/tmp/sfiles-test-XXXXXX");
    if (!mkdtemp(fx.base))
        return -1;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/secret.txt", fx.base);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fputs(SECRET, f);
    fclose(f);
    snprintf(fx.root, sizeof fx.root, "%s/www", fx.base);
    char canon[PATH_MAX];
    if (mkdir(fx.root, 0755) < 0 || !realpath(fx.root, canon) || strlen(canon) >= sizeof fx.canon)
        return -1;
    memcpy(fx.canon, canon, strlen(canon) + 1);

    put_file("index.html", "root index");
    put_dir("a");
    put_file("a/b.css", "b css");
    put_file("a/index.html", "a index");
    put_file("a/.secret", "dot secret");
    put_file(".hidden", "hidden");
    put_dir("noindex");
    put_file("noindex/x.txt", "x");
    put_dir("dirindex");
    put_dir("dirindex/index.html"); /* index.html that is a directory */
    put_file("%41.txt", "literal percent 41");
    put_file("A.txt", "capital A");
    put_dir("%2e%2e");
    put_file("%2e%2e/secret.txt", "literal dot dot dir");
    put_file("with space.txt", "spaced");
    put_file("x..y.txt", "dots inside a name");
    put_file("caf\xc3\xa9.txt", "utf-8 name");

    put_link("passwd_link", "/etc/passwd");       /* absolute, outside */
    put_link("secret_link", "../secret.txt");     /* relative, climbs out */
    put_link("inner.css", "a/b.css");             /* relative, inside */
    put_link("a/up.html", "../index.html");       /* climbs, but stays inside */
    snprintf(path, sizeof path, "%s/a/b.css", fx.canon);
    put_link("abs_inner.css", path);              /* absolute, names an inside file */
    put_link("outdir", "/etc");                   /* directory, outside */
    put_link("outbase", "..");                    /* directory, the root's parent */
    put_link("indir", "a");                       /* directory, inside */
    put_link("loop", "loop");

    snprintf(path, sizeof path, "%s/fifo", fx.root);
    if (mkfifo(path, 0644) < 0)
        return -1;

    static const char *const ctype_files[] = {
        "t.html", "t.htm", "t.js", "t.mjs", "t.css", "t.json", "t.map", "t.svg", "t.png",
        "t.jpg", "t.jpeg", "T.JPEG", "t.gif", "t.ico", "t.webp", "t.wasm", "t.txt",
        "t.bin", "README", "t.tar.gz", "Index.HTML", "t.",
    };
    for (size_t i = 0; i < sizeof ctype_files / sizeof ctype_files[0]; i++)
        put_file(ctype_files[i], ctype_files[i]);

    return sfiles_open(&fx.sf, fx.root) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    sfiles_close(fx.sf);
    int rc = nftw(fx.base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    struct stat st;
    return rc == 0 && lstat(fx.base, &st) < 0 ? 0 : -1;
}

/* ---- helpers --------------------------------------------------------------------- */

static int lookup_n(const char *t, size_t len, struct sfile *out)
{
    return sfiles_lookup(fx.sf, (const uint8_t *)t, len, out);
}

static int lookup(const char *t, struct sfile *out)
{
    return lookup_n(t, strlen(t), out);
}

/* The status of a lookup that must fail; fails the test on success. */
static int status_of_n(const char *t, size_t len)
{
    struct sfile f = {.fd = -7};
    int rc = lookup_n(t, len, &f);
    if (rc == 0) {
        close(f.fd);
        print_error("unexpectedly served: %.*s\n", (int)len, t);
    }
    assert_int_equal(f.fd, -7); /* *out untouched on failure */
    return rc;
}

static int status_of(const char *t)
{
    return status_of_n(t, strlen(t));
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Look t up, expect success, and check the file's bytes, type and flags. */
static void expect_file(const char *t, const char *body, const char *ctype)
{
    struct sfile f;
    int rc = lookup(t, &f);
    if (rc != 0)
        print_error("lookup(%s) = %d\n", t, rc);
    assert_int_equal(rc, 0);
    char buf[256];
    ssize_t got = pread(f.fd, buf, sizeof buf, 0);
    assert_true(got >= 0);
    assert_int_equal((size_t)got, strlen(body));
    assert_memory_equal(buf, body, strlen(body));
    assert_int_equal(f.size, strlen(body));
    if (ctype)
        assert_string_equal(f.ctype, ctype);
    int fl = fcntl(f.fd, F_GETFL);
    assert_int_equal(fl & O_ACCMODE, O_RDONLY);
    assert_int_equal(fl & O_NONBLOCK, 0);
    assert_int_equal(fcntl(f.fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    assert_int_equal(close(f.fd), 0);
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_open_and_root(void **state)
{
    (void)state;
    assert_string_equal(sfiles_root(fx.sf), fx.canon);
    assert_true(sfiles_root(fx.sf)[0] == '/');

    /* Through a symlink and with "." and ".." in the name: still canonical. */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/wwwlink", fx.base);
    assert_int_equal(symlink("www", path), 0);
    char odd[PATH_MAX + 16];
    snprintf(odd, sizeof odd, "%s/./www/a/../../wwwlink", fx.base);
    struct sfiles *sf2 = NULL;
    assert_int_equal(sfiles_open(&sf2, odd), 0);
    assert_string_equal(sfiles_root(sf2), fx.canon);
    sfiles_close(sf2);
    assert_int_equal(unlink(path), 0);

    snprintf(path, sizeof path, "%s/index.html", fx.root);
    assert_int_equal(sfiles_open(&sf2, path), -ENOTDIR);
    snprintf(path, sizeof path, "%s/no-such-dir", fx.root);
    assert_int_equal(sfiles_open(&sf2, path), -ENOENT);
    sfiles_close(NULL);
}

static void test_serves_files(void **state)
{
    (void)state;
    expect_file("/", "root index", "text/html; charset=utf-8");
    expect_file("/index.html", "root index", "text/html; charset=utf-8");
    expect_file("/a/", "a index", "text/html; charset=utf-8");
    expect_file("/a", "a index", "text/html; charset=utf-8");
    expect_file("/a/index.html", "a index", NULL);
    expect_file("/a/b.css", "b css", "text/css; charset=utf-8");
    expect_file("/with%20space.txt", "spaced", "text/plain; charset=utf-8");
    expect_file("/x..y.txt", "dots inside a name", NULL);
    expect_file("/caf%C3%A9.txt", "utf-8 name", NULL);
    expect_file("/caf%c3%a9.txt", "utf-8 name", NULL);
    expect_file("/%41.txt", "capital A", NULL);          /* %41 is 'A' */
    expect_file("/%2541.txt", "literal percent 41", NULL); /* decoded once only */
    expect_file("/%252e%252e/secret.txt", "literal dot dot dir", NULL);

    /* size and mtime come from the opened file */
    struct sfile f;
    struct stat st;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/a/b.css", fx.root);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(lookup("/a/b.css", &f), 0);
    assert_int_equal(f.size, (uint64_t)st.st_size);
    assert_int_equal(f.mtime, (int64_t)st.st_mtim.tv_sec);
    struct stat fst;
    assert_int_equal(fstat(f.fd, &fst), 0);
    assert_int_equal(fst.st_ino, st.st_ino);
    close(f.fd);
}

static void test_query_strings(void **state)
{
    (void)state;
    expect_file("/?", "root index", NULL);
    expect_file("/?a=b&c=d", "root index", NULL);
    expect_file("/index.html?v=3", "root index", NULL);
    expect_file("/a/b.css?../../secret.txt", "b css", "text/css; charset=utf-8");
    expect_file("/a/b.css?x=%2e%2e%2f%00", "b css", NULL); /* the query is never decoded */
    expect_file("/a/?q=/?/", "a index", NULL);
    assert_int_equal(status_of("/a/b.css?q=%zz"), -400);
    assert_int_equal(status_of("/a/b.css?q=%4"), -400);
    assert_int_equal(status_of("/a/b.css?q=a b"), -400);
    assert_int_equal(status_of("/a/b.css?q#frag"), -400);
    assert_int_equal(status_of_n("/a/b.css?q\0", 11), -400);
    /* The path ends at the first '?': what follows cannot reach the file name. */
    expect_file("/?/../secret.txt", "root index", NULL);
}

static void test_malformed_is_400(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "*", "index.html", "http://127.0.0.1/index.html", "\\index.html", "?x",
        "/%", "/%4", "/%zz", "/%g0", "/a%2", "/%%41",
        "/..%2fsecret.txt", "/..%2Fsecret.txt", "/%2e%2e%2fsecret.txt", "/a%2fb.css",
        "/..%5csecret.txt", "/..%5Csecret.txt", "/..\\secret.txt", "/a\\b.css",
        "/index.html%00", "/index.html%00.png", "/%00",
        "/index.html#top", "/a b", "/a\tb", "/a\r\nb", "/\x7f", "/caf\xc3\xa9.txt",
        "/a\"b", "/<x>", "/a|b", "/a^b", "/a`b", "/a{b}", "/a[1]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = status_of(bad[i]);
        if (rc != -400)
            print_error("target %s: %d\n", bad[i], rc);
        assert_int_equal(rc, -400);
    }
    assert_int_equal(status_of_n("", 0), -400);
    assert_int_equal(status_of_n("/index.html\0", 12), -400);
    assert_int_equal(status_of_n("/\0/../secret.txt", 16), -400);
    assert_int_equal(status_of_n("/a\0b", 4), -400);
    /* A length that stops before the NUL terminator is honoured. */
    expect_file("/index.html", "root index", NULL);
    struct sfile f;
    assert_int_equal(lookup_n("/index.htmlXYZ", 11, &f), 0);
    close(f.fd);
}

static void test_traversal_is_404(void **state)
{
    (void)state;
    static const char *const bad[] = {
        /* raw dot-dot */
        "/..", "/../", "/../secret.txt", "/a/../../secret.txt", "/a/..", "/a/../index.html",
        "/../www/index.html",
        /* encoded dot-dot, every case mix */
        "/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/%2e%2E/secret.txt", "/%2e./secret.txt",
        "/.%2e/secret.txt", "/%2E./secret.txt", "/.%2E/secret.txt", "/a/%2e%2e/%2e%2e/secret.txt",
        "/%2e%2e", "/%2e%2e/", "/a/%2e%2e",
        /* double-encoded: decodes once to a literal name that is absent */
        "/%252e%252e/%252e%252e/secret.txt", "/%252E%252E/index.html", "/%25%32%65%25%32%65/x",
        /* dot segments */
        "/.", "/./", "/./index.html", "/%2e/index.html", "/a/./b.css", "/a/.", "/.../secret.txt",
        /* absolute-path tricks and empty segments */
        "//etc/passwd", "//", "///", "/a//b.css", "//index.html", "/%2e%2e//secret.txt",
        "/etc/passwd",
        /* symlinks that leave the root */
        "/passwd_link", "/secret_link", "/outdir", "/outdir/", "/outdir/passwd", "/outbase",
        "/outbase/", "/outbase/secret.txt", "/outbase/www/index.html",
        "/abs_inner.css", /* absolute links are refused even when they point inside */
        "/loop",
        /* hidden */
        "/.hidden", "/%2ehidden", "/%2Ehidden", "/a/.secret", "/a/%2esecret", "/.git/config",
        /* not a regular file, or absent */
        "/fifo", "/noindex", "/noindex/", "/dirindex", "/dirindex/", "/nope.html",
        "/a/b.css/", "/index.html/", "/index.html/x", "/a/nope/",
    };
    int fds = count_fds();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = status_of(bad[i]);
        if (rc != -404)
            print_error("target %s: %d\n", bad[i], rc);
        assert_int_equal(rc, -404);
    }
    assert_int_equal(count_fds(), fds); /* failures leave nothing open */
}

static void test_inside_symlinks(void **state)
{
    (void)state;
    expect_file("/inner.css", "b css", "text/css; charset=utf-8");
    expect_file("/a/up.html", "root index", "text/html; charset=utf-8");
    expect_file("/indir/b.css", "b css", NULL);
    expect_file("/indir/", "a index", NULL);
    expect_file("/indir", "a index", NULL);
}

static void test_long_targets(void **state)
{
    (void)state;
    /* One segment past NAME_MAX. */
    char t[PATH_MAX * 3];
    t[0] = '/';
    memset(t + 1, 'a', NAME_MAX + 1);
    t[NAME_MAX + 2] = '\0';
    assert_int_equal(status_of(t), -404);

    /* Many short segments, past PATH_MAX when decoded. */
    size_t n = 0;
    while (n + 2 < PATH_MAX + 100) {
        t[n++] = '/';
        t[n++] = 'a';
    }
    t[n] = '\0';
    assert_int_equal(status_of(t), -404);

    /* Decoded lengths around PATH_MAX, with and without a trailing '/'
     * (which needs room for index.html), raw and escaped: every bound in
     * the name buffer is crossed once. All are absent on disk. */
    for (size_t len = PATH_MAX - 24; len <= PATH_MAX + 4; len++) {
        for (int esc = 0; esc < 2; esc++) {
            n = 0;
            t[n++] = '/';
            for (size_t i = 0; i < len; i++) {
                if (i % 2) {
                    t[n++] = '/';
                } else if (esc) {
                    memcpy(t + n, "%61", 3);
                    n += 3;
                } else {
                    t[n++] = 'a';
                }
            }
            t[n] = '\0';
            assert_int_equal(status_of(t), -404);
        }
    }

    /* A huge target made of nothing but escaped dots (heap, exact size for ASan). */
    size_t big = 1 + 3 * 100000;
    char *h = malloc(big);
    assert_non_null(h);
    h[0] = '/';
    for (size_t i = 1; i < big; i += 3)
        memcpy(h + i, "%2e", 3);
    assert_int_equal(status_of_n(h, big), -404);
    free(h);
}

static void test_content_types(void **state)
{
    (void)state;
    static const struct {
        const char *target, *ctype;
    } cases[] = {
        {"/t.html", "text/html; charset=utf-8"},
        {"/t.htm", "text/html; charset=utf-8"},
        {"/Index.HTML", "text/html; charset=utf-8"},
        {"/t.js", "text/javascript; charset=utf-8"},
        {"/t.mjs", "text/javascript; charset=utf-8"},
        {"/t.css", "text/css; charset=utf-8"},
        {"/t.json", "application/json"},
        {"/t.map", "application/json"},
        {"/t.svg", "image/svg+xml"},
        {"/t.png", "image/png"},
        {"/t.jpg", "image/jpeg"},
        {"/t.jpeg", "image/jpeg"},
        {"/T.JPEG", "image/jpeg"},
        {"/t.gif", "image/gif"},
        {"/t.ico", "image/x-icon"},
        {"/t.webp", "image/webp"},
        {"/t.wasm", "application/wasm"},
        {"/t.txt", "text/plain; charset=utf-8"},
        {"/t.bin", "application/octet-stream"},
        {"/README", "application/octet-stream"},
        {"/t.tar.gz", "application/octet-stream"},
        {"/t.", "application/octet-stream"},
        {"/t.json?x.html", "application/json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sfile f;
        int rc = lookup(cases[i].target, &f);
        if (rc != 0)
            print_error("lookup(%s) = %d\n", cases[i].target, rc);
        assert_int_equal(rc, 0);
        assert_string_equal(f.ctype, cases[i].ctype);
        close(f.fd);
    }
}

/* Deterministic random targets built from dangerous pieces: whatever is
 * served must be a file under the root, never the secret next to it. */
static void test_random_targets_stay_inside(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "/", "/", "/", "..", ".", "%2e", "%2E", "%2f", "%5c", "%25", "%252e", "%00", "?", "\\",
        "a", "b.css", "index.html", "secret.txt", "www", "passwd_link", "secret_link", "outdir",
        "outbase", "inner.css", "indir", "up.html", "etc", "passwd", ".hidden", "%41.txt", "%",
        "2e", "2", "e",
    };
    const size_t npieces = sizeof pieces / sizeof pieces[0];
    size_t prefix = strlen(fx.canon);
    uint64_t seed = 0x5f1e5eedULL;
    int served = 0, fds = count_fds();
    for (int iter = 0; iter < 20000; iter++) {
        char t[256];
        size_t n = 0;
        if (iter % 8 != 0)
            t[n++] = '/';
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        int k = 1 + (int)((seed >> 33) % 10);
        for (int j = 0; j < k; j++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            const char *pc = pieces[(seed >> 33) % npieces];
            size_t pl = strlen(pc);
            memcpy(t + n, pc, pl);
            n += pl;
        }
        struct sfile f;
        int rc = lookup_n(t, n, &f);
        if (rc != 0) {
            if (rc != -400 && rc != -404)
                print_error("target %.*s: %d\n", (int)n, t, rc);
            assert_true(rc == -400 || rc == -404);
            continue;
        }
        served++;
        char proc[64], real[PATH_MAX];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", f.fd);
        ssize_t rl = readlink(proc, real, sizeof real - 1);
        assert_true(rl > 0);
        real[rl] = '\0';
        if (strncmp(real, fx.canon, prefix) != 0 || real[prefix] != '/')
            print_error("target %.*s escaped to %s\n", (int)n, t, real);
        assert_memory_equal(real, fx.canon, prefix);
        assert_int_equal(real[prefix], '/');
        char buf[64];
        ssize_t got = pread(f.fd, buf, sizeof buf, 0);
        assert_false(got == (ssize_t)strlen(SECRET) && memcmp(buf, SECRET, strlen(SECRET)) == 0);
        close(f.fd);
    }
    assert_true(served > 0); /* the generator does reach real files */
    assert_int_equal(count_fds(), fds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_and_root),
        cmocka_unit_test(test_serves_files),
        cmocka_unit_test(test_query_strings),
        cmocka_unit_test(test_malformed_is_400),
        cmocka_unit_test(test_traversal_is_404),
        cmocka_unit_test(test_inside_symlinks),
        cmocka_unit_test(test_long_targets),
        cmocka_unit_test(test_content_types),
        cmocka_unit_test(test_random_targets_stay_inside),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
