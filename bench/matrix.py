#!/usr/bin/env python3
"""The benchmark matrix: echo-bench over a grid, against our server and the reference servers.

Started by bench/run-matrix (which installs gnuplot and node and builds build/ with the
compiled peers). For each worker count it starts build/echo-server, runs echo-bench over
connections x sizes x pipelines, stops the server; then the same grid against each peer in
bench/peers/ (the threaded ones once per worker count). Every server first passes the echo check
(bench/echo_check.py) or is reported as broken and not measured. Writes into the results folder:
raw/*.json (echo-bench's own reports), results.csv, summary.md and PNG plots (gnuplot).
`--check NAME...` only runs the echo check on the named servers (the tests use it).
"""
import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from echo_check import check_echo
from processes import free_port, rss_bytes, server_env, stop, wait_listening

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Server variants the matrix can compare (configs/matrix*.conf `variants = ...`): the design
# card's acceptor with round-robin, and the options beyond it.
VARIANTS = {
    # epoll named, as `io_backend = auto` picks io_uring where the kernel allows it.
    "acceptor": ["--io_backend", "epoll"],
    # The io_uring backend (configs/matrix-io_uring.conf), with its batching and without.
    "io_uring": ["--io_backend", "io_uring"],
    "io_uring_nobatch": ["--io_backend", "io_uring", "--io_uring_batch", "1"],
    "least_connections": ["--dispatch", "least_connections"],
    "reuseport": ["--accept_mode", "reuseport"],
    "pinned": ["--cpu_affinity", "auto"],
    "nagle": ["--tcp_nodelay", "false"],
    # The tuning knobs (configs/matrix-knobs.conf), each against the defaults: epoll_events 256,
    # read_buffer_bytes 65536, reads_per_event 4.
    "events16": ["--epoll_events", "16"],
    "events1024": ["--epoll_events", "1024"],
    "buffer16k": ["--read_buffer_bytes", "16384"],
    "buffer256k": ["--read_buffer_bytes", "262144"],
    "reads1": ["--reads_per_event", "1"],
    "reads16": ["--reads_per_event", "16"],
}


class Unavailable(Exception):
    """A peer that cannot run here (its binary was not built, its runtime is missing)."""


def _compiled(name):
    def argv(build, _python, workers):
        binary = os.path.join(build, "peers", name)
        if not os.access(binary, os.X_OK):
            raise Unavailable(f"{binary} was not built (see bench/peers/CMakeLists.txt)")
        return [binary, "{port}", str(workers)]
    return argv


def _python_script(script, module=None):
    def argv(_build, python, _workers):
        if module and subprocess.run([python, "-c", f"import {module}"],
                                     stderr=subprocess.DEVNULL).returncode != 0:
            raise Unavailable(f"{python} cannot import {module} (Debian: python3-{module})")
        return [python, os.path.join(HERE, "peers", script), "{port}"]
    return argv


def _node(_build, _python, _workers):
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        raise Unavailable("no node on PATH")
    return [node, os.path.join(HERE, "peers", "node_echo.js"), "{port}"]


# The reference servers (configs `peers = ...`): how each starts, and whether it takes a thread
# count (threaded ones run once per worker count, the others once, on one thread).
PEERS = {
    "asio": (_compiled("asio-echo"), True),
    "libuv": (_compiled("libuv-echo"), False),
    "libevent": (_compiled("libevent-echo"), False),
    "go": (_compiled("go-echo"), True),
    "uvloop": (_python_script("uvloop_echo.py", "uvloop"), False),
    "node": (_node, False),
    "python": (_python_script("python_selectors_echo.py"), False),
}

CSV_FIELDS = [
    "target", "variant", "workers", "connections", "size", "pipeline", "messages_per_s", "mib_per_s",
    "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "messages", "errors", "clean",
    "exit_code", "server_messages_imbalance", "server_connections_imbalance", "server_cpu_s",
    "server_cpu_us_per_message", "server_rss_mib", "raw", "round",
]


