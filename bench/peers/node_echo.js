#!/usr/bin/env node
// A Node.js `net` echo server, the idiomatic one: each socket piped into itself (pipe() pauses
// reading while the peer is slow). Reference point for echo-bench; single process.
// Usage: node node_echo.js PORT [HOST]
'use strict';
const net = require('net');

const port = Number(process.argv[2] || 9999);
const host = process.argv[3] || '127.0.0.1';

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});
server.listen({ port, host, backlog: 10000 });
process.on('SIGTERM', () => process.exit(0));
