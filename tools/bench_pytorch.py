#!/usr/bin/env python3
"""The PyTorch peer of `deepinside bench`: the same saliency pass (forward + gradient of each image's
top class score with respect to the input, the map = max over channels of |gradient|) on the same
network and weights, timed the same way, in eval mode, with no weight gradients.

The network comes as an ONNX file (the zoo nets are exported by the bench with their weights;
SqueezeNet is read from its file) and is run by a small interpreter over torch.nn.functional, so that
PyTorch executes exactly the graph the engine executes, with its own kernels (oneDNN convolutions,
the BLAS it is linked with for the fully-connected layers).

Usage (the bench runs it; standalone works too):
  bench_pytorch.py --model NET.onnx --batch 1,16,64 --repeat 5 --warmup 1 --threads 2 \\
                   [--scores-value scores] [--check-input x.npy --check-output s.npy] --json out.json
Prints one JSON object: per batch size the timings, and the process's peak memory.

--device cuda runs the same pass on the GPU (FP32, TF32 off, cuDNN autotuning on, the clock read
after torch.cuda.synchronize()); where torch has no CUDA (Debian's build) it prints {"skipped": why}.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np


def read_hwm_kb():
    """Peak resident set size of this process (VmHWM) in KiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_hwm():
    """Resets VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def loaded_blas():
    """The BLAS shared object(s) mapped into this process (which one torch really uses)."""
    names = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                base = os.path.basename(path)
                if "blas" in base or "mkl" in base:
                    names.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(names)


class OnnxNet:
    """Runs an ONNX graph (the conv-net ops the engine's zoo and SqueezeNet use) with torch."""

    def __init__(self, path, torch):
        import onnx
        from onnx import numpy_helper
        self.torch = torch
        self.F = torch.nn.functional
        model = onnx.load(path)
        g = model.graph
        self.consts = {}
        for init in g.initializer:
            self.consts[init.name] = torch.from_numpy(numpy_helper.to_array(init).astype(np.float32).copy())
        self.input_name = [i.name for i in g.input if i.name not in self.consts][0]
        dims = [d.dim_value for d in g.input[[i.name for i in g.input].index(self.input_name)].type.tensor_type.shape.dim]
        self.input_chw = tuple(dims[1:])
        self.nodes = []
        for n in g.node:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            self.nodes.append((n.op_type, list(n.input), list(n.output), attrs))
        self.outputs = [o.name for o in g.output]

    def use_channels_last(self, on):
        """NHWC weights (oneDNN then skips its layout reorders) or the default NCHW."""
        fmt = self.torch.channels_last if on else self.torch.contiguous_format
        for k, v in self.consts.items():
            if v.dim() == 4:
                self.consts[k] = v.contiguous(memory_format=fmt)

    def default_scores(self):
        """The input of the last Softmax (the engine's default), else the first output."""
        for op, ins, outs, attrs in reversed(self.nodes):
            if op == "Softmax":
                return ins[0]
        return self.outputs[0]

    @staticmethod
    def _pads(attrs):
        p = list(attrs.get("pads", [0, 0, 0, 0]))
        return p[0], p[1], p[2], p[3]  # top, left, bottom, right

    def run(self, x, until):
        torch, F = self.torch, self.F
        env = dict(self.consts)
        env[self.input_name] = x
        for op, ins, outs, attrs in self.nodes:
            a = [env[i] if i else None for i in ins]
            if op == "Conv":
                t, l, b, r = self._pads(attrs)
                inp = a[0]
                if (t, l) != (b, r):
                    inp = F.pad(inp, (l, r, t, b))
                    t = l = 0
                y = F.conv2d(inp, a[1], a[2] if len(a) > 2 else None, stride=tuple(attrs.get("strides", [1, 1])),
                             padding=(t, l), dilation=tuple(attrs.get("dilations", [1, 1])),
                             groups=attrs.get("group", 1))
            elif op == "Relu":
                y = F.relu(a[0])
            elif op in ("MaxPool", "AveragePool"):
                t, l, b, r = self._pads(attrs)
                k = tuple(attrs["kernel_shape"])
                s = tuple(attrs.get("strides", [1, 1]))
                ceil = bool(attrs.get("ceil_mode", 0))
                if op == "MaxPool":
                    inp = a[0]
                    if (t, l) != (b, r):
                        inp = F.pad(inp, (l, r, t, b), value=float("-inf"))
                        t = l = 0
                    y = F.max_pool2d(inp, k, s, (t, l), tuple(attrs.get("dilations", [1, 1])), ceil_mode=ceil)
                else:
                    if (t, l) != (b, r):
                        raise SystemExit("bench_pytorch: asymmetric AveragePool pads are not supported")
                    y = F.avg_pool2d(a[0], k, s, (t, l), ceil_mode=ceil,
                                     count_include_pad=bool(attrs.get("count_include_pad", 0)))
            elif op == "GlobalAveragePool":
                y = a[0].mean(dim=(2, 3), keepdim=True)
            elif op == "LRN":
                y = F.local_response_norm(a[0], attrs["size"], alpha=attrs.get("alpha", 1e-4),
                                          beta=attrs.get("beta", 0.75), k=attrs.get("bias", 1.0))
            elif op == "Gemm":
                A, B = a[0], a[1]
                if attrs.get("transA", 0):
                    A = A.t()
                alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
                C = a[2] if len(a) > 2 else None
                if attrs.get("transB", 0) and alpha == 1.0 and beta == 1.0:
                    y = F.linear(A, B, C)  # what nn.Linear runs
                else:
                    y = alpha * (A @ (B.t() if attrs.get("transB", 0) else B))
                    if C is not None:
                        y = y + beta * C
            elif op == "Flatten":
                y = torch.flatten(a[0], attrs.get("axis", 1))
            elif op == "Concat":
                y = torch.cat(a, dim=attrs.get("axis", 1))
            elif op == "Softmax":
                y = torch.softmax(a[0], dim=attrs.get("axis", -1))
            elif op in ("Dropout", "Identity"):
                y = a[0]
            else:
                raise SystemExit("bench_pytorch: op %s is not supported by this script" % op)
            env[outs[0]] = y
            if outs[0] == until:
                return y
        return env[until]


def saliency(net, torch, x, scores_value):
    """Forward, each image's top-1 score, its gradient w.r.t. x, and the map."""
    x.grad = None
    scores = net.run(x, scores_value)
    top = scores.detach().argmax(dim=1, keepdim=True)
    scores.gather(1, top).sum().backward()
    return x.grad.abs().amax(dim=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", default="1")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--scores-value", default="")
    ap.add_argument("--check-input", default="")
    ap.add_argument("--check-output", default="")
    ap.add_argument("--json", default="")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.device == "cuda" and not torch.cuda.is_available():
        text = json.dumps({"skipped": "this torch (%s) has no CUDA device or no CUDA build" % torch.__version__})
        if args.json:
            with open(args.json, "w") as f:
                f.write(text)
        print(text)
        return 0
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    if args.device == "cuda":  # FP32 like our parity runs: no TF32; cuDNN picks its fastest algorithms
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    net = OnnxNet(args.model, torch)
    net.consts = {k: v.to(device) for k, v in net.consts.items()}
    scores_value = args.scores_value or net.default_scores()
    result = {
        "torch": torch.__version__, "threads": torch.get_num_threads(), "blas": loaded_blas(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
        "mkldnn": bool(torch.backends.mkldnn.is_available()), "batches": [],
    }
    if args.check_input:  # scores of the engine's check input, for the bench to compare
        with torch.no_grad():
            xc = torch.from_numpy(np.load(args.check_input).astype(np.float32)).to(device)
            s = net.run(xc, scores_value)
        np.save(args.check_output, s.cpu().numpy().astype(np.float32))
    for batch in [int(b) for b in args.batch.split(",") if b]:
        hwm_reset = reset_hwm()
        # PyTorch at its best: its CPU convolutions (oneDNN) are faster in NHWC for some nets and in
        # NCHW for others, so both are tried after the warm-up and the faster one is timed.
        best = None
        for channels_last in ((False, True) if args.device == "cpu" else (False,)):
            net.use_channels_last(channels_last)
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            xf = torch.randn((batch,) + net.input_chw, dtype=torch.float32).to(device).contiguous(memory_format=fmt)
            xf.requires_grad_(True)
            for _ in range(args.warmup):
                saliency(net, torch, xf, scores_value)
            sync()
            t0 = time.perf_counter()
            saliency(net, torch, xf, scores_value)
            sync()
            t = time.perf_counter() - t0
            if best is None or t < best[0]:
                best = (t, channels_last, xf)
            del xf
        _, channels_last, x = best
        net.use_channels_last(channels_last)
        times = []
        for _ in range(args.repeat):
            sync()
            t0 = time.perf_counter()
            saliency(net, torch, x, scores_value)
            sync()
            times.append(time.perf_counter() - t0)
        result["batches"].append({
            "batch": batch, "seconds": times, "median_s": statistics.median(times),
            "peak_rss_kb": read_hwm_kb(), "peak_is_per_batch": hwm_reset,
            "memory_format": "channels_last" if channels_last else "contiguous",
        })
        del x
    text = json.dumps(result)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
