// The AdminSource of a running Server: the glue between the admin endpoint and the echo
// service. Contract: `server` must outlive the source; every accessor it forwards is thread-safe.
#pragma once

#include <memory>

#include "admin/admin_server.hpp"

namespace mr {

class Server;

std::unique_ptr<AdminSource> make_admin_source(Server& server);

}  // namespace mr
