#!/usr/bin/python3
"""Golden files for deepinside's backward_input tests (see README.md beside this file).

Run from anywhere with the Debian python (python3-torch 1.13, python3-onnx, python3-numpy,
python3-pil):

    /usr/bin/python3 tests/golden/generate.py

It rewrites everything under tests/golden/ except this script and README.md, deterministically
(fixed seeds, one thread, no time stamps): running it twice gives identical bytes.

Part A: four small random nets, exported to ONNX (opset 13), with float64 scores, softmax and the
input gradient of sum_n S[n, classes[n]] under the three rectifier rules (gradient, deconvnet,
guided), computed with torch autograd on the float64 copy of the net, and cross-checked against an
independent float64 interpretation of the exported ONNX graph.
Part B: the real SqueezeNet v1.1 of ../shared on eagle.jpg (saliency map, gradient, top-5) and the
top-5 of cat.jpg and dog.jpg, through a small ONNX interpreter written here in torch.

torch is a development tool of the project, never a runtime one: nothing in the engine imports this.
"""

import copy
import io
import json
import math
import os
import sys

import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get(
    "DEEPINSIDE_SHARED", os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared")))

OPSET = 13
ALLOWED_OPS = {
    "Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "LRN", "Gemm", "MatMul", "Add",
    "Sub", "Mul", "Div", "Flatten", "Reshape", "Concat", "Dropout", "BatchNormalization",
    "Softmax", "Identity", "Constant",
}
RULES = ("gradient", "deconvnet", "guided")

# Robustness margins demanded of every small net (seeds are searched until they hold), so that a
# float32 engine takes the same branch at every kink as this float64 reference:
RELU_MARGIN = 1e-4      # min |x| over all ReLU inputs (forward)
POOL_GAP = 1e-4         # min (max - runner-up) over max-pool windows, exact ties (zeros) excepted
PERTURB_REL = 1e-5      # and every kink decision (ReLU masks, max-pool switches, the [g_out > 0]
PERTURB_TRIALS = 3      # masks of deconvnet and guided) survives relative noise of this size on
                        # all weights and inputs, in PERTURB_TRIALS draws


def f32(v):
    """The float32 value nearest v, as a Python float (what an ONNX float attribute stores)."""
    return float(np.float32(v))


# --------------------------------------------------------------------------------------------
# .npy / .json writers (numpy format 1.0, C order, little endian, no pickles)

def save_npy(path, arr, dtype):
    arr = np.ascontiguousarray(np.asarray(arr).astype(dtype, copy=False))
    assert arr.dtype.str in ("<f4", "<f8", "|u1", "<i8"), arr.dtype.str
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=(1, 0), allow_pickle=False)


def _finite(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None     # strict JSON has no Infinity/NaN
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def save_json(path, obj):
    with open(path, "w") as f:
        json.dump(_finite(obj), f, indent=2, sort_keys=False, allow_nan=False)
        f.write("\n")


# --------------------------------------------------------------------------------------------
# The three rectifier rules. Only the ReLU backward differs between them (DESIGN.md section 3).

class _RuleReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, rule):
        ctx.save_for_backward(x)
        ctx.rule = rule
        if TRACE is not None:
            TRACE["relu_in"].append(x.detach().clone())
        return torch.relu(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if TRACE is not None:
            TRACE["relu_gout"].append((ctx.rule, x.detach().clone(), g.detach().clone()))
        zero = torch.zeros_like(g)
        if ctx.rule == "gradient":          # g_in = g_out * [x > 0]
            keep = x > 0
        elif ctx.rule == "deconvnet":       # g_in = g_out * [g_out > 0]   (x is ignored)
            keep = g > 0
        elif ctx.rule == "guided":          # g_in = g_out * [x > 0] * [g_out > 0]
            keep = (x > 0) & (g > 0)
        else:
            raise ValueError(ctx.rule)
        return torch.where(keep, g, zero), None


RULE = None     # None: plain torch.relu (export, plain forward); else one of RULES
TRACE = None    # dict of lists while margins are being measured


def relu_rule(x, rule):
    if rule is None:
        return torch.relu(x)
    return _RuleReLU.apply(x, rule)


class Rect(nn.Module):
    """nn.ReLU whose backward follows the global RULE; exports as a plain Relu node."""

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():
            return torch.relu(x)
        return relu_rule(x, RULE)


# --------------------------------------------------------------------------------------------
# Layers whose torch 1.13 export would leave the engine's op list, given an explicit ONNX symbolic.

class _LRNExport(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        return F.local_response_norm(x, size, alpha, beta, k)

    @staticmethod
    def symbolic(g, x, size, alpha, beta, k):
        return g.op("LRN", x, size_i=size, alpha_f=alpha, beta_f=beta, bias_f=k)


class LRN(nn.Module):
    """torch.nn.LocalResponseNorm; torch 1.13 traces it into Pad/AveragePool/Unsqueeze/...,
    so at export it is written as one ONNX LRN node. For odd size, torch's and ONNX's channel
    windows coincide ([c - (size-1)/2, c + (size-1)/2]) and both divide alpha by size."""

    def __init__(self, size, alpha, beta, k):
        super().__init__()
        assert size % 2 == 1, "torch and ONNX LRN windows differ for even sizes"
        self.size, self.alpha, self.beta, self.k = size, f32(alpha), f32(beta), f32(k)

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():
            return _LRNExport.apply(x, self.size, self.alpha, self.beta, self.k)
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)


class _AvgPoolExport(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k, s, p, ceil, cip):
        return F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip)

    @staticmethod
    def symbolic(g, x, k, s, p, ceil, cip):
        return g.op("AveragePool", x, kernel_shape_i=[k, k], strides_i=[s, s],
                    pads_i=[p, p, p, p], ceil_mode_i=int(ceil), count_include_pad_i=int(cip))


