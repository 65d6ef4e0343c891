// Element-wise ops: the rectifier and its three backward rules, unary ops, broadcasting binary ops,
// n-ary Max / Sum, concat copies, inference batch norm. One thread per element (grid-stride loops,
// so that huge tensors need no huge grids).
#include "kernels/cuda/ops.h"

namespace deepinside::DI_KERNEL_NS {

namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return unsigned(blocks < 65535 * 16 ? blocks : 65535 * 16);
}

#define DI_FOR_EACH(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

__global__ void relu_forward_kernel(float* y, const float* x, int64_t n) {
  DI_FOR_EACH(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// rule 0 gradient: dy [x > 0]; 1 deconvnet: dy [dy > 0]; 2 guided: dy [x > 0][dy > 0]
__global__ void relu_backward_kernel(float* dx, const float* dy, const float* x, int64_t n, int rule) {
  DI_FOR_EACH(i, n) {
    const float d = dy[i];
    const bool pass = rule == 0 ? x[i] > 0.0f : rule == 1 ? d > 0.0f : (x[i] > 0.0f && d > 0.0f);
    dx[i] += pass ? d : 0.0f;
  }
}

__global__ void unary_forward_kernel(float* y, const float* x, int64_t n, OpKind op, UnaryParams p) {
  DI_FOR_EACH(i, n) {
    const float v = x[i];
    float r = v;
    switch (op) {
      case OpKind::Sigmoid: r = 1.0f / (1.0f + expf(-v)); break;
      case OpKind::Tanh: r = tanhf(v); break;
      case OpKind::Abs: r = fabsf(v); break;
      case OpKind::Softplus: r = v > 20.0f ? v : log1pf(expf(v)); break;
      case OpKind::Sqrt: r = sqrtf(v); break;
      case OpKind::Exp: r = expf(v); break;
      case OpKind::Log: r = logf(v); break;
      case OpKind::Neg: r = -v; break;
      case OpKind::Clip: r = fminf(fmaxf(v, p.min), p.max); break;
      case OpKind::Pow: r = powf(v, p.exponent); break;
      default: break;
    }
    y[i] = r;
  }
}

__global__ void unary_backward_kernel(float* dx, const float* dy, const float* x, const float* y, int64_t n, OpKind op,
                                      UnaryParams p) {
  DI_FOR_EACH(i, n) {
    const float v = x[i], out = y[i];
    float slope = 1.0f;
    switch (op) {
      case OpKind::Sigmoid: slope = out * (1.0f - out); break;
      case OpKind::Tanh: slope = 1.0f - out * out; break;
      case OpKind::Abs: slope = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f); break;
      case OpKind::Softplus: slope = 1.0f / (1.0f + expf(-v)); break;
      case OpKind::Sqrt: slope = 0.5f / out; break;
      case OpKind::Exp: slope = out; break;
      case OpKind::Log: slope = 1.0f / v; break;
      case OpKind::Neg: slope = -1.0f; break;
      case OpKind::Clip: slope = (v >= p.min && v <= p.max) ? 1.0f : 0.0f; break;
      case OpKind::Pow: slope = p.exponent * powf(v, p.exponent - 1.0f); break;
      default: break;
    }
    dx[i] += dy[i] * slope;
  }
}

__global__ void add_into_kernel(float* dx, const float* dy, int64_t n) {
  DI_FOR_EACH(i, n) dx[i] += dy[i];
}

// Broadcast geometry, right-aligned to the output's rank: dims, and strides of a and b (0 along
// broadcast axes).
struct Broadcast {
  int rank;
  int64_t dims[kMaxRank], a_stride[kMaxRank], b_stride[kMaxRank];
};

Broadcast make_broadcast(const Shape& a, const Shape& b, const Shape& y) {
  require(int(y.size()) <= kMaxRank, "broadcasting op: rank " + std::to_string(y.size()) + " exceeds the CUDA kernels' " +
                                         std::to_string(kMaxRank));
  Broadcast g{};
  g.rank = int(y.size());
  auto strides = [&](const Shape& s, int64_t* out) {
    int64_t stride = 1;
    for (int d = 0; d < g.rank; ++d) out[d] = 0;
    for (int i = int(s.size()) - 1, o = g.rank - 1; i >= 0; --i, --o) {
      if (s[i] != 1) out[o] = stride;
      stride *= s[i];
    }
  };
  for (int d = 0; d < g.rank; ++d) g.dims[d] = y[d];
  strides(a, g.a_stride);
  strides(b, g.b_stride);
  return g;
}

// The offsets in a and b of output element o (row-major over g.dims).
__device__ __forceinline__ void operand_offsets(const Broadcast& g, int64_t o, int64_t& ia, int64_t& ib) {
  int64_t rest = o;
  ia = ib = 0;
  for (int d = g.rank - 1; d >= 0; --d) {
    const int64_t idx = rest % g.dims[d];
    rest /= g.dims[d];
    ia += idx * g.a_stride[d];
    ib += idx * g.b_stride[d];
  }
}

__device__ __forceinline__ float binary_op(OpKind op, float a, float b) {
  switch (op) {
    case OpKind::Add: return a + b;
    case OpKind::Sub: return a - b;
    case OpKind::Mul: return a * b;
    default: return a / b;
  }
}

__global__ void binary_forward_kernel(float* y, const float* a, const float* b, int64_t n, Broadcast g, OpKind op) {
  DI_FOR_EACH(o, n) {
    int64_t ia, ib;
    operand_offsets(g, o, ia, ib);
    y[o] = binary_op(op, a[ia], b[ib]);
  }
}

// d(operand) for a broadcast operand ("self"), a gather: one thread per element e of the operand.
// The outputs that read e are e's own coordinates on the axes the operand spans, combined with every
// coordinate on the axes it is broadcast along: n_out / self_numel of them, visited in increasing
// output order (the order in which the CPU reference adds them).
__global__ void binary_backward_kernel(float* d_self, const float* dy, const float* a, const float* b,
                                       int64_t self_numel, int64_t n_out, Broadcast g, OpKind op, bool self_is_a) {
  DI_FOR_EACH(e, self_numel) {
    const int64_t* self_stride = self_is_a ? g.a_stride : g.b_stride;
    int64_t out_stride[kMaxRank];
    int64_t span = 1, base = 0;
    for (int d = g.rank - 1; d >= 0; --d) {
      out_stride[d] = span;
      span *= g.dims[d];
    }
    for (int d = 0; d < g.rank; ++d)
      if (self_stride[d] != 0) base += e / self_stride[d] % g.dims[d] * out_stride[d];
    const int64_t combos = n_out / self_numel;
    float sum = 0.0f;
    for (int64_t r = 0; r < combos; ++r) {
      // r's digits on the broadcast axes (the last axis fastest), then the operands' indices.
      int64_t rest = r, o = base;
      for (int d = g.rank - 1; d >= 0; --d)
        if (self_stride[d] == 0) {
          o += rest % g.dims[d] * out_stride[d];
          rest /= g.dims[d];
        }
      int64_t ia = 0, ib = 0;
      for (int d = 0; d < g.rank; ++d) {
        const int64_t idx = o / out_stride[d] % g.dims[d];
        ia += idx * g.a_stride[d];
        ib += idx * g.b_stride[d];
      }
      const float d = dy[o];
      switch (op) {
        case OpKind::Add: sum += d; break;
        case OpKind::Sub: sum += self_is_a ? d : -d; break;
        case OpKind::Mul: sum += d * (self_is_a ? b[ib] : a[ia]); break;
        default: sum += self_is_a ? d / b[ib] : -d * a[ia] / (b[ib] * b[ib]); break;
      }
    }
    d_self[e] += sum;
  }
}

// The same gradient where the operand has the output's shape (no reduction): one output per thread.
__global__ void binary_backward_same_kernel(float* d_self, const float* dy, const float* a, const float* b,
                                            int64_t n_out, Broadcast g, OpKind op, bool self_is_a) {
  DI_FOR_EACH(o, n_out) {
    int64_t ia, ib;
    operand_offsets(g, o, ia, ib);
    const float d = dy[o];
    float v;
    switch (op) {
      case OpKind::Add: v = d; break;
      case OpKind::Sub: v = self_is_a ? d : -d; break;
      case OpKind::Mul: v = d * (self_is_a ? b[ib] : a[ia]); break;
      default: v = self_is_a ? d / b[ib] : -d * a[ia] / (b[ib] * b[ib]); break;
    }
    d_self[o] += v;
  }
}

struct InputPointers {  // n-ary ops' operands, passed by value
  const float* x[kMaxInputs];
  float* dx[kMaxInputs];
  int k;
};

// The winner at element i: the first NaN, else the first maximum (the CPU reference's rule).
__device__ __forceinline__ int max_winner(const InputPointers& in, int64_t i) {
  int winner = 0;
  for (int t = 1; t < in.k; ++t) {
    const float v = in.x[t][i], best = in.x[winner][i];
    if (v > best || (v != v && best == best)) winner = t;
  }
  return winner;
}

__global__ void max_forward_kernel(float* y, InputPointers in, int64_t n) {
  DI_FOR_EACH(i, n) y[i] = in.x[max_winner(in, i)][i];
}

__global__ void max_backward_kernel(InputPointers in, const float* dy, int64_t n) {
  DI_FOR_EACH(i, n) {
    const int w = max_winner(in, i);
    if (in.dx[w]) in.dx[w][i] += dy[i];
  }
}

__global__ void sum_forward_kernel(float* y, InputPointers in, int64_t n) {
  DI_FOR_EACH(i, n) {
    float s = 0.0f;
    for (int t = 0; t < in.k; ++t) s += in.x[t][i];
    y[i] = s;
  }
}

// y (outer, total, inner) at [o, offset + l, i] = x (outer, length, inner) [o, l, i]
__global__ void concat_copy_kernel(float* y, const float* x, int64_t outer, int64_t chunk, int64_t offset_elems,
                                   int64_t row_elems) {
  DI_FOR_EACH(e, outer * chunk) y[e / chunk * row_elems + offset_elems + e % chunk] = x[e];
}

__global__ void concat_backward_kernel(float* dx, const float* dy, int64_t outer, int64_t chunk, int64_t offset_elems,
                                       int64_t row_elems) {
  DI_FOR_EACH(e, outer * chunk) dx[e] += dy[e / chunk * row_elems + offset_elems + e % chunk];
}

__global__ void batchnorm_forward_kernel(float* y, const float* x, const float* gamma, const float* beta,
                                         const float* mean, const float* var, int C, int64_t S, int64_t n, float eps) {
  DI_FOR_EACH(i, n) {
    const int c = int(i / S % C);
    y[i] = (x[i] - mean[c]) * (gamma[c] / sqrtf(var[c] + eps)) + beta[c];
  }
}

__global__ void batchnorm_backward_kernel(float* dx, const float* dy, const float* gamma, const float* var, int C,
                                          int64_t S, int64_t n, float eps) {
  DI_FOR_EACH(i, n) {
    const int c = int(i / S % C);
    dx[i] += dy[i] * (gamma[c] / sqrtf(var[c] + eps));
  }
}

InputPointers pointers(const float* const* xs, float* const* dxs, int k) {
  require(k >= 1 && k <= kMaxInputs, "n-ary op with " + std::to_string(k) + " inputs: the CUDA kernels take 1 to " +
                                         std::to_string(kMaxInputs));
  InputPointers p{};
  p.k = k;
  for (int t = 0; t < k; ++t) {
    p.x[t] = xs[t];
    p.dx[t] = dxs ? dxs[t] : nullptr;
  }
  return p;
}

}  // namespace

