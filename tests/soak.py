#!/usr/bin/env python3
"""Soak: run echo-server under a mix of good and hostile clients for a bounded time.

    tests/soak.py [--minutes 3] [--server build/echo-server] [--workers 2]

Starts its own echo-server on 127.0.0.1 (free port, no admin listener) and, until the time is
up, runs at once:
  echo      steady clients sending random-sized messages and checking every byte of the echo
  churn     connect / echo / close cycles mixed with resets, half-closes, 0-length writes,
            connect-and-leave and reset-while-the-echo-is-in-flight
  burst     opening a few hundred connections at once, one echo on each, closing them
  idle      slowloris-style clients that send nothing and must be closed by the idle timeout
  hoarders  clients that send without reading until the server stops reading them, then read
            everything back and check it
Every few seconds it samples the server's descriptors and resident memory from /proc. At the
end it closes every client, checks that the server's descriptors return to their starting
count and that its memory did not keep growing, stops the server with SIGTERM (it must exit 0)
and prints the figures. Exit status 0 when errors == 0 and nothing grew, 1 otherwise.
Only loopback traffic; every loop is bounded by the run time.
"""

import argparse
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.values = {}
        self.first_errors = []

    def add(self, name, n=1):
        with self.lock:
            self.values[name] = self.values.get(name, 0) + n

    def error(self, what):
        with self.lock:
            self.values["errors"] = self.values.get("errors", 0) + 1
            if len(self.first_errors) < 10:
                self.first_errors.append(what)

    def get(self, name):
        with self.lock:
            return self.values.get(name, 0)