class AvgPoolCIP(nn.Module):
    """nn.AvgPool2d(count_include_pad=True, padding>0). torch 1.13 exports that as an explicit
    Pad node + AveragePool(pads=0); here it is written as AveragePool(pads, count_include_pad=1)."""

    def __init__(self, k, s, p):
        super().__init__()
        self.k, self.s, self.p = k, s, p

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():
            return _AvgPoolExport.apply(x, self.k, self.s, self.p, False, True)
        return F.avg_pool2d(x, self.k, self.s, self.p, ceil_mode=False, count_include_pad=True)


class _DropoutExport(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, ratio):
        return x.clone()

    @staticmethod
    def symbolic(g, x, ratio):
        r = g.op("Constant", value_t=torch.tensor(ratio, dtype=torch.float32))
        return g.op("Dropout", x, r)


class Dropout(nn.Module):
    """Eval-mode dropout (identity). torch drops eval-mode dropout from the export altogether;
    here it is kept as an opset-13 Dropout node (data, ratio) so the importer meets one."""

    def __init__(self, ratio):
        super().__init__()
        self.ratio = ratio

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():
            return _DropoutExport.apply(x, self.ratio)
        return x


def pool_out_torch(n, k, s, p, ceil, d=1):
    ek = (k - 1) * d + 1
    num = n + 2 * p - ek
    o = (-(-num // s) if ceil else num // s) + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1      # torch drops a last window that starts inside the right padding
    return o


def pool_out_onnx13(n, k, s, pb, pe, ceil, d=1):
    ek = (k - 1) * d + 1
    num = n + pb + pe - ek
    return (-(-num // s) if ceil else num // s) + 1


def maxpool_gap(x, k, s, p, ceil):
    """min over windows of (max - largest value below the max); exact ties are not counted."""
    n, c, h, w = x.shape
    oh, ow = pool_out_torch(h, k, s, p, ceil), pool_out_torch(w, k, s, p, ceil)
    nh, nw = (oh - 1) * s + k, (ow - 1) * s + k
    xp = F.pad(x, (p, k + s, p, k + s), value=-math.inf)[:, :, :nh, :nw]
    cols = F.unfold(xp.reshape(n * c, 1, nh, nw), k, stride=s)
    m = cols.max(1, keepdim=True).values
    second = torch.where(cols == m, torch.full_like(cols, -math.inf), cols).max(1).values
    gap = (m[:, 0] - second)[torch.isfinite(second)]
    return float(gap.min()) if gap.numel() else math.inf


class MaxPool(nn.Module):
    def __init__(self, k, s, p=0, ceil=False):
        super().__init__()
        self.k, self.s, self.p, self.ceil = k, s, p, ceil
        self.pool = nn.MaxPool2d(k, s, p, ceil_mode=ceil)

    def forward(self, x):
        if TRACE is not None:
            TRACE["pool_gap"].append(maxpool_gap(x.detach(), self.k, self.s, self.p, self.ceil))
            y, idx = F.max_pool2d(x, self.k, self.s, self.p, ceil_mode=self.ceil,
                                  return_indices=True)
            TRACE["pool_idx"].append(idx)
            return y
        return self.pool(x)


# --------------------------------------------------------------------------------------------
# The four small nets. scores() is the input of the final Softmax; forward() ends in the Softmax.

class Net(nn.Module):
    def forward(self, x):
        return torch.softmax(self.scores(x), dim=1)


class AlexNetLike(Net):
    description = ("Conv(3->8, 5x5, stride 2, pad 2) ReLU; LRN(size 5, alpha 1e-2, beta 0.75, "
                   "bias 2); MaxPool(3, stride 2, ceil_mode); Conv(8->12, 3x3, pad 1, group 2) ReLU; "
                   "Conv(12->12, 3x3, pad 2, dilation 2) ReLU; AveragePool(3, stride 2, pad 1, "
                   "ceil_mode, count_include_pad=0); Flatten; Gemm(192->16) ReLU; Dropout(0.5, "
                   "identity at inference); Gemm(16->10); Softmax(axis 1)")
    input_shape = (2, 3, 23, 23)
    classes = (1, 3)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 5, stride=2, padding=2)
        self.relu1 = Rect()
        self.lrn = LRN(5, 1e-2, 0.75, 2.0)
        self.pool1 = MaxPool(3, 2, 0, ceil=True)
        self.conv2 = nn.Conv2d(8, 12, 3, padding=1, groups=2)
        self.relu2 = Rect()
        self.conv3 = nn.Conv2d(12, 12, 3, padding=2, dilation=2)
        self.relu3 = Rect()
        self.pool2 = nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)
        self.fc1 = nn.Linear(192, 16)
        self.relu4 = Rect()
        self.drop = Dropout(0.5)
        self.fc2 = nn.Linear(16, 10)

    def scores(self, x):
        x = self.pool1(self.lrn(self.relu1(self.conv1(x))))             # 8 x 6 x 6
        x = self.relu2(self.conv2(x))
        x = self.pool2(self.relu3(self.conv3(x)))                       # 12 x 4 x 4
        x = self.drop(self.relu4(self.fc1(torch.flatten(x, 1))))
        return self.fc2(x)


class FireBN(Net):
    description = ("Conv(3->16, 3x3, stride 2) ReLU; MaxPool(3, stride 2, ceil_mode) = p; fire: "
                   "squeeze Conv 1x1 16->8 ReLU, expand Conv 1x1 8->8 ReLU and Conv 3x3 pad 1 8->8 "
                   "ReLU, Concat(axis 1); BatchNormalization(16, eval: running stats, affine); "
                   "Add(BN output, p) (residual); AveragePool(2, stride 2, pad 1, "
                   "count_include_pad=1); Conv 1x1 16->7 ReLU; GlobalAveragePool; Flatten; "
                   "Softmax(axis 1)")
    input_shape = (2, 3, 25, 25)
    classes = (1, 3)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=2)
        self.relu1 = Rect()
        self.pool1 = MaxPool(3, 2, 0, ceil=True)
        self.squeeze = nn.Conv2d(16, 8, 1)
        self.relu_s = Rect()
        self.expand1 = nn.Conv2d(8, 8, 1)
        self.relu_e1 = Rect()
        self.expand3 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu_e3 = Rect()
        self.bn = nn.BatchNorm2d(16, eps=f32(1e-5))
        self.pool2 = AvgPoolCIP(2, 2, 1)
        self.conv_cls = nn.Conv2d(16, 7, 1)
        self.relu_cls = Rect()
        self.gap = nn.AdaptiveAvgPool2d(1)

    def scores(self, x):
        p = self.pool1(self.relu1(self.conv1(x)))                        # 16 x 6 x 6
        s = self.relu_s(self.squeeze(p))
        f = torch.cat([self.relu_e1(self.expand1(s)), self.relu_e3(self.expand3(s))], 1)
        x = self.bn(f) + p
        x = self.pool2(x)                                                # 16 x 4 x 4
        x = self.gap(self.relu_cls(self.conv_cls(x)))
        return torch.flatten(x, 1)


class NoReLU(Net):
    description = ("no rectifier anywhere: Conv(3->6, 3x3); MaxPool(2, stride 2, ceil_mode); "
                   "Conv(6->8, 3x3, pad 1); AveragePool(3, stride 2); Flatten; Gemm(72->16); "
                   "Gemm(16->5); Softmax(axis 1)")
    input_shape = (2, 3, 15, 15)
    classes = (1, 3)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3)
        self.pool1 = MaxPool(2, 2, 0, ceil=True)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        # count_include_pad=False: with no padding it changes nothing, but torch 1.13 exports the
        # default (True) as a Pad node with all-zero pads in front of the AveragePool
        self.pool2 = nn.AvgPool2d(3, 2, count_include_pad=False)
        self.fc1 = nn.Linear(72, 16)
        self.fc2 = nn.Linear(16, 5)

    def scores(self, x):
        x = self.pool1(self.conv1(x))                                    # 6 x 7 x 7
        x = self.pool2(self.conv2(x))                                    # 8 x 3 x 3
        return self.fc2(self.fc1(torch.flatten(x, 1)))


