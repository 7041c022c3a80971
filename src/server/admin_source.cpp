// The admin endpoint's view of a running Server.
#include "server/admin_source.hpp"

#include "server/server.hpp"

namespace mr {
namespace {

class ServerSource final : public AdminSource {
 public:
  explicit ServerSource(Server& server) : server_(server) {}
  unsigned worker_count() const override { return server_.worker_count(); }
  std::vector<WorkerStatsSnapshot> worker_stats() const override { return server_.worker_stats(); }
  AcceptorStatsSnapshot acceptor_stats() const override { return server_.acceptor_stats(); }
  bool shutting_down() const override { return server_.shutting_down(); }
  std::uint64_t buffer_budget_bytes() const override { return server_.buffer_budget_bytes(); }
  void post_to_worker(unsigned index, EventLoop::Task task) override {
    server_.worker(index).loop().post(std::move(task));
  }

 private:
  Server& server_;
};

}  // namespace

std::unique_ptr<AdminSource> make_admin_source(Server& server) {
  return std::make_unique<ServerSource>(server);
}

}  // namespace mr
