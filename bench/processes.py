"""What bench/matrix.py and bench/perf_check.py share about the servers they start: a free
loopback port, waiting until a child listens, the environment echo-server gets, its resident
memory, and stopping it (our own child, by its PID)."""
import os
import signal
import socket
import subprocess
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, process, seconds):
    """True once 127.0.0.1:port accepts a connection; False if `process` exits first or the time
    runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def server_env():
    """The environment without MR_* variables: echo-server reads MR_<NAME> as options and refuses
    unknown ones, and the scripts' own settings share the prefix."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MR_")}


def rss_bytes(pid):
    """VmRSS of a process in bytes; None when unreadable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def stop(process, timeout):
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
