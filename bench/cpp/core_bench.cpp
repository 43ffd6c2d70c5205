// The sampling core alone, without Python: cost of one selection step next to a memory floor.
//
// One step = update B random items with new weights, then draw B distinct items (the work a
// sampler with per-batch refresh does once per mini-batch; bench/core_scaling.py times the same
// step through Python). Beside it, two floors measured on an array of n doubles, the size of the
// tree's leaf level:
//   - independent: B random reads whose addresses are known in advance (the memory system
//     overlaps them), the least any structure that touches B random items must pay;
//   - dependent: B random reads, each address computed from the value the previous read returned
//     (no overlap), the latency of one miss times B.
// Also the O(n) rebuild of a RankIndex (assign of n random scores), in wall and processor time.
//
// Usage: bench/cpp/build.sh && build/bench/core_bench [--batch B] [--sizes n1 n2 ...] [--seconds s]
// Prints microseconds per step and per floor (medians of wall time over about s seconds each).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "mlbs/structures/rank_index.hpp"
#include "mlbs/structures/weighted_index.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Processor time of this process: for the long rebuild, which a busy machine would otherwise
// stretch by the time it gives to other processes.
double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// Median microseconds of `step()` over about `budget` seconds (at least 5 steps, after 20 not
// timed), each after an untimed `prepare()`.
template <class Prepare, class Step>
double median_us(Prepare&& prepare, Step&& step, double budget) {
  for (int i = 0; i < 20; ++i) {
    prepare();
    step();
  }
  std::vector<double> times;
  const auto start = Clock::now();
  while (times.size() < 5 || seconds_since(start) < budget) {
    prepare();
    const auto t0 = Clock::now();
    step();
    times.push_back(seconds_since(t0) * 1e6);
  }
  return median(times);
}

volatile double sink;

void run(std::size_t n, std::size_t batch, double budget) {
  std::mt19937_64 gen(n);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  // Allocated like the tree's levels (2 MiB pages where allowed), so the floor pays the same
  // address translation.
  std::vector<double, mlbs::CacheAligned<double>> weights(n);
  for (auto& w : weights) w = unit(gen) + 1e-3;

  mlbs::WeightedIndex index(n, 0);
  index.assign(weights.data());
  std::vector<std::int64_t> idx(batch), out(batch);
  std::vector<double> fresh(batch);
  // The batch's items and weights are made outside the timed part (as in core_scaling.py).
  auto make_batch = [&] {
    for (std::size_t t = 0; t < batch; ++t) {
      idx[t] = static_cast<std::int64_t>(gen() % n);
      fresh[t] = unit(gen) + 1e-3;
    }
  };
  auto sampler_step = [&] {
    index.update(idx.data(), fresh.data(), batch);
    index.draw_distinct(batch, out.data());
  };
  const double step_us = median_us(make_batch, sampler_step, budget);

  // Random positions drawn outside the timed part: only the reads are timed.
  std::vector<std::uint64_t> positions(batch);
  auto independent = [&] {
    double sum = 0.0;
    for (std::size_t t = 0; t < batch; ++t) sum += weights[positions[t]];
    sink = sum;
  };
  auto refresh = [&] {
    for (auto& p : positions) p = gen() % n;
  };
  const double independent_us = median_us(refresh, independent, budget);
  // Dependent: the next position is a hash of the bits read and of a counter of all reads (with
  // the counter the chain never settles into a short cycle that would stay in cache), mapped to
  // [0, n) by a multiply-shift.
  std::uint64_t at = gen() % n, reads = 0;
  auto dependent = [&] {
    for (std::size_t t = 0; t < batch; ++t) {
      std::uint64_t bits;
      std::memcpy(&bits, &weights[at], sizeof bits);
      const std::uint64_t h = (bits ^ ++reads) * 0x9E3779B97F4A7C15ULL;
      at = static_cast<std::uint64_t>((static_cast<unsigned __int128>(h) * n) >> 64);
    }
    sink = static_cast<double>(at);
  };
  const double dependent_us = median_us([] {}, dependent, budget);

  std::printf("%11zu %5zu %12.1f %14.1f %12.1f %12.1fx\n", n, batch, step_us, independent_us, dependent_us,
              step_us / dependent_us);
  std::fflush(stdout);
}

void rank_rebuild(std::size_t n) {
  std::mt19937_64 gen(n + 1);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> scores(n);
  for (auto& s : scores) s = unit(gen);
  mlbs::RankIndex index(n, 0);
  std::vector<double> cpu, wall;
  for (int rep = 0; rep < 3; ++rep) {
    for (auto& s : scores) s = unit(gen);
    const double c0 = cpu_seconds();
    const auto w0 = Clock::now();
    index.assign(scores.data());
    wall.push_back(std::chrono::duration<double>(Clock::now() - w0).count());
    cpu.push_back(cpu_seconds() - c0);
  }
  std::printf("RankIndex.assign of %zu random scores: %.3f s wall, %.3f s of processor time (medians of 3)\n", n,
              median(wall), median(cpu));
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes = {1000000, 10000000};
  std::size_t batch = 256;
  double budget = 1.0;
  std::size_t rank_n = 10000000;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--batch" && a + 1 < argc) batch = std::strtoull(argv[++a], nullptr, 10);
    else if (arg == "--seconds" && a + 1 < argc) budget = std::strtod(argv[++a], nullptr);
    else if (arg == "--rank-n" && a + 1 < argc) rank_n = std::strtoull(argv[++a], nullptr, 10);
    else if (arg == "--sizes") {
      sizes.clear();
      while (a + 1 < argc && argv[a + 1][0] != '-') sizes.push_back(std::strtoull(argv[++a], nullptr, 10));
    } else {
      std::fprintf(stderr, "usage: %s [--batch B] [--sizes n ...] [--seconds s] [--rank-n n]\n", argv[0]);
      return 2;
    }
  }
  std::printf("one step = update B + draw B distinct (mlbs::WeightedIndex, %s paths); floors: B random reads "
              "over n doubles\n",
              mlbs::simd::isa_name(mlbs::simd::active_isa()));
  std::printf("%11s %5s %12s %14s %12s %13s\n", "n", "B", "step us", "independent us", "dependent us",
              "step/depend.");
  for (std::size_t n : sizes) run(n, batch, budget);
  if (rank_n > 0) rank_rebuild(rank_n);
  return 0;
}
