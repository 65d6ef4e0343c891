#!/usr/bin/env python3
"""Merges repeated `deepinside bench --json` runs ("rounds") of the same network and batch size into
one report of the same shape, so that tools/plot_bench.py can plot and tabulate it.

On a shared machine one invocation can land in a noisy minute; repeating the whole side-by-side
invocation and taking medians over the rounds is steadier than any single one. For each network
and batch size the merged report holds:
  ms_per_image          the median over rounds of each round's median (ours), and the PyTorch peer's
                        the same way (pytorch.batches[].median_s);
  ms_per_image_min/max  the smallest and largest round median (so "(min..max)" in the tables is the
                        spread between rounds, not within one); PyTorch's `seconds` are its round
                        medians for the same purpose;
  speedup_vs_pytorch    the median over rounds of each round's own ratio (each ratio comes from one
                        invocation, ours and PyTorch's minutes apart at most);
  peak_rss_kb           the largest over rounds, ours and PyTorch's;
  layers                per node, the median over rounds of forward_ms and backward_ms, with GFLOP/s
                        recomputed from those medians (the FLOP of a node are the same in every round);
  rounds                the per-round figures, and the load averages seen before/after each round.
machine.gemm_gflops is the median of the rounds' probes.

Usage: bench_rounds.py ROUND.json [ROUND.json ...] --out merged.json
"""
import argparse
import json
import statistics
import sys


def merge_layers(rounds_layers, gemm_peak):
    """Per-node medians over rounds; rounds_layers is a list (one per round) of layer lists."""
    out = []
    for i, first in enumerate(rounds_layers[0]):
        rows = [layers[i] for layers in rounds_layers]
        if any(r["node"] != first["node"] for r in rows):
            sys.exit("bench_rounds: rounds list different nodes")
        row = {k: first[k] for k in ("node", "op", "output")}
        if first.get("fused"):  # computed by its producer or a zero-copy Concat: no time of its own
            row["fused"] = True
        for key, gkey in (("forward_ms", "forward_gflops"), ("backward_ms", "backward_gflops")):
            row[key] = statistics.median(r[key] for r in rows)
            if first.get(gkey) and first[key] > 0 and row[key] > 0:
                row[gkey] = first[gkey] * first[key] / row[key]  # same FLOP, median time
        if "fraction_of_peak" in first:
            f, b = row.get("forward_gflops"), row.get("backward_gflops")
            ms_f, ms_b = row["forward_ms"], row["backward_ms"]
            if f and b and ms_f + ms_b > 0:  # time-weighted, as the bench computes it
                row["fraction_of_peak"] = (f * ms_f + b * ms_b) / (ms_f + ms_b) / gemm_peak
        out.append(row)
    total = sum(r["forward_ms"] + r["backward_ms"] for r in out)
    for r in out:
        r["share"] = (r["forward_ms"] + r["backward_ms"]) / total if total else 0.0
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rounds", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    reports = [json.load(open(p)) for p in args.rounds]
    peaks = [r["machine"]["gemm_gflops"] for r in reports]
    merged = {"tool": "deepinside bench (merged by tools/bench_rounds.py)", "rule": reports[0]["rule"],
              "machine": dict(reports[0]["machine"], gemm_gflops=statistics.median(peaks),
                              gemm_gflops_rounds=peaks),
              "round_files": args.rounds, "results": []}
    keys = []  # (net, batch) in first-seen order
    for rep in reports:
        for net in rep["results"]:
            for b in net["batches"]:
                if (net["net"], b["batch"]) not in keys:
                    keys.append((net["net"], b["batch"]))
    for name, batch in keys:
        found = [(rep, net, b) for rep in reports for net in rep["results"] if net["net"] == name
                 for b in net["batches"] if b["batch"] == batch]
        ours = [b["ms_per_image"] for _, _, b in found]
        entry = {"batch": batch, "rounds": len(found),
                 "ms_per_image": statistics.median(ours), "ms_per_image_min": min(ours),
                 "ms_per_image_max": max(ours), "peak_rss_kb": max(b["peak_rss_kb"] for _, _, b in found)}
        entry["images_per_s"] = 1e3 / entry["ms_per_image"]
        med = next(b for _, _, b in found)
        entry["gflops"] = med["gflops"] * med["ms_per_image"] / entry["ms_per_image"]
        entry["fraction_of_gemm_peak"] = entry["gflops"] / merged["machine"]["gemm_gflops"]
        entry["gbps"] = med["gbps"] * med["ms_per_image"] / entry["ms_per_image"]
        entry["per_round"] = [{"ms_per_image": b["ms_per_image"], "pytorch_ms_per_image": b.get("pytorch_ms_per_image"),
                               "speedup_vs_pytorch": b.get("speedup_vs_pytorch"),
                               "loadavg_1min_before": net.get("loadavg_1min_before"),
                               "loadavg_1min_after": net.get("loadavg_1min_after"),
                               "gemm_gflops": rep["machine"]["gemm_gflops"]} for rep, net, b in found]
        torch = [b["pytorch_ms_per_image"] for _, _, b in found if "pytorch_ms_per_image" in b]
        pytorch = None
        if torch:
            entry["pytorch_ms_per_image"] = statistics.median(torch)
            entry["speedup_vs_pytorch"] = statistics.median(b["speedup_vs_pytorch"] for _, _, b in found)
            entry["pytorch_peak_rss_kb"] = max(b["pytorch_peak_rss_kb"] for _, _, b in found)
            formats = sorted({pb["memory_format"] for _, net, _ in found for pb in net["pytorch"]["batches"]
                              if pb["batch"] == batch})
            pytorch = {"batches": [{"batch": batch, "seconds": [t * batch / 1e3 for t in torch],
                                    "median_s": entry["pytorch_ms_per_image"] * batch / 1e3,
                                    "peak_rss_kb": entry["pytorch_peak_rss_kb"], "memory_format": formats}],
                       "torch": found[0][1]["pytorch"].get("torch")}
        if all("layers" in b for _, _, b in found):
            entry["layers"] = merge_layers([b["layers"] for _, _, b in found], merged["machine"]["gemm_gflops"])
        loads = [x for _, net, _ in found for x in (net.get("loadavg_1min_before"), net.get("loadavg_1min_after"))
                 if x is not None]
        net_entry = next((n for n in merged["results"] if n["net"] == name), None)
        if net_entry is None:
            first_net = found[0][1]
            net_entry = {k: first_net[k] for k in ("net", "source", "backend", "gflop_per_image", "weights")}
            net_entry["batches"] = []
            if loads:
                net_entry["loadavg_1min_before"], net_entry["loadavg_1min_after"] = min(loads), max(loads)
                net_entry["load_note"] = "min / max of the 1-minute load average over all rounds"
            merged["results"].append(net_entry)
        net_entry["batches"].append(entry)
        if pytorch:
            net_entry["pytorch"] = pytorch
    with open(args.out, "w") as f:
        json.dump(merged, f, indent=1)
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