def read_config(path):
    config = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if "=" not in line:
                sys.exit(f"run-matrix: {path}:{number}: expected 'name = value'")
            name, value = (part.strip() for part in line.split("=", 1))
            config[name] = value.replace(",", " ").split()
    def numbers(name, kind, default=None):
        if name not in config:
            if default is None:
                sys.exit(f"run-matrix: {path}: '{name}' is missing")
            return default
        try:
            return [kind(v) for v in config[name]]
        except ValueError:
            sys.exit(f"run-matrix: {path}: '{name}' must be a list of numbers")
    grid = {
        "workers": numbers("workers", int),
        "connections": numbers("connections", int),
        "sizes": numbers("sizes", int),
        "pipelines": numbers("pipelines", int, [1]),
        "duration": numbers("duration", float, [5.0])[0],
        "warmup": numbers("warmup", float, [1.0])[0],
        "rounds": numbers("rounds", int, [1])[0],
        "client_threads": numbers("client_threads", int, [0])[0],
        "peers": config.get("peers", []),
        "variants": config.get("variants", ["acceptor"]),
        "peer_connections": numbers("peer_connections", int, None)
        if "peer_connections" in config else None,
    }
    if grid["rounds"] < 1:
        sys.exit(f"run-matrix: {path}: 'rounds' must be at least 1")
    if grid["peer_connections"] is None:
        grid["peer_connections"] = grid["connections"]
    for variant in grid["variants"]:
        if variant not in VARIANTS:
            sys.exit(f"run-matrix: {path}: unknown variant '{variant}' ({', '.join(VARIANTS)})")
    for peer in grid["peers"]:
        if peer not in PEERS:
            sys.exit(f"run-matrix: {path}: unknown peer '{peer}' ({', '.join(PEERS)})")
    return grid


