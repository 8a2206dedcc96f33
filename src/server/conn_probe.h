// Tells whether the client of an HTTP request is still connected. cpp-httplib 0.11 does not
// expose the connection to handlers, so the socket is found by its addresses (local port,
// peer address and port are unique per connection) and polled for a hang-up; the handler
// uses it to cancel generation for clients that went away.
#pragma once

#include <string>

namespace akv::server {

class ConnProbe {
 public:
  // Finds the connected socket whose local port and peer match; a probe that found nothing
  // reports the client as connected (generation then ends by its own limits).
  ConnProbe(int local_port, const std::string& remote_addr, int remote_port);
  // True when the peer closed or reset the connection.
  bool PeerGone() const;
  bool found() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Constant-time comparison (the time does not depend on where the strings differ).
bool ConstantTimeEquals(const std::string& a, const std::string& b);

}  // namespace akv::server
