#!/usr/bin/env python3
"""A uvloop echo server, protocol based: asyncio's Protocol on uvloop's libuv loop, each
data_received() written straight back. Flow control the asyncio way: when the transport's write
buffer passes its high-water mark it calls pause_writing(), and reading pauses until
resume_writing(). uvloop reads up to its own receive buffer (about 250 KB) per call. Reference point for
bench/run-matrix; one thread, one loop.

Usage: uvloop_echo.py PORT [HOST]
"""
import asyncio
import signal
import socket
import sys

import uvloop


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.transport.write(data)

    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()


async def main(port, host):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    server = await loop.create_server(Echo, host, port, backlog=10000, reuse_address=True)
    async with server:
        await stop


if __name__ == "__main__":
    uvloop.install()
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9999,
                     sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"))
