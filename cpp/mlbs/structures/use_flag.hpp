// UseFlag: a per-object flag that says "in use by one caller now". A structure of the core is
// not safe to use from two threads at once; the Python binding sets its flag for the duration
// of each call (InUse below) and refuses a second caller with an error instead of letting the
// two corrupt the structure. One atomic exchange and one store per call: a few nanoseconds.
#pragma once

#include <atomic>

namespace mlbs {

class UseFlag {
 public:
  UseFlag() = default;
  // A copy of an object is a new object, not in use.
  UseFlag(const UseFlag&) noexcept {}
  UseFlag& operator=(const UseFlag&) noexcept { return *this; }

  // Set the flag; false (and nothing changed) when it was set already.
  bool try_acquire() const noexcept { return !busy_.exchange(true, std::memory_order_acquire); }
  void release() const noexcept { busy_.store(false, std::memory_order_release); }

 private:
  mutable std::atomic<bool> busy_{false};
};

}  // namespace mlbs