class ElementwiseMatmul(Net):
    description = ("Sub(x, mean[1,2,1,1]); Div(., std[1,2,1,1]); Conv(2->4, 3x3, pad 1); "
                   "Mul(., scale[1,4,1,1]); Add(., scalar 0.25); Relu; Mul(., scalar 1.5); "
                   "Sub(., scalar 0.125); Div(., scalar 2); Flatten; MatMul(., W[252,20]); "
                   "Add(., b[20]); Relu; Reshape(., [-1,4,5]); Sub(., c[1,4,1]); "
                   "Reshape(., [-1,20]); Relu; Gemm(20->6); Softmax(axis 1)")
    input_shape = (2, 2, 7, 9)
    classes = (1, 3)

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.empty(1, 2, 1, 1))
        self.register_buffer("std", torch.empty(1, 2, 1, 1))
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.register_buffer("cscale", torch.empty(1, 4, 1, 1))
        self.relu1 = Rect()
        self.W = nn.Parameter(torch.empty(252, 20))
        self.b = nn.Parameter(torch.empty(20))
        self.relu2 = Rect()
        self.register_buffer("c3", torch.empty(1, 4, 1))
        self.relu3 = Rect()
        self.fc = nn.Linear(20, 6)

    def scores(self, x):
        x = (x - self.mean) / self.std
        x = self.relu1(self.conv(x) * self.cscale + 0.25)
        x = (x * 1.5 - 0.125) / 2.0
        x = self.relu2(torch.matmul(torch.flatten(x, 1), self.W) + self.b)
        x = x.reshape(-1, 4, 5) - self.c3
        x = self.relu3(x.reshape(-1, 20))
        return self.fc(x)


