// deepinside bench: times the saliency pass (forward + gradient of each image's top class score
// w.r.t. the input + the map) on named workloads, beside the machine's measured peaks (a GEMM probe
// for FLOP/s, a copy probe for bytes/s), and beside PyTorch running the same net and weights in the
// same invocation (tools/bench_pytorch.py), so that every figure has a peer from the same minute.
// Definitions of every column: docs/benchmarks.md.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/model.h"
#include "engine/npy.h"
#include "engine/onnx_export.h"
#include "engine/onnx_import.h"
#include "engine/session.h"
#include "engine/shape_inference.h"
#include "engine/zoo.h"
#include "kernels/cpu_fast/probe.h"
#include "tools/deepinside/commands.h"
#include "tools/deepinside/thread_wait.h"
#include "viz/saliency.h"

#ifndef DEEPINSIDE_TOOLS_DIR
#define DEEPINSIDE_TOOLS_DIR "tools"
#endif

namespace deepinside::cli {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct BenchFlags {
  std::vector<std::string> nets;
  std::string batches = "1";
  std::string device = "cpu", backend;
  std::string json_path;
  bool layers = false, quick = false, no_peer = false, no_fusion = false;
  int repeat = 5, warmup = 1;
  std::string python = "/usr/bin/python3";
  std::string peer_script = std::string(DEEPINSIDE_TOOLS_DIR) + "/bench_pytorch.py";
  std::string rule = "gradient";
  std::string peer_device = "cpu";  // where the PyTorch peer runs: the device of our backend
};

std::vector<int> parse_batches(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    require(!item.empty() && *end == '\0' && v >= 1 && v <= 4096,
            "--batch must be positive integers separated by commas, got '" + text + "'");
    out.push_back(int(v));
  }
  require(!out.empty(), "--batch is empty");
  return out;
}

// The 1-minute load average (/proc/loadavg; -1 where unreadable): the machine is shared, and a
// figure taken while other processes held the cores is slower and noisier, so each net's record
// says what the load was before and after it ran.
double read_loadavg_1min() {
  std::ifstream f("/proc/loadavg");
  double v = -1;
  return f >> v ? v : -1;
}

// VmHWM (peak resident set) of this process in KiB; reset_hwm() lowers it to the current RSS.
int64_t read_hwm_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6);
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}
bool reset_hwm() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  return bool(f.flush());
}

// FLOP and minimum bytes of one image's saliency pass. FLOP: 2 per multiply-accumulate of every
// convolution and matrix product, forward and backward-data (the rest is noise beside them).
// Bytes: every weight read twice (forward, backward) and every activation written once forward and
// its gradient once backward: a lower bound on memory traffic.
struct Work {
  double flop_fwd = 0, flop_bwd = 0;  // per image
  double weight_bytes = 0, activation_bytes = 0;  // activation bytes per image
  std::vector<double> node_flop;      // forward FLOP per image, by node
};

Work count_work(const Graph& g, const std::vector<Shape>& shapes) {
  Work w;
  w.node_flop.assign(g.nodes().size(), 0.0);
  const double batch = double(shapes[g.input()][0]);
  for (size_t n = 0; n < g.nodes().size(); ++n) {
    const Node& node = g.nodes()[n];
    const Shape& out = shapes[node.outputs[0]];
    double macs = 0;
    if (node.kind == OpKind::Conv) {
      const Shape& wt = shapes[node.inputs[1]];
      macs = double(shape_numel(out)) * double(wt[1] * wt[2] * wt[3]);
    } else if (node.kind == OpKind::Gemm) {
      const Shape& a = shapes[node.inputs[0]];
      macs = double(shape_numel(out)) * double(std::get<GemmParams>(node.params).trans_a ? a[0] : a[1]);
    } else if (node.kind == OpKind::MatMul) {
      macs = double(shape_numel(out)) * double(shapes[node.inputs[0]].back());
    }
    w.node_flop[n] = 2.0 * macs / batch;
    w.flop_fwd += w.node_flop[n];
    w.activation_bytes += 4.0 * double(shape_numel(out)) / batch;
  }
  w.flop_bwd = w.flop_fwd;  // backward-data of every conv/FC has the forward's MACs
  for (int id = 0; id < g.value_count(); ++id)
    if (g.value(id).is_constant()) w.weight_bytes += 4.0 * double(g.value(id).constant->numel());
  return w;
}