def process_cpu_s(pid):
    """utime + stime of a process (all its threads), from /proc; None when unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def process_rss_mib(pid):
    rss = rss_bytes(pid)
    return round(rss / (1024 * 1024), 2) if rss is not None else None


class Target:
    """A server to measure: how to start it, and whether it has an admin endpoint."""

    def __init__(self, name, workers, command, admin_port=None, variant="", threaded=True):
        self.name = name
        self.variant = variant
        self.workers = workers
        self.threaded = threaded
        self.command = command
        self.admin_port = admin_port
        self.process = None
        self.log = None
        # The echo check's verdict: None until run, then "ok" or what failed.
        self.check = None

    def start(self, port, log_path):
        self.port = port
        self.log = open(log_path, "ab")
        argv = [a.replace("{port}", str(port)) for a in self.command]
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=server_env())
        ready = wait_listening(port, self.process, 10)
        if ready and self.admin_port:
            ready = wait_listening(self.admin_port, self.process, 10)
        if not ready:
            self.stop()
        return ready

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        if self.process is not None:
            stop(self.process, 10)
        self.process = None
        if self.log:
            self.log.close()
            self.log = None


def make_targets(grid, build, python, unavailable):
    """The servers to measure, ours first; peers that cannot run here go into `unavailable`
    (name -> reason) instead."""
    targets = []
    server = os.path.join(build, "echo-server")
    for variant in grid["variants"]:
        for workers in grid["workers"]:
            admin = free_port()
            targets.append(Target("multireactor", workers, [
                server, "--bind", "127.0.0.1", "--port", "{port}", "--workers", str(workers),
                "--admin_port", str(admin), "--log_level", "warn", *VARIANTS[variant]],
                admin_port=admin, variant=variant))
    for peer in grid["peers"]:
        command, threaded = PEERS[peer]
        for workers in grid["workers"] if threaded else [1]:
            try:
                targets.append(Target(peer, workers, command(build, python, workers),
                                      threaded=threaded))
            except Unavailable as reason:
                print(f"run-matrix: skipping the {peer} peer: {reason}", file=sys.stderr)
                unavailable[peer] = str(reason)
                break
    return targets


def run_check(target, out_dir):
    """Starts `target`, runs the echo check on it and stops it; the verdict is in target.check."""
    name = f"{target.name}-{target.variant}" if target.variant else target.name
    log_path = os.path.join(out_dir, f"server-{name}-w{target.workers}.log")
    if not target.start(free_port(), log_path):
        target.check = f"did not start (see {os.path.basename(log_path)})"
        return
    try:
        target.check = check_echo(target.port) or "ok"
    finally:
        target.stop()


def run_point(bench, target, connections, size, pipeline, grid, raw_dir, round_number):
    name = f"{target.name}-{target.variant}" if target.variant else target.name
    stem = f"{name}-w{target.workers}-c{connections}-s{size}-p{pipeline}"
    if grid["rounds"] > 1:
        stem += f"-r{round_number}"
    json_path = os.path.join(raw_dir, stem + ".json")
    argv = [bench, "--port", str(target.port), "--connections", str(connections),
            "--size", str(size), "--pipeline", str(pipeline), "--duration", str(grid["duration"]),
            "--warmup", str(grid["warmup"]), "--threads", str(grid["client_threads"]),
            "--drain-timeout", "5", "--progress", "off", "--json", json_path]
    if target.admin_port:
        argv += ["--admin", f"127.0.0.1:{target.admin_port}"]
    limit = grid["duration"] + grid["warmup"] + 60
    # The server's CPU time is read from /proc for every target alike, so the peers (which have
    # no admin endpoint) are measured the same way as ours.
    pid = target.process.pid
    cpu_before = process_cpu_s(pid)
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=limit)
        exit_code = done.returncode
        output = done.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired:
        exit_code, output = -1, "timed out"
    cpu_after = process_cpu_s(pid)
    rss_mib = process_rss_mib(pid)
    with open(os.path.join(raw_dir, stem + ".txt"), "w") as f:
        f.write(output)
    row = {"target": target.name, "variant": target.variant, "workers": target.workers,
           "connections": connections,
           "size": size, "pipeline": pipeline, "exit_code": exit_code, "round": round_number,
           "raw": os.path.relpath(json_path, os.path.dirname(raw_dir))}
    try:
        with open(json_path) as f:
            report = json.load(f)
    except (OSError, ValueError):
        row.update({"errors": "", "clean": False})
        return row
    lat = report["latency_ns"]
    row.update({
        "messages_per_s": round(report["throughput"]["messages_per_s"], 1),
        "mib_per_s": round(report["throughput"]["mib_per_s"], 3),
        "p50_ms": lat["p50"] / 1e6, "p90_ms": lat["p90"] / 1e6, "p99_ms": lat["p99"] / 1e6,
        "p999_ms": lat["p99_9"] / 1e6, "max_ms": lat["max"] / 1e6,
        "messages": report["totals"]["messages_received"],
        "errors": report["errors"]["total"], "clean": report["clean"],
    })
    server = report.get("server")
    if server and server.get("ok"):
        row["server_messages_imbalance"] = server.get("messages_imbalance")
        row["server_connections_imbalance"] = server.get("connections_imbalance")
    if cpu_before is not None and cpu_after is not None:
        row["server_cpu_s"] = round(cpu_after - cpu_before, 3)
        if row["messages"]:
            row["server_cpu_us_per_message"] = round(
                (cpu_after - cpu_before) * 1e6 / row["messages"], 3)
    row["server_rss_mib"] = rss_mib
    return row


POINT_KEYS = ("target", "variant", "workers", "connections", "size", "pipeline")
MEDIAN_FIELDS = ("messages_per_s", "mib_per_s", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms",
                 "messages", "server_cpu_s", "server_cpu_us_per_message", "server_rss_mib",
                 "server_messages_imbalance", "server_connections_imbalance")


def median_rows(rows):
    """One row per grid point: the median of each figure over the rounds (one round: the row)."""
    points = {}
    for row in rows:
        points.setdefault(tuple(row.get(k) for k in POINT_KEYS), []).append(row)
    merged = []
    for runs in points.values():
        row = dict(runs[0])
        for field in MEDIAN_FIELDS:
            values = [r[field] for r in runs if isinstance(r.get(field), (int, float))]
            row[field] = statistics.median(values) if values else None
        row["clean"] = all(r.get("clean") for r in runs)
        row["errors"] = sum(r["errors"] for r in runs if isinstance(r.get("errors"), int))
        row["exit_code"] = next((r["exit_code"] for r in runs if r.get("exit_code")), 0)
        row["rounds"] = len(runs)
        merged.append(row)
    return merged


def label(row):
    """What a server is called in tables and plots: workers are named where it has a choice."""
    if row["target"] == "multireactor":
        variant = row.get("variant") or "acceptor"
        # gnuplot's enhanced text would read "_" as a subscript.
        suffix = "" if variant == "acceptor" else f" {variant.replace('_', '-')}"
        return f"multireactor {row['workers']}w{suffix}"
    if PEERS.get(row["target"], (None, False))[1]:
        return f"{row['target']} {row['workers']}w"
    return row["target"]


def target_label(target):
    return label({"target": target.name, "workers": target.workers, "variant": target.variant})


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in CSV_FIELDS})


def fmt_rate(v):
    return f"{v:,.0f}" if isinstance(v, (int, float)) else "-"


def write_summary(rows, grid, path, elapsed_s, run_count, checks=(), unavailable=None):
    """rows: one per grid point (median_rows). checks: (label, verdict) per server started;
    unavailable: peer name -> why it could not run here."""
    labels = []
    for row in rows:
        if label(row) not in labels:
            labels.append(label(row))
    rounds = (f"; each cell is the median of {grid['rounds']} rounds taken in turn"
              if grid["rounds"] > 1 else "")
    out = ["# echo-bench matrix", "",
           f"{run_count} runs in {elapsed_s:.0f} s; {grid['duration']} s measured after "
           f"{grid['warmup']} s warm-up each; closed loop; every byte verified{rounds}. "
           "Cells: messages/s (p50/p99 latency ms) server CPU microseconds per message; `!` "
           "marks a point with a run that was not clean.", ""]
    out += check_section(checks, unavailable or {})
    for size in grid["sizes"]:
        for pipeline in grid["pipelines"]:
            points = [r for r in rows if r["size"] == size and r["pipeline"] == pipeline]
            if not points:
                continue
            out.append(f"## {size}-byte messages, pipeline {pipeline}")
            out.append("")
            out.append("| connections | " + " | ".join(labels) + " |")
            out.append("|---:|" + "---:|" * len(labels))
            for c in sorted({r["connections"] for r in points}):
                cells = []
                for name in labels:
                    match = [r for r in points if r["connections"] == c and label(r) == name]
                    if not match:
                        cells.append("")
                        continue
                    r = match[0]
                    mark = "" if r.get("clean") else " !"
                    p50, p99 = r.get("p50_ms"), r.get("p99_ms")
                    cpu = r.get("server_cpu_us_per_message")
                    cells.append(f"{fmt_rate(r.get('messages_per_s'))}"
                                 + (f" ({p50:.2f}/{p99:.2f})"
                                    if isinstance(p50, float) and isinstance(p99, float) else "")
                                 + (f" {cpu:.2f}" if isinstance(cpu, float) else "") + mark)
                out.append(f"| {c} | " + " | ".join(cells) + " |")
            out.append("")
    out += peer_ratios(rows, grid)
    out += variant_ratios(rows)
    unclean = [r for r in rows if not r.get("clean")]
    out.append(f"Runs not clean: {len(unclean)}" + (
        " (" + ", ".join(f"{label(r)} c={r['connections']} s={r['size']} p={r['pipeline']}: "
                         f"exit {r['exit_code']}, errors {r.get('errors')}" for r in unclean) + ")"
        if unclean else ""))
    out.append("")
    with open(path, "w") as f:
        f.write("\n".join(out))


def check_section(checks, unavailable):
    if not checks and not unavailable:
        return []
    out = ["## Echo check before measuring", "",
           "The seed's message sent in three parts, then a 16 MiB stream written while its echo "
           "is read (bench/echo_check.py). A broken server is not measured.", "",
           "| server | check |", "|---|---|"]
    out += [f"| {name} | {verdict.replace('|', '/')} |" for name, verdict in checks]
    out += [f"| {name} | unavailable: {reason} |" for name, reason in unavailable.items()]
    out.append("")
    return out


def geometric_mean(values):
    return statistics.geometric_mean(values) if values else None


def peer_ratios(rows, grid):
    """Each peer over multireactor (acceptor) with as many threads, point by point: a
    single-threaded peer against our 1 worker, a threaded one against ours with its count."""
    ours = {(r["workers"], r["size"], r["pipeline"], r["connections"]): r for r in rows
            if r["target"] == "multireactor" and (r.get("variant") or "acceptor") == "acceptor"}
    peers = []
    for r in rows:
        if r["target"] != "multireactor" and label(r) not in peers:
            peers.append(label(r))
    if not peers or not ours:
        return []

    def ratio(r, field):
        base = ours.get((r["workers"], r["size"], r["pipeline"], r["connections"]), {})
        theirs, mine = r.get(field), base.get(field)
        return theirs / mine if theirs and mine else None

    out = []
    for field, title, meaning in (
            ("messages_per_s", "messages/s",
             "above 1: the peer echoed more messages per second than we did"),
            ("server_cpu_us_per_message", "server CPU time per message",
             "above 1: the peer spent more CPU per message than we did (from /proc, all "
             "threads)")):
        out += [f"## Peer / multireactor: {title}", "",
                f"Each peer's {title} over ours at the same point, against multireactor with as "
                f"many threads (1 worker for the single-threaded peers); {meaning}. Client and "
                "server share the cores, so the messages/s ratio understates the servers' "
                "difference; the CPU ratio does not.", "",
                "| size | pipeline | connections | " + " | ".join(peers) + " |",
                "|---:|---:|---:|" + "---:|" * len(peers)]
        per_peer = {name: [] for name in peers}
        for size in grid["sizes"]:
            for pipeline in grid["pipelines"]:
                for c in sorted({r["connections"] for r in rows}):
                    cells = []
                    for name in peers:
                        match = [r for r in rows if label(r) == name and r["size"] == size
                                 and r["pipeline"] == pipeline and r["connections"] == c]
                        value = ratio(match[0], field) if match else None
                        if value is not None:
                            per_peer[name].append(value)
                        cells.append(f"{value:.2f}" if value is not None else "-")
                    if any(cell != "-" for cell in cells):
                        out.append(f"| {size} | {pipeline} | {c} | " + " | ".join(cells) + " |")
        means = [geometric_mean(per_peer[name]) for name in peers]
        out.append("| all | | geometric mean | " + " | ".join(
            f"**{m:.2f}**" if m is not None else "-" for m in means) + " |")
        out.append("")
    return out


def variant_ratios(rows):
    """Each server variant against the default (acceptor) at the same point and worker count."""
    ours = [r for r in rows if r["target"] == "multireactor"]
    variants = [v for v in dict.fromkeys(r["variant"] for r in ours) if v != "acceptor"]
    base = {tuple(r[k] for k in POINT_KEYS[2:]): r for r in ours if r["variant"] == "acceptor"}
    if not variants or not base:
        return []
    out = ["## Variants against the default (acceptor, same worker count)", "",
           "msg/s: the variant's messages/s over the default's (above 1 is faster). CPU/msg: the "
           "variant's server CPU time per message over the default's (below 1 is cheaper).", "",
           "| workers | connections | size | pipeline | " +
           " | ".join(f"{v} msg/s | {v} CPU/msg" for v in variants) + " |",
           "|---:|---:|---:|---:|" + "---:|" * (2 * len(variants))]
    for key, b in sorted(base.items()):
        cells = []
        for v in variants:
            match = [r for r in ours if r["variant"] == v
                     and tuple(r[k] for k in POINT_KEYS[2:]) == key]
            r = match[0] if match else {}
            rate, base_rate = r.get("messages_per_s"), b.get("messages_per_s")
            cpu, base_cpu = r.get("server_cpu_us_per_message"), b.get("server_cpu_us_per_message")
            cells.append(f"{rate / base_rate:.2f}" if rate and base_rate else "-")
            cells.append(f"{cpu / base_cpu:.2f}" if cpu and base_cpu else "-")
        out.append("| " + " | ".join(str(k) for k in key) + " | " + " | ".join(cells) + " |")
    out.append("")
    return out


# Twelve colours that stay apart (gnuplot's default cycle repeats after eight, and a plot with
# every peer has more series than that); ours are drawn thicker.
PLOT_COLOURS = ("#000000", "#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628",
                "#f781bf", "#999999", "#66c2a5", "#b8a000", "#1b3a6b")


def plot_style(index, name):
    width = 3 if name.startswith("multireactor") else 1.5
    return f"lc rgb '{PLOT_COLOURS[index % len(PLOT_COLOURS)]}' pt {index % 13 + 1} lw {width}"


def plot(rows, grid, out_dir):
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        print("run-matrix: gnuplot not found; no plots", file=sys.stderr)
        return []
    data_dir = os.path.join(out_dir, "plot-data")
    os.makedirs(data_dir, exist_ok=True)
    made = []
    labels = []
    for row in rows:
        if label(row) not in labels:
            labels.append(label(row))
    for size in grid["sizes"]:
        for pipeline in grid["pipelines"]:
            series = []
            for name in labels:
                points = sorted((r for r in rows if label(r) == name and r["size"] == size
                                 and r["pipeline"] == pipeline and r.get("messages_per_s")),
                                key=lambda r: r["connections"])
                if not points:
                    continue
                data = os.path.join(data_dir, f"{name.replace(' ', '_')}-s{size}-p{pipeline}.dat")
                with open(data, "w") as f:
                    for r in points:
                        cpu = r.get("server_cpu_us_per_message")
                        f.write(f"{r['connections']} {r['messages_per_s']} {r['p50_ms']} "
                                f"{r['p99_ms']} {r['p999_ms']} {cpu if cpu else 'NaN'}\n")
                series.append((name, data))
            if not series:
                continue
            common = ("set terminal pngcairo size 900,560 font 'sans,10'\n"
                      "set logscale x\nset grid\nset key outside right top\n"
                      "set xlabel 'concurrent connections'\n")
            throughput_png = os.path.join(out_dir, f"throughput-s{size}-p{pipeline}.png")
            script = common + (
                f"set output '{throughput_png}'\n"
                f"set title 'echo throughput, {size}-byte messages, pipeline {pipeline}'\n"
                "set ylabel 'messages/s'\nset logscale y\nset format y '%.0s%c'\n"
                "plot " + ", ".join(f"'{d}' using 1:2 with linespoints {plot_style(i, n)} "
                                    f"title '{n}'" for i, (n, d) in enumerate(series)) + "\n")
            latency_png = os.path.join(out_dir, f"latency-s{size}-p{pipeline}.png")
            script += (
                f"set output '{latency_png}'\n"
                f"set title 'echo latency, {size}-byte messages, pipeline {pipeline} "
                "(solid p50, dashed p99)'\n"
                "set ylabel 'milliseconds'\nset logscale y\nset format y '%g'\n"
                "plot " + ", ".join(
                    f"'{d}' using 1:3 with linespoints {plot_style(i, n)} dt 1 title '{n} p50', "
                    f"'{d}' using 1:4 with linespoints {plot_style(i, n)} dt 2 title '{n} p99'"
                    for i, (n, d) in enumerate(series)) + "\n")
            # Client and server share the CPUs here, so throughput says as much about the client
            # as about the server; the server's own CPU time per message does not.
            cpu_png = os.path.join(out_dir, f"server-cpu-s{size}-p{pipeline}.png")
            script += (
                f"set output '{cpu_png}'\n"
                f"set title 'server CPU time per echoed message, {size}-byte messages, "
                f"pipeline {pipeline} (lower is better)'\n"
                "set ylabel 'microseconds (user + system)'\nset logscale y\n"
                "set format y '%g'\n"
                "plot " + ", ".join(f"'{d}' using 1:6 with linespoints {plot_style(i, n)} "
                                    f"title '{n}'" for i, (n, d) in enumerate(series)) + "\n")
            done = subprocess.run([gnuplot], input=script.encode(), stderr=subprocess.PIPE)
            if done.returncode != 0:
                print("run-matrix: gnuplot failed:", done.stderr.decode(), file=sys.stderr)
                continue
            made += [throughput_png, latency_png, cpu_png]
    return made


def run_target(bench, target, grid, raw_dir, out_dir, round_number):
    rows = []
    connections = (grid["connections"] if target.name == "multireactor"
                   else grid["peer_connections"])
    name = f"{target.name}-{target.variant}" if target.variant else target.name
    log_path = os.path.join(out_dir, f"server-{name}-w{target.workers}.log")
    if not target.start(free_port(), log_path):
        print(f"run-matrix: {target.name} did not start (see {log_path})", file=sys.stderr)
        return rows
    try:
        for size in grid["sizes"]:
            for pipeline in grid["pipelines"]:
                for c in connections:
                    if not target.alive():
                        print(f"run-matrix: {target.name} died; restarting", file=sys.stderr)
                        target.stop()
                        if not target.start(free_port(), log_path):
                            break
                    row = run_point(bench, target, c, size, pipeline, grid, raw_dir,
                                    round_number)
                    rows.append(row)
                    print(f"  {label(row):<16} c={c:<6} size={size:<6} pipeline={pipeline:<3}"
                          f" {fmt_rate(row.get('messages_per_s')):>12} msg/s"
                          f"  p99 {row.get('p99_ms', float('nan')):8.3f} ms"
                          f"  {'clean' if row.get('clean') else 'NOT CLEAN'}", flush=True)
    finally:
        target.stop()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="use configs/matrix-quick.conf (under two minutes on 2 cores)")
    parser.add_argument("--config", help="grid file (default configs/matrix.conf)")
    parser.add_argument("--out", help="results folder (default results/matrix-<time>)")
    parser.add_argument("--no-peers", action="store_true", help="only our server")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter for the python and uvloop peers")
    parser.add_argument("--check", nargs="+", metavar="NAME",
                        help="only run the echo check on these servers (multireactor and peer "
                        "names, threaded ones with 2 threads); one 'NAME: verdict' line each")
    args = parser.parse_args()
    if args.check:
        return check_only(args)

    config = args.config or os.path.join(
        ROOT, "configs", "matrix-quick.conf" if args.quick else "matrix.conf")
    grid = read_config(config)
    if args.no_peers:
        grid["peers"] = []
    bench = os.path.join(args.build, "echo-bench")
    for binary in (bench, os.path.join(args.build, "echo-server")):
        if not os.access(binary, os.X_OK):
            sys.exit(f"run-matrix: {binary} is missing; build first (bench/run-matrix does)")
    out_dir = args.out or os.path.join(ROOT, "results",
                                       time.strftime("matrix-%Y%m%d-%H%M%S"))
    raw_dir = os.path.join(out_dir, "raw")
    os.makedirs(raw_dir, exist_ok=True)

    started = time.monotonic()
    rows = []
    unavailable = {}
    targets = make_targets(grid, args.build, args.python, unavailable)
    checks = []
    for target in targets:
        run_check(target, out_dir)
        checks.append((target_label(target), target.check))
        print(f"  echo check {checks[-1][0]:<16} {target.check}", flush=True)
    broken = [t for t in targets if t.check != "ok"]
    targets = [t for t in targets if t.check == "ok"]
    total = grid["rounds"] * sum(
        len(grid["connections"] if t.name == "multireactor" else grid["peer_connections"])
        for t in targets) * len(grid["sizes"]) * len(grid["pipelines"])
    print(f"run-matrix: {total} runs from {os.path.relpath(config, ROOT)} into "
          f"{os.path.relpath(out_dir, ROOT)}", flush=True)
    # Rounds go round all the targets in turn, so a slow spell on a shared machine lands on
    # every target rather than on one; the summary and plots take each point's median.
    for round_number in range(1, grid["rounds"] + 1):
        for target in targets:
            rows += run_target(bench, target, grid, raw_dir, out_dir, round_number)
    elapsed = time.monotonic() - started
    write_csv(rows, os.path.join(out_dir, "results.csv"))
    medians = median_rows(rows)
    write_summary(medians, grid, os.path.join(out_dir, "summary.md"), elapsed, len(rows),
                  checks, unavailable)
    plots = plot(medians, grid, out_dir)
    print(f"run-matrix: {len(rows)} runs in {elapsed:.0f} s -> "
          f"{os.path.relpath(out_dir, ROOT)}/ (results.csv, summary.md, {len(plots)} plots)")
    for target in broken:
        print(f"run-matrix: {target_label(target)} is broken, not measured: {target.check}",
              file=sys.stderr)
    ours_unclean = [r for r in rows if r["target"] == "multireactor" and not r.get("clean")]
    ours_broken = [t for t in broken if t.name == "multireactor"]
    return 1 if ours_unclean or ours_broken else 0


def check_only(args):
    """--check: the echo check alone, for the tests and for trying a peer by hand."""
    grid = {"workers": [2], "variants": ["acceptor"], "peers": []}
    for name in args.check:
        if name != "multireactor" and name not in PEERS:
            sys.exit(f"run-matrix: unknown server '{name}' (multireactor, {', '.join(PEERS)})")
    out_dir = args.out or os.path.join(ROOT, "results", time.strftime("check-%Y%m%d-%H%M%S"))
    os.makedirs(out_dir, exist_ok=True)
    status = 0
    for name in args.check:
        unavailable = {}
        grid["peers"] = [] if name == "multireactor" else [name]
        targets = make_targets(grid, args.build, args.python, unavailable)
        if name != "multireactor":
            targets = [t for t in targets if t.name == name]
        if unavailable:
            print(f"{name}: unavailable: {unavailable[name]}", flush=True)
            continue
        run_check(targets[0], out_dir)
        print(f"{name}: {targets[0].check}", flush=True)
        status |= targets[0].check != "ok"
    return status


if __name__ == "__main__":
    sys.exit(main())