NETS = {
    "alexnet_like": AlexNetLike,
    "fire_bn": FireBN,
    "no_relu": NoReLU,
    "elementwise_matmul": ElementwiseMatmul,
}
BASE_SEED = {"alexnet_like": 1000, "fire_bn": 2000, "no_relu": 3000, "elementwise_matmul": 4000}


def init_net(net):
    """He-normal weights (gain 2 before a ReLU), small uniform biases; activations stay O(1)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                m.weight.normal_(0.0, math.sqrt(2.0 / fan_in))
                m.bias.uniform_(-0.2, 0.2)
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0.0, math.sqrt(2.0 / m.in_features))
                m.bias.uniform_(-0.2, 0.2)
            elif isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(0.2, 0.8)
                m.running_var.uniform_(0.3, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
        if isinstance(net, ElementwiseMatmul):
            net.mean.uniform_(-0.3, 0.3)
            net.std.uniform_(0.7, 1.4)
            net.cscale.uniform_(0.6, 1.6)
            net.W.normal_(0.0, math.sqrt(2.0 / 252))
            net.b.uniform_(-0.2, 0.2)
            net.c3.uniform_(-0.3, 0.3)
    net.eval()
    return net


def score_grads(net64, x64, classes):
    """float64 scores and d(sum_n S[n, classes[n]])/d input under each rule."""
    global RULE
    out = {}
    for rule in RULES:
        RULE = rule
        x = x64.clone().requires_grad_(True)
        s = net64.scores(x)
        s.gather(1, classes.view(-1, 1)).sum().backward()
        out[rule] = x.grad.detach().clone()
        out["scores"] = s.detach().clone()
    RULE = None
    return out


def _signature(net64, x64, classes):
    """Every discrete decision the three backward passes take: ReLU masks [x > 0], max-pool
    switches, and the masks [g_out > 0] that deconvnet (everywhere) and guided (where x > 0) read.
    Also returns the forward margins and, for information, min |g_out| / max |g_out|."""
    global TRACE
    sig = []
    m = {"relu_min_abs_input": math.inf, "relu_frac_within_1e-3": 0.0, "relu_inputs": 0,
         "maxpool_min_gap": math.inf, "gout_min_rel": {"deconvnet": math.inf, "guided": math.inf},
         "min_over_images_max_abs_grad": math.inf}
    near, total = 0, 0
    for rule in RULES:
        TRACE = {"relu_in": [], "relu_gout": [], "pool_gap": [], "pool_idx": []}
        try:
            gx = score_grads_one(net64, x64, classes, rule)
            tr = TRACE
        finally:
            TRACE = None
        per_image = float(gx.abs().flatten(1).max(1).values.min())
        m["min_over_images_max_abs_grad"] = min(m["min_over_images_max_abs_grad"], per_image)
        if rule == "gradient":
            for t in tr["relu_in"]:
                sig.append(t > 0)
                m["relu_min_abs_input"] = min(m["relu_min_abs_input"], float(t.abs().min()))
                near += int((t.abs() < 1e-3).sum())
                total += t.numel()
            for gp in tr["pool_gap"]:
                m["maxpool_min_gap"] = min(m["maxpool_min_gap"], gp)
            sig.extend(tr["pool_idx"])
        else:
            for _, xin, g in tr["relu_gout"]:
                sel = (g != 0) if rule == "deconvnet" else (g != 0) & (xin > 0)
                sig.append((g > 0) & sel)
                if sel.any():
                    rel = float(g[sel].abs().min() / g.abs().max())
                    m["gout_min_rel"][rule] = min(m["gout_min_rel"][rule], rel)
    m["relu_inputs"] = total
    m["relu_frac_within_1e-3"] = near / total if total else 0.0
    return sig, m


def measure_margins(net64, x64, classes):
    """Forward margins, plus a stability test of every kink decision: the float64 net and input
    are perturbed PERTURB_TRIALS times by relative noise PERTURB_REL (well above the rounding of a
    float32 evaluation); every decision must stay the same."""
    sig, m = _signature(net64, x64, classes)
    gen = torch.Generator().manual_seed(12345)
    stable = True
    for _ in range(PERTURB_TRIALS):
        netp = copy.deepcopy(net64)
        with torch.no_grad():
            for t in list(netp.parameters()) + list(netp.buffers()):
                if t.is_floating_point():
                    t.mul_(1 + PERTURB_REL * torch.randn(t.shape, generator=gen,
                                                         dtype=t.dtype))
        xp = x64 * (1 + PERTURB_REL * torch.randn(x64.shape, generator=gen, dtype=x64.dtype))
        sigp, _ = _signature(netp, xp, classes)
        if len(sigp) != len(sig) or not all(torch.equal(a, b) for a, b in zip(sig, sigp)):
            stable = False
            break
    m["kinks_stable_under_perturbation"] = stable
    m["perturbation"] = {"relative": PERTURB_REL, "trials": PERTURB_TRIALS}
    return m


def score_grads_one(net64, x64, classes, rule):
    global RULE
    RULE = rule
    try:
        x = x64.clone().requires_grad_(True)
        net64.scores(x).gather(1, classes.view(-1, 1)).sum().backward()
    finally:
        RULE = None
    return x.grad


def margins_ok(m):
    return (m["relu_min_abs_input"] >= RELU_MARGIN and m["maxpool_min_gap"] >= POOL_GAP
            and m["kinks_stable_under_perturbation"]
            and m["min_over_images_max_abs_grad"] > 1e-3)   # every image's seed reaches the input


def export_onnx(net, x):
    buf = io.BytesIO()
    torch.onnx.export(net, (x,), buf, opset_version=OPSET, input_names=["input"],
                      output_names=["prob"], do_constant_folding=True,
                      dynamic_axes={"input": {0: "N"}, "prob": {0: "N"}})
    data = buf.getvalue()
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model)
    return data, model


def op_list(model):
    ops = []
    for n in model.graph.node:
        if n.op_type not in ops:
            ops.append(n.op_type)
    return ops


# --------------------------------------------------------------------------------------------
# A small ONNX interpreter in torch (float64 or float32), with the ReLU rule of choice.

def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pads2d(a):
    pads = list(a.get("pads", [0, 0, 0, 0]))
    assert len(pads) == 4, pads
    return pads  # top, left, bottom, right


def _check_pool_shape(x, k, s, pads, ceil, d=(1, 1)):
    for i, n in enumerate(x.shape[2:]):
        o_onnx = pool_out_onnx13(n, k[i], s[i], pads[i], pads[i + 2], ceil, d[i])
        if pads[i] == pads[i + 2]:
            o_torch = pool_out_torch(n, k[i], s[i], pads[i], ceil, d[i])
            if o_onnx != o_torch:
                raise NotImplementedError(
                    "pool output size differs between ONNX (%d) and torch (%d)" % (o_onnx, o_torch))


class OnnxInterp:
    def __init__(self, path_or_model):
        m = onnx.load(path_or_model) if isinstance(path_or_model, str) else path_or_model
        onnx.checker.check_model(m)
        self.model = m
        g = m.graph
        self.inits = {t.name: numpy_helper.to_array(t).copy() for t in g.initializer}
        init_names = set(self.inits)
        self.input = [i.name for i in g.input if i.name not in init_names][0]
        self.output = g.output[0].name
        last = [n for n in g.node if n.op_type == "Softmax" and self.output in n.output]
        assert len(last) == 1, "the graph must end in a Softmax"
        self.score_value = last[0].input[0]
        for n in g.node:
            if n.op_type not in ALLOWED_OPS:
                raise NotImplementedError("op %s (node %s)" % (n.op_type, n.name))

    def run(self, x, rule=None, dtype=torch.float64):
        env = {}
        for k, v in self.inits.items():
            t = torch.from_numpy(v)
            env[k] = t.to(dtype) if t.is_floating_point() else t
        env[self.input] = x
        for node in self.model.graph.node:
            ins = [env[i] if i else None for i in node.input]
            outs = self._op(node, ins, _attrs(node), rule, dtype)
            for name, val in zip(node.output, outs):
                if name:
                    env[name] = val
        return env

    def scores(self, x, rule=None, dtype=torch.float64):
        return self.run(x, rule, dtype)[self.score_value]

    @staticmethod
    def _op(node, ins, a, rule, dtype):
        op = node.op_type
        x = ins[0] if ins else None
        if op == "Conv":
            assert a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
            w, b = ins[1], (ins[2] if len(ins) > 2 else None)
            t, l, bo, r = _pads2d(a)
            if (t, l) != (bo, r):
                x = F.pad(x, (l, r, t, bo))
                t = l = 0
            return [F.conv2d(x, w, b, tuple(a.get("strides", [1, 1])), (t, l),
                             tuple(a.get("dilations", [1, 1])), a.get("group", 1))]
        if op == "Relu":
            return [relu_rule(x, rule)]
        if op == "MaxPool":
            assert len([o for o in node.output if o]) == 1 and a.get("storage_order", 0) == 0
            k, s = a["kernel_shape"], a.get("strides", [1, 1])
            d, pads, ceil = a.get("dilations", [1, 1]), _pads2d(a), bool(a.get("ceil_mode", 0))
            _check_pool_shape(x, k, s, pads, ceil, d)
            t, l, bo, r = pads
            if (t, l) != (bo, r):
                x = F.pad(x, (l, r, t, bo), value=-math.inf)
                t = l = 0
            return [F.max_pool2d(x, tuple(k), tuple(s), (t, l), tuple(d), ceil_mode=ceil)]
        if op == "AveragePool":
            k, s, pads = a["kernel_shape"], a.get("strides", [1, 1]), _pads2d(a)
            ceil, cip = bool(a.get("ceil_mode", 0)), bool(a.get("count_include_pad", 0))
            _check_pool_shape(x, k, s, pads, ceil)
            t, l, bo, r = pads
            assert (t, l) == (bo, r), "asymmetric AveragePool pads not needed here"
            if ceil and cip:
                for i, n in enumerate(x.shape[2:]):
                    o = pool_out_onnx13(n, k[i], s[i], pads[i], pads[i + 2], ceil)
                    assert (o - 1) * s[i] + k[i] <= n + 2 * pads[i], \
                        "ceil-mode window beyond the padding with count_include_pad: ambiguous"
            return [F.avg_pool2d(x, tuple(k), tuple(s), (t, l), ceil_mode=ceil,
                                 count_include_pad=cip)]
        if op == "GlobalAveragePool":
            return [x.mean(dim=(2, 3), keepdim=True)]
        if op == "LRN":
            size, alpha = a["size"], a.get("alpha", 1e-4)
            beta, bias = a.get("beta", 0.75), a.get("bias", 1.0)
            c = x.shape[1]
            lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
            sq = F.pad(x * x, (0, 0, 0, 0, lo, hi))
            acc = sum(sq[:, j:j + c] for j in range(size))
            return [x / (bias + alpha / size * acc) ** beta]
        if op == "Gemm":
            A, B = ins[0], ins[1]
            if a.get("transA", 0):
                A = A.t()
            if a.get("transB", 0):
                B = B.t()
            y = a.get("alpha", 1.0) * (A @ B)
            if len(ins) > 2 and ins[2] is not None:
                y = y + a.get("beta", 1.0) * ins[2]
            return [y]
        if op == "MatMul":
            return [torch.matmul(ins[0], ins[1])]
        if op in ("Add", "Sub", "Mul", "Div"):
            f = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}[op]
            return [f(ins[0], ins[1])]
        if op == "Flatten":
            ax = a.get("axis", 1)
            return [x.reshape(int(np.prod(x.shape[:ax], dtype=np.int64)), -1)]
        if op == "Reshape":
            assert a.get("allowzero", 0) == 0
            shape = [int(v) for v in ins[1].tolist()]
            shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
            return [x.reshape(shape)]
        if op == "Concat":
            return [torch.cat(ins, a["axis"])]
        if op == "Dropout":
            assert len([o for o in node.output if o]) == 1
            assert len(ins) < 3 or ins[2] is None or not bool(ins[2])
            return [x]
        if op == "BatchNormalization":
            assert len([o for o in node.output if o]) == 1 and not a.get("training_mode", 0)
            scale, bias, mean, var = [t.view(1, -1, 1, 1) for t in ins[1:5]]
            eps = a.get("epsilon", 1e-5)
            return [(x - mean) / torch.sqrt(var + eps) * scale + bias]
        if op == "Softmax":
            return [torch.softmax(x, a.get("axis", -1))]
        if op == "Identity":
            return [x]
        if op == "Constant":
            t = torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
            return [t.to(dtype) if t.is_floating_point() else t]
        raise NotImplementedError(op)


def interp_grads(interp, x, classes, dtype=torch.float64):
    out = {}
    for rule in RULES:
        xi = x.to(dtype).clone().requires_grad_(True)
        s = interp.scores(xi, rule, dtype)
        s.gather(1, classes.view(-1, 1)).sum().backward()
        out[rule] = xi.grad.detach().clone()
        out["scores"] = s.detach().clone()
    return out


def rel_diff(a, b):
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


# --------------------------------------------------------------------------------------------
# Part A

def make_net(name, log):
    cls = NETS[name]
    classes = torch.tensor(cls.classes, dtype=torch.int64)
    for seed in range(BASE_SEED[name], BASE_SEED[name] + 200):
        torch.manual_seed(seed)
        net = init_net(cls())
        x = torch.randn(*cls.input_shape, dtype=torch.float32)
        net64 = copy.deepcopy(net).double()
        m = measure_margins(net64, x.double(), classes)
        if margins_ok(m):
            log("  %s: seed %d  margins %s" % (name, seed, json.dumps(m)))
            return seed, net, net64, x, classes, m
        log("  %s: seed %d rejected  %s" % (name, seed, json.dumps(m)))
    raise RuntimeError("no seed met the margins for " + name)


def part_a(log):
    summary = {}
    for name in NETS:
        seed, net, net64, x, classes, margins = make_net(name, log)
        d = os.path.join(HERE, "nets", name)
        os.makedirs(d, exist_ok=True)

        data, model = export_onnx(net, x)
        ops = op_list(model)
        bad = [o for o in ops if o not in ALLOWED_OPS]
        assert not bad, "%s exported ops outside the engine's list: %s" % (name, bad)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(data)
        log("  %s ops: %s" % (name, " ".join(n.op_type for n in model.graph.node)))

        res = score_grads(net64, x.double(), classes)
        scores = res["scores"]
        prob = torch.softmax(scores, 1)
        with torch.no_grad():
            prob32 = net(x)     # the float32 torch net, as a plain sanity check
        assert rel_diff(prob32, prob) < 1e-5

        # independent check: the exported ONNX graph, interpreted in float64
        interp = OnnxInterp(model)
        ires = interp_grads(interp, x.double(), classes)
        chk = {k: rel_diff(ires[k], res[k]) for k in ("scores",) + RULES}
        assert all(v < 1e-12 for v in chk.values()), (name, chk)
        iprob = interp.run(x.double())[interp.output]
        assert rel_diff(iprob, prob) < 1e-12

        # how far a float32 evaluation of the same graph lands (guidance for tolerances)
        r32 = interp_grads(interp, x, classes, dtype=torch.float32)
        f32err = {k: rel_diff(r32[k], res[k]) for k in ("scores",) + RULES}

        for rule in RULES:   # every image's seeded score must reach the input
            assert all(float(res[rule][n].abs().max()) > 0 for n in range(x.shape[0])), (name, rule)
        if name == "no_relu":
            assert "Relu" not in ops
            assert torch.equal(res["gradient"], res["deconvnet"])
            assert torch.equal(res["gradient"], res["guided"])

        save_npy(os.path.join(d, "input.npy"), x.numpy(), "<f4")
        save_npy(os.path.join(d, "classes.npy"), classes.numpy(), "<i8")
        save_npy(os.path.join(d, "scores.npy"), scores.numpy(), "<f8")
        save_npy(os.path.join(d, "prob.npy"), prob.numpy(), "<f8")
        for rule in RULES:
            save_npy(os.path.join(d, "grad_%s.npy" % rule), res[rule].numpy(), "<f8")

        maxabs = {rule: float(res[rule].abs().max()) for rule in RULES}
        meta = {
            "net": name,
            "description": NETS[name].description,
            "seed": seed,
            "opset": OPSET,
            "ops": ops,
            "nodes": [n.op_type for n in model.graph.node],
            "input_name": "input",
            "output_name": "prob",
            "input_shape": list(NETS[name].input_shape),
            "batch_dim_dynamic": True,
            "num_classes": int(scores.shape[1]),
            "classes": [int(c) for c in classes],
            "top1": [int(c) for c in scores.argmax(1)],
            "scores_value": "input of the final Softmax",
            "scores_value_name": interp.score_value,
            "seed_of_backward": "d/d input of sum_n scores[n, classes[n]] (one-hot per image)",
            "max_abs_grad": maxabs,
            "margins": margins,
            "float32_torch_max_rel_err": f32err,
        }
        save_json(os.path.join(d, "meta.json"), meta)
        summary[name] = {"ops": ops, "max_abs_grad": maxabs, "seed": seed,
                         "float32_rel_err": f32err}
        log("  %s: max|grad| %s  float32 rel err %s" % (name, maxabs, f32err))
    return summary


# --------------------------------------------------------------------------------------------
# Part B: SqueezeNet v1.1 on real photos

CROP = 227
SHORT = 256


def load_crop(path):
    from PIL import Image
    im = Image.open(path).convert("RGB")
    w, h = im.size
    if w <= h:
        nw, nh = SHORT, int(math.floor(h * SHORT / w + 0.5))
    else:
        nw, nh = int(math.floor(w * SHORT / h + 0.5)), SHORT
    im2 = im.resize((nw, nh), Image.BILINEAR)
    ox, oy = (nw - CROP) // 2, (nh - CROP) // 2
    crop = np.asarray(im2.crop((ox, oy, ox + CROP, oy + CROP)), dtype=np.uint8)
    assert crop.shape == (CROP, CROP, 3)
    info = {"original_size_wh": [w, h], "resized_size_wh": [nw, nh], "crop_offset_xy": [ox, oy]}
    return np.ascontiguousarray(crop), info


def pixels_to_input(pixels, card, dtype=torch.float64):
    """uint8 HxWx3 RGB -> 1x3xHxW in the card's channel order, (p - mean) * scale."""
    inp = card["input"]
    order = {"RGB": [0, 1, 2], "BGR": [2, 1, 0]}[inp["channel_order"]]
    x = torch.from_numpy(pixels.astype(np.float64)).permute(2, 0, 1)[order]
    mean = torch.tensor(inp["mean"], dtype=torch.float64).view(3, 1, 1)
    x = (x - mean) * inp.get("scale", 1.0)
    return x.unsqueeze(0).to(dtype).contiguous()