void relu_forward(float* y, const float* x, int64_t n, Stream stream) {
  if (n) launch("relu_forward", relu_forward_kernel, dim3(grid_for(n)), dim3(kThreads), stream, y, x, n);
}

void relu_backward_input(float* dx, const float* dy, const float* x, int64_t n, BackwardRule rule, Stream stream) {
  const int code = rule == BackwardRule::gradient ? 0 : rule == BackwardRule::deconvnet ? 1 : 2;
  if (n) launch("relu_backward_input", relu_backward_kernel, dim3(grid_for(n)), dim3(kThreads), stream, dx, dy, x, n, code);
}

void unary_forward(float* y, const float* x, int64_t n, OpKind op, const UnaryParams& p, Stream stream) {
  if (n) launch("unary_forward", unary_forward_kernel, dim3(grid_for(n)), dim3(kThreads), stream, y, x, n, op, p);
}

void unary_backward_input(float* dx, const float* dy, const float* x, const float* y, int64_t n, OpKind op,
                          const UnaryParams& p, Stream stream) {
  if (n)
    launch("unary_backward_input", unary_backward_kernel, dim3(grid_for(n)), dim3(kThreads), stream, dx, dy, x, y, n,
           op, p);
}

void add_into(float* dx, const float* dy, int64_t n, Stream stream) {
  if (n) launch("add_into", add_into_kernel, dim3(grid_for(n)), dim3(kThreads), stream, dx, dy, n);
}

