// A Boost.Asio echo server in the shape of ours: one io_context per thread, the acceptor on the
// first, each accepted connection handed to the next context round-robin. Reference point for
// bench/run-matrix, written the way Asio's own examples are: a session object kept alive by the
// shared_ptr its pending handler holds, async_read_some then async_write of what was read.
// Usage: asio-echo PORT [THREADS] (listens on 127.0.0.1; THREADS default 1).
#include <array>
#include <cstddef>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it
#include <vector>

#include <boost/asio.hpp>

namespace {

using boost::asio::ip::tcp;

// Asio has no default read size (its examples read 1024 bytes, which would measure the example);
// 64 KiB is what our server reads per call by default (read_buffer_bytes).
constexpr std::size_t kReadBytes = 64 * 1024;

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : socket_(std::move(socket)) {}

  void start() { read(); }

 private:
  void read() {
    socket_.async_read_some(
        boost::asio::buffer(data_),
        [self = shared_from_this()](boost::system::error_code error, std::size_t bytes) {
          if (!error) self->write(bytes);
        });
  }

  // The next read starts only when the echo is written: the client cannot outrun the server.
  void write(std::size_t bytes) {
    boost::asio::async_write(
        socket_, boost::asio::buffer(data_, bytes),
        [self = shared_from_this()](boost::system::error_code error, std::size_t /*written*/) {
          if (!error) self->read();
        });
  }

  tcp::socket socket_;
  std::array<char, kReadBytes> data_{};
};

class Server {
 public:
  Server(unsigned short port, std::size_t threads) : contexts_(threads), acceptor_(contexts_[0]) {
    const tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), port);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(10000);
    for (auto& context : contexts_)
      guards_.emplace_back(context.get_executor());
    accept();
  }

  // Runs every context on a thread of its own (the first on the calling thread); never returns.
  void run() {
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < contexts_.size(); ++i) {
      threads.emplace_back([this, i] { contexts_[i].run(); });
    }
    contexts_[0].run();
    for (auto& thread : threads)
      thread.join();
  }

 private:
  void accept() {
    auto& target = contexts_[next_];
    next_ = (next_ + 1) % contexts_.size();
    // The accepted socket belongs to `target`: its handlers run on that context's thread.
    acceptor_.async_accept(target, [this](boost::system::error_code error, tcp::socket socket) {
      if (!error) {
        socket.set_option(tcp::no_delay(true), error);
        std::make_shared<Session>(std::move(socket))->start();
      }
      accept();
    });
  }

  std::vector<boost::asio::io_context> contexts_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  tcp::acceptor acceptor_;
  std::size_t next_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: asio-echo PORT [THREADS]\n";
    return 2;
  }
  const auto port = static_cast<unsigned short>(std::stoi(argv[1]));
  const std::size_t threads = argc > 2 ? std::stoul(argv[2]) : 1;
  Server server(port, threads < 1 ? 1 : threads);
  server.run();
}
