// gort::fs::File: regular files through the P's ring (io_uring), or blocking
// calls inside gort::syscall (epoll backend, or off a goroutine).
#include "gort/fs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "gort/go.hpp"
#include "io/io.hpp"

namespace gort::fs {

namespace {

using net::FdState;
using rt::OpArgs;
using rt::OpKind;

constexpr std::size_t kMaxRW = std::size_t{1} << 30;  // as net.cpp: Go's maxRW

std::error_code errc(long r) {
  if (r == -EBADF) return make_error_code(Errc::closed);
  return {static_cast<int>(-r), std::generic_category()};
}

// rw() reads (or writes, all of it) at off (-1: the file position).
IoResult rw(FdState* fd, OpKind kind, std::byte* buf, std::size_t len, std::int64_t off) {
  if (fd == nullptr) return {0, make_error_code(Errc::closed)};
  std::size_t done = 0;
  do {
    OpArgs a{kind, buf + done, std::min(len - done, kMaxRW), off < 0 ? -1 : off + static_cast<std::int64_t>(done)};
    const long r = rt::io_op(*fd, a, 0);
    if (r < 0) {
      if (r == -EINTR || r == -EAGAIN) continue;
      return {done, errc(r)};
    }
    if (r == 0 && kind == OpKind::read) return {done, done == 0 ? make_error_code(Errc::eof) : std::error_code{}};
    done += static_cast<std::size_t>(r);
    // A read returns what it got (short reads are normal); a write goes on.
    if (kind == OpKind::read) break;
  } while (done < len);
  return {done, {}};
}

}  // namespace

File::~File() = default;

Result<File> File::open(const std::string& path, int flags, mode_t mode) {
  const int fd = gort::syscall([&] { return ::open(path.c_str(), flags | O_CLOEXEC, mode); });
  if (fd < 0) return std::error_code(errno, std::generic_category());
  auto st = std::make_shared<FdState>(fd, FdState::Kind::file);
  if (int r = rt::backend().register_fd(*st); r < 0) return std::error_code(-r, std::generic_category());
  return File(std::move(st));
}

IoResult File::read(std::span<std::byte> buf) { return rw(fd_.get(), OpKind::read, buf.data(), buf.size(), -1); }

IoResult File::write(std::span<const std::byte> buf) {
  return rw(fd_.get(), OpKind::write, const_cast<std::byte*>(buf.data()), buf.size(), -1);
}

IoResult File::read_at(std::span<std::byte> buf, std::int64_t off) {
  if (off < 0) return {0, std::error_code(EINVAL, std::generic_category())};
  return rw(fd_.get(), OpKind::read, buf.data(), buf.size(), off);
}

IoResult File::write_at(std::span<const std::byte> buf, std::int64_t off) {
  if (off < 0) return {0, std::error_code(EINVAL, std::generic_category())};
  return rw(fd_.get(), OpKind::write, const_cast<std::byte*>(buf.data()), buf.size(), off);
}

std::error_code File::fsync() {
  if (!fd_) return make_error_code(Errc::closed);
  const long r = rt::io_op(*fd_, OpArgs{OpKind::fsync}, 0);
  return r < 0 ? errc(r) : std::error_code{};
}

std::error_code File::close() {
  if (!fd_ || !fd_->close()) return make_error_code(Errc::closed);
  return {};
}

int File::fd() const { return fd_ && !fd_->closed() ? fd_->fd : -1; }

}  // namespace gort::fs