def load_labels(card_dir, card):
    path = os.path.normpath(os.path.join(card_dir, card["labels"]))
    with open(path) as f:
        return [line.strip().split(" ", 1)[1] for line in f if line.strip()]


def top5(scores, labels):
    prob = torch.softmax(scores, 0)
    order = torch.argsort(scores, descending=True)[:5]
    return [{"class": int(i), "label": labels[int(i)], "score": float(scores[i]),
             "prob": float(prob[i])} for i in order]


def part_b(log):
    mdir = os.path.join(SHARED, "models", "squeezenet1.1")
    if not os.path.isdir(mdir):
        log("  ../shared is absent: part B skipped, squeezenet_eagle/ left as it was")
        return None
    with open(os.path.join(mdir, "model.json")) as f:
        card = json.load(f)
    labels = load_labels(mdir, card)
    interp = OnnxInterp(os.path.join(mdir, card["model"]))
    d = os.path.join(HERE, "squeezenet_eagle")
    os.makedirs(d, exist_ok=True)
    out = {}

    for img in ("eagle", "cat", "dog"):
        pixels, info = load_crop(os.path.join(SHARED, "images", img + ".jpg"))
        x = pixels_to_input(pixels, card).requires_grad_(True)
        s = interp.scores(x, "gradient")[0]
        t5 = top5(s.detach(), labels)
        out[img] = t5
        log("  %s %s top5: %s" % (img, info, [(t["class"], t["label"].split(",")[0],
                                                 round(t["score"], 3), round(t["prob"], 4))
                                                for t in t5]))
        rec = {"image": "../shared/images/%s.jpg" % img, "model": "../shared/models/squeezenet1.1",
               "preprocessing": ("PIL convert('RGB'); resize shorter side to 256 with "
                                 "Image.BILINEAR (longer side floor(x + 0.5)); centre crop 227 at "
                                 "offset ((w-227)//2, (h-227)//2); BGR; minus (104, 117, 123)"),
               **info, "scores_value": "input of the final Softmax (%s)" % interp.score_value,
               "top5": t5}
        if img != "eagle":
            save_json(os.path.join(d, "top5_%s.json" % img), rec)
            continue

        c = t5[0]["class"]
        assert c == 21, "eagle.jpg: expected top-1 21 (kite), got %d" % c
        s[c].backward()
        g = x.grad[0].detach()                                  # 3 x 227 x 227, BGR
        sal = g.abs().max(0).values                             # 227 x 227
        # float32 evaluation of the same graph, to size tolerances
        x32 = pixels_to_input(pixels, card, dtype=torch.float32).requires_grad_(True)
        s32 = interp.scores(x32, "gradient", torch.float32)[0]
        s32[c].backward()
        err = {"scores": rel_diff(s32.detach(), s.detach()), "grad": rel_diff(x32.grad[0], g)}
        log("  eagle: max|grad| %.6g, max map %.6g, float32 rel err %s"
            % (float(g.abs().max()), float(sal.max()), err))

        save_npy(os.path.join(d, "pixels.npy"), pixels, "|u1")
        save_npy(os.path.join(d, "scores.npy"), s.detach().numpy(), "<f8")
        save_npy(os.path.join(d, "map.npy"), sal.numpy(), "<f4")
        save_npy(os.path.join(d, "grad.npy"), g.numpy(), "<f4")
        rec.update({
            "class": c,
            "map": "M[i,j] = max over the 3 channels of |dS_c/dI[c', i, j]|, float64 -> float32",
            "grad": "dS_c/dI, shape (3,227,227), channels in the model's order (BGR), float32",
            "max_abs_grad": float(g.abs().max()),
            "float32_torch_max_rel_err": err,
        })
        save_json(os.path.join(d, "top5.json"), rec)

    total = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    assert total < 1.2e6, "squeezenet_eagle/ is %d bytes" % total
    return out


def main():
    warnings.filterwarnings("ignore", category=FutureWarning)   # torch 1.13's g.op() notice
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    log = print
    log("torch %s, onnx %s, numpy %s" % (torch.__version__, onnx.__version__, np.__version__))
    log("Part A: small nets")
    part_a(log)
    log("Part B: SqueezeNet v1.1")
    part_b(log)
    log("done")


if __name__ == "__main__":
    sys.exit(main())
