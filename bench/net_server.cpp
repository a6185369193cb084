/* Starting the servers of `gort-bench net` and probing that they answer
 * (see net_server.hpp). */
#include "net_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "proc_cpu.hpp"
#include "sys.hpp"

namespace gort::bench {
namespace {

constexpr const char* kHelloBody = "Hello, World!";

// free_port() is a loopback TCP port nobody listens on right now (bind to port 0), 0 on failure.
std::uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in sa = loopback(0);
  socklen_t len = sizeof sa;
  std::uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
    port = ntohs(sa.sin_port);
  }
  close(fd);
  return port;
}

/* probe() checks once that the server on port answers correctly: an echo of 64
 * bytes, or a 200 response with the hello body. Returns "" when it does,
 * "refused" when nothing listens yet, otherwise what was wrong. */
std::string probe(std::uint16_t port, Proto proto) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_text("socket");
  const timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sa = loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    const std::string why = errno == ECONNREFUSED ? "refused" : errno_text("connect");
    close(fd);
    return why;
  }
  const std::string request =
      proto == Proto::echo ? std::string(64, 'p') : "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  std::string reply;
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    for (;;) {
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<std::size_t>(n));
      if (proto == Proto::echo && reply.size() >= request.size()) break;
    }
  }
  close(fd);
  if (proto == Proto::echo)
    return reply == request ? "" : "the echo of 64 bytes came back as " + std::to_string(reply.size()) + " bytes";
  const std::size_t body = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.", 0) == 0 && reply.find(" 200 ") != std::string::npos && body != std::string::npos &&
      reply.find(kHelloBody, body) != std::string::npos) {
    return "";
  }
  return "GET / answered: " + (reply.empty() ? std::string("nothing") : last_line(reply.substr(0, 200)));
}

// nginx_config() is the template with @DIR@ and @PORT@ filled in.
std::string nginx_config(const std::string& tmpl, const std::string& dir, std::uint16_t port) {
  std::string s = tmpl;
  for (std::size_t at; (at = s.find("@DIR@")) != std::string::npos;) s.replace(at, 5, dir);
  for (std::size_t at; (at = s.find("@PORT@")) != std::string::npos;) s.replace(at, 6, std::to_string(port));
  return s;
}

}  // namespace

ServerSpec server_spec(const std::string& name, const std::string& path, const std::string& hint) {
  ServerSpec s{name, path, name == "nginx", ""};
  if (!executable(path))
    s.missing = (path.empty() ? std::string("not found") : path + " not found") + " (" + hint + ")";
  return s;
}

std::string start_server(const ServerSpec& spec, Proto proto, const NetBenchArgs& a, const std::string& nginx_tmpl,
                         const std::string& tmpdir, RunningServer& s) {
  std::string why;
  for (int attempt = 0; attempt < 3; ++attempt) {
    s.port = free_port();
    if (s.port == 0) return "no free port";
    s.log = tmpdir + "/" + spec.name + ".log";
    std::vector<std::string> argv;
    if (spec.is_nginx) {
      const std::string dir = tmpdir + "/nginx";
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      std::ofstream(dir + "/nginx.conf") << nginx_config(nginx_tmpl, dir, s.port);
      argv = {spec.program, "-p", dir + "/", "-c", dir + "/nginx.conf", "-e", dir + "/error.log"};
    } else {
      argv = {spec.program, "--addr", "127.0.0.1:" + std::to_string(s.port), "--procs", std::to_string(a.procs)};
    }
    why = s.child.start(argv, a.server_cpu, s.log);
    if (!why.empty()) return why;
    for (const double deadline = now_s() + 10;;) {
      int status = 0;
      if (s.child.exited(status)) {
        const std::string out = last_line(read_text(s.log));
        why = Child::describe(status) + ": " + (out.empty() ? std::string("no output") : out);
        break;
      }
      why = probe(s.port, proto);
      if (why.empty()) {
        s.pids = process_tree(s.child.pid());
        return "";
      }
      if (why != "refused" || now_s() > deadline) {
        if (why == "refused") why = "not listening after 10 s";
        s.child.stop();
        return why;
      }
      sleep_s(0.02);
    }
  }
  return why;
}

}  // namespace gort::bench
