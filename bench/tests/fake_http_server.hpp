// A one-thread HTTP responder on 127.0.0.1:0 for the admin-client tests: each connection gets the
// text `respond(request_head)` returns, then is closed.
//
// Contract: the thread polls with a short timeout and stops when the object is destroyed, so a
// test cannot hang on it; at most one connection is served at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

namespace mr::bench::test {

class FakeHttpServer {
 public:
  using Responder = std::function<std::string(const std::string& request_head)>;
  explicit FakeHttpServer(Responder respond);
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  std::uint16_t port() const { return port_; }
  int requests_served() const { return served_.load(); }

  // A whole response with Content-Length.
  static std::string ok_json(const std::string& body);

 private:
  void serve();
  Responder respond_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> served_{0};
  std::thread thread_;
};

}  // namespace mr::bench::test