def connect(port, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


def reset(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def recv_exactly(s, n):
    chunks = []
    got = 0
    while got < n:
        chunk = s.recv(min(n - got, 1 << 20))
        if not chunk:
            raise ConnectionError("EOF after %d of %d bytes" % (got, n))
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def echo_worker(port, stop, counters, seed):
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            s = connect(port)
            for _ in range(rng.randint(50, 500)):
                if stop.is_set():
                    break
                message = rng.randbytes(rng.choice([1, 16, 512, 4096, 65536]))
                s.sendall(message)
                if recv_exactly(s, len(message)) != message:
                    counters.error("echo: wrong bytes")
                    break
                counters.add("echo_exchanges")
                counters.add("echo_bytes", len(message))
            s.close()
        except OSError as e:
            counters.error("echo: %r" % e)
            time.sleep(0.1)


def churn_worker(port, stop, counters, seed):
    rng = random.Random(seed)
    big = rng.randbytes(1 << 20)
    n = 0
    while not stop.is_set():
        n += 1
        kind = n % 6
        try:
            s = connect(port)
            message = b"churn %d" % n
            if kind in (0, 1):
                s.sendall(message)
                if recv_exactly(s, len(message)) != message:
                    counters.error("churn: wrong bytes")
                s.close()
            elif kind == 2:  # half-close: echo, then EOF
                s.sendall(message)
                s.shutdown(socket.SHUT_WR)
                if recv_exactly(s, len(message)) != message or s.recv(1) != b"":
                    counters.error("churn: half-close echo")
                s.close()
            elif kind == 3:  # 0-length write, message, reset without reading
                s.send(b"")
                s.sendall(message)
                reset(s)
            elif kind == 4:  # reset while the echo of a big message is in flight
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
                s.sendall(big)
                recv_exactly(s, 4096)
                reset(s)
            else:  # connect and leave
                s.close()
            counters.add("churn_cycles")
        except OSError as e:
            counters.error("churn kind %d: %r" % (kind, e))
            time.sleep(0.1)


def burst_worker(port, stop, counters, size):
    while not stop.is_set():
        sockets = []
        try:
            for _ in range(size):
                sockets.append(connect(port))
            for i, s in enumerate(sockets):
                s.sendall(b"burst %d" % i)
            for i, s in enumerate(sockets):
                expected = b"burst %d" % i
                if recv_exactly(s, len(expected)) != expected:
                    counters.error("burst: wrong bytes")
            counters.add("burst_connections", len(sockets))
        except OSError as e:
            counters.error("burst: %r" % e)
        finally:
            for s in sockets:
                s.close()
        stop.wait(2.0)


def idle_worker(port, stop, counters, idle_timeout_s):
    while not stop.is_set():
        sockets = []
        try:
            for _ in range(20):
                sockets.append(connect(port, timeout=idle_timeout_s * 10 + 5))
            for s in sockets:
                # The server must close it: EOF (or a reset) long before this generous bound.
                if s.recv(1) != b"":
                    counters.error("idle: server sent bytes to a silent client")
                counters.add("idle_closed")
        except socket.timeout:
            counters.error("idle: silent client not closed by the idle timeout")
        except ConnectionResetError:
            counters.add("idle_closed")
        except OSError as e:
            counters.error("idle: %r" % e)
        finally:
            for s in sockets:
                s.close()
        stop.wait(0.5)


def pattern_slice(block, offset, n):
    """n bytes of `block` repeated forever, from `offset`."""
    out = bytearray()
    position = offset % len(block)
    while len(out) < n:
        take = min(n - len(out), len(block) - position)
        out += block[position:position + take]
        position = 0
    return bytes(out)


def hoarder_worker(port, stop, counters, seed):
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            s = connect(port)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            block = rng.randbytes(1 << 20)
            s.setblocking(False)
            sent = 0
            stalled_since = None
            # Send without reading until the server stops taking bytes for 0.3 s.
            while not stop.is_set():
                try:
                    offset = sent % len(block)
                    sent += s.send(block[offset:])
                    stalled_since = None
                except BlockingIOError:
                    stalled_since = stalled_since or time.monotonic()
                    if time.monotonic() - stalled_since > 0.3:
                        break
                    time.sleep(0.01)
            s.setblocking(True)
            s.settimeout(30)
            s.shutdown(socket.SHUT_WR)
            got = 0
            while got < sent:
                chunk = s.recv(1 << 20)
                if not chunk:
                    counters.error("hoarder: EOF after %d of %d bytes" % (got, sent))
                    break
                expected = pattern_slice(block, got, len(chunk))
                if chunk != expected:
                    counters.error("hoarder: wrong bytes at %d" % got)
                    break
                got += len(chunk)
            if s.recv(1) != b"":
                counters.error("hoarder: bytes after the echo")
            s.close()
            counters.add("hoarder_bytes", got)
            counters.add("hoarder_rounds")
        except OSError as e:
            counters.error("hoarder: %r" % e)
            time.sleep(0.1)


def proc_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def proc_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--server", default=os.path.join(ROOT, "build", "echo-server"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--idle-timeout-ms", type=int, default=1000)
    parser.add_argument("--high-water-mark", type=int, default=1 << 20)
    parser.add_argument("--sample-s", type=float, default=10.0)
    args = parser.parse_args()
    if not os.access(args.server, os.X_OK):
        sys.exit("no echo-server at %s: build first (scripts/test) or pass --server" % args.server)

    env = {k: v for k, v in os.environ.items() if not k.startswith("MR_")}
    server = subprocess.Popen(
        [args.server, "--bind", "127.0.0.1", "--port", "0", "--admin_port", "0",
         "--workers", str(args.workers), "--idle_timeout_ms", str(args.idle_timeout_ms),
         "--high_water_mark", str(args.high_water_mark), "--shutdown_timeout_ms", "5000"],
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    log = []
    port_found = threading.Event()
    port = [0]

    def read_log():
        for line in server.stderr:
            log.append(line.rstrip("\n"))
            m = re.search(r"listening on [^ ]+:(\d+) workers=", line)
            if m:
                port[0] = int(m.group(1))
                port_found.set()

    threading.Thread(target=read_log, daemon=True).start()
    if not port_found.wait(30):
        server.kill()
        sys.exit("echo-server did not start:\n" + "\n".join(log))
    port = port[0]
    pid = server.pid
    baseline_fds = proc_fds(pid)
    print("soak: echo-server pid %d port %d, %s minutes, baseline %d descriptors, RSS %.1f MiB"
          % (pid, port, args.minutes, baseline_fds, proc_rss(pid) / 2**20), flush=True)

    counters = Counters()
    stop = threading.Event()
    threads = []
    for i in range(6):
        threads.append(threading.Thread(target=echo_worker, args=(port, stop, counters, i)))
    for i in range(2):
        threads.append(threading.Thread(target=churn_worker, args=(port, stop, counters, 100 + i)))
    threads.append(threading.Thread(target=burst_worker, args=(port, stop, counters, 300)))
    threads.append(threading.Thread(
        target=idle_worker, args=(port, stop, counters, args.idle_timeout_ms / 1000)))
    for i in range(2):
        threads.append(threading.Thread(target=hoarder_worker, args=(port, stop, counters, 200 + i)))
    for t in threads:
        t.start()

    started = time.monotonic()
    end = started + args.minutes * 60
    samples = []
    while time.monotonic() < end and server.poll() is None:
        time.sleep(min(args.sample_s, max(0.0, end - time.monotonic())))
        if server.poll() is not None:
            break
        samples.append((time.monotonic() - started, proc_fds(pid), proc_rss(pid)))
        t, fds, rss = samples[-1]
        print("soak: t=%4.0fs fds=%d rss=%.1fMiB errors=%d echo=%d churn=%d burst=%d idle=%d "
              "hoarded=%.0fMiB" % (t, fds, rss / 2**20, counters.get("errors"),
                                   counters.get("echo_exchanges"), counters.get("churn_cycles"),
                                   counters.get("burst_connections"), counters.get("idle_closed"),
                                   counters.get("hoarder_bytes") / 2**20), flush=True)
    stop.set()
    for t in threads:
        t.join(120)

    failures = []
    if server.poll() is not None:
        failures.append("echo-server exited during the run with %s" % server.returncode)
    else:
        # Every client is closed: the server's descriptors must come back to the start.
        deadline = time.monotonic() + 30
        while proc_fds(pid) != baseline_fds and time.monotonic() < deadline:
            time.sleep(0.1)
        final_fds = proc_fds(pid)
        if final_fds != baseline_fds:
            failures.append("descriptors: %d at the end, %d at the start" % (final_fds, baseline_fds))
        final_rss = proc_rss(pid)
        # Memory: compare with the sample after the first interval (allocator warm-up done).
        warm = samples[0][2] if samples else final_rss
        peak = max([s[2] for s in samples] + [final_rss])
        if final_rss > warm + 64 * 2**20:
            failures.append("memory grew: %.1f MiB after warm-up, %.1f MiB at the end"
                            % (warm / 2**20, final_rss / 2**20))
        print("soak: descriptors start=%d end=%d; RSS warm=%.1fMiB peak=%.1fMiB end=%.1fMiB"
              % (baseline_fds, final_fds, warm / 2**20, peak / 2**20, final_rss / 2**20))
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            code = "killed after 60 s"
        if code != 0:
            failures.append("echo-server exit status %s" % code)
    time.sleep(0.2)
    for line in log:
        if "final stats" in line:
            print("soak: server " + line.split("final stats", 1)[1].strip(" :"))
    elapsed = time.monotonic() - started
    print("soak: %.0f s, errors=%d, echo exchanges=%d (%.1f MiB), churn cycles=%d, burst "
          "connections=%d, idle clients closed=%d, hoarder rounds=%d (%.1f MiB)"
          % (elapsed, counters.get("errors"), counters.get("echo_exchanges"),
             counters.get("echo_bytes") / 2**20, counters.get("churn_cycles"),
             counters.get("burst_connections"), counters.get("idle_closed"),
             counters.get("hoarder_rounds"), counters.get("hoarder_bytes") / 2**20))
    for e in counters.first_errors:
        print("soak: error: " + e)
    if counters.get("errors"):
        failures.append("%d client errors" % counters.get("errors"))
    for f in failures:
        print("soak: FAILED: " + f)
    print("soak: %s" % ("ok" if not failures else "FAILED"))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
