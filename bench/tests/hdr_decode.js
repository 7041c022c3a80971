// Decodes the latency histogram of an echo-bench JSON report with hdr-histogram-js (an
// independent HdrHistogram implementation) and prints what it reads, as JSON, for
// hdr_js_test.cpp. Usage: node hdr_decode.js REPORT.json MODULES_DIR
"use strict";
const fs = require("fs");
const path = require("path");
const hdr = require(path.join(process.argv[3], "node_modules", "hdr-histogram-js"));
const report = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const histogram = hdr.decodeFromCompressedBase64(report.latency_ns.histogram, 64);
console.log(JSON.stringify({
  count: histogram.totalCount,
  p50: histogram.getValueAtPercentile(50),
  p99: histogram.getValueAtPercentile(99),
  max: histogram.maxValue,
}));
