// The fiber scheduler of kernels/emu (see emu.h): one block at a time per CPU thread, its CUDA
// threads as Boost.Context fibers resumed round-robin until each reaches a barrier or exits.
#include "kernels/emu/emu.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <exception>
#include <mutex>
#include <string>
#include <vector>

#include <boost/context/detail/exception.hpp>
#include <boost/context/fiber.hpp>
#include <omp.h>

#include "engine/error.h"

namespace deepinside::emu {

namespace ctx = boost::context;

namespace {

// Stacks for the fibers, reused across blocks: mmap'd, with a PROT_NONE guard page below each so
// that an overflow faults instead of corrupting a neighbour. One pool per CPU thread.
class StackPool {
 public:
  static constexpr size_t kStackBytes = 128 * 1024;
  ~StackPool() {
    for (void* base : free_) munmap(base, kStackBytes + page());
  }
  ctx::stack_context allocate() {
    void* base;
    if (!free_.empty()) {
      base = free_.back();
      free_.pop_back();
    } else {
      base = mmap(nullptr, kStackBytes + page(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (base == MAP_FAILED) throw Error("emu: cannot map a fiber stack");
      mprotect(base, page(), PROT_NONE);
    }
    ctx::stack_context sc;
    sc.size = kStackBytes;
    sc.sp = static_cast<char*>(base) + page() + kStackBytes;  // stacks grow down
    return sc;
  }
  void deallocate(ctx::stack_context& sc) {
    free_.push_back(static_cast<char*>(sc.sp) - kStackBytes - page());
  }

 private:
  static size_t page() {
    static const size_t p = size_t(sysconf(_SC_PAGESIZE));
    return p;
  }
  std::vector<void*> free_;
};

// The StackAllocator Boost.Context copies into each fiber: a handle on the thread's pool.
struct PooledStack {
  StackPool* pool;
  ctx::stack_context allocate() { return pool->allocate(); }
  void deallocate(ctx::stack_context& sc) { pool->deallocate(sc); }
};

enum class State { runnable, block_barrier, warp_barrier, done };

struct EmuThread {
  ctx::fiber fiber;         // the thread, suspended (empty once it has exited)
  ctx::fiber to_scheduler;  // the scheduler, while the thread runs
  State state = State::runnable;
  unsigned warp_mask = 0;
  ThreadContext context;
};

thread_local ThreadContext* t_current = nullptr;
thread_local StackPool t_stacks;
std::atomic<int> g_block_threads{0};

}  // namespace

struct BlockState {
  const char* kernel = "";
  std::vector<EmuThread> threads;
  std::vector<uint64_t> exchange;  // warp shuffle slots, one per thread
  size_t shared_high_water = 0;
  std::exception_ptr error;
  alignas(64) unsigned char shared[kSharedBytes];
};

namespace {

thread_local BlockState* t_block_storage = nullptr;

BlockState& block_storage() {
  if (!t_block_storage) t_block_storage = new BlockState;  // one per CPU thread, reused by every block
  return *t_block_storage;
}

// Suspends the running thread (fiber) in state s; returns when the scheduler resumes it.
void suspend(State s) {
  ThreadContext& tc = current_thread();
  EmuThread& t = tc.block->threads[size_t(tc.linear)];
  t.state = s;
  t.to_scheduler = std::move(t.to_scheduler).resume();
}

std::string where(const BlockState& b, const ThreadContext& tc) {
  return std::string("kernel '") + b.kernel + "', block (" + std::to_string(tc.block_idx.x) + "," +
         std::to_string(tc.block_idx.y) + "," + std::to_string(tc.block_idx.z) + ")";
}

// After a sweep in which every live thread ran until it blocked: releases the barriers that every
// participant has reached. Throws where a barrier can never complete (exited or diverged threads).
bool release_barriers(BlockState& b, int n) {
  bool released = false;
  for (int warp = 0; warp * 32 < n; ++warp) {
    const int first = warp * 32, lanes = std::min(32, n - first);
    const unsigned existing = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u);
    unsigned waiting = 0, required = 0, done = 0;
    for (int l = 0; l < lanes; ++l) {
      const EmuThread& t = b.threads[size_t(first + l)];
      if (t.state == State::warp_barrier) {
        waiting |= 1u << l;
        required |= t.warp_mask;
      }
      if (t.state == State::done) done |= 1u << l;
    }
    if (!waiting) continue;
    required &= existing;
    if ((required & waiting) == required) {
      for (int l = 0; l < lanes; ++l)
        if (waiting & (1u << l)) b.threads[size_t(first + l)].state = State::runnable;
      released = true;
    } else if (required & done) {
      throw Error(where(b, b.threads[size_t(first)].context) + ": warp " + std::to_string(warp) +
                  ": a lane named in a shuffle/__syncwarp mask exited before reaching it");
    }
  }
  if (released) return true;
  int at_barrier = 0, done = 0;
  for (const EmuThread& t : b.threads) {
    at_barrier += t.state == State::block_barrier;
    done += t.state == State::done;
  }
  if (at_barrier == 0) return false;
  if (at_barrier + done == n) {
    if (done > 0)
      throw Error(where(b, b.threads[0].context) + ": " + std::to_string(done) +
                  " threads exited while the others wait at __syncthreads (a barrier in divergent code)");
    for (EmuThread& t : b.threads) t.state = State::runnable;
    return true;
  }
  return false;
}

void run_block(BlockState& b, const char* name, dim3 grid, dim3 block, uint3 block_idx,
               const std::function<void()>& body) {
  const int n = int(block.x * block.y * block.z);
  b.kernel = name;
  b.error = nullptr;
  b.shared_high_water = 0;
  b.threads.clear();
  b.threads.resize(size_t(n));
  b.exchange.assign(size_t(n), 0);
  for (int i = 0; i < n; ++i) {
    EmuThread& t = b.threads[size_t(i)];
    t.context.thread_idx = {unsigned(i) % block.x, (unsigned(i) / block.x) % block.y, unsigned(i) / (block.x * block.y)};
    t.context.block_idx = block_idx;
    t.context.block_dim = block;
    t.context.grid_dim = grid;
    t.context.linear = i;
    t.context.block = &b;
    t.fiber = ctx::fiber(std::allocator_arg, PooledStack{&t_stacks}, [&b, i, &body](ctx::fiber&& scheduler) {
      b.threads[size_t(i)].to_scheduler = std::move(scheduler);
      try {
        body();
      } catch (const ctx::detail::forced_unwind&) {
        throw;  // the fiber is being destroyed (an error elsewhere in the block): let it unwind
      } catch (...) {
        if (!b.error) b.error = std::current_exception();
      }
      b.threads[size_t(i)].state = State::done;
      return std::move(b.threads[size_t(i)].to_scheduler);
    });
  }
  struct ClearOnExit {  // destroys suspended fibers (unwinding them) on every way out
    BlockState& b;
    ~ClearOnExit() {
      t_current = nullptr;
      b.threads.clear();
    }
  } clear{b};
  for (;;) {
    bool ran = false;
    for (EmuThread& t : b.threads)
      if (t.state == State::runnable) {
        t_current = &t.context;
        t.fiber = std::move(t.fiber).resume();
        t_current = nullptr;
        ran = true;
      }
    if (b.error) std::rethrow_exception(b.error);
    bool all_done = true;
    for (const EmuThread& t : b.threads) all_done = all_done && t.state == State::done;
    if (all_done) return;
    if (release_barriers(b, n)) continue;
    if (!ran)
      throw Error(where(b, b.threads[0].context) +
                  ": deadlock: threads wait at different barriers (__syncthreads vs a warp barrier)");
    // Threads ran and blocked, but no barrier is complete: only possible when some wait at a warp
    // barrier whose lanes wait at __syncthreads.
    throw Error(where(b, b.threads[0].context) + ": deadlock: a warp barrier and __syncthreads interleave");
  }
}

}  // namespace

ThreadContext& current_thread() {
  if (!t_current) throw Error("emu: a CUDA built-in (threadIdx, __syncthreads, ...) was used outside a kernel");
  return *t_current;
}

void* shared_alloc(size_t bytes, size_t align) {
  ThreadContext& tc = current_thread();
  const size_t offset = (tc.shared_cursor + align - 1) / align * align;
  if (offset + bytes > kSharedBytes)
    throw Error(where(*tc.block, tc) + ": more than " + std::to_string(kSharedBytes) + " bytes of shared memory");
  tc.shared_cursor = offset + bytes;
  BlockState& b = *tc.block;
  if (tc.shared_cursor > b.shared_high_water) {  // fresh shared memory holds garbage: NaN bytes
    std::memset(b.shared + b.shared_high_water, 0xFF, tc.shared_cursor - b.shared_high_water);
    b.shared_high_water = tc.shared_cursor;
  }
  return b.shared + offset;
}

void syncthreads() { suspend(State::block_barrier); }

void syncwarp(unsigned mask) {
  ThreadContext& tc = current_thread();
  tc.block->threads[size_t(tc.linear)].warp_mask = mask;
  suspend(State::warp_barrier);
}

uint64_t warp_exchange(unsigned mask, uint64_t value, int source_lane) {
  ThreadContext& tc = current_thread();
  BlockState& b = *tc.block;
  b.exchange[size_t(tc.linear)] = value;
  syncwarp(mask);  // every lane of the mask has written its slot
  const int base = tc.linear & ~31, n = int(b.threads.size());
  const bool valid = source_lane >= 0 && source_lane < 32 && base + source_lane < n && (mask >> source_lane & 1u);
  const uint64_t out = valid ? b.exchange[size_t(base + source_lane)] : value;
  syncwarp(mask);  // every lane has read before any lane's next shuffle overwrites a slot
  return out;
}

void set_block_threads(int threads) { g_block_threads = threads; }

namespace {
thread_local std::vector<std::function<void()>>* t_capture = nullptr;
}

void begin_capture() {
  if (t_capture) throw Error("emu: begin_capture while already capturing");
  t_capture = new std::vector<std::function<void()>>;
}

bool capturing() { return t_capture != nullptr; }

void record(std::function<void()> work) {
  if (!t_capture) throw Error("emu: record outside a capture");
  t_capture->push_back(std::move(work));
}

std::vector<std::function<void()>> end_capture() {
  if (!t_capture) throw Error("emu: end_capture without begin_capture");
  std::vector<std::function<void()>> recorded = std::move(*t_capture);
  delete t_capture;
  t_capture = nullptr;
  return recorded;
}

void run_grid(const char* name, dim3 grid, dim3 block, const std::function<void()>& body) {
  if (t_capture) {  // recorded for replay, as a launch into a capturing stream is
    t_capture->push_back([name, grid, block, body] {
      std::vector<std::function<void()>>* saved = std::exchange(t_capture, nullptr);
      run_grid(name, grid, block, body);
      t_capture = saved;
    });
    return;
  }
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.y > 65535 || grid.z > 65535)
    throw Error(std::string("kernel '") + name + "': invalid launch configuration: grid (" +
                std::to_string(grid.x) + "," + std::to_string(grid.y) + "," + std::to_string(grid.z) +
                "), block (" + std::to_string(block.x) + "," + std::to_string(block.y) + "," +
                std::to_string(block.z) + ")");
  const int64_t blocks = int64_t(grid.x) * grid.y * grid.z;
  std::exception_ptr first_error;
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  const int requested = g_block_threads.load();
#pragma omp parallel for schedule(dynamic) num_threads(requested > 0 ? requested : omp_get_max_threads()) if (blocks > 1)
  for (int64_t i = 0; i < blocks; ++i) {
    if (failed.load(std::memory_order_relaxed)) continue;
    const uint3 idx{unsigned(i % grid.x), unsigned((i / grid.x) % grid.y), unsigned(i / (int64_t(grid.x) * grid.y))};
    try {
      run_block(block_storage(), name, grid, block, idx, body);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!first_error) first_error = std::current_exception();
      failed = true;
    }
  }
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace deepinside::emu
