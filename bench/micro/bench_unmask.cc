// RFC 6455 §5.3 unmasking, per variant and through the dispatched
// ws_unmask(), against memcpy of the same size as the ceiling a streaming
// pass over memory can reach. Reported as bytes/s.
//
// Unmasking runs in place, so every iteration flips the buffer between its
// masked and unmasked form; the bytes touched per iteration stay the same.
// memcpy reads one buffer and writes another, so at 1 MiB it touches twice
// the memory of the in-place XOR: compare the two at cache-resident sizes.
#include <benchmark/benchmark.h>

#include <cstring>

#include "bench/micro/shim.h"
#include "bench/micro/util.h"

namespace {

const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d}; // RFC 6455 §5.7's example key

void fill(uint8_t *p, size_t len)
{
    std::mt19937 g(micro::SEED);
    for (size_t i = 0; i < len; i++)
        p[i] = static_cast<uint8_t>(g());
}

// name: a ws_unmask_variant() name, or nullptr for the dispatched ws_unmask.
void unmask(benchmark::State &state, const char *name)
{
    ws_unmask_fn fn = ws_unmask;
    if (name != nullptr) {
        fn = ws_unmask_variant(name);
        if (fn == nullptr) {
            state.SkipWithError("variant not supported by this CPU");
            return;
        }
    }
    const size_t len = static_cast<size_t>(state.range(0));
    micro::buf_ptr buf = micro::aligned_buf(len);
    fill(buf.get(), len);

    // Sanity: one variant pass must equal the byte-wise definition.
    micro::buf_ptr want = micro::aligned_buf(len);
    for (size_t i = 0; i < len; i++)
        want.get()[i] = static_cast<uint8_t>(buf.get()[i] ^ KEY[i & 3]);
    fn(buf.get(), len, KEY, 0);
    if (std::memcmp(buf.get(), want.get(), len) != 0) {
        state.SkipWithError("variant disagrees with the definition");
        return;
    }

    uint8_t *p = buf.get();
    for (auto _ : state) {
        benchmark::DoNotOptimize(p);
        size_t phase = fn(p, len, KEY, 0);
        benchmark::DoNotOptimize(phase);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                            static_cast<int64_t>(len));
    state.SetLabel(name != nullptr ? name : ws_unmask_impl());
}

void memcpy_ceiling(benchmark::State &state)
{
    const size_t len = static_cast<size_t>(state.range(0));
    micro::buf_ptr src = micro::aligned_buf(len);
    micro::buf_ptr dst = micro::aligned_buf(len);
    fill(src.get(), len);
    uint8_t *s = src.get();
    uint8_t *d = dst.get();
    for (auto _ : state) {
        benchmark::DoNotOptimize(s);
        benchmark::DoNotOptimize(d);
        std::memcpy(d, s, len);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                            static_cast<int64_t>(len));
}

// 16 B: a chat message; 128 B: a small JSON event; 1 KiB; 64 KiB: one read's
// worth; 1 MiB: a large message, past L2.
void sizes(benchmark::internal::Benchmark *b)
{
    for (int64_t n : {16, 128, 1024, 64 * 1024, 1024 * 1024})
        b->Arg(n);
}

} // namespace

BENCHMARK(memcpy_ceiling)->Name("unmask/memcpy")->Apply(sizes);
BENCHMARK_CAPTURE(unmask, scalar, "scalar")->Apply(sizes);
BENCHMARK_CAPTURE(unmask, sse2, "sse2")->Apply(sizes);
BENCHMARK_CAPTURE(unmask, avx2, "avx2")->Apply(sizes);
BENCHMARK_CAPTURE(unmask, avx512, "avx512")->Apply(sizes);
BENCHMARK_CAPTURE(unmask, dispatched, nullptr)->Apply(sizes);
