#pragma once
// Undo steps for multi-step creates.
//
//   util::Rollback rollback;
//   auto vol = create_volume(...);
//   rollback.add("delete volume 'x'", [&] { delete_volume(vol); });
//   ...
//   rollback.commit();   // success: nothing is undone
//
// If commit() was not called, the destructor runs the steps newest first. A failing step is
// logged as a warning and never hides the error that caused the rollback.

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace cpi::util {

class Rollback {
 public:
  Rollback() = default;
  Rollback(const Rollback&) = delete;
  Rollback& operator=(const Rollback&) = delete;
  ~Rollback();

  void add(std::string description, std::function<void()> undo);
  void commit() noexcept { m_steps.clear(); }
  // Runs the undo steps now (newest first) and forgets them.
  void run() noexcept;

 private:
  std::vector<std::pair<std::string, std::function<void()>>> m_steps;
};

}  // namespace cpi::util
