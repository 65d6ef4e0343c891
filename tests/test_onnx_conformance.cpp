// ONNX's own conformance vectors, from the Debian package libonnx-testdata, run through onnx_import
// + Session on the CPU reference backend: the node tests (one op each) and the pytorch-converted
// tests (whole torch.nn layers with weights, exported at opset 6).
//
// Table-driven: one TEST_CASE per group of op families. Each family names the test directories it
// owns by a pattern; every directory found on disk either runs and must match ONNX's expected
// outputs, or is on the family's skip list with a reason. A directory that is on no skip list and
// fails or throws fails the test, and so does a skip-list entry whose documented import error no
// longer happens (the list is stale then). Each family prints one summary line (on disk / ran /
// passed / skipped), with its skips and notes: docs/onnx-support.md copies them.
// Without the package the tests pass with a warning; DEEPINSIDE_ONNX_TESTDATA names another data/.
//
// Rewrites, each noted in the summary:
// - The engine reads ONE data input per graph. ONNX node tests pass weights, second operands, shapes,
//   bounds... as further graph inputs, so every graph input after the first is moved into the
//   initializers, holding that data set's input_k.pb (for Add/Sub/Mul/Div/Concat/Max/Sum every
//   operand but the first becomes a constant).
// - Models below opset 7 (which the importer refuses, checked) are relabelled to opset 7 where their
//   op means the same there; the family says why.
// - ConvTranspose is not an engine op: it is Conv's input gradient. Its tests build a Conv with the
//   same weights, strides, dilations and begin pads whose input has the ConvTranspose's output
//   shape, and check that Session::backward_input seeded with the ConvTranspose's X equals its Y.
// - MaxPool's Indices output is compared with the engine's switches (index h*W + w in the plane).
//
// Tolerances (DESIGN.md Sec. 4): |x - ref| <= 1e-4 |ref| + 1e-5, plus 2e-5 sqrt(K) for ops that
// reduce over K products (Conv, ConvTranspose, Gemm, MatMul); exact for Relu, MaxPool values and
// switches, and the ops that only move or select values.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/graph.h"
#include "engine/onnx_import.h"
#include "engine/session.h"

namespace fs = std::filesystem;
using namespace deepinside;

