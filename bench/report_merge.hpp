// Combining echo-bench runs that loaded one server at the same time (several machines, or
// --processes children) into the report of one run.
//
// Contract: merge_reports() is exact where the figures allow it: connections, messages, bytes
// and every error counter are summed; latency histograms are added bucket by bucket (so a merged
// percentile is the percentile of all the values, never an average of percentiles) with exact
// count, min, max and sum. The runs are taken to be concurrent: the measured window is the
// longest of theirs, so the merged rate is the sum of the runs' rates when their windows match
// (--start-at). The server side cannot be summed — every run that read /stats saw the whole
// server — so it is taken from the run that read it over the widest window (the most bytes),
// and its per-worker figures are that run's. Parameters are the first run's, with connections,
// threads and rate summed. An empty input gives an empty report.
#pragma once

#include <vector>

#include "bench_report.hpp"

namespace mr::bench {

BenchReport merge_reports(const std::vector<BenchReport>& runs);

}  // namespace mr::bench
