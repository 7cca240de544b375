// Benchmarks of the ByteStream hot path: AddData / AddGap + Peek + Consume per event.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "conn/byte_stream.h"

namespace zerotrace::conn {
namespace {

constexpr size_t kChunk = 300;

// Every chunk is consumed as soon as it arrives (a parser that keeps up).
void BM_InOrderChunks(benchmark::State& state) {
  const std::string chunk(kChunk, 'x');
  ByteStream stream;
  uint64_t pos = 0;
  for (auto _ : state) {
    stream.AddData(pos, chunk, pos);
    pos += kChunk;
    ByteStream::Front front = stream.Peek();
    benchmark::DoNotOptimize(front.data.data());
    stream.Consume(front.data.size());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * kChunk);
}
BENCHMARK(BM_InOrderChunks);

// Chunks accumulate until a "message" of state.range(0) bytes is complete.
void BM_InOrderChunksWholeMessages(benchmark::State& state) {
  const std::string chunk(kChunk, 'x');
  const size_t message = static_cast<size_t>(state.range(0));
  ByteStream stream;
  uint64_t pos = 0;
  for (auto _ : state) {
    stream.AddData(pos, chunk, pos);
    pos += kChunk;
    ByteStream::Front front = stream.Peek();
    benchmark::DoNotOptimize(front.data.data());
    stream.Consume(front.data.size() - front.data.size() % message);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * kChunk);
}
BENCHMARK(BM_InOrderChunksWholeMessages)->Arg(1000)->Arg(16 * 1024);

// One chunk in a hundred was not captured (lost event or capture limit) and arrives as a gap.
void BM_InOrderChunksWithGaps(benchmark::State& state) {
  const std::string chunk(kChunk, 'x');
  ByteStream stream;
  uint64_t pos = 0;
  uint64_t n = 0;
  for (auto _ : state) {
    if (++n % 100 == 0) {
      stream.AddGap(pos, kChunk, pos);
    } else {
      stream.AddData(pos, chunk, pos);
    }
    pos += kChunk;
    ByteStream::Front front = stream.Peek();
    benchmark::DoNotOptimize(front.data.data());
    stream.Consume(front.gap > 0 ? front.gap : front.data.size());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * kChunk);
}
BENCHMARK(BM_InOrderChunksWithGaps);

// As above, but the parser only takes whole messages of state.range(0) bytes and drops a
// partial one cut short by a gap (resynchronisation).
void BM_InOrderChunksWithGapsWholeMessages(benchmark::State& state) {
  const std::string chunk(kChunk, 'x');
  const size_t message = static_cast<size_t>(state.range(0));
  ByteStream stream;
  uint64_t pos = 0;
  uint64_t n = 0;
  for (auto _ : state) {
    if (++n % 100 == 0) {
      stream.AddGap(pos, kChunk, pos);
    } else {
      stream.AddData(pos, chunk, pos);
    }
    pos += kChunk;
    ByteStream::Front front = stream.Peek();
    benchmark::DoNotOptimize(front.data.data());
    if (front.gap > 0) {
      stream.Consume(front.gap);
    } else if (front.data.size() < message && stream.GapAfterFrontData()) {
      stream.Consume(front.data.size());
    } else {
      stream.Consume(front.data.size() - front.data.size() % message);
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * kChunk);
}
BENCHMARK(BM_InOrderChunksWithGapsWholeMessages)->Arg(1000);

}  // namespace
}  // namespace zerotrace::conn
