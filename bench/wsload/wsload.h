#ifndef BENCH_WSLOAD_WSLOAD_H
#define BENCH_WSLOAD_WSLOAD_H
/* wsload: a WebSocket load generator. main.c parses flags, starts one
 * worker per -t (each its own epoll loop, see loop.c), prints progress and
 * the final report; hist.c is the latency histogram. Workers share nothing
 * on the hot path: each keeps its own counters and histograms, which the
 * main thread reads with relaxed loads (single writer) and merges at the end. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum wl_mode { WL_MODE_ECHO, WL_MODE_IDLE, WL_MODE_RELAY };

/* ---- latency histogram (hist.c) ----------------------------------------------
 * Log-bucketed like HdrHistogram: values below 2 * WL_HIST_SUB are exact, each
 * later power of two is split into WL_HIST_SUB buckets, so a bucket is at most
 * 1/128 (0.8%) of its value wide. Values are nanoseconds; anything above
 * 2^(7 + WL_HIST_MAX_SHIFT + 1) ns (~73 min) lands in the last bucket. */
#define WL_HIST_SUB_BITS 7
#define WL_HIST_SUB (1u << WL_HIST_SUB_BITS)
#define WL_HIST_MAX_SHIFT 34
#define WL_HIST_N (2 * WL_HIST_SUB + WL_HIST_MAX_SHIFT * WL_HIST_SUB)

/* One writer (its worker), any number of relaxed readers. */
struct wl_hist {
    _Atomic uint64_t n[WL_HIST_N];
    _Atomic uint64_t count;
    _Atomic uint64_t max; /* ns, exact */
};

/* Record v ns. Only the owning thread may call it. */
void wl_hist_add(struct wl_hist *h, uint64_t v);
/* The same with i == wl_hist_index(v) already known. */
void wl_hist_add_at(struct wl_hist *h, size_t i, uint64_t v);
/* Count one value in bucket i only: count and max stay as they are (for
 * histograms read only bucket by bucket, like the progress line's). */
void wl_hist_bump(struct wl_hist *h, size_t i);
/* dst += src (dst must not be shared while this runs). */
void wl_hist_merge(struct wl_hist *dst, const struct wl_hist *src);
/* The value at quantile q in [0, 1] (bucket midpoint, capped at max), 0 when
 * empty. */
uint64_t wl_hist_quantile(const struct wl_hist *h, double q);
/* Bucket index of v and the midpoint value of bucket i; exposed for the
 * progress line, which diffs plain snapshots of bucket counts. */
size_t wl_hist_index(uint64_t v);
uint64_t wl_hist_value(size_t i);
/* Quantile over a plain bucket array of total count n. */
uint64_t wl_hist_quantile_raw(const uint64_t *b, uint64_t n, double q);

/* ---- configuration -------------------------------------------------------------- */
struct wl_opts {
    enum wl_mode mode;
    struct sockaddr_storage dst;
    socklen_t dst_len;
    char host_hdr[300];       /* Host header value: host[:port] as given */
    char path[1024];          /* request-target */
    struct sockaddr_storage *src; /* --source addresses, round-robin per connection */
    size_t n_src;
    unsigned threads;
    unsigned conns;
    unsigned pipeline;        /* messages in flight per connection */
    unsigned publishers;      /* relay mode */
    uint64_t size_min, size_max; /* payload bytes (without any expected prefix) */
    bool text;
    bool raw;                 /* TCP peer echoing bytes verbatim: no handshake, masked replies */
    bool json;
    bool quiet;               /* no progress lines */
    double duration, warmup, settle; /* seconds */
    double rate;              /* total messages/s; 0 = closed loop */
    const char *prefix;       /* --expect-prefix */
    size_t prefix_len;
    long server_pid;          /* 0 = none */
};

/* ---- shared run state ------------------------------------------------------------ */
#define WL_PAT_BITS 16
#define WL_PAT_LEN (1u << WL_PAT_BITS)
/* Relay payloads start with "R" + 8 hex digits of the publisher + 16 of the
 * sequence number + one space, so subscribers know what to expect next. */
#define WL_RELAY_HDR 26

struct wl_thread;

struct wl_run {
    const struct wl_opts *o;
    /* 2 * WL_PAT_LEN printable bytes, the second half a copy of the first, so
     * any WL_PAT_LEN-long window starting in the first half is contiguous. */
    uint8_t *pat;
    _Atomic uint64_t t0_ns;     /* CLOCK_MONOTONIC start of the run; 0 until main sets it */
    _Atomic unsigned ready;     /* workers whose connections are all open or failed */
    _Atomic uint64_t *pub_final;/* relay: messages publisher i sent; UINT64_MAX until known */
    struct wl_thread *th;
};

/* Per-thread results; main reads the _Atomic ones while the run goes on. */
struct wl_thread {
    pthread_t tid;
    unsigned idx;
    struct wl_run *run;
    struct wl_hist lat;          /* replies/deliveries inside the measured window */
    struct wl_hist prog;         /* every reply after t0, for the progress line: buckets only */
    _Atomic uint64_t prog_msgs;  /* every reply after t0 */
    _Atomic uint64_t prog_bytes; /* payload bytes of those */
    _Atomic uint64_t prog_errors;/* errors + mismatches so far */
    uint64_t msgs, bytes;        /* inside the measured window */
    uint64_t sent;               /* messages fully generated (all phases) */
    uint64_t errors, mismatches;
    uint64_t opened;             /* connections that completed their handshake */
    uint64_t close_timeouts;     /* close handshakes that did not finish */
    unsigned logged;             /* error lines printed, capped */
};

/* ---- masking fused with copying or checking (mask.c) -----------------------------
 * RFC 6455 §5.3 masking, key[(phase + i) & 3] for byte i, as ws_unmask(),
 * but in the same pass as the copy or the comparison. Any length and
 * alignment; the _scalar and _avx2 twins are exposed for the tests (call
 * _avx2 only when the CPU has AVX2). */
/* dst[i] = src[i] ^ key for i < n; dst and src do not overlap. */
void wl_mask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], size_t phase);
/* True when p[i] ^ key == want[i] for every i < n. */
bool wl_mask_equal(const uint8_t *p, const uint8_t *want, size_t n, const uint8_t key[4], size_t phase);
void wl__mask_copy_scalar(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], size_t phase);
void wl__mask_copy_avx2(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], size_t phase);
bool wl__mask_equal_scalar(const uint8_t *p, const uint8_t *want, size_t n, const uint8_t key[4], size_t phase);
bool wl__mask_equal_avx2(const uint8_t *p, const uint8_t *want, size_t n, const uint8_t key[4], size_t phase);

uint64_t wl_now_ns(void);
/* The worker: opens its connections (idx, idx + threads, ...), runs the
 * phases driven by run->t0_ns, closes and returns. */
void *wl_thread_main(void *arg);
/* Deterministic payload description of message seq from source src. */
uint64_t wl_msg_size(const struct wl_opts *o, uint64_t src, uint64_t seq);
uint32_t wl_msg_pat(uint64_t src, uint64_t seq);

#endif
