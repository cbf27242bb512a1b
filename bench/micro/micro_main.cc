// Entry point of the micro-benchmark binary: Google Benchmark's usual main,
// plus context lines in the console header and the JSON "context" object
// (CPU model, which unmask/UTF-8 variants this CPU runs), because a figure is
// only meaningful next to the machine it came from.
#include <benchmark/benchmark.h>

#include <fstream>
#include <string>

#include "bench/micro/shim.h"

static std::string cpu_model()
{
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) == 0) {
            size_t colon = line.find(':');
            if (colon != std::string::npos && colon + 2 <= line.size())
                return line.substr(colon + 2);
        }
    }
    return "unknown";
}

int main(int argc, char **argv)
{
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::AddCustomContext("cpu_model", cpu_model());
    benchmark::AddCustomContext("ws_unmask_impl", ws_unmask_impl());
    benchmark::AddCustomContext("utf8_avx2", utf8__has_avx2() ? "yes" : "no");
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
