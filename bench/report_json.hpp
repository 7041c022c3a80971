// echo-bench's report as JSON, both ways, with nlohmann-json: written by every run, read back by
// `echo-bench merge` and by --processes (which merges its children's files).
//
// Contract: format_report_json() writes every figure of a BenchReport; each latency object holds
// its percentiles, its exact count/min/max/sum and "histogram", the full histogram in
// HdrHistogram's compressed V2 encoding (hdr_encoding.hpp). parse_report_json() rebuilds a
// BenchReport from such a file — options, totals, exact histograms, server side — and returns
// false with a one-line reason for anything else (not JSON, not echo-bench's, a histogram that
// does not decode). Derived figures (rates, percentiles) are recomputed, never read back.
#pragma once

#include <string>
#include <string_view>

#include "bench_report.hpp"

namespace mr::bench {

std::string format_report_json(const BenchReport& report);
bool parse_report_json(std::string_view text, BenchReport& out, std::string& error);

}  // namespace mr::bench
