// handle_table.h: stale-safe handles, never reused, per-object serialisation.
#include "service/ws/handle_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <set>
#include <thread>
#include <vector>

namespace wsgate::ws {
namespace {

struct Counted {
  explicit Counted(int v, std::atomic<int>* live = nullptr) : value(v), live_(live) {
    if (live_) ++*live_;
  }
  ~Counted() {
    if (live_) --*live_;
  }
  int value;
  long counter = 0;
  std::atomic<int>* live_;
};

TEST(HandleTable, InsertWithErase) {
  HandleTable<Counted> t;
  std::uint64_t a = t.insert(std::make_unique<Counted>(1));
  std::uint64_t b = t.insert(std::make_unique<Counted>(2));
  EXPECT_NE(a, 0u);
  EXPECT_NE(b, 0u);
  EXPECT_NE(a, b);
  EXPECT_EQ(t.size(), 2u);
  int seen = 0;
  EXPECT_TRUE(t.with(a, [&](Counted& c) { seen = c.value; }));
  EXPECT_EQ(seen, 1);
  EXPECT_TRUE(t.with(b, [&](Counted& c) { seen = c.value; }));
  EXPECT_EQ(seen, 2);
  EXPECT_TRUE(t.erase(a));
  EXPECT_EQ(t.size(), 1u);
  bool ran = false;
  EXPECT_FALSE(t.with(a, [&](Counted&) { ran = true; }));
  EXPECT_FALSE(ran);
  EXPECT_FALSE(t.erase(a));
}

TEST(HandleTable, UnknownNullAndForgedHandles) {
  HandleTable<Counted> t;
  std::uint64_t a = t.insert(std::make_unique<Counted>(1));
  bool ran = false;
  EXPECT_FALSE(t.with(0, [&](Counted&) { ran = true; }));
  EXPECT_FALSE(t.with(a + 1000, [&](Counted&) { ran = true; }));
  EXPECT_FALSE(t.with(~std::uint64_t{0}, [&](Counted&) { ran = true; }));
  EXPECT_FALSE(ran);
  EXPECT_FALSE(t.erase(0));
  EXPECT_FALSE(t.erase(a + 1000));
  EXPECT_EQ(t.size(), 1u);
}

TEST(HandleTable, ValuesAreNeverReused) {
  HandleTable<Counted> t;
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    std::uint64_t h = t.insert(std::make_unique<Counted>(i));
    EXPECT_TRUE(seen.insert(h).second) << h;
    if (i % 2 == 0) {
      EXPECT_TRUE(t.erase(h));
    }
  }
  EXPECT_EQ(t.size(), 500u);
}

TEST(HandleTable, EraseDestroysTheObject) {
  std::atomic<int> live{0};
  {
    HandleTable<Counted> t;
    std::uint64_t a = t.insert(std::make_unique<Counted>(1, &live));
    t.insert(std::make_unique<Counted>(2, &live));
    EXPECT_EQ(live.load(), 2);
    t.erase(a);
    EXPECT_EQ(live.load(), 1);
  }
  EXPECT_EQ(live.load(), 0);  // the table's destructor frees the rest
}

std::uint64_t g_sequence[] = {0, 42, 42, 0, 42, 7, 99};
std::size_t g_next = 0;
std::uint64_t scripted_generator() { return g_sequence[g_next++ % (sizeof(g_sequence) / sizeof(g_sequence[0]))]; }

TEST(HandleTable, GeneratorSkipsZeroAndLiveDuplicates) {
  g_next = 0;
  HandleTable<Counted> t(&scripted_generator);
  EXPECT_EQ(t.insert(std::make_unique<Counted>(1)), 42u);  // 0 skipped
  EXPECT_EQ(t.insert(std::make_unique<Counted>(2)), 7u);   // 42 (live), 0, 42 skipped
  EXPECT_EQ(t.insert(std::make_unique<Counted>(3)), 99u);
  int v = 0;
  EXPECT_TRUE(t.with(7, [&](Counted& c) { v = c.value; }));
  EXPECT_EQ(v, 2);
}

TEST(HandleTable, CallsOnOneHandleAreSerialised) {
  HandleTable<Counted> t;
  std::uint64_t h = t.insert(std::make_unique<Counted>(0));
  constexpr int kThreads = 4;
  constexpr int kIters = 20000;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < kIters; ++j) {
        t.with(h, [](Counted& c) {
          long v = c.counter;  // a non-atomic read-modify-write: only safe under the lock
          c.counter = v + 1;
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  long total = 0;
  t.with(h, [&](Counted& c) { total = c.counter; });
  EXPECT_EQ(total, long{kThreads} * kIters);
}

TEST(HandleTable, ConcurrentEraseIsSafe) {
  HandleTable<Counted> t;
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 200; ++i) ids.push_back(t.insert(std::make_unique<Counted>(i)));
  std::atomic<int> calls{0};
  std::thread user([&] {
    for (int round = 0; round < 50; ++round) {
      for (auto id : ids) {
        if (t.with(id, [&](Counted& c) { c.counter++; })) ++calls;
      }
    }
  });
  std::thread eraser([&] {
    for (auto id : ids) EXPECT_TRUE(t.erase(id));
  });
  user.join();
  eraser.join();
  EXPECT_EQ(t.size(), 0u);
  for (auto id : ids) EXPECT_FALSE(t.with(id, [](Counted&) {}));
}

std::uint64_t failing_generator() { return 0; }  // a CSPRNG that cannot make a value

TEST(HandleTable, FailingGeneratorRefusesInsteadOfSpinning) {
  std::atomic<int> live{0};
  HandleTable<Counted> t(&failing_generator);
  EXPECT_EQ(t.insert(std::make_unique<Counted>(1, &live)), 0u);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(live.load(), 0);  // the refused object is destroyed
}

TEST(HandleTable, AdmissionRunsWithTheCountAndCanRefuse) {
  std::atomic<int> live{0};
  HandleTable<Counted> t;
  int admitted = 0;
  auto at_most_two = [&](std::size_t count, const Counted& c) {
    EXPECT_GE(c.value, 1);
    if (count >= 2) return false;
    ++admitted;  // a caller's count kept in step with the table, under its lock
    return true;
  };
  const std::uint64_t a = t.insert(std::make_unique<Counted>(1, &live), at_most_two);
  const std::uint64_t b = t.insert(std::make_unique<Counted>(2, &live), at_most_two);
  EXPECT_NE(a, 0u);
  EXPECT_NE(b, 0u);
  EXPECT_EQ(t.insert(std::make_unique<Counted>(3, &live), at_most_two), 0u);
  EXPECT_EQ(admitted, 2);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(live.load(), 2);  // the refused one is gone
  EXPECT_TRUE(t.erase(a));
  EXPECT_NE(t.insert(std::make_unique<Counted>(4, &live), at_most_two), 0u);  // room again
}

TEST(HandleTable, EraseWherePicksByPredicateAndReportsEachRemoval) {
  std::atomic<int> live{0};
  HandleTable<Counted> t;
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(t.insert(std::make_unique<Counted>(i, &live)));
  std::vector<int> removed;
  const std::size_t n = t.erase_where([](const Counted& c) { return c.value % 2 == 0; },
                                      [&](const Counted& c) { removed.push_back(c.value); });
  EXPECT_EQ(n, 5u);
  EXPECT_EQ(removed.size(), 5u);
  for (int v : removed) EXPECT_EQ(v % 2, 0);
  EXPECT_EQ(live.load(), 5);  // destroyed once removed
  EXPECT_EQ(t.size(), 5u);
  EXPECT_FALSE(t.with(ids[0], [](Counted&) {}));
  EXPECT_TRUE(t.with(ids[1], [](Counted&) {}));
}

TEST(HandleTable, EraseOneOnlyWhenThePredicateAgrees) {
  HandleTable<Counted> t;
  const std::uint64_t h = t.insert(std::make_unique<Counted>(7));
  int removals = 0;
  auto count = [&](const Counted&) { ++removals; };
  // Another owner's handle: left alone, as an unknown one.
  EXPECT_EQ(t.erase_where(h, [](const Counted& c) { return c.value == 8; }, count), 0u);
  EXPECT_EQ(t.erase_where(h + 1, [](const Counted&) { return true; }, count), 0u);
  EXPECT_EQ(removals, 0);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.erase_where(h, [](const Counted& c) { return c.value == 7; }, count), 1u);
  EXPECT_EQ(removals, 1);
  EXPECT_EQ(t.size(), 0u);
}

}  // namespace
}  // namespace wsgate::ws
