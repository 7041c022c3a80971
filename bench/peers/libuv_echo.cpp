// A libuv echo server, the way libuv's own echo examples go: one loop, uv_read_start with a
// buffer of the size libuv suggests (64 KiB) malloc'd per read, each read handed to uv_write and
// freed in its callback. One addition the examples leave out: reading pauses while more than
// 1 MiB waits to be written, so a client that does not read cannot grow the server without bound.
// Reference point for bench/run-matrix. Usage: libuv-echo PORT (listens on 127.0.0.1).
#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

constexpr std::size_t kPauseAboveBytes = 1024 * 1024;

// One per write: the request and the buffer it sends, freed together when the write completes.
struct WriteRequest {
  uv_write_t request;
  uv_buf_t buffer;
};

void on_read(uv_stream_t* client, ssize_t bytes, const uv_buf_t* buffer);

void allocate(uv_handle_t* /*handle*/, std::size_t suggested, uv_buf_t* buffer) {
  buffer->base = static_cast<char*>(std::malloc(suggested));
  buffer->len = buffer->base != nullptr ? suggested : 0;
}

void on_close(uv_handle_t* handle) {
  std::free(handle);
}

void on_written(uv_write_t* request, int status) {
  auto* write = reinterpret_cast<WriteRequest*>(request);
  uv_stream_t* client = request->handle;
  std::free(write->buffer.base);
  std::free(write);
  if (status < 0) return;  // the read side sees the error too and closes
  if (uv_stream_get_write_queue_size(client) <= kPauseAboveBytes &&
      !uv_is_closing(reinterpret_cast<uv_handle_t*>(client))) {
    uv_read_start(client, allocate, on_read);  // no-op error when already reading
  }
}

void on_read(uv_stream_t* client, ssize_t bytes, const uv_buf_t* buffer) {
  if (bytes > 0) {
    auto* write = static_cast<WriteRequest*>(std::malloc(sizeof(WriteRequest)));
    write->buffer = uv_buf_init(buffer->base, static_cast<unsigned>(bytes));
    if (uv_write(&write->request, client, &write->buffer, 1, on_written) != 0) {
      std::free(write->buffer.base);
      std::free(write);
      uv_close(reinterpret_cast<uv_handle_t*>(client), on_close);
      return;
    }
    if (uv_stream_get_write_queue_size(client) > kPauseAboveBytes) uv_read_stop(client);
    return;
  }
  std::free(buffer->base);
  if (bytes < 0) uv_close(reinterpret_cast<uv_handle_t*>(client), on_close);  // EOF or error
}

void on_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  auto* client = static_cast<uv_tcp_t*>(std::malloc(sizeof(uv_tcp_t)));
  uv_tcp_init(server->loop, client);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(client)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(client), on_close);
    return;
  }
  uv_tcp_nodelay(client, 1);
  uv_read_start(reinterpret_cast<uv_stream_t*>(client), allocate, on_read);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: libuv-echo PORT\n");
    return 2;
  }
  uv_loop_t* loop = uv_default_loop();
  uv_tcp_t server;
  uv_tcp_init(loop, &server);
  sockaddr_in address{};
  uv_ip4_addr("127.0.0.1", std::stoi(argv[1]), &address);
  int error = uv_tcp_bind(&server, reinterpret_cast<const sockaddr*>(&address), 0);
  if (error == 0) error = uv_listen(reinterpret_cast<uv_stream_t*>(&server), 10000, on_connection);
  if (error != 0) {
    std::fprintf(stderr, "libuv-echo: %s\n", uv_strerror(error));
    return 1;
  }
  return uv_run(loop, UV_RUN_DEFAULT);
}