void binary_forward(float* y, const float* a, const float* b, const Shape& a_shape, const Shape& b_shape,
                    const Shape& y_shape, OpKind op, Stream stream) {
  const int64_t n = shape_numel(y_shape);
  if (n)
    launch("binary_forward", binary_forward_kernel, dim3(grid_for(n)), dim3(kThreads), stream, y, a, b, n,
           make_broadcast(a_shape, b_shape, y_shape), op);
}

void binary_backward_input(float* da, float* db, const float* dy, const float* a, const float* b,
                           const Shape& a_shape, const Shape& b_shape, const Shape& y_shape, OpKind op, Stream stream) {
  const int64_t n = shape_numel(y_shape);
  if (!n) return;
  const Broadcast g = make_broadcast(a_shape, b_shape, y_shape);
  for (int side = 0; side < 2; ++side) {
    float* d = side == 0 ? da : db;
    if (!d) continue;
    const int64_t self_numel = shape_numel(side == 0 ? a_shape : b_shape);
    if (self_numel == n)
      launch("binary_backward_input", binary_backward_same_kernel, dim3(grid_for(n)), dim3(kThreads), stream, d, dy, a,
             b, n, g, op, side == 0);
    else
      launch("binary_backward_input (broadcast)", binary_backward_kernel, dim3(grid_for(self_numel)), dim3(kThreads),
             stream, d, dy, a, b, self_numel, n, g, op, side == 0);
  }
}