struct Stats {
  double median = 0, min = 0, max = 0;
};
Stats stats_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Stats s;
  s.min = v.front();
  s.max = v.back();
  const size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  return s;
}

struct Net {
  std::string name, source;  // display name; "zoo" or the file
  Model model;
  std::string onnx_for_peer;  // the file PyTorch reads
};

Net load_net(const std::string& spec, const std::filesystem::path& tmp, bool need_peer_file) {
  Net net;
  if (is_zoo_name(spec)) {
    net.name = spec;
    net.source = "zoo (seeded He-initialised weights)";
    net.model.graph = zoo_graph(spec);
    if (need_peer_file) {
      net.onnx_for_peer = (tmp / (spec + ".onnx")).string();
      write_onnx(net.model.graph, net.onnx_for_peer, spec);
    }
  } else {
    require(std::filesystem::exists(spec), "--net '" + spec + "' is neither a zoo net (" +
                                               "simonyan13, alexnet, vgg16) nor an existing ONNX file");
    net.name = std::filesystem::path(spec).stem().string();
    net.source = spec;
    net.model.graph = import_onnx_file(spec);
    net.onnx_for_peer = spec;
  }
  Graph& g = net.model.graph;
  const Shape& declared = g.value(g.input()).declared_shape;
  require(declared.size() == 4 && declared[1] > 0 && declared[2] > 0 && declared[3] > 0,
          "bench: the input of '" + spec + "' must declare its (C,H,W) size, got " + shape_to_string(declared));
  net.model.channels = int(declared[1]);
  net.model.height = int(declared[2]);
  net.model.width = int(declared[3]);
  net.model.scores_value = g.default_scores_value();
  const auto shapes = infer_graph_shapes(g, Shape{1, declared[1], declared[2], declared[3]});
  net.model.classes = int(shape_numel(shapes[net.model.scores_value]));
  return net;
}

