"""The correctness check bench/matrix.py runs on every server before measuring it: a server
that loses, reorders or corrupts bytes is reported as broken, not as fast.

Two parts, each on a connection of its own: the seed's pattern (one message sent in three parts,
a pause between them, echoed whole), and a 16 MiB stream of pseudo-random bytes written while
the echo is read back at the same time, so the server's output has to keep up with its input
and any lost, repeated or reordered chunk changes the bytes (a periodic pattern would hide a
lost chunk of the period's length)."""
import random
import socket
import threading
import time

PATTERN_PARTS = (b"This is the message. ", b"It will be sent ", b"in parts.")
STREAM_BYTES = 16 * 1024 * 1024


def _connect(port, timeout_s):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_exactly(sock, count, deadline):
    """Up to `count` bytes, fewer if the peer closes, stalls past its timeout, or `deadline`
    passes."""
    received = bytearray()
    while len(received) < count and time.monotonic() < deadline:
        try:
            chunk = sock.recv(min(count - len(received), 256 * 1024))
        except socket.timeout:
            break
        if not chunk:
            break
        received += chunk
    return bytes(received)


def check_pattern(port, timeout_s=5.0):
    """None when the three parts come back as one message; else what went wrong."""
    expected = b"".join(PATTERN_PARTS)
    with _connect(port, timeout_s) as sock:
        for part in PATTERN_PARTS:
            sock.sendall(part)
            time.sleep(0.05)
        echoed = _read_exactly(sock, len(expected), time.monotonic() + timeout_s)
    if echoed != expected:
        return f"pattern: sent {expected!r}, got back {echoed!r}"
    return None


def _first_difference(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def check_stream(port, size=STREAM_BYTES, timeout_s=60.0, stall_s=5.0):
    """None when `size` bytes written come back intact while being written; else what went
    wrong (a server that drops bytes stalls the reader, which gives up after `stall_s`)."""
    data = random.Random(size).randbytes(size)
    sock = _connect(port, stall_s)
    write_error = []

    def write():
        try:
            view = memoryview(data)
            for offset in range(0, size, 64 * 1024):
                sock.sendall(view[offset:offset + 64 * 1024])
        except OSError as error:  # the reader gave up and closed, or the server reset
            write_error.append(error)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        echoed = _read_exactly(sock, size, time.monotonic() + timeout_s)
    finally:
        sock.close()
        writer.join(stall_s)
    if echoed == data:
        return None
    where = _first_difference(echoed, data)
    if len(echoed) < size and echoed == data[:len(echoed)]:
        cause = f"; writing failed: {write_error[0]}" if write_error else ""
        return (f"stream: {len(echoed):,} of {size:,} bytes came back intact, then nothing "
                f"for {stall_s:g} s{cause}")
    return f"stream: {len(echoed):,} of {size:,} bytes came back; they differ from byte {where:,}"


def check_echo(port):
    """None when the server on 127.0.0.1:port passes both parts; else the first failure."""
    try:
        return check_pattern(port) or check_stream(port)
    except OSError as error:
        return f"connection failed: {error}"
