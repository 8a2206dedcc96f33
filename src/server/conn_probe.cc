#include "server/conn_probe.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>

namespace akv::server {

namespace {

bool PortOf(const sockaddr_storage& a, int* port, std::string* addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    *port = ntohs(in->sin_port);
    if (addr) inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
  } else if (a.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
    *port = ntohs(in6->sin6_port);
    if (addr) inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
  } else {
    return false;
  }
  if (addr) *addr = buf;
  return true;
}

}  // namespace

ConnProbe::ConnProbe(int local_port, const std::string& remote_addr, int remote_port) {
  if (local_port <= 0 || remote_port <= 0) return;
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const int fd = std::atoi(e->d_name);
    if (fd == dirfd(dir)) continue;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0) continue;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) continue;
    int lport = 0, pport = 0;
    std::string paddr;
    if (!PortOf(local, &lport, nullptr) || !PortOf(peer, &pport, &paddr)) continue;
    if (lport == local_port && pport == remote_port && paddr == remote_addr) {
      fd_ = fd;
      break;
    }
  }
  closedir(dir);
}

bool ConnProbe::PeerGone() const {
  if (fd_ < 0) return false;
  pollfd p{fd_, POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  // Walk the expected length whatever the input is; fold in the length difference.
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = b.size();
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    diff = diff | (x ^ static_cast<unsigned char>(b[i]));
  }
  return diff == 0;
}

}  // namespace akv::server
