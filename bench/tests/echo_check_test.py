#!/usr/bin/env python3
"""bench/echo_check.py tells a broken echo server from a good one: servers on loopback that
lose a chunk, corrupt a byte, answer the pattern with only its first part, or close, are each
reported as broken with what went wrong; a correct one passes. Bounded: each check gives up
after a few seconds without data."""
import os
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import echo_check  # noqa: E402


class EchoServer:
    """A thread-per-connection server on 127.0.0.1:0 that echoes through `mangle(bytes, offset)`
    (offset: how many bytes the connection has read before these)."""

    def __init__(self, mangle):
        self.mangle = mangle
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        offset = 0
        with conn:
            try:
                while data := conn.recv(65536):
                    out = self.mangle(data, offset)
                    offset += len(data)
                    if out is None:
                        return
                    conn.sendall(out)
            except OSError:
                pass

    def close(self):
        self.listener.close()


def drop_after(limit):
    """Loses the bytes of the first read that starts past `limit`."""
    dropped = []

    def mangle(data, offset):
        if offset >= limit and not dropped:
            dropped.append(len(data))
            return b""
        return data
    return mangle


def flip_at(position):
    def mangle(data, offset):
        if offset <= position < offset + len(data):
            data = bytearray(data)
            data[position - offset] ^= 0xFF
        return bytes(data)
    return mangle


class EchoCheckTest(unittest.TestCase):
    def check(self, mangle):
        server = EchoServer(mangle)
        try:
            return echo_check.check_echo(server.port)
        finally:
            server.close()

    def test_a_correct_server_passes(self):
        self.assertIsNone(self.check(lambda data, offset: data))

    def test_a_server_that_loses_a_chunk_of_the_stream_is_broken(self):
        verdict = self.check(drop_after(1 << 20))
        self.assertIsNotNone(verdict)
        self.assertTrue(verdict.startswith("stream: "), verdict)

    def test_a_server_that_corrupts_one_byte_is_broken_and_the_byte_is_named(self):
        verdict = self.check(flip_at(5_000_000))
        self.assertIsNotNone(verdict)
        self.assertIn("differ from byte 5,000,000", verdict)

    def test_a_server_that_echoes_only_the_first_part_of_the_pattern_is_broken(self):
        verdict = self.check(lambda data, offset: data if offset == 0 else b"")
        self.assertIsNotNone(verdict)
        self.assertTrue(verdict.startswith("pattern: "), verdict)

    def test_a_server_that_closes_at_once_is_broken(self):
        verdict = self.check(lambda data, offset: None)
        self.assertIsNotNone(verdict)


if __name__ == "__main__":
    unittest.main()
