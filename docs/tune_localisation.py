#!/usr/bin/python3
"""How docs/localisation.md chose the baselines' thresholds and checked GraphCut's settings: every
setting is tried on the VALIDATION split (tools/make_fashion_scenes.py --split val --seed 1, objects
that the test split never uses), never on the test images. Prints markdown tables.

    /usr/bin/python3 docs/tune_localisation.py [--binary build/deepinside] [--count 1000] [--quick]
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "weights", "fashion_scenes", "fashion_scenes_cnn.onnx")


def evaluate(binary, data, method, flags):
    out = subprocess.run([binary, "eval-localization", "--model", MODEL, "--data", data, "--json",
                          "--methods", method] + flags, check=True, capture_output=True, text=True).stdout
    r = json.loads(out)["methods"][method]
    return r["top1_error"], r["top5_error"]


def table(title, header, rows):
    print(f"\n{title}\n", flush=True)
    print("| " + " | ".join(header) + " | top-1 error | top-5 error |")
    print("|" + "---|" * (len(header) + 2))
    best = min(rows, key=lambda r: (r[-1], r[-2]))
    for r in rows:
        mark = " **(best)**" if r is best else ""
        print("| " + " | ".join(str(v) for v in r[:-2]) + f" | {r[-2]:.3f} | {r[-1]:.3f}{mark} |", flush=True)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "deepinside"))
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--data", default=os.path.join(ROOT, "out", "localisation", "val"))
    ap.add_argument("--quick", action="store_true", help="fewer settings")
    ap.add_argument("--only", choices=["saliency", "cam", "graphcut"], help="one family of sweeps")
    args = ap.parse_args()
    if not os.path.exists(os.path.join(args.data, "ground_truth.json")):
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_fashion_scenes.py"), "--out", args.data,
                        "--count", str(args.count), "--split", "val", "--seed", "1"], check=True)
    ev = lambda method, flags: evaluate(args.binary, args.data, method, flags)  # noqa: E731

    if args.only in (None, "saliency"):
        # The grid reaches far enough that the best setting lies inside it, not on its edge.
        rows = []
        for t in ([0.3, 0.6] if args.quick else [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]):
            for b in ([0, 4, 10] if args.quick else [0, 2, 4, 6, 8, 10, 12, 14, 16, 20]):
                rows.append((t, b, *ev("saliency-threshold", ["--saliency-threshold", str(t), "--saliency-blur", str(b)])))
        table("saliency-threshold: fraction of the blurred map's maximum x blur sigma (pixels)",
              ["threshold", "blur"], rows)
    if args.only in (None, "cam"):
        for method in ("cam", "gradcam"):
            rows = [(t, *ev(method, ["--cam-threshold", str(t)]))
                    for t in ([0.2, 0.4] if args.quick else [0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7])]
            table(f"{method}: fraction of the map's maximum", ["threshold"], rows)
    if args.only not in (None, "graphcut"):
        return

    rows = []
    for n in (4, 8):
        for g in ([0, 50] if args.quick else [0, 10, 25, 50, 100, 200]):
            rows.append((n, g, *ev("graphcut", ["--neighbours", str(n), "--gamma", str(g)])))
    table("graphcut: neighbourhood x gamma (paper's quantiles, 5 components, one cut)", ["neighbours", "gamma"], rows)

    rows = [(it, *ev("graphcut", ["--iterations", str(it)])) for it in ([1, 3] if args.quick else [1, 2, 3, 5])]
    table("graphcut: colour models re-estimated from the cut (GrabCut's iterations)", ["iterations"], rows)

    rows = []
    for fg, bg in ([(0.95, 0.3), (0.9, 0.3)] if args.quick else
                   [(0.95, 0.3), (0.9, 0.3), (0.98, 0.3), (0.95, 0.5), (0.95, 0.1), (0.8, 0.5), (0.97, 0.5),
                    (0.98, 0.4), (0.98, 0.5), (0.98, 0.6), (0.99, 0.3), (0.99, 0.4), (0.99, 0.5), (0.995, 0.3)]):
        rows.append((fg, bg, *ev("graphcut", ["--fg-quantile", str(fg), "--bg-quantile", str(bg)])))
    table("graphcut: seed quantiles (the paper: 0.95 and 0.30)", ["fg quantile", "bg quantile"], rows)

    rows = [(k, *ev("graphcut", ["--components", str(k)])) for k in ([1, 5] if args.quick else [1, 3, 5, 8])]
    table("graphcut: Gaussians per colour model (the paper: 5)", ["components"], rows)


if __name__ == "__main__":
    main()
