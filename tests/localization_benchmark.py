#!/usr/bin/python3
"""The localisation benchmark in its small mode (CTest: localization_benchmark_small).

Generates the first N scenes of the benchmark's test split (tools/make_fashion_scenes.py, seed 0) in a
temporary folder, runs `deepinside eval-localization --json` with the committed classifier
(weights/fashion_scenes), and checks every error rate against the bounds recorded in
docs/localisation.md (the JSON block between the `ci-bounds` markers). Exits 1 on a violation, 77 (CTest's
skip code here) when Debian's Fashion-MNIST is not installed.

    /usr/bin/python3 tests/localization_benchmark.py --binary build/deepinside

--eval-args passes flags to eval-localization; with --expect-violation the exit codes swap (0 only when a
bound is broken), which is how CTest shows that the check can fail: a deliberately broken GraphCut must
break its bounds.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "weights", "fashion_scenes", "fashion_scenes_cnn.onnx")
DOC = os.path.join(ROOT, "docs", "localisation.md")
DATASET = "/usr/share/datasets/fashion-mnist"  # tools/make_fashion_scenes.py's default


def read_bounds(path):
    """The JSON object between <!-- ci-bounds begin --> and <!-- ci-bounds end --> in the doc."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"<!-- ci-bounds begin -->\s*```json\s*(.*?)```\s*<!-- ci-bounds end -->", text, re.S)
    if not m:
        sys.exit(f"{path}: no ci-bounds block")
    return json.loads(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True, help="the deepinside executable")
    ap.add_argument("--keep", help="generate into this folder and keep it (default: a temporary folder)")
    ap.add_argument("--eval-args", default="", help="extra eval-localization flags, space-separated")
    ap.add_argument("--expect-violation", action="store_true", help="succeed only when some bound is broken")
    args = ap.parse_args()
    if not os.path.exists(os.path.join(DATASET, "t10k-images-idx3-ubyte.gz")):
        print(f"skipped: {DATASET} is absent (Debian's dataset-fashion-mnist; scripts/setup.sh installs it)")
        sys.exit(77)

    bounds = read_bounds(DOC)
    count = int(bounds["images"])
    if not os.path.exists(MODEL):
        sys.exit(f"{MODEL} is absent (weights/fashion_scenes/train.py makes it)")
    data = args.keep or tempfile.mkdtemp(prefix="deepinside_scenes_")
    try:
        t0 = time.time()
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_fashion_scenes.py"), "--out", data,
                        "--count", str(count), "--split", "test", "--seed", "0"], check=True)
        t1 = time.time()
        out = subprocess.run([args.binary, "eval-localization", "--model", MODEL, "--data", data, "--json"]
                             + args.eval_args.split(),
                             check=True, capture_output=True, text=True).stdout
        t2 = time.time()
    finally:
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)
    result = json.loads(out)
    print(f"{count} scenes generated in {t1 - t0:.1f}s, evaluated in {t2 - t1:.1f}s")
    print(f"{'method':22s}{'top-1 error':>12s}{'bound':>8s}{'top-5 error':>13s}{'bound':>8s}")
    failures = []
    rows = dict(result["methods"])
    rows["classification"] = result["classification"]
    for name, b in bounds["max_error"].items():
        if name not in rows:
            failures.append(f"{name}: not in the evaluation's output")
            continue
        r = rows[name]
        print(f"{name:22s}{r['top1_error']:12.3f}{b['top1']:8.3f}{r['top5_error']:13.3f}{b['top5']:8.3f}")
        for k in ("top1", "top5"):
            if r[f"{k}_error"] > b[k]:
                failures.append(f"{name}: {k} error {r[f'{k}_error']:.3f} above its bound {b[k]:.3f}")
    for base in bounds.get("graphcut_beats", []):
        for k in ("top1", "top5"):
            if not rows["graphcut"][f"{k}_error"] < rows[base][f"{k}_error"]:
                failures.append(f"graphcut does not beat {base} on {k} error "
                                f"({rows['graphcut'][f'{k}_error']:.3f} vs {rows[base][f'{k}_error']:.3f})")
    for f in failures:
        print("FAILED:", f)
    if args.expect_violation:
        print("expected a violation:", "seen" if failures else "NONE SEEN: the check did not catch the broken run")
        sys.exit(0 if failures else 1)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
