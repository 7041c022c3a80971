#!/usr/bin/env python3
"""The seed's selectors echo server, ported faithfully to Python 3 as a reference point.

Same structure as the original: one DefaultSelector (epoll on Linux), an accept callback and a
read callback registered as the key's data, listen(10000), recv(1024) and one send() per read
("Hope it won't block"). Kept as it was on purpose, including that a partial send() loses
bytes: echo-bench's verification shows what that costs. Three changes only: the address comes
from the command line (port, and optionally the host, default 127.0.0.1); SO_REUSEADDR, so runs
can follow each other on one port; and the per-message print()s of the original are behind
--verbose, so the measurement is of the I/O loop and not of a terminal.

Usage: python_selectors_echo.py PORT [HOST] [--verbose]
"""
import selectors
import socket
import sys

verbose = "--verbose" in sys.argv
args = [a for a in sys.argv[1:] if a != "--verbose"]
port = int(args[0]) if args else 9999
host = args[1] if len(args) > 1 else "127.0.0.1"

sel = selectors.DefaultSelector()


def accept(sock, mask):
    conn, addr = sock.accept()  # Should be ready
    if verbose:
        print("accepted", conn, "from", addr)
    conn.setblocking(False)
    sel.register(conn, selectors.EVENT_READ, read)


def read(conn, mask):
    data = conn.recv(1024)  # Should be ready
    if data:
        if verbose:
            print("echoing", repr(data), "to", conn)
        conn.send(data)  # Hope it won't block
    else:
        if verbose:
            print("closing", conn)
        sel.unregister(conn)
        conn.close()


sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind((host, port))
sock.listen(10000)
sock.setblocking(False)
sel.register(sock, selectors.EVENT_READ, accept)

while True:
    events = sel.select()
    for key, mask in events:
        callback = key.data
        callback(key.fileobj, mask)
