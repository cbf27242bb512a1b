// Streaming UTF-8 validation (RFC 3629) per variant on five 64 KiB inputs:
// ASCII, Latin-heavy (half the characters two-byte), CJK (three-byte),
// emoji (four-byte), and a mixed text whose last byte is invalid, so the
// validator must scan it all before failing. Reported as bytes/s.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench/micro/shim.h"
#include "bench/micro/util.h"

namespace {

constexpr size_t INPUT_LEN = 64 * 1024;

typedef size_t (*feed_fn)(struct utf8_state *s, const uint8_t *p, size_t len);

// Append code point cp (valid scalar value) as UTF-8.
void put(std::vector<uint8_t> &v, uint32_t cp)
{
    if (cp < 0x80) {
        v.push_back(static_cast<uint8_t>(cp));
    } else if (cp < 0x800) {
        v.push_back(static_cast<uint8_t>(0xc0 | (cp >> 6)));
        v.push_back(static_cast<uint8_t>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        v.push_back(static_cast<uint8_t>(0xe0 | (cp >> 12)));
        v.push_back(static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3f)));
        v.push_back(static_cast<uint8_t>(0x80 | (cp & 0x3f)));
    } else {
        v.push_back(static_cast<uint8_t>(0xf0 | (cp >> 18)));
        v.push_back(static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3f)));
        v.push_back(static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3f)));
        v.push_back(static_cast<uint8_t>(0x80 | (cp & 0x3f)));
    }
}

enum class kind { ascii, latin, cjk, emoji, invalid_end };

// A printable ASCII character, mostly letters with spaces between words.
uint32_t ascii_char(std::mt19937 &g)
{
    return micro::pick(g, 0, 5) == 0 ? ' ' : micro::pick(g, 'a', 'z');
}

uint32_t next_cp(std::mt19937 &g, kind k)
{
    switch (k) {
    case kind::ascii:
        return ascii_char(g);
    case kind::latin: // U+00C0..U+017F: accented Latin-1 and Latin Extended-A
        return micro::pick(g, 0, 1) ? ascii_char(g) : micro::pick(g, 0xc0, 0x17f);
    case kind::cjk: // CJK Unified Ideographs
        return micro::pick(g, 0x4e00, 0x9fa5);
    case kind::emoji: // Miscellaneous Symbols and Pictographs, Emoticons
        return micro::pick(g, 0x1f300, 0x1f64f);
    case kind::invalid_end:
        break;
    }
    // Mixed: every width, as in a real multilingual chat log.
    switch (micro::pick(g, 0, 3)) {
    case 0: return ascii_char(g);
    case 1: return micro::pick(g, 0xc0, 0x17f);
    case 2: return micro::pick(g, 0x4e00, 0x9fa5);
    default: return micro::pick(g, 0x1f300, 0x1f64f);
    }
}

// INPUT_LEN bytes of whole characters (padded with ASCII at the end); for
// invalid_end the last byte is 0xFF, which is never valid UTF-8.
std::vector<uint8_t> make_input(kind k)
{
    std::mt19937 g(micro::SEED);
    std::vector<uint8_t> v;
    const size_t body = k == kind::invalid_end ? INPUT_LEN - 1 : INPUT_LEN;
    std::vector<uint8_t> ch;
    for (;;) {
        ch.clear();
        put(ch, next_cp(g, k));
        if (v.size() + ch.size() > body)
            break;
        v.insert(v.end(), ch.begin(), ch.end());
    }
    while (v.size() < body)
        v.push_back('.');
    if (k == kind::invalid_end)
        v.push_back(0xff);
    return v;
}

void feed(benchmark::State &state, feed_fn fn, bool needs_avx2, kind k)
{
    if (needs_avx2 && !utf8__has_avx2()) {
        state.SkipWithError("AVX2 not supported by this CPU");
        return;
    }
    const std::vector<uint8_t> in = make_input(k);
    const size_t len = in.size();
    micro::buf_ptr buf = micro::aligned_buf(len);
    std::memcpy(buf.get(), in.data(), len);
    const uint8_t *p = buf.get();

    // Sanity: the whole input is accepted, or rejected at its last byte.
    const size_t want = k == kind::invalid_end ? len - 1 : len;
    struct utf8_state s0 = {};
    if (fn(&s0, p, len) != want || utf8_done(&s0) == (k == kind::invalid_end)) {
        state.SkipWithError("validator result differs from the input's construction");
        return;
    }

    for (auto _ : state) {
        benchmark::DoNotOptimize(p);
        struct utf8_state s = {};
        size_t r = fn(&s, p, len);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(s);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                            static_cast<int64_t>(len));
}

// Variants x inputs, registered by name: utf8/<variant>/<input>.
const bool registered = [] {
    struct variant {
        const char *name;
        feed_fn fn;
        bool needs_avx2;
    };
    const variant variants[] = {
        {"feed", utf8_feed, false},
        {"scalar", utf8__feed_scalar, false},
        {"sse2", utf8__feed_sse2, false},
        {"avx2", utf8__feed_avx2, true},
    };
    const std::pair<const char *, kind> inputs[] = {
        {"ascii", kind::ascii},   {"latin", kind::latin},
        {"cjk", kind::cjk},       {"emoji", kind::emoji},
        {"invalid_end", kind::invalid_end},
    };
    for (const variant &v : variants)
        for (const auto &in : inputs) {
            std::string name = std::string("utf8/") + v.name + "/" + in.first;
            feed_fn fn = v.fn;
            bool avx2 = v.needs_avx2;
            kind k = in.second;
            benchmark::RegisterBenchmark(name.c_str(), [fn, avx2, k](benchmark::State &st) {
                feed(st, fn, avx2, k);
            });
        }
    return true;
}();

} // namespace
