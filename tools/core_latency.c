// Core-to-core latency over time, the diagnostic behind docs/benchmarks.md "Idle threads: spin, then
// sleep": two threads pinned to CPUs 0 and 1 bounce one cache line 200,000 times, then sleep 0.2 s,
// 60 times; each line is "seconds since start: one-way latency in ns". On the development VM it
// flips between ~30 ns (both vCPUs on one L3 complex) and ~165 ns (on two) as the host moves them.
//   cc -O2 -pthread tools/core_latency.c -o /tmp/core_latency && /tmp/core_latency
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}

// The shared line: odd values are written by the main thread, even ones by the responder.
static _Alignas(64) atomic_long turn;

static void* respond(void* unused) {
  (void)unused;
  pin_to(1);
  for (long seen = 1;; seen += 2) {
    while (atomic_load_explicit(&turn, memory_order_acquire) != seen) {
    }
    atomic_store_explicit(&turn, seen + 1, memory_order_release);
  }
  return NULL;
}

int main(void) {
  pin_to(0);
  pthread_t responder;
  pthread_create(&responder, NULL, respond, NULL);
  const int bounces = 200000;
  long value = 0;
  const double start = now_s();
  for (int sample = 0; sample < 60; ++sample) {
    const double t0 = now_s();
    for (int k = 0; k < bounces; ++k) {
      atomic_store_explicit(&turn, value + 1, memory_order_release);
      while (atomic_load_explicit(&turn, memory_order_acquire) != value + 2) {
      }
      value += 2;
    }
    const double round_trip_ns = (now_s() - t0) / bounces * 1e9;
    printf("%.1f s: %.0f ns\n", t0 - start, round_trip_ns / 2);
    fflush(stdout);
    const struct timespec pause = {0, 200000000};
    nanosleep(&pause, NULL);
  }
  return 0;
}
