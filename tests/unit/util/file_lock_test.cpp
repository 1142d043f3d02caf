// util::FileLock (src/util/file_lock.cpp): the lock directory is made 0700 and used only when it
// is ours; a lock name that is no plain file name never reaches a path.

#include "cpi/util/file_lock.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cpi/errors.hpp"
#include "support/temp_dir.hpp"

namespace cpi::util {
namespace {

namespace fs = std::filesystem;

class FileLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    m_saved = tmp != nullptr ? std::optional<std::string>{tmp} : std::nullopt;
    m_tmp = std::make_unique<testing::TempDir>();
    ::setenv("TMPDIR", m_tmp->path().c_str(), 1);
  }
  void TearDown() override {
    if (m_saved) {
      ::setenv("TMPDIR", m_saved->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
    m_tmp.reset();
  }
  fs::path dir() const { return m_tmp->path() / "bosh-libvirt-cpi-locks"; }
  fs::path tmp() const { return m_tmp->path(); }

  static void expect_refused(const std::string& what) {
    try {
      FileLock lock{"vm-1"};
      ADD_FAILURE() << "a lock was taken in " << what;
    } catch (const CpiError& e) {
      EXPECT_NE(std::string{e.what()}.find("bosh-libvirt-cpi-locks"), std::string::npos)
          << e.what();
    }
  }

 private:
  std::optional<std::string> m_saved;
  std::unique_ptr<testing::TempDir> m_tmp;
};

TEST_F(FileLockTest, CreatesThePrivateDirectoryWhateverTheUmask) {
  const mode_t old = ::umask(0);
  {
    FileLock lock{"vm-1"};
    EXPECT_TRUE(lock.held());
  }
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::lstat(dir().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0700U);
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_TRUE(fs::exists(dir() / "vm-1.lock"));
  {
    FileLock lock{"vm-1"};
    lock.remove();
    EXPECT_TRUE(lock.held());
  }
  EXPECT_FALSE(fs::exists(dir() / "vm-1.lock"));
}

TEST_F(FileLockTest, RefusesADirectoryOthersCanWrite) {
  fs::create_directory(dir());
  ASSERT_EQ(::chmod(dir().c_str(), 0777), 0);
  expect_refused("a directory of mode 0777");
  EXPECT_FALSE(fs::exists(dir() / "vm-1.lock"));
  ASSERT_EQ(::chmod(dir().c_str(), 0755), 0);
  expect_refused("a directory of mode 0755");
}

TEST_F(FileLockTest, RefusesASymlinkEvenToAPrivateDirectory) {
  const auto target = tmp() / "elsewhere";
  fs::create_directory(target);
  ASSERT_EQ(::chmod(target.c_str(), 0700), 0);
  fs::create_directory_symlink(target, dir());
  expect_refused("a symlink");
  EXPECT_FALSE(fs::exists(target / "vm-1.lock"));
}

TEST_F(FileLockTest, RefusesAFileInItsPlace) {
  { std::FILE* f = std::fopen(dir().c_str(), "w"); ASSERT_NE(f, nullptr); std::fclose(f); }
  expect_refused("a regular file");
}

TEST_F(FileLockTest, RefusesADirectoryOfAnotherOwner) {
  fs::create_directory(dir());
  ASSERT_EQ(::chmod(dir().c_str(), 0700), 0);
  if (::geteuid() != 0) GTEST_SKIP() << "only root can give a directory to another uid";
  ASSERT_EQ(::chown(dir().c_str(), 65534, 65534), 0);
  expect_refused("a directory owned by uid 65534");
}

TEST_F(FileLockTest, NamesThatAreNoPlainFileNameNeverReachAPath) {
  fs::create_directory(tmp() / "victim");
  { std::FILE* f = std::fopen((tmp() / "x.lock").c_str(), "w"); ASSERT_NE(f, nullptr); std::fclose(f); }
  const std::vector<std::string> names{"../x", "../../x", "a/b", "", ".", "..", ".hidden",
                                       std::string("vm\0x", 4), std::string(300, 'a')};
  for (const auto& name : names) {
    EXPECT_THROW(FileLock{name}, CpiError) << name;
    EXPECT_THROW(FileLock(name, FileLock::Wait::no), CpiError) << name;
  }
  EXPECT_TRUE(fs::exists(tmp() / "x.lock"));
}

TEST_F(FileLockTest, ALockIsExclusiveAcrossOpens) {
  FileLock first{"disk-0123456789abcde"};
  ASSERT_TRUE(first.held());
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // A second process must not get the lock while the first holds it (non-blocking probe).
    const int fd = ::open((dir() / "disk-0123456789abcde.lock").c_str(), O_RDWR);
    ::_exit(fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) != 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(FileLockTest, WaitNoReturnsUnheldWhileAnotherHoldsIt) {
  {
    FileLock first{"vm-2"};
    FileLock probe{"vm-2", FileLock::Wait::no};
    EXPECT_FALSE(probe.held());
  }
  FileLock again{"vm-2", FileLock::Wait::no};
  EXPECT_TRUE(again.held());
}

// A waiter that opened the lock file before its holder removed it must not end up holding a lock
// on the unlinked file, beside a third process that locks the file the path names now.
TEST_F(FileLockTest, RemovingAHeldLockFileNeverSplitsTheLock) {
  std::optional<FileLock> holder;
  holder.emplace("vm-3");
  std::atomic<bool> waiter_has_it{false};
  std::atomic<bool> release{false};
  std::thread waiter{[&] {
    FileLock lock{"vm-3"};  // opens the file now, gets the flock after the holder is gone
    waiter_has_it = true;
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }};
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the waiter is in flock()
  holder->remove();
  holder.reset();
  while (!waiter_has_it) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  {
    FileLock third{"vm-3", FileLock::Wait::no};
    EXPECT_FALSE(third.held()) << "two holders of one lock, on two inodes";
  }
  release = true;
  waiter.join();
  FileLock after{"vm-3", FileLock::Wait::no};
  EXPECT_TRUE(after.held());
}

}  // namespace
}  // namespace cpi::util
