// Frame-level costs: ws_frame_parse on a run of client frame headers, and a
// ws_session_feed loop over a buffer of many small masked frames (the
// per-message path of an echo server). Reported as frames/s (items/s).
#include <benchmark/benchmark.h>

#include <vector>

#include "bench/micro/shim.h"
#include "bench/micro/util.h"

namespace {

constexpr size_t N_FRAMES = 1024;

// ---- ws_frame_parse --------------------------------------------------------

// N_FRAMES masked client headers back to back (no payloads: only the parse is
// timed). mixed: 70% 7-bit lengths, 20% 16-bit, 10% 64-bit, as in traffic
// with a long tail; small: every frame a 7-bit length (6-byte headers).
std::vector<uint8_t> make_headers(bool mixed)
{
    std::mt19937 g(micro::SEED);
    std::vector<uint8_t> v;
    uint8_t hdr[WS_MAX_HDR];
    for (size_t i = 0; i < N_FRAMES; i++) {
        uint32_t r = mixed ? micro::pick(g, 0, 9) : 0;
        uint64_t len = r < 7 ? micro::pick(g, 0, 125)
                     : r < 9 ? micro::pick(g, 126, 65535)
                             : micro::pick(g, 65536, 1u << 24);
        uint8_t key[4];
        for (uint8_t &b : key)
            b = static_cast<uint8_t>(g());
        size_t n = ws_frame_header_encode(hdr, WS_OP_BINARY, true, len, key);
        v.insert(v.end(), hdr, hdr + n);
    }
    return v;
}

void frame_parse(benchmark::State &state, bool mixed)
{
    const std::vector<uint8_t> v = make_headers(mixed);
    const uint8_t *begin = v.data();
    const uint8_t *end = begin + v.size();

    // Sanity: the run parses into exactly N_FRAMES masked headers.
    size_t n = 0;
    for (const uint8_t *p = begin; p < end; n++) {
        struct ws_frame f;
        ptrdiff_t r = ws_frame_parse(p, end, &f);
        if (r <= 0 || !f.masked) {
            state.SkipWithError("header run does not parse");
            return;
        }
        p += r;
    }
    if (n != N_FRAMES) {
        state.SkipWithError("header run parses to the wrong count");
        return;
    }

    for (auto _ : state) {
        uint64_t sum = 0;
        for (const uint8_t *p = begin; p < end;) {
            struct ws_frame f;
            ptrdiff_t r = ws_frame_parse(p, end, &f);
            sum += f.len;
            p += r;
        }
        benchmark::DoNotOptimize(sum);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) *
                            static_cast<int64_t>(N_FRAMES));
}

BENCHMARK_CAPTURE(frame_parse, small, false);
BENCHMARK_CAPTURE(frame_parse, mixed, true);

// ---- ws_session_feed -------------------------------------------------------

// The session unmasks payloads in place, so a second pass over the same
// buffer sees the unmasked bytes and masks them again. With ASCII payloads and
// mask-key bytes below 0x80 both forms are ASCII, hence valid text, so the
// buffer can be fed again and again without being restored.
std::vector<uint8_t> make_frames(size_t payload, uint8_t opcode)
{
    std::mt19937 g(micro::SEED);
    std::vector<uint8_t> v;
    uint8_t hdr[WS_MAX_HDR];
    for (size_t i = 0; i < N_FRAMES; i++) {
        uint8_t key[4];
        for (uint8_t &b : key)
            b = static_cast<uint8_t>(micro::pick(g, 0, 0x7f));
        size_t n = ws_frame_header_encode(hdr, opcode, true, payload, key);
        v.insert(v.end(), hdr, hdr + n);
        for (size_t j = 0; j < payload; j++)
            v.push_back(static_cast<uint8_t>(micro::pick(g, 0x20, 0x7e) ^ key[j & 3]));
    }
    return v;
}

// Feed [p, end) to a fresh server session; returns the DATA events seen, or
// N_FRAMES + 1 on any error so the caller can tell.
size_t feed_all(uint8_t *p, uint8_t *end, uint64_t *bytes)
{
    struct ws_session s = {};
    s.max_message = 16u << 20;
    size_t frames = 0;
    while (p < end) {
        struct ws_event ev;
        ptrdiff_t r = ws_session_feed(&s, p, end, &ev);
        if (r <= 0)
            return N_FRAMES + 1;
        if (ev.type == WS_EV_DATA) {
            frames++;
            *bytes += ev.len;
        }
        p += r;
    }
    return frames;
}

void session_feed(benchmark::State &state, uint8_t opcode)
{
    const size_t payload = static_cast<size_t>(state.range(0));
    std::vector<uint8_t> v = make_frames(payload, opcode);
    uint8_t *begin = v.data();
    uint8_t *end = begin + v.size();

    uint64_t bytes = 0;
    if (feed_all(begin, end, &bytes) != N_FRAMES || feed_all(begin, end, &bytes) != N_FRAMES ||
        bytes != 2 * N_FRAMES * payload) {
        state.SkipWithError("session did not deliver every frame");
        return;
    }

    for (auto _ : state) {
        uint64_t got = 0;
        size_t n = feed_all(begin, end, &got);
        benchmark::DoNotOptimize(n);
        benchmark::DoNotOptimize(got);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) *
                            static_cast<int64_t>(N_FRAMES));
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                            static_cast<int64_t>(v.size()));
}

// 32 B text: the w1/w2 load-test message; 125 B: the largest 7-bit length.
BENCHMARK_CAPTURE(session_feed, text, static_cast<uint8_t>(WS_OP_TEXT))->Arg(32)->Arg(125);
BENCHMARK_CAPTURE(session_feed, binary, static_cast<uint8_t>(WS_OP_BINARY))->Arg(32)->Arg(125);

} // namespace
