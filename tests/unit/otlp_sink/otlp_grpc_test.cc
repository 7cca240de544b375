// ThreadPerJob (the threads of delayed gRPC answers) and the arena the service parses into.
#include "otlp_grpc.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace zerotrace::otlp_sink {
namespace {

TEST(ThreadPerJobTest, RunsEveryJobAndJoinsEveryThread) {
  std::atomic<int> ran = 0;
  {
    ThreadPerJob threads("test-job");
    // One after another: each Run joins the threads that finished before it.
    for (int i = 0; i < 20; i++) {
      const int before = ran.load();
      threads.Run([&ran] { ran++; });
      while (ran.load() == before) std::this_thread::yield();
    }
    for (int i = 0; i < 20; i++) threads.Run([&ran] { ran++; });
  }  // a thread left unjoined would std::terminate here
  EXPECT_EQ(ran.load(), 40);
}

TEST(ThreadPerJobTest, JobsWaitConcurrently) {
  constexpr int kJobs = 4;
  std::mutex mu;
  std::condition_variable cv;
  int waiting = 0;
  std::atomic<int> all_met = 0;
  {
    ThreadPerJob threads("test-job");
    for (int i = 0; i < kJobs; i++) {
      threads.Run([&] {
        std::unique_lock lock(mu);
        waiting++;
        cv.notify_all();
        // Returns true only if every job was waiting at the same time.
        if (cv.wait_for(lock, std::chrono::seconds(20), [&] { return waiting == kJobs; })) {
          all_met++;
        }
      });
    }
  }
  EXPECT_EQ(all_met.load(), kJobs);
}

TEST(ArenaMessageAllocatorTest, RequestAndResponseShareAnArenaOfTheirOwn) {
  ArenaMessageAllocator allocator;
  auto* first = allocator.AllocateMessages();
  auto* second = allocator.AllocateMessages();
  ASSERT_NE(first->request()->GetArena(), nullptr);
  EXPECT_EQ(first->request()->GetArena(), first->response()->GetArena());
  EXPECT_NE(first->request()->GetArena(), second->request()->GetArena());
  first->request()->add_resource_spans()->add_scope_spans()->add_spans()->set_name("x");
  EXPECT_EQ(CountSpans(*first->request()), 1);
  first->Release();  // frees the arena with everything on it (LSan would see a leak)
  second->Release();
}

}  // namespace
}  // namespace zerotrace::otlp_sink
