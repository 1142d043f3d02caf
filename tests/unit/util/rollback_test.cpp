#include "cpi/util/rollback.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace cpi::util {
namespace {

using Log = std::vector<std::string>;

TEST(RollbackTest, RunsStepsNewestFirstOnDestruction) {
  Log log;
  {
    Rollback rollback;
    rollback.add("first", [&] { log.push_back("first"); });
    rollback.add("second", [&] { log.push_back("second"); });
    rollback.add("third", [&] { log.push_back("third"); });
    EXPECT_TRUE(log.empty());
  }
  EXPECT_EQ(log, (Log{"third", "second", "first"}));
}

TEST(RollbackTest, RunsNothingAfterCommit) {
  Log log;
  {
    Rollback rollback;
    rollback.add("first", [&] { log.push_back("first"); });
    rollback.add("second", [&] { log.push_back("second"); });
    rollback.commit();
  }
  EXPECT_TRUE(log.empty());
}

TEST(RollbackTest, RunsStepsAddedAfterCommit) {
  Log log;
  {
    Rollback rollback;
    rollback.add("committed", [&] { log.push_back("committed"); });
    rollback.commit();
    rollback.add("later", [&] { log.push_back("later"); });
  }
  EXPECT_EQ(log, (Log{"later"}));
}

TEST(RollbackTest, ThrowingStepDoesNotStopTheOthers) {
  Log log;
  {
    Rollback rollback;
    rollback.add("first", [&] { log.push_back("first"); });
    rollback.add("throws", [&] {
      log.push_back("throws");
      throw std::runtime_error("volume is busy");
    });
    rollback.add("throws anything", [&] {
      log.push_back("throws anything");
      throw 42;
    });
    rollback.add("last", [&] { log.push_back("last"); });
  }
  EXPECT_EQ(log, (Log{"last", "throws anything", "throws", "first"}));
}

TEST(RollbackTest, ThrowingStepDoesNotEscapeTheDestructor) {
  EXPECT_NO_THROW({
    Rollback rollback;
    rollback.add("throws", [] { throw std::runtime_error("boom"); });
  });
}

TEST(RollbackTest, RollbackDuringExceptionKeepsTheOriginalError) {
  Log log;
  try {
    Rollback rollback;
    rollback.add("undo", [&] {
      log.push_back("undo");
      throw std::runtime_error("undo failed");
    });
    throw std::runtime_error("create failed");
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "create failed");
  }
  EXPECT_EQ(log, (Log{"undo"}));
}

TEST(RollbackTest, RunRunsStepsNewestFirstAndEmpties) {
  Log log;
  Rollback rollback;
  rollback.add("first", [&] { log.push_back("first"); });
  rollback.add("second", [&] { log.push_back("second"); });
  rollback.run();
  EXPECT_EQ(log, (Log{"second", "first"}));
  rollback.run();
  EXPECT_EQ(log, (Log{"second", "first"}));
}

TEST(RollbackTest, DestructorAfterRunRunsNothingMore) {
  Log log;
  {
    Rollback rollback;
    rollback.add("once", [&] { log.push_back("once"); });
    rollback.run();
  }
  EXPECT_EQ(log, (Log{"once"}));
}

}  // namespace
}  // namespace cpi::util