void max_forward(float* y, const float* const* xs, int k, int64_t n, Stream stream) {
  if (n) launch("max_forward", max_forward_kernel, dim3(grid_for(n)), dim3(kThreads), stream, y, pointers(xs, nullptr, k), n);
}

void max_backward_input(float* const* dxs, const float* dy, const float* const* xs, int k, int64_t n, Stream stream) {
  if (n)
    launch("max_backward_input", max_backward_kernel, dim3(grid_for(n)), dim3(kThreads), stream, pointers(xs, dxs, k),
           dy, n);
}

void sum_forward(float* y, const float* const* xs, int k, int64_t n, Stream stream) {
  if (n) launch("sum_forward", sum_forward_kernel, dim3(grid_for(n)), dim3(kThreads), stream, y, pointers(xs, nullptr, k), n);
}

void concat_copy_in(float* y, const float* x, int64_t outer, int64_t length, int64_t offset, int64_t total,
                    int64_t inner, Stream stream) {
  const int64_t chunk = length * inner;
  if (outer * chunk != 0)
    launch("concat_copy_in", concat_copy_kernel, dim3(grid_for(outer * chunk)), dim3(kThreads), stream, y, x, outer,
           chunk, offset * inner, total * inner);
}

void concat_backward_slice(float* dx, const float* dy, int64_t outer, int64_t length, int64_t offset, int64_t total,
                           int64_t inner, Stream stream) {
  const int64_t chunk = length * inner;
  if (outer * chunk != 0)
    launch("concat_backward_slice", concat_backward_kernel, dim3(grid_for(outer * chunk)), dim3(kThreads), stream, dx,
           dy, outer, chunk, offset * inner, total * inner);
}

void batchnorm_forward(float* y, const float* x, const float* gamma, const float* beta, const float* mean,
                       const float* var, int N, int C, int64_t S, float eps, Stream stream) {
  const int64_t n = int64_t(N) * C * S;
  if (n)
    launch("batchnorm_forward", batchnorm_forward_kernel, dim3(grid_for(n)), dim3(kThreads), stream, y, x, gamma, beta,
           mean, var, C, S, n, eps);
}

void batchnorm_backward_input(float* dx, const float* dy, const float* gamma, const float* var, int N, int C,
                              int64_t S, float eps, Stream stream) {
  const int64_t n = int64_t(N) * C * S;
  if (n)
    launch("batchnorm_backward_input", batchnorm_backward_kernel, dim3(grid_for(n)), dim3(kThreads), stream, dx, dy,
           gamma, var, C, S, n, eps);
}

}  // namespace deepinside::DI_KERNEL_NS
