// Connection set-up costs: Sec-WebSocket-Accept (SHA-1 + base64 through
// libcrypto), judging RFC 6455 §1.2's example request and writing the 101,
// and parsing a browser's upgrade request head. Reported as items/s (and
// bytes/s for the parse).
#include <benchmark/benchmark.h>

#include <cstring>

#include "bench/micro/shim.h"

namespace {

// RFC 6455 §1.2, the client's opening handshake.
const char RFC_REQUEST[] =
    "GET /chat HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Protocol: chat, superchat\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

// What a desktop Chromium sends when a page on localhost opens a WebSocket:
// the shape (header count, lengths) is what matters, not the exact values.
const char BROWSER_REQUEST[] =
    "GET /echo HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://localhost:8080\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-GB,en-US;q=0.9,en;q=0.8,fr;q=0.7\r\n"
    "Cookie: theme=dark; session=6f1c2a9e0b7d4e3f8a5c1b2d3e4f5a6b\r\n"
    "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

const struct http_limits LIMITS = {8190, 8192};

void hs_accept_key(benchmark::State &state)
{
    static const uint8_t key[] = "dGhlIHNhbXBsZSBub25jZQ==";
    char out[HS_ACCEPT_LEN + 1];
    hs_accept(key, sizeof key - 1, out);
    if (std::strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != 0) { // RFC 6455 §1.3
        state.SkipWithError("hs_accept disagrees with RFC 6455 §1.3");
        return;
    }
    const uint8_t *k = key;
    for (auto _ : state) {
        benchmark::DoNotOptimize(k);
        hs_accept(k, sizeof key - 1, out);
        benchmark::DoNotOptimize(out);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(hs_accept_key)->Name("hs/accept");

// hs_check + hs_response_101 on a request parsed once, outside the loop (the
// parse has its own benchmark below).
void hs_check_101(benchmark::State &state)
{
    const uint8_t *p = reinterpret_cast<const uint8_t *>(RFC_REQUEST);
    const size_t len = sizeof RFC_REQUEST - 1;
    struct http_parser ps = {};
    struct http_req req;
    if (http_parse_request(&ps, &LIMITS, p, p + len, &req) != static_cast<ptrdiff_t>(len)) {
        state.SkipWithError("RFC request does not parse");
        return;
    }
    static const char *const protocols[] = {"chat"};
    struct hs_config cfg = {};
    cfg.protocols = protocols;
    cfg.n_protocols = 1;

    char out[512];
    struct hs_result res;
    if (hs_check(&cfg, &req, &res) != 0 || res.protocol == nullptr ||
        hs_response_101(&res, out, sizeof out) <= 0 ||
        std::strstr(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == nullptr) {
        state.SkipWithError("RFC request is not accepted as RFC 6455 §1.3 says");
        return;
    }

    for (auto _ : state) {
        int rc = hs_check(&cfg, &req, &res);
        ptrdiff_t n = hs_response_101(&res, out, sizeof out);
        benchmark::DoNotOptimize(rc);
        benchmark::DoNotOptimize(n);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(hs_check_101)->Name("hs/check+response_101");

void http_parse(benchmark::State &state)
{
    const uint8_t *p = reinterpret_cast<const uint8_t *>(BROWSER_REQUEST);
    const size_t len = sizeof BROWSER_REQUEST - 1;
    struct http_req req;
    struct http_parser ps0 = {};
    if (http_parse_request(&ps0, &LIMITS, p, p + len, &req) != static_cast<ptrdiff_t>(len) ||
        req.n_headers != 13) {
        state.SkipWithError("browser request does not parse into 13 headers");
        return;
    }
    for (auto _ : state) {
        benchmark::DoNotOptimize(p);
        struct http_parser ps = {};
        ptrdiff_t r = http_parse_request(&ps, &LIMITS, p, p + len, &req);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(req);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                            static_cast<int64_t>(len));
}
BENCHMARK(http_parse)->Name("http/parse_browser_request");

} // namespace