Tensor random_input(const Shape& shape, uint64_t seed) {
  Tensor t(shape);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = d(rng);
  return t;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

bool cpu_has_avx512() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

// Runs the PyTorch peer; returns its JSON, or a JSON {"skipped": why}.
json run_peer(const BenchFlags& f, const Net& net, const std::vector<int>& batches, int repeat, int warmup, int threads,
              const std::filesystem::path& tmp, const std::string& check_in, const std::string& check_out) {
  if (!std::filesystem::exists(f.peer_script)) return json{{"skipped", "no peer script at " + f.peer_script}};
  if (std::system((shell_quote(f.python) + " -c 'import torch, onnx' >/dev/null 2>&1").c_str()) != 0)
    return json{{"skipped", f.python + " cannot import torch and onnx (apt-get install python3-torch python3-onnx)"}};
  std::string batch_list;
  for (int b : batches) batch_list += (batch_list.empty() ? "" : ",") + std::to_string(b);
  const std::string out_json = (tmp / (net.name + "_peer.json")).string();
  std::string env = "OMP_NUM_THREADS=" + std::to_string(threads);
  // The peer keeps libgomp's own wait policy (the user's, if set): PyTorch measured slower with
  // deepinside's shorter spin (docs/benchmarks.md, "Idle threads: spin, then sleep").
  if (spin_count_defaulted()) env = "-u GOMP_SPINCOUNT -u " + std::string(kSpinCountMarker) + " " + env;
  // PyTorch at its best on this machine: Debian's torch takes whatever libblas.so.3 resolves to;
  // OpenBLAS (libopenblas0-openmp) is put first, with its AVX-512 kernels selected where the CPU
  // has them (OpenBLAS 0.3.21 does not recognise Zen 4 and would pick slower ones).
  const char* openblas_dir = "/usr/lib/x86_64-linux-gnu/openblas-openmp";
  if (std::filesystem::exists(openblas_dir)) {
    const char* old = std::getenv("LD_LIBRARY_PATH");
    env += " LD_LIBRARY_PATH=" + shell_quote(std::string(openblas_dir) + (old && *old ? ":" + std::string(old) : ""));
  }
  if (!std::getenv("OPENBLAS_CORETYPE") && cpu_has_avx512()) env += " OPENBLAS_CORETYPE=SkylakeX";
  const std::string cmd = "env " + env + " " + shell_quote(f.python) + " " + shell_quote(f.peer_script) +
                          " --model " + shell_quote(net.onnx_for_peer) + " --batch " + batch_list + " --repeat " +
                          std::to_string(repeat) + " --warmup " + std::to_string(warmup) + " --threads " +
                          std::to_string(threads) + " --device " + f.peer_device + " --scores-value " +
                          shell_quote(net.model.graph.value(net.model.scores_value).name) + " --check-input " +
                          shell_quote(check_in) + " --check-output " + shell_quote(check_out) + " --json " +
                          shell_quote(out_json) + " >" + shell_quote((tmp / "peer.log").string()) + " 2>&1";
  const int rc = std::system(cmd.c_str());
  if (rc != 0 || !std::filesystem::exists(out_json)) {
    std::ifstream log(tmp / "peer.log");
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    throw Error("the PyTorch peer failed (exit " + std::to_string(rc) + "): " + text.substr(0, 2000));
  }
  std::ifstream in(out_json);
  return json::parse(in);
}

std::string fmt(double v, int precision = 1) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(precision) << v;
  return o.str();
}

void print_layers(const Net& net, const Session& s, const std::vector<double>& fwd, const std::vector<double>& bwd,
                  const Work& work, int batch, double peak_gflops, json& out) {
  const auto& nodes = net.model.graph.nodes();
  double total = 0;
  for (size_t n = 0; n < nodes.size(); ++n) total += fwd[n] + bwd[n];
  std::cout << "  per layer (batch " << batch << ", mean of the timed runs; GFLOP/s of conv/FC forward and "
            << "backward-data, % of the measured GEMM peak):\n"
            << "    " << std::left << std::setw(14) << "node" << std::setw(10) << "op" << std::setw(18) << "output"
            << std::right << std::setw(10) << "fwd ms" << std::setw(10) << "bwd ms" << std::setw(8) << "share"
            << std::setw(11) << "fwd GF/s" << std::setw(11) << "bwd GF/s" << std::setw(8) << "%peak" << "\n";
  for (size_t n = 0; n < nodes.size(); ++n) {
    const double flop = work.node_flop[n] * batch;
    json row{{"node", nodes[n].name}, {"op", op_name(nodes[n].kind)},
             {"output", shape_to_string(s.shape(nodes[n].outputs[0]))}, {"forward_ms", fwd[n] * 1e3},
             {"backward_ms", bwd[n] * 1e3}, {"share", total > 0 ? (fwd[n] + bwd[n]) / total : 0.0}};
    std::cout << "    " << std::left << std::setw(14) << nodes[n].name.substr(0, 13) << std::setw(10)
              << op_name(nodes[n].kind) << std::setw(18) << shape_to_string(s.shape(nodes[n].outputs[0]));
    if (s.node_skipped(int(n))) {  // fused: its time is in its producer's row, or it copies nothing
      row["fused"] = true;
      std::cout << std::right << std::setw(20)
                << (nodes[n].kind == OpKind::Relu ? "in producer" : "zero-copy") << "\n";
      out.push_back(row);
      continue;
    }
    std::cout << std::right << std::setw(10) << fmt(fwd[n] * 1e3, 2) << std::setw(10) << fmt(bwd[n] * 1e3, 2)
              << std::setw(7) << fmt(100 * (fwd[n] + bwd[n]) / total) << "%";
    if (flop > 0) {
      const double gf = fwd[n] > 0 ? flop / fwd[n] / 1e9 : 0, gb = bwd[n] > 0 ? flop / bwd[n] / 1e9 : 0;
      const double both = (fwd[n] + bwd[n]) > 0 ? (bwd[n] > 0 ? 2 : 1) * flop / (fwd[n] + bwd[n]) / 1e9 : 0;
      std::cout << std::setw(11) << fmt(gf) << std::setw(11) << (bwd[n] > 0 ? fmt(gb) : "-") << std::setw(7)
                << fmt(100 * both / peak_gflops) << "%";
      row["forward_gflops"] = gf;
      row["backward_gflops"] = gb;
      row["fraction_of_peak"] = both / peak_gflops;
    }
    std::cout << "\n";
    out.push_back(row);
  }
}

