#include "files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "pe/types.hpp"
#include "plan/schedule_set.hpp"

namespace pe::synth {

namespace fs = std::filesystem;
using pe::detail::kCommitMarkerName;
using pe::detail::kStagingDirName;

namespace {

const char* const kPairNames[] = {"pe_schedules.json", "pe_schedules.hpp"};

std::string system_error(const std::string& what) { return "pe-synth: " + what + ": " + std::strerror(errno); }

// A file whose content is written but which has no name yet (or a named temporary as a fallback).
class PendingFile {
 public:
  PendingFile(const fs::path& dir, const std::string& content) {
#ifdef O_TMPFILE
    fd_ = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
#endif
    if (fd_ < 0) {  // no O_TMPFILE here: a hidden temporary in the staging directory, created at commit
      fallback_content_ = content;
      return;
    }
    write_all(content, dir.string());
  }
  ~PendingFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;

  // Gives the content the name `target` (which must not exist).
  void link_as(const fs::path& target) {
    if (fd_ < 0) {
      fd_ = ::open(target.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
      if (fd_ < 0) throw Error(system_error("cannot create " + target.string()));
      write_all(fallback_content_, target.string());
      return;
    }
    const std::string self = "/proc/self/fd/" + std::to_string(fd_);
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, target.c_str(), AT_SYMLINK_FOLLOW) != 0)
      throw Error(system_error("cannot link the new file as " + target.string()));
  }

 private:
  void write_all(const std::string& content, const std::string& where) {
    std::size_t done = 0;
    while (done < content.size()) {
      const ssize_t n = ::write(fd_, content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw Error(system_error("cannot write a new table file in " + where));
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd_) != 0) throw Error(system_error("cannot flush a new table file in " + where));
  }

  int fd_ = -1;
  std::string fallback_content_;
};

void sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Finishes (commit marker present) or discards (absent) what an interrupted generate left in dir.
void recover(const fs::path& dir) {
  const fs::path staging = dir / kStagingDirName;
  std::error_code ec;
  if (!fs::exists(staging, ec)) return;
  if (fs::exists(staging / kCommitMarkerName, ec)) {
    for (const char* name : kPairNames)
      if (fs::exists(staging / name, ec)) {
        fs::rename(staging / name, dir / name, ec);
        if (ec) throw Error("pe-synth: cannot finish the interrupted generate in " + dir.string() + ": " + ec.message());
      }
    sync_dir(dir);
  }
  fs::remove_all(staging, ec);
  if (ec) throw Error("pe-synth: cannot remove " + staging.string() + ": " + ec.message());
}

}  // namespace

std::string read_text_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw Error("pe-synth: " + what + " " + path + " is a directory, not a " + what + " file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("pe-synth: " + what + " " + path + " cannot be opened");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error("pe-synth: " + what + " " + path + " cannot be read");
  return s.str();
}

void prepare_output_dir(const std::string& dir) {
  if (dir.empty()) throw Error("pe-synth: --out = '' is not a directory path");
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw Error("pe-synth: --out = " + dir + " exists and is not a directory");
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw Error("pe-synth: --out = " + dir + " cannot be created (" + ec.message() + ")");
  if (::access(dir.c_str(), W_OK) != 0) throw Error("pe-synth: --out = " + dir + " is not writable");
  recover(dir);
}

void stop_point(const char* point) {
  const char* wanted = std::getenv("PE_SYNTH_STOP_AT");
  if (wanted && std::strcmp(wanted, point) == 0) ::raise(SIGKILL);
}

void write_table_pair(const std::string& dir_name, const std::string& json_text, const std::string& header_text) {
  const fs::path dir(dir_name);
  recover(dir);
  PendingFile json(dir, json_text), header(dir, header_text), marker(dir, "pe-synth commit\n");
  stop_point("written");
  const fs::path staging = dir / kStagingDirName;
  if (::mkdir(staging.c_str(), 0755) != 0) throw Error(system_error("cannot create " + staging.string()));
  json.link_as(staging / kPairNames[0]);
  header.link_as(staging / kPairNames[1]);
  sync_dir(staging);
  stop_point("staged");
  marker.link_as(staging / kCommitMarkerName);
  sync_dir(staging);
  stop_point("committed");
  std::error_code ec;
  const char* const points[] = {"json_renamed", "header_renamed"};
  for (int i = 0; i < 2; ++i) {
    fs::rename(staging / kPairNames[i], dir / kPairNames[i], ec);
    if (ec) throw Error("pe-synth: cannot rename into " + dir.string() + ": " + ec.message());
    stop_point(points[i]);
  }
  sync_dir(dir);
  fs::remove(staging / kCommitMarkerName, ec);
  fs::remove(staging, ec);
  if (ec) throw Error("pe-synth: cannot remove " + staging.string() + ": " + ec.message());
  sync_dir(dir);
}

}  // namespace pe::synth
