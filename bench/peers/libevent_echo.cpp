// A libevent echo server with bufferevents, as libevent's book writes one: an evconnlistener,
// a bufferevent per connection, and a read callback that moves the input buffer onto the output
// (evbuffer_add_buffer: no copy of the bytes). libevent reads what its default allows per call
// (at most 4096 bytes in 2.1). One addition: reading pauses while more than 1 MiB waits to be
// written and resumes when it has drained below 256 KiB, so a client that does not read cannot
// grow the server without bound. Reference point for bench/run-matrix.
// Usage: libevent-echo PORT (listens on 127.0.0.1).
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdio>
#include <string>

namespace {

constexpr std::size_t kPauseAboveBytes = 1024 * 1024;
constexpr std::size_t kResumeBelowBytes = 256 * 1024;

void on_written(bufferevent* connection, void* /*context*/) {
  // Called once output has drained to the low-water mark set when reading paused.
  bufferevent_setwatermark(connection, EV_WRITE, 0, 0);
  bufferevent_enable(connection, EV_READ);
}

void on_read(bufferevent* connection, void* /*context*/) {
  evbuffer* output = bufferevent_get_output(connection);
  evbuffer_add_buffer(output, bufferevent_get_input(connection));
  if (evbuffer_get_length(output) > kPauseAboveBytes) {
    bufferevent_disable(connection, EV_READ);
    bufferevent_setwatermark(connection, EV_WRITE, kResumeBelowBytes, 0);
  }
}

void on_event(bufferevent* connection, short events, void* /*context*/) {
  if ((events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) != 0) bufferevent_free(connection);
}

void on_accept(evconnlistener* listener, evutil_socket_t fd, sockaddr* /*address*/, int /*length*/,
               void* /*context*/) {
  const int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  event_base* base = evconnlistener_get_base(listener);
  bufferevent* connection = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
  bufferevent_setcb(connection, on_read, on_written, on_event, nullptr);
  bufferevent_enable(connection, EV_READ | EV_WRITE);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: libevent-echo PORT\n");
    return 2;
  }
  event_base* base = event_base_new();
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(std::stoi(argv[1])));
  evconnlistener* listener =
      evconnlistener_new_bind(base, on_accept, nullptr, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                              10000, reinterpret_cast<sockaddr*>(&address), sizeof address);
  if (listener == nullptr) {
    std::perror("libevent-echo: listen");
    return 1;
  }
  return event_base_dispatch(base);
}