void run_bench(const BenchFlags& f0) {
  BenchFlags f = f0;
  if (f.quick) {
    f.repeat = 1;
    f.warmup = 0;
  }
  require(f.repeat >= 1 && f.warmup >= 0, "--repeat must be >= 1 and --warmup >= 0");
  const BackwardRule rule = parse_rule(f.rule);
  const std::vector<int> batches = parse_batches(f.batches);
  std::vector<std::string> nets = f.nets;
  if (nets.empty()) nets = zoo_names();
  const std::string backend_name = f.backend.empty() ? f.device : f.backend;
  auto backend = make_backend(backend_name);
  // GPU backends ("cuda", "cudnn"): PyTorch runs on the same GPU, the device's nominal FP32 and DRAM
  // peaks replace the CPU probes, and every pass after the first replays a CUDA graph.
  DeviceRuntime* const gpu = backend->device_runtime();
  const bool on_gpu = gpu && (backend->name() == "cuda" || backend->name() == "cudnn");
  if (on_gpu) f.peer_device = "cuda";
  const bool peer = !f.no_peer && (f.device == "cpu" || on_gpu);

  cpu_fast::MachinePeak peak = cpu_fast::probe_machine(f.quick ? 0.3 : 1.5);
  if (on_gpu && gpu->peaks().fp32_gflops > 0) {
    peak.gemm_gflops = gpu->peaks().fp32_gflops;
    peak.copy_gbps = gpu->peaks().dram_gbps;
    std::cout << "device: " << gpu->name() << ", nominal FP32 peak " << fmt(peak.gemm_gflops) << " GFLOP/s, DRAM "
              << fmt(peak.copy_gbps) << " GB/s (the percentages below are of these)\n";
  }
  char host[256] = "";
  gethostname(host, sizeof(host) - 1);
  std::cout << "deepinside bench: saliency = forward + d(top-1 score)/d(input) + map, rule " << rule_name(rule)
            << "\nmachine: " << peak.threads << " threads; measured peaks: SGEMM " << fmt(peak.gemm_gflops)
            << " GFLOP/s (own " << peak.kernel << " kernel " << fmt(peak.own_gemm_gflops) << ", Eigen "
            << fmt(peak.eigen_gemm_gflops) << "; FMA-loop ceiling " << fmt(peak.fma_gflops) << "), copy "
            << fmt(peak.copy_gbps) << " GB/s; idle threads: " << thread_wait_description() << "\n"
            << "timing: " << f.warmup << " warm-up + " << f.repeat << " timed runs per batch; ms/image is the "
            << "median, spread = (min..max) of the timed runs\n";

  const std::filesystem::path tmp =
      std::filesystem::temp_directory_path() / ("deepinside-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(tmp);
  struct Cleanup {
    std::filesystem::path p;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(p, ec);
    }
  } cleanup{tmp};

  json report{{"tool", "deepinside bench"},
              {"rule", rule_name(rule)},
              {"device", on_gpu ? gpu->name() : std::string("cpu")},
              {"machine",
               {{"threads", peak.threads}, {"host", host}, {"gemm_gflops", peak.gemm_gflops},
                {"own_gemm_gflops", peak.own_gemm_gflops}, {"eigen_gemm_gflops", peak.eigen_gemm_gflops},
                {"fma_gflops", peak.fma_gflops}, {"copy_gbps", peak.copy_gbps}, {"kernel", peak.kernel},
                {"thread_wait", thread_wait_description()}}},
              {"repeat", f.repeat},
              {"warmup", f.warmup},
              {"results", json::array()}};

  for (const std::string& spec : nets) {
    Net net = load_net(spec, tmp, peer);
    const Graph& g = net.model.graph;
    const Shape chw{net.model.channels, net.model.height, net.model.width};
    const std::vector<Shape> shapes1 = infer_graph_shapes(g, Shape{1, chw[0], chw[1], chw[2]});
    const Work work = count_work(g, shapes1);
    std::cout << "\n== " << net.name << "  (" << net.source << ")  input " << shape_to_string(chw) << ", "
              << fmt(g.parameter_count() / 1e6, 1) << " M weights, " << fmt((work.flop_fwd + work.flop_bwd) / 1e9, 2)
              << " GFLOP per image (forward + backward-data)\n";

    // Our scores on a fixed input, for the check against PyTorch.
    const std::string check_in = (tmp / (net.name + "_check_in.npy")).string();
    const std::string check_out = (tmp / (net.name + "_check_torch.npy")).string();
    Tensor check_scores;
    if (peer) {
      const Tensor x = random_input(Shape{1, chw[0], chw[1], chw[2]}, 7);
      write_npy(check_in, x.data(), x.shape());
      Session s(g, *backend, x.shape());
      s.forward(x);
      check_scores = s.value(net.model.scores_value).clone();
    }

    json net_json{{"net", net.name}, {"source", net.source}, {"backend", backend->name()},
                  {"gflop_per_image", (work.flop_fwd + work.flop_bwd) / 1e9},
                  {"weights", g.parameter_count()}, {"batches", json::array()},
                  {"loadavg_1min_before", read_loadavg_1min()}};
    std::vector<double> ours_median;
    for (int batch : batches) {
      const bool hwm_reset = reset_hwm();
      const Shape shape{batch, chw[0], chw[1], chw[2]};
      Session session(g, *backend, shape, SessionOptions{!f.no_fusion, {net.model.scores_value}});
      session.set_graph_replay(on_gpu);
      const Tensor x = random_input(shape, 11 + batch);
      const std::vector<int> classes(batch, -1);
      for (int i = 0; i < f.warmup; ++i) viz::compute_saliency(session, net.model, x, classes, rule);
      std::vector<double> secs;
      for (int i = 0; i < f.repeat; ++i) {
        const auto t0 = Clock::now();
        viz::compute_saliency(session, net.model, x, classes, rule);
        secs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      }
      const int64_t hwm = read_hwm_kb();
      const Stats st = stats_of(secs);
      const double per_image = st.median / batch;
      const double gflops = (work.flop_fwd + work.flop_bwd) / per_image / 1e9;
      const double bytes = 2.0 * work.weight_bytes / batch + 2.0 * work.activation_bytes;  // per image
      const double gbps = bytes / per_image / 1e9;
      ours_median.push_back(per_image);
      std::cout << "  " << backend->name() << "  batch " << std::setw(3) << batch << ": " << std::setw(9)
                << fmt(per_image * 1e3, 2) << " ms/image (" << fmt(st.min / batch * 1e3, 2) << ".."
                << fmt(st.max / batch * 1e3, 2) << ")  " << std::setw(7) << fmt(1.0 / per_image, 1)
                << " images/s  " << std::setw(6) << fmt(gflops) << " GFLOP/s (" << fmt(100 * gflops / peak.gemm_gflops)
                << "% of peak)  " << fmt(gbps) << " GB/s (" << fmt(100 * gbps / peak.copy_gbps) << "% of copy)  peak RSS "
                << fmt(hwm / 1024.0) << " MB\n";
      json b{{"batch", batch}, {"seconds", secs}, {"ms_per_image", per_image * 1e3},
             {"ms_per_image_min", st.min / batch * 1e3}, {"ms_per_image_max", st.max / batch * 1e3},
             {"images_per_s", 1.0 / per_image}, {"gflops", gflops}, {"fraction_of_gemm_peak", gflops / peak.gemm_gflops},
             {"gbps", gbps}, {"fraction_of_copy_peak", gbps / peak.copy_gbps}, {"peak_rss_kb", hwm},
             {"peak_is_per_batch", hwm_reset}, {"fused_relus", session.fused_relus()},
             {"zero_copy_concats", session.zero_copy_concats()}};
      if (session.fused_relus() + session.zero_copy_concats() > 0)
        std::cout << "             fusion: " << session.fused_relus() << " Relus computed by their producers, "
                  << session.zero_copy_concats() << " Concats zero-copy\n";
      if (f.layers) {
        session.set_node_timing(true);
        std::vector<double> fwd(g.nodes().size(), 0.0), bwd(g.nodes().size(), 0.0);
        for (int i = 0; i < f.repeat; ++i) {
          viz::compute_saliency(session, net.model, x, classes, rule);
          for (size_t n = 0; n < fwd.size(); ++n) {
            fwd[n] += session.forward_seconds()[n] / f.repeat;
            bwd[n] += session.backward_seconds()[n] / f.repeat;
          }
        }
        json layers = json::array();
        print_layers(net, session, fwd, bwd, work, batch, peak.gemm_gflops, layers);
        b["layers"] = layers;
      }
      net_json["batches"].push_back(b);
    }

    if (peer) {
      const json p = run_peer(f, net, batches, f.repeat, f.warmup, peak.threads, tmp, check_in, check_out);
      net_json["pytorch"] = p;
      if (p.contains("skipped")) {
        std::cout << "  pytorch: skipped (" << p["skipped"].get<std::string>() << ")\n";
      } else {
        // Same net, same weights: the scores must agree before any time is compared.
        const Tensor torch_scores = read_npy_tensor(check_out);
        require(torch_scores.numel() == check_scores.numel(), "the PyTorch peer returned " +
                                                                  std::to_string(torch_scores.numel()) + " scores, ours " +
                                                                  std::to_string(check_scores.numel()));
        double max_diff = 0, max_abs = 0;
        for (int64_t i = 0; i < check_scores.numel(); ++i) {
          max_diff = std::max(max_diff, double(std::fabs(torch_scores[i] - check_scores[i])));
          max_abs = std::max(max_abs, double(std::fabs(check_scores[i])));
        }
        const bool match = max_diff <= 1e-3 * std::max(1.0, max_abs);
        net_json["scores_max_abs_diff"] = max_diff;
        net_json["scores_max_abs"] = max_abs;
        std::string blas;
        for (const auto& lib : p["blas"]) blas += (blas.empty() ? "" : ", ") + lib.get<std::string>();
        std::cout << "  pytorch " << p["torch"].get<std::string>() << " (" << p["threads"].get<int>()
                  << " threads, BLAS " << (blas.empty() ? "?" : blas)
                  << (p["openblas_coretype"].get<std::string>().empty()
                          ? ""
                          : ", OPENBLAS_CORETYPE=" + p["openblas_coretype"].get<std::string>())
                  << "): scores on a check input differ by at most " << max_diff << " (max |score| " << max_abs
                  << ")\n";
        require(match, "PyTorch's scores differ from ours on the check input (max |diff| " + std::to_string(max_diff) +
                           "): the peer does not run the same net");
        for (size_t i = 0; i < p["batches"].size(); ++i) {
          const json& pb = p["batches"][i];
          const int batch = pb["batch"].get<int>();
          const double theirs = pb["median_s"].get<double>() / batch;
          std::vector<double> ts = pb["seconds"].get<std::vector<double>>();
          const Stats st = stats_of(ts);
          const double ratio = theirs / ours_median[i];
          std::cout << "  pytorch  batch " << std::setw(3) << batch << ": " << std::setw(9) << fmt(theirs * 1e3, 2)
                    << " ms/image (" << fmt(st.min / batch * 1e3, 2) << ".." << fmt(st.max / batch * 1e3, 2) << ")  "
                    << std::setw(7) << fmt(1.0 / theirs, 1) << " images/s  peak RSS "
                    << fmt(pb["peak_rss_kb"].get<double>() / 1024.0) << " MB   ours is " << fmt(ratio, 2)
                    << "x PyTorch's speed\n";
          net_json["batches"][i]["pytorch_ms_per_image"] = theirs * 1e3;
          net_json["batches"][i]["pytorch_peak_rss_kb"] = pb["peak_rss_kb"];
          net_json["batches"][i]["speedup_vs_pytorch"] = ratio;
        }
      }
    }
    net_json["loadavg_1min_after"] = read_loadavg_1min();
    std::cout << "  load average (1 min) before / after this net: " << fmt(net_json["loadavg_1min_before"].get<double>(), 2)
              << " / " << fmt(net_json["loadavg_1min_after"].get<double>(), 2) << "\n";
    report["results"].push_back(net_json);
  }
  if (!f.json_path.empty()) {
    std::ofstream out(f.json_path);
    require(bool(out), "cannot write --json file '" + f.json_path + "'");
    out << report.dump(2) << "\n";
    std::cout << "\nwrote " << f.json_path << "\n";
  }
}

}  // namespace