namespace {

// ---------------------------------------------------------------------------------------------
// Test data on disk

// The data/ folder of libonnx-testdata; its suites are the subfolders node/ and pytorch-converted/.
fs::path testdata_dir() {
  if (const char* env = std::getenv("DEEPINSIDE_ONNX_TESTDATA")) return env;
  return "/usr/share/libonnx-testdata/data";
}

// False (with a warning naming the package) when the suite is not installed.
bool have_suite(const std::string& suite) {
  if (fs::is_directory(testdata_dir() / suite)) return true;
  WARN("SKIPPED: ONNX test data not found at " << (testdata_dir() / suite).string()
                                               << " (install the Debian package libonnx-testdata, or set "
                                                  "DEEPINSIDE_ONNX_TESTDATA to its data/ folder)");
  return false;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  require(bool(in), "cannot open '" + path.string() + "'");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

onnx::ModelProto load_model(const fs::path& path) {
  onnx::ModelProto m;
  require(m.ParseFromString(read_bytes(path)), "'" + path.string() + "' is not an ONNX model");
  return m;
}

onnx::TensorProto load_tensor_proto(const fs::path& path) {
  onnx::TensorProto t;
  require(t.ParseFromString(read_bytes(path)), "'" + path.string() + "' is not a serialized TensorProto");
  return t;
}

struct DataSet {
  std::vector<fs::path> inputs, outputs;  // input_0.pb ..., output_0.pb ...
};

std::vector<DataSet> data_sets(const fs::path& test_dir) {
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(test_dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  std::vector<DataSet> sets;
  for (const auto& d : dirs) {
    DataSet s;
    for (int i = 0; fs::exists(d / ("input_" + std::to_string(i) + ".pb")); ++i)
      s.inputs.push_back(d / ("input_" + std::to_string(i) + ".pb"));
    for (int i = 0; fs::exists(d / ("output_" + std::to_string(i) + ".pb")); ++i)
      s.outputs.push_back(d / ("output_" + std::to_string(i) + ".pb"));
    sets.push_back(std::move(s));
  }
  require(!sets.empty(), "no test_data_set_* in '" + test_dir.string() + "'");
  return sets;
}

// Test directory names matching a family's pattern, sorted.
std::vector<std::string> matching_tests(const std::string& suite, const std::string& pattern) {
  const std::regex re(pattern);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(testdata_dir() / suite)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && std::regex_match(name, re)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// ---------------------------------------------------------------------------------------------
// Model rewriting

// The graph inputs that are not initializers, in order (= the order of input_k.pb).
std::vector<std::string> variable_inputs(const onnx::GraphProto& g) {
  std::vector<std::string> names;
  for (const auto& in : g.input()) {
    bool is_init = false;
    for (const auto& init : g.initializer()) is_init = is_init || init.name() == in.name();
    if (!is_init) names.push_back(in.name());
  }
  return names;
}

// Moves graph inputs 1..k into the initializers with this data set's values.
void freeze_extra_inputs(onnx::ModelProto& m, const DataSet& ds) {
  const std::vector<std::string> names = variable_inputs(m.graph());
  require(names.size() == ds.inputs.size(), "the model has " + std::to_string(names.size()) +
                                                " variable inputs, the data set " + std::to_string(ds.inputs.size()));
  for (size_t i = 1; i < names.size(); ++i) {
    onnx::TensorProto t = load_tensor_proto(ds.inputs[i]);
    t.set_name(names[i]);
    *m.mutable_graph()->add_initializer() = std::move(t);
  }
}

int model_opset(const onnx::ModelProto& m) {
  int opset = 0;
  for (const auto& op : m.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") opset = int(op.version());
  return opset;
}

void set_opset(onnx::ModelProto& m, int opset) {
  for (auto& op : *m.mutable_opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") op.set_version(opset);
}

const onnx::TensorProto& initializer(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& init : m.graph().initializer())
    if (init.name() == name) return init;
  throw Error("no initializer '" + name + "'");
}

// A float TensorProto (raw_data or float_data) as a Tensor.
Tensor float_tensor(const onnx::TensorProto& t) {
  require(t.data_type() == onnx::TensorProto::FLOAT, "tensor '" + t.name() + "' is not float");
  Tensor out(Shape(t.dims().begin(), t.dims().end()));
  if (!t.raw_data().empty()) {
    require(t.raw_data().size() == size_t(out.numel()) * sizeof(float), "tensor '" + t.name() + "': bad raw_data size");
    std::memcpy(out.data(), t.raw_data().data(), t.raw_data().size());
  } else {
    require(t.float_data_size() == out.numel(), "tensor '" + t.name() + "': bad float_data size");
    std::copy(t.float_data().begin(), t.float_data().end(), out.data());
  }
  return out;
}

const onnx::AttributeProto* find_attr(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}
std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const std::string& name) {
  const auto* a = find_attr(n, name);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : std::vector<int64_t>{};
}
int64_t attr_int(const onnx::NodeProto& n, const std::string& name, int64_t fallback) {
  const auto* a = find_attr(n, name);
  return a ? a->i() : fallback;
}

Graph import_model(const onnx::ModelProto& m, const std::string& name) {
  std::string bytes;
  require(m.SerializeToString(&bytes), "cannot serialize the rewritten model '" + name + "'");
  return import_onnx_bytes(bytes, name);
}

// ---------------------------------------------------------------------------------------------
// Comparison

struct Tolerance {
  bool exact = false;
  double rel = 1e-4, abs = 1e-5;
};
const Tolerance kExact{true, 0.0, 0.0};
const Tolerance kDefault{};
Tolerance with_reduction(int64_t k) { return Tolerance{false, 1e-4, 1e-5 + 2e-5 * std::sqrt(double(k))}; }

// Empty when actual matches expected (shape and values), else a description of the mismatch.
std::string compare(const Tensor& actual, const Tensor& expected, const Tolerance& tol, const std::string& what) {
  if (actual.shape() != expected.shape())
    return what + ": shape " + shape_to_string(actual.shape()) + ", expected " + shape_to_string(expected.shape());
  int64_t bad = 0;
  std::ostringstream first;
  for (int64_t i = 0; i < actual.numel(); ++i) {
    const double a = actual[i], e = expected[i];
    const bool ok =
        (std::isnan(a) && std::isnan(e)) || (tol.exact ? a == e : std::abs(a - e) <= tol.rel * std::abs(e) + tol.abs);
    if (!ok && bad++ < 3) first << " [" << i << "] got " << a << ", expected " << e << ";";
  }
  if (bad == 0) return {};
  return what + ": " + std::to_string(bad) + " of " + std::to_string(actual.numel()) + " elements differ" +
         (tol.exact ? " (exact)" : "") + ":" + first.str();
}

// ---------------------------------------------------------------------------------------------
// Families

// A test that does not run. With import_error set, the test still imports the model (extra inputs
// frozen) and requires an Error whose message contains import_error: the documented limit is checked.
struct Skip {
  std::string test;
  std::string reason;
  std::string import_error;  // empty: not run at all (the reason says why)
};

struct Report {
  int on_disk = 0, ran = 0, passed = 0;
  std::vector<std::pair<std::string, std::string>> skipped;  // test, reason
  std::vector<std::string> notes;                            // rewrites the run made, per test
  std::vector<std::string> failures;
};

struct Family;
// Runs one test directory; returns an empty string on success, else what failed. May add notes.
using Runner =
    std::function<std::string(const Family& f, const std::string& test, const fs::path& dir, Report& report)>;

// Models below opset 7 that the importer refuses although their op is unchanged up to opset 7: the
// family raises their opset_import to 7 (after checking that the original is refused for its opset).
struct Relabel {
  int below = 0;       // relabel models whose opset is below this; 0: never
  std::string reason;  // why the op means the same at opset `below`
};

struct Family {
  std::string name;
  std::string pattern;  // regex over directory names
  std::vector<Skip> skips;
  Runner run;
  std::string suite = "node";
  Relabel relabel = {};
};

// The model of one data set, ready to import: extra inputs frozen, opset relabelled where the family
// says so (the original's refusal checked first). Notes what it changed.
onnx::ModelProto prepare_model(const Family& f, const std::string& test, const fs::path& dir, const DataSet& ds,
                               Report* report) {
  onnx::ModelProto m = load_model(dir / "model.onnx");
  freeze_extra_inputs(m, ds);
  const int opset = model_opset(m);
  if (opset < f.relabel.below) {
    try {
      import_model(m, test);
      throw Error("imports at opset " + std::to_string(opset) + ": drop the family's opset relabel");
    } catch (const Error& e) {
      require(std::string(e.what()).find("opset " + std::to_string(opset)) != std::string::npos,
              std::string("expected an opset error, got: ") + e.what());
    }
    set_opset(m, f.relabel.below);
    if (report)
      report->notes.push_back(test + ": opset " + std::to_string(opset) + " relabelled to " +
                              std::to_string(f.relabel.below) + " (" + f.relabel.reason + ")");
  }
  return m;
}

void print_report(const Family& f, const Report& r) {
  std::cout << "[onnx-conformance] " << f.suite << " / " << f.name << ": " << r.on_disk << " on disk, " << r.ran
            << " ran, " << r.passed << " passed, " << r.skipped.size() << " skipped\n";
  for (const auto& [test, reason] : r.skipped)
    std::cout << "[onnx-conformance]   skip " << test << ": " << reason << "\n";
  for (const auto& note : r.notes) std::cout << "[onnx-conformance]   note " << note << "\n";
  for (const auto& failure : r.failures) std::cout << "[onnx-conformance]   FAIL " << failure << "\n";
}

// Imports a skip-listed model with its extra inputs frozen; empty when it throws as documented.
std::string check_import_error(const Family& f, const std::string& test, const fs::path& dir,
                               const std::string& expected) {
  const onnx::ModelProto m = prepare_model(f, test, dir, data_sets(dir).front(), nullptr);
  try {
    import_model(m, test);
  } catch (const Error& e) {
    if (std::string(e.what()).find(expected) != std::string::npos) return {};
    return "import failed with '" + std::string(e.what()) + "', the skip list expects '" + expected + "'";
  }
  return "imports without error although the skip list says it cannot (" + expected + "): update the list";
}

Report run_family(const Family& f) {
  Report report;
  const std::vector<std::string> tests = matching_tests(f.suite, f.pattern);
  report.on_disk = int(tests.size());
  CHECK(!tests.empty());  // a pattern that matches nothing is a typo
  for (const std::string& test : tests) {
    const fs::path dir = testdata_dir() / f.suite / test;
    const auto skip = std::find_if(f.skips.begin(), f.skips.end(), [&](const Skip& s) { return s.test == test; });
    std::string failure;
    if (skip != f.skips.end()) {
      report.skipped.emplace_back(test, skip->reason);
      if (!skip->import_error.empty()) {
        try {
          failure = check_import_error(f, test, dir, skip->import_error);
        } catch (const std::exception& e) {
          failure = std::string("checking the skip: ") + e.what();
        }
      }
    } else {
      ++report.ran;
      try {
        failure = f.run(f, test, dir, report);
      } catch (const std::exception& e) {
        failure = std::string("threw: ") + e.what();
      }
      if (failure.empty()) ++report.passed;
    }
    if (!failure.empty()) report.failures.push_back(test + ": " + failure);
    INFO(f.name << " / " << test);
    CHECK(failure == "");
  }
  print_report(f, report);
  return report;
}

// The forward check most families use: import (extra inputs frozen), run on input_0, compare
// output_0. K (for the tolerance) comes from the rewritten model when the family reduces.
struct ForwardOptions {
  Tolerance tolerance = kDefault;
  std::function<int64_t(const onnx::ModelProto&)> reduction_length;  // set: tolerance = with_reduction(K)
  // Called after the forward pass; returns a failure description or "".
  std::function<std::string(const fs::path& dir, const Graph&, const Session&, const DataSet&)> extra_check;
  // Rewrites the model before import (after freezing); returns a note for the report or "".
  std::function<std::string(const std::string& test, onnx::ModelProto&)> rewrite;
};

Runner forward_runner(ForwardOptions opt) {
  return [opt](const Family& f, const std::string& test, const fs::path& dir, Report& report) -> std::string {
    auto backend = make_backend("cpu");
    for (const DataSet& ds : data_sets(dir)) {
      onnx::ModelProto m = prepare_model(f, test, dir, ds, &report);
      if (opt.rewrite) {
        const std::string note = opt.rewrite(test, m);
        if (!note.empty()) report.notes.push_back(test + ": " + note);
      }
      const Graph graph = import_model(m, test);
      const Tensor x = read_onnx_tensor_file(ds.inputs.at(0).string());
      Session session(graph, *backend, x.shape());
      session.forward(x);
      if (graph.outputs().size() < size_t(m.graph().output_size()) && !opt.extra_check)
        report.notes.push_back(test + ": only output 0 compared (the engine drops the node's extra outputs)");
      const Tensor expected = read_onnx_tensor_file(ds.outputs.at(0).string());
      const Tolerance tol = opt.reduction_length ? with_reduction(opt.reduction_length(m)) : opt.tolerance;
      std::string failure = compare(session.value(graph.outputs().at(0)), expected, tol, "output 0");
      if (failure.empty() && opt.extra_check) failure = opt.extra_check(dir, graph, session, ds);
      if (!failure.empty()) return failure;
    }
    return {};
  };
}

// ---------------------------------------------------------------------------------------------
// Family-specific pieces

// K of Conv: C/group * KH * KW, from the (frozen) weight initializer.
int64_t conv_reduction(const onnx::ModelProto& m) {
  const auto& w = initializer(m, m.graph().node(0).input(1));
  return w.dims(1) * w.dims(2) * w.dims(3);
}

// K of Gemm: the inner dimension, from B (frozen): (K,N), or (N,K) with transB.
int64_t gemm_reduction(const onnx::ModelProto& m) {
  const auto& node = m.graph().node(0);
  const auto& b = initializer(m, node.input(1));
  return attr_int(node, "transB", 0) ? b.dims(1) : b.dims(0);
}

// K of MatMul: B's second-to-last dimension.
int64_t matmul_reduction(const onnx::ModelProto& m) {
  const auto& b = initializer(m, m.graph().node(0).input(1));
  return b.dims(b.dims_size() - 2);
}

int find_node(const Graph& graph, OpKind kind) {
  for (size_t n = 0; n < graph.nodes().size(); ++n)
    if (graph.nodes()[n].kind == kind) return int(n);
  throw Error(std::string("the graph has no ") + op_name(kind) + " node");
}

// MaxPool with argmax: ONNX Indices are flattened over (N,C,H,W) (row-major; with storage_order=1
// the plane is column-major: w*H + h); the engine's switches are h*W + w within the plane.
std::string check_maxpool_indices(const fs::path& dir, const Graph& graph, const Session& session, const DataSet& ds) {
  if (ds.outputs.size() < 2) return {};
  const onnx::ModelProto original = load_model(dir / "model.onnx");
  const bool column_major = attr_int(original.graph().node(0), "storage_order", 0) == 1;
  const Tensor x = read_onnx_tensor_file(ds.inputs.at(0).string());
  const Tensor indices = read_onnx_tensor_file(ds.outputs.at(1).string());
  const IndexTensor& switches = session.saved(find_node(graph, OpKind::MaxPool)).switches;
  if (switches.shape() != indices.shape())
    return "switches have shape " + shape_to_string(switches.shape()) + ", ONNX Indices " +
           shape_to_string(indices.shape());
  const int64_t H = x.dim(2), W = x.dim(3), plane_out = indices.dim(2) * indices.dim(3);
  int64_t bad = 0;
  std::ostringstream first;
  for (int64_t o = 0; o < indices.numel(); ++o) {
    const int64_t offset = int64_t(indices[o]) - (o / plane_out) * H * W;
    const int64_t h = column_major ? offset % H : offset / W, w = column_major ? offset / H : offset % W;
    const int64_t want = (offset < 0 || offset >= H * W) ? -2 : h * W + w;
    if (switches[o] != want && bad++ < 3)
      first << " [" << o << "] switch " << switches[o] << ", ONNX index " << int64_t(indices[o]) << " -> " << want
            << ";";
  }
  if (bad == 0) return {};
  return "switches: " + std::to_string(bad) + " of " + std::to_string(indices.numel()) + " differ:" + first.str();
}

// storage_order only changes how ONNX lays out Indices; the importer refuses it, so the test checks
// that refusal and runs the model without the attribute (check_maxpool_indices converts Indices).
std::string drop_storage_order(const std::string& test, onnx::ModelProto& m) {
  auto* node = m.mutable_graph()->mutable_node(0);
  if (attr_int(*node, "storage_order", 0) == 0) return {};
  try {
    import_model(m, test);
    throw Error("storage_order=1 imports: drop the rewrite in the conformance test");
  } catch (const Error& e) {
    require(std::string(e.what()).find("storage_order") != std::string::npos,
            std::string("expected a storage_order error, got: ") + e.what());
  }
  auto* attrs = node->mutable_attribute();
  for (int i = 0; i < attrs->size(); ++i)
    if (attrs->Get(i).name() == "storage_order") {
      attrs->DeleteSubrange(i, 1);
      break;
    }
  return "the importer refuses storage_order=1 (checked); ran without it, Indices compared in column-major order";
}

// ONNX auto_pad and output_shape padding of ConvTranspose (onnx 1.12 operator spec): the begin pad
// of one spatial axis. Python's floor division, as the reference implementation uses.
int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// ConvTranspose = Conv's input gradient. W (C_in, C_out, KH, KW) of the transpose is the weight
// (M, C, KH, KW) of a Conv with M = C_in: build that Conv on an input of Y's shape and check that
// backward_input seeded with X gives Y (minus the bias, which a gradient does not have).
std::string run_convtranspose(const Family& f, const std::string& test, const fs::path& dir, Report& report) {
  auto backend = make_backend("cpu");
  for (const DataSet& ds : data_sets(dir)) {
    const onnx::ModelProto m = prepare_model(f, test, dir, ds, &report);
    // ConvTranspose itself is not an importable op; make sure the importer says so.
    try {
      import_model(m, test);
      return "ConvTranspose imports: test it directly";
    } catch (const Error& e) {
      if (std::string(e.what()).find("is not supported") == std::string::npos)
        return std::string("unexpected import error: ") + e.what();
    }
    const onnx::NodeProto& node = m.graph().node(0);
    require(node.op_type() == "ConvTranspose", "not a ConvTranspose model");
    if (attr_int(node, "group", 1) != 1) return "group != 1 is not mapped to a Conv by this test";
    const onnx::TensorProto& w = initializer(m, node.input(1));
    const Tensor x = read_onnx_tensor_file(ds.inputs.at(0).string());
    Tensor y = read_onnx_tensor_file(ds.outputs.at(0).string());
    if (x.rank() != 4) return "not 2-D";
    const auto ints_or = [&](const char* name, std::vector<int64_t> fallback) {
      const auto v = attr_ints(node, name);
      return v.empty() ? fallback : v;
    };
    const auto strides = ints_or("strides", {1, 1}), dilations = ints_or("dilations", {1, 1});
    const auto output_padding = ints_or("output_padding", {0, 0}), pads = ints_or("pads", {0, 0, 0, 0});
    const auto output_shape = attr_ints(node, "output_shape");
    const auto* auto_pad_attr = find_attr(node, "auto_pad");
    const std::string auto_pad = auto_pad_attr ? auto_pad_attr->s() : "NOTSET";
    std::vector<int64_t> begin(2), end(2);
    for (int i = 0; i < 2; ++i) {
      const int64_t in = x.dim(2 + i), out = y.dim(2 + i), k = w.dims(2 + i), s = strides[i];
      const int64_t effective = (k - 1) * dilations[i] + 1;
      if (!output_shape.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
        const int64_t target = !output_shape.empty() ? output_shape[output_shape.size() - 2 + i] : in * s;
        const int64_t total = s * (in - 1) + output_padding[i] + effective - target;
        begin[i] = auto_pad == "SAME_UPPER" ? floor_div(total, 2) : total - floor_div(total, 2);
      } else {
        begin[i] = auto_pad == "VALID" ? 0 : pads[i];
      }
      if (begin[i] < 0) return "negative begin pad: not a plain conv gradient";
      // The end pad never changes the gradient; take the smallest one that gives the Conv X's size.
      end[i] = std::max<int64_t>(0, s * (in - 1) + effective - out - begin[i]);
      const int64_t conv_out = (out + begin[i] + end[i] - effective) / s + 1;
      if (conv_out != in)
        return "no Conv maps axis " + std::to_string(i) + " (" + std::to_string(out) + " -> " + std::to_string(in) +
               ")";
    }
    if (node.input_size() > 2 && !node.input(2).empty()) {  // Y - B: the bias is not part of the gradient
      const Tensor b = float_tensor(initializer(m, node.input(2)));
      const int64_t plane = y.dim(2) * y.dim(3);
      for (int64_t i = 0; i < y.numel(); ++i) y[i] -= b[(i / plane) % y.dim(1)];
    }

    // The Conv, as an ONNX model (so the importer's Conv path is the one under test).
    onnx::ModelProto conv;
    conv.set_ir_version(m.ir_version());
    conv.add_opset_import()->set_version(std::max(7, model_opset(m)));
    auto* g = conv.mutable_graph();
    g->set_name(test + "_as_conv_gradient");
    auto* in = g->add_input();
    in->set_name("x");
    in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : y.shape()) in->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
    onnx::TensorProto weights = w;
    weights.set_name("W");
    *g->add_initializer() = weights;
    auto* c = g->add_node();
    c->set_op_type("Conv");
    c->set_name("conv");
    c->add_input("x");
    c->add_input("W");
    c->add_output("y");
    const auto add_ints = [&](const char* name, const std::vector<int64_t>& v) {
      auto* a = c->add_attribute();
      a->set_name(name);
      a->set_type(onnx::AttributeProto::INTS);
      for (int64_t e : v) a->add_ints(e);
    };
    add_ints("kernel_shape", {w.dims(2), w.dims(3)});
    add_ints("strides", strides);
    add_ints("dilations", dilations);
    add_ints("pads", {begin[0], begin[1], end[0], end[1]});
    g->add_output()->set_name("y");

    const Graph graph = import_model(conv, test + " (as Conv)");
    Session session(graph, *backend, y.shape());
    session.forward(Tensor(y.shape()));
    const int out_id = graph.outputs().at(0);
    if (session.shape(out_id) != x.shape())
      return "the Conv's output " + shape_to_string(session.shape(out_id)) + " is not X's " +
             shape_to_string(x.shape());
    const Tensor& dx = session.backward_input(out_id, x, BackwardRule::gradient);
    const std::string failure = compare(dx, y, with_reduction(w.dims(0) * w.dims(2) * w.dims(3)), "Y");
    if (!failure.empty()) return failure;
    std::ostringstream note;
    note << test << ": Conv on " << shape_to_string(y.shape()) << ", strides " << strides[0] << "," << strides[1]
         << ", dilations " << dilations[0] << "," << dilations[1] << ", pads " << begin[0] << "," << begin[1] << ","
         << end[0] << "," << end[1];
    report.notes.push_back(note.str());
  }
  return {};
}

// Softmax at opset < 13: the input is coerced to 2-D at axis (default 1) and each row normalised.
// The ONNX 1.12 node tests are all opset 13, so this check relabels them to opset 11 and computes the
// reference here, in double.
std::string run_softmax_opset11(const Family&, const std::string& test, const fs::path& dir, Report& report) {
  auto backend = make_backend("cpu");
  for (const DataSet& ds : data_sets(dir)) {
    onnx::ModelProto m = load_model(dir / "model.onnx");
    set_opset(m, 11);
    const Graph graph = import_model(m, test);
    const Tensor x = read_onnx_tensor_file(ds.inputs.at(0).string());
    Session session(graph, *backend, x.shape());
    session.forward(x);
    int64_t axis = attr_int(m.graph().node(0), "axis", 1);
    if (axis < 0) axis += x.rank();
    int64_t rows = 1;
    for (int64_t d = 0; d < axis; ++d) rows *= x.dim(int(d));
    const int64_t cols = x.numel() / rows;
    Tensor expected(x.shape());
    for (int64_t r = 0; r < rows; ++r) {
      double peak = -INFINITY, total = 0.0;
      for (int64_t c = 0; c < cols; ++c) peak = std::max(peak, double(x[r * cols + c]));
      for (int64_t c = 0; c < cols; ++c) total += std::exp(double(x[r * cols + c]) - peak);
      for (int64_t c = 0; c < cols; ++c)
        expected[r * cols + c] = float(std::exp(double(x[r * cols + c]) - peak) / total);
    }
    const std::string failure = compare(session.value(graph.outputs().at(0)), expected, kDefault, "output 0");
    if (!failure.empty()) return failure;
  }
  report.notes.push_back(test + ": relabelled opset 13 -> 11, reference = softmax over the 2-D coercion, in double");
  return {};
}

Runner forward(Tolerance tol = kDefault) {
  ForwardOptions opt;
  opt.tolerance = tol;
  return forward_runner(opt);
}

Runner forward_reducing(std::function<int64_t(const onnx::ModelProto&)> k) {
  ForwardOptions opt;
  opt.reduction_length = std::move(k);
  return forward_runner(opt);
}

void run_families(const std::vector<Family>& families) {
  for (const Family& f : families)
    if (have_suite(f.suite)) run_family(f);
}

const char* const k2dOnly = "the engine's Conv and pooling windows are 2-D only";
const char* const kIntTypes = "int8 tensors: the engine computes in float32 only";

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("ONNX node tests: Conv", "[onnx][conformance]") {
  const char* const quantized = "ConvInteger / QLinearConv: quantized integer convolution, not an engine op";
  run_families({{"Conv",
                 "^test_(basic_conv|conv|basic_convinteger|convinteger|qlinearconv)(_.*)?$",
                 {{"test_basic_convinteger", quantized, "data type"},
                  {"test_convinteger_with_padding", quantized, "data type"},
                  {"test_convinteger_without_padding", quantized, "data type"},
                  {"test_qlinearconv", quantized, "data type"}},
                 forward_reducing(conv_reduction)}});
}

TEST_CASE("ONNX node tests: ConvTranspose as Conv's input gradient", "[onnx][conformance]") {
  run_families({{"ConvTranspose (as Conv input gradient)",
                 "^test_convtranspose(_.*)?$",
                 {{"test_convtranspose_1d", std::string("1-D: ") + k2dOnly, ""},
                  {"test_convtranspose_3d", std::string("3-D: ") + k2dOnly, ""}},
                 run_convtranspose}});
}

TEST_CASE("ONNX node tests: MaxPool (values and switches)", "[onnx][conformance]") {
  ForwardOptions opt;
  opt.tolerance = kExact;
  opt.extra_check = check_maxpool_indices;
  opt.rewrite = drop_storage_order;
  run_families({{"MaxPool",
                 "^test_maxpool_.*",
                 {{"test_maxpool_1d_default", std::string("1-D: ") + k2dOnly, "2-D"},
                  {"test_maxpool_3d_default", std::string("3-D: ") + k2dOnly, "2-D"},
                  {"test_maxpool_2d_uint8", "uint8 tensors: the engine computes in float32 only", "element type"}},
                 forward_runner(opt)}});
}

TEST_CASE("ONNX node tests: AveragePool, GlobalAveragePool", "[onnx][conformance]") {
  run_families({{"AveragePool",
                 "^test_averagepool_.*",
                 {{"test_averagepool_1d_default", std::string("1-D: ") + k2dOnly, "2-D"},
                  {"test_averagepool_3d_default", std::string("3-D: ") + k2dOnly, "2-D"}},
                 forward()},
                {"GlobalAveragePool",
                 "^test_globalaveragepool(_.*)?$",
                 {},
                 forward(),
                 "node",
                 {7, "GlobalAveragePool-1 is the op's only version: the same at opset 7"}}});
}

TEST_CASE("ONNX node tests: LRN", "[onnx][conformance]") { run_families({{"LRN", "^test_lrn(_.*)?$", {}, forward()}}); }

TEST_CASE("ONNX node tests: Gemm, MatMul", "[onnx][conformance]") {
  const char* const quantized = "MatMulInteger / QLinearMatMul: quantized integer op, not an engine op";
  run_families({{"Gemm", "^test_gemm_.*", {}, forward_reducing(gemm_reduction)},
                {"MatMul",
                 "^test_(matmul|matmulinteger|qlinearmatmul)(_.*)?$",
                 {{"test_matmulinteger", quantized, "data type"},
                  {"test_qlinearmatmul_2D", quantized, "data type"},
                  {"test_qlinearmatmul_3D", quantized, "data type"}},
                 forward_reducing(matmul_reduction)}});
}

TEST_CASE("ONNX node tests: Softmax", "[onnx][conformance]") {
  const char* const expanded =
      "function-expanded twin (ReduceMax, Exp, ReduceSum, Div): those ops are not imported; "
      "Softmax itself runs in the plain test";
  std::vector<Skip> skips;
  for (const char* t : {"axis_0", "axis_1", "axis_2", "default_axis", "example", "large_number", "negative_axis"})
    skips.push_back({std::string("test_softmax_") + t + "_expanded", expanded, "is not supported"});
  run_families(
      {{"Softmax", "^test_softmax_.*", skips, forward()},
       {"Softmax at opset 11 (relabelled, reference computed here)", "^test_softmax_.*", skips, run_softmax_opset11}});
}

TEST_CASE("ONNX node tests: Relu, Concat, Flatten, Reshape, Identity, Dropout", "[onnx][conformance]") {
  const char* const training =
      "training mode: the training_mode input is a bool tensor, which the importer refuses; "
      "the engine's Dropout is the inference identity";
  run_families({{"Relu", "^test_relu$", {}, forward(kExact)},
                {"Concat", "^test_concat_.*", {}, forward(kExact)},
                {"Flatten", "^test_flatten_.*", {}, forward(kExact)},
                {"Reshape", "^test_reshape_.*", {}, forward(kExact)},
                {"Identity",
                 "^test_identity(_.*)?$",
                 {{"test_identity_opt", "optional-typed input: the engine reads tensors only", "not a tensor"},
                  {"test_identity_sequence", "sequence-typed input: the engine reads tensors only", "not a tensor"}},
                 forward(kExact)},
                {"Dropout",
                 "^test_(dropout|training_dropout)(_.*)?$",
                 {{"test_training_dropout", training, "data type 9"},
                  {"test_training_dropout_default", training, "data type 9"},
                  {"test_training_dropout_default_mask", training, "data type 9"},
                  {"test_training_dropout_mask", training, "data type 9"},
                  {"test_training_dropout_zero_ratio", training, "data type 9"},
                  {"test_training_dropout_zero_ratio_mask", training, "data type 9"}},
                 forward(kExact)}});
}

TEST_CASE("ONNX node tests: BatchNormalization (inference)", "[onnx][conformance]") {
  const char* const training = "training_mode=1 (batch statistics, running-mean outputs): the engine is inference-only";
  run_families({{"BatchNormalization",
                 "^test_batchnorm_.*",
                 {{"test_batchnorm_epsilon_training_mode", training, "training_mode"},
                  {"test_batchnorm_example_training_mode", training, "training_mode"}},
                 forward()}});
}

TEST_CASE("ONNX node tests: Add, Sub, Mul, Div", "[onnx][conformance]") {
  const char* const uint8 = "uint8 tensors: the engine computes in float32 only";
  run_families({{"Add", "^test_add(_.*)?$", {{"test_add_uint8", uint8, "data type 2"}}, forward()},
                {"Sub", "^test_sub(_.*)?$", {{"test_sub_uint8", uint8, "data type 2"}}, forward()},
                {"Mul", "^test_mul(_.*)?$", {{"test_mul_uint8", uint8, "data type 2"}}, forward()},
                {"Div", "^test_div(_.*)?$", {{"test_div_uint8", uint8, "data type 2"}}, forward()}});
}

TEST_CASE("ONNX node tests: unary elementwise ops", "[onnx][conformance]") {
  run_families({{"Sigmoid", "^test_sigmoid(_.*)?$", {}, forward()},
                {"Tanh", "^test_tanh(_.*)?$", {}, forward()},
                {"Abs", "^test_abs(_.*)?$", {}, forward(kExact)},
                {"Exp", "^test_exp(_example)?$", {}, forward()},
                {"Log", "^test_log(_example)?$", {}, forward()},
                {"Neg", "^test_neg(_.*)?$", {}, forward(kExact)},
                {"Sqrt", "^test_sqrt(_.*)?$", {}, forward()},
                {"Softplus",
                 "^test_softplus(_example)?$",
                 {},
                 forward(),
                 "node",
                 {7, "Softplus-1 is the op's only version: the same at opset 7"}}});
}

TEST_CASE("ONNX node tests: Clip, Pow", "[onnx][conformance]") {
  const char* const tensor_exponent = "the exponent is a tensor: the engine's Pow takes a constant scalar exponent";
  run_families({{"Clip",
                 "^test_clip(_.*)?$",
                 {{"test_clip_default_int8_inbounds", kIntTypes, "element type"},
                  {"test_clip_default_int8_max", kIntTypes, "data type 3"},
                  {"test_clip_default_int8_min", kIntTypes, "data type 3"}},
                 forward(kExact)},
                {"Pow",
                 "^test_pow(_.*)?$",
                 {{"test_pow", tensor_exponent, "constant scalar"},
                  {"test_pow_bcast_array", tensor_exponent, "constant scalar"},
                  {"test_pow_example", tensor_exponent, "constant scalar"},
                  {"test_pow_types_float", "int64 base and a tensor exponent", "element type"},
                  {"test_pow_types_float32_int32", tensor_exponent, "constant scalar"},
                  {"test_pow_types_float32_int64", tensor_exponent, "constant scalar"},
                  {"test_pow_types_float32_uint32", tensor_exponent, "data type 12"},
                  {"test_pow_types_float32_uint64", tensor_exponent, "data type 13"},
                  {"test_pow_types_int", tensor_exponent, "constant scalar"},
                  {"test_pow_types_int32_float32", "int32 base and a tensor exponent", "element type"},
                  {"test_pow_types_int32_int32", "int32 base and a tensor exponent", "element type"},
                  {"test_pow_types_int64_float32", "int64 base and a tensor exponent", "element type"},
                  {"test_pow_types_int64_int64", "int64 base and a tensor exponent", "element type"}},
                 forward()}});
}

TEST_CASE("ONNX node tests: Max, Sum", "[onnx][conformance]") {
  const auto typed = [](const char* type) {
    return std::string(type) + " tensors: the engine computes in float32 only";
  };
  // float64, int32 and int64 constants are readable, but the data input itself must be float32.
  const auto accepted = [&](const char* type) { return typed(type); };
  run_families({{"Max",
                 "^test_max_.*",
                 {{"test_max_float16", typed("float16"), "data type 10"},
                  {"test_max_float64", accepted("float64"), "element type"},
                  {"test_max_int8", typed("int8"), "data type 3"},
                  {"test_max_int16", typed("int16"), "data type 5"},
                  {"test_max_int32", accepted("int32"), "element type"},
                  {"test_max_int64", accepted("int64"), "element type"},
                  {"test_max_uint8", typed("uint8"), "data type 2"},
                  {"test_max_uint16", typed("uint16"), "data type 4"},
                  {"test_max_uint32", typed("uint32"), "data type 12"},
                  {"test_max_uint64", typed("uint64"), "data type 13"}},
                 forward(kExact)},
                {"Sum", "^test_sum_.*", {}, forward()}});
}

// ---------------------------------------------------------------------------------------------
// The pytorch-converted suite of the same package: whole torch.nn layers (weights as initializers),
// exported at opset 6. They add what the node tests lack: grouped, depthwise and dilated Conv with
// bias, ConvTranspose with bias and output_padding, dilated MaxPool, BatchNorm on 3-D and 5-D input.

TEST_CASE("ONNX pytorch-converted tests: conv-net layers", "[onnx][conformance]") {
  const std::string suite = "pytorch-converted";
  std::vector<Skip> conv_skips;
  for (const char* t : {"test_Conv1d", "test_Conv1d_dilated", "test_Conv1d_groups", "test_Conv1d_pad1",
                        "test_Conv1d_pad1size1", "test_Conv1d_pad2", "test_Conv1d_pad2size1", "test_Conv1d_stride"})
    conv_skips.push_back({t, std::string("1-D: ") + k2dOnly, "2-D"});
  for (const char* t : {"test_Conv3d", "test_Conv3d_dilated", "test_Conv3d_dilated_strided", "test_Conv3d_groups",
                        "test_Conv3d_no_bias", "test_Conv3d_stride", "test_Conv3d_stride_padding"})
    conv_skips.push_back({t, std::string("3-D: ") + k2dOnly, "2-D"});
  ForwardOptions maxpool;
  maxpool.tolerance = kExact;
  run_families(
      {{"Conv",
        "^test_Conv[123]d.*$",
        conv_skips,
        forward_reducing(conv_reduction),
        suite,
        {7, "Conv-1 is the version in force up to opset 10"}},
       {"ConvTranspose (as Conv input gradient)",
        "^test_ConvTranspose2d.*$",
        {},
        run_convtranspose,
        suite,
        {7, "ConvTranspose-1 is the version in force up to opset 10"}},
       {"MaxPool",
        "^test_MaxPool[123]d.*$",
        {{"test_MaxPool1d", std::string("1-D: ") + k2dOnly, "2-D"},
         {"test_MaxPool1d_stride", std::string("1-D: ") + k2dOnly, "2-D"},
         {"test_MaxPool1d_stride_padding_dilation", std::string("1-D: ") + k2dOnly, "2-D"},
         {"test_MaxPool3d", std::string("3-D: ") + k2dOnly, "2-D"},
         {"test_MaxPool3d_stride", std::string("3-D: ") + k2dOnly, "2-D"},
         {"test_MaxPool3d_stride_padding", std::string("3-D: ") + k2dOnly, "2-D"}},
        forward_runner(maxpool),
        suite,
        {7, "MaxPool-1 is the version in force at opset 7"}},
       {"AveragePool",
        "^test_AvgPool[123]d.*$",
        {{"test_AvgPool1d", "exported as Unsqueeze + 2-D AveragePool + Squeeze: Unsqueeze is not an engine op",
          "(Unsqueeze, opset 7) is not supported"},
         {"test_AvgPool1d_stride", "exported as Unsqueeze + 2-D AveragePool + Squeeze: Unsqueeze is not an engine op",
          "(Unsqueeze, opset 7) is not supported"},
         {"test_AvgPool3d", std::string("3-D: ") + k2dOnly, "2-D"},
         {"test_AvgPool3d_stride", std::string("3-D: ") + k2dOnly, "2-D"},
         {"test_AvgPool3d_stride1_pad0_gpu_input", std::string("3-D: ") + k2dOnly, "2-D"}},
        forward(),
        suite,
        {7, "AveragePool-7 only adds count_include_pad, default 0 = AveragePool-1"}},
       {"BatchNormalization",
        "^test_BatchNorm[123]d.*$",
        {},
        forward(),
        suite,
        {7, "BatchNormalization-7 only drops is_test; the inference formula is unchanged"}},
       {"Gemm (Linear)",
        "^test_Linear.*$",
        {{"test_Linear_no_bias", "exported as Transpose + MatMul: Transpose is not an engine op",
          "(Transpose, opset 7) is not supported"}},
        forward_reducing(gemm_reduction),
        suite,
        {7, "Gemm-7 only drops the broadcast attribute (C always broadcasts)"}},
       {"Relu", "^test_ReLU$", {}, forward(kExact), suite, {7, "Relu-6 is the version in force from opset 6 to 12"}},
       {"Sigmoid, Tanh, Softplus",
        "^test_(Sigmoid|Tanh|Softplus)$",
        {},
        forward(),
        suite,
        {7, "Sigmoid-6, Tanh-6 and Softplus-1 are in force at opset 7"}},
       {"Softmax",
        "^test_(Softmax|softmax_.*)$",
        {},
        forward(),
        suite,
        {7, "Softmax-1 (2-D coercion at axis) is in force up to opset 10"}}});
}
