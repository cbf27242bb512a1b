#ifndef BENCH_MICRO_SHIM_H
#define BENCH_MICRO_SHIM_H
/* The C side of the micro-benchmarks: core/'s public headers seen from C++.
 * core/ is C with C linkage, so its declarations must be wrapped in
 * extern "C" or the linker would look for mangled names. Benchmarks include
 * this file and nothing from core/ directly. */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "core/hs.h"
#include "core/http.h"
#include "core/utf8.h"
#include "core/ws_frame.h"
#include "core/ws_session.h"
#include "core/ws_unmask.h"

#ifdef __cplusplus
}
#endif

#endif