void register_bench(CLI::App& app, std::function<void()>& run) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* cmd = app.add_subcommand("bench", "time the saliency pass beside the machine's peaks and PyTorch");
  cmd->add_option("--net", flags->nets, "zoo name (simonyan13, alexnet, vgg16) or ONNX file; repeatable "
                                        "(default: the three zoo nets)");
  cmd->add_option("--batch", flags->batches, "batch sizes, e.g. 1,16,64")->capture_default_str();
  cmd->add_option("--device", flags->device, "cpu (cuda in CUDA builds)")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--backend", flags->backend, "backend name (default: the device's own; cpu-reference for the "
                                               "plain loops)");
  cmd->add_option("--json", flags->json_path, "also write the results as JSON to this file");
  cmd->add_flag("--layers", flags->layers, "per-layer breakdown (time, share, GFLOP/s)");
  cmd->add_option("--repeat", flags->repeat, "timed runs per batch size")->capture_default_str();
  cmd->add_option("--warmup", flags->warmup, "untimed runs first")->capture_default_str();
  cmd->add_flag("--quick", flags->quick, "smoke mode: one run, no warm-up, short probes");
  cmd->add_flag("--no-peer", flags->no_peer, "do not run the PyTorch peer");
  cmd->add_flag("--no-fusion", flags->no_fusion,
                "plan the session without fused Relus and zero-copy Concats (docs/fusion.md)");
  cmd->add_option("--python", flags->python, "Python with torch for the peer")->capture_default_str();
  cmd->add_option("--peer-script", flags->peer_script, "the peer script")->capture_default_str();
  cmd->add_option("--rule", flags->rule, "gradient|deconvnet|guided")->capture_default_str();
  cmd->callback([flags, &run] { run = [flags] { run_bench(*flags); }; });
}

}  // namespace deepinside::cli
