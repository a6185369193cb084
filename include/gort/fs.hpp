// gort::fs: files through the P's io_uring (read, write, fsync park only the
// calling goroutine), or plain blocking calls inside gort::syscall on the epoll
// backend, where regular files cannot be polled.
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "gort/result.hpp"

namespace gort::net {
struct FdState;
}

namespace gort::fs {

// File is an open file. Move-only; the destructor closes it.
class File {
 public:
  File() = default;
  explicit File(std::shared_ptr<gort::net::FdState> fd) : fd_(std::move(fd)) {}
  File(File&&) noexcept = default;
  File& operator=(File&&) noexcept = default;
  ~File();

  // open() opens path with open(2) flags (O_RDONLY, O_RDWR|O_CREAT...); O_CLOEXEC is added.
  static Result<File> open(const std::string& path, int flags = O_RDONLY, mode_t mode = 0644);
  // create() opens path read-write, creating or truncating it (Go's os.Create).
  static Result<File> create(const std::string& path) { return open(path, O_RDWR | O_CREAT | O_TRUNC, 0666); }

  // read() reads at the file offset; Errc::eof at the end of the file.
  IoResult read(std::span<std::byte> buf);
  // write() writes all of buf at the file offset.
  IoResult write(std::span<const std::byte> buf);
  // read_at() reads at off without moving the offset; Errc::eof past the end.
  IoResult read_at(std::span<std::byte> buf, std::int64_t off);
  // write_at() writes all of buf at off without moving the offset.
  IoResult write_at(std::span<const std::byte> buf, std::int64_t off);
  // fsync() flushes data and metadata to the device.
  std::error_code fsync();
  // close() closes the file. Idempotent.
  std::error_code close();
  int fd() const;
  bool valid() const { return fd_ != nullptr; }

 private:
  std::shared_ptr<gort::net::FdState> fd_;
};

}  // namespace gort::fs
