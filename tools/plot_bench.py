#!/usr/bin/env python3
"""Plots `deepinside bench --json` results: saliency time per image, ours beside PyTorch's, per
network and batch size (left), and our speed as a multiple of PyTorch's (right).

Usage: plot_bench.py RESULTS.json [MORE.json ...] --out docs/images/bench_cpu.png [--table]
Needs matplotlib (Debian: python3-matplotlib). --table also prints the results as Markdown tables
(the ones in docs/benchmarks.md), and works without matplotlib when --out is not given.
"""
import argparse
import json
import sys


def print_tables(reports):
    """Markdown: one row per network and batch size, then the per-layer tables where present."""
    print("| network | batch | deepinside ms/image (min..max) | images/s | GFLOP/s (% of SGEMM peak) | GB/s "
          "| PyTorch ms/image (min..max) | speed vs PyTorch | peak RSS ours / PyTorch (MB) | load before / after |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for report in reports:
        for net in report["results"]:
            torch = net.get("pytorch", {})
            tb = {b["batch"]: b for b in torch.get("batches", [])}
            for b in net["batches"]:
                t = tb.get(b["batch"])
                if t:
                    ts = sorted(t["seconds"])
                    torch_cell = "%.1f (%.1f..%.1f)" % (t["median_s"] / b["batch"] * 1e3, ts[0] / b["batch"] * 1e3,
                                                        ts[-1] / b["batch"] * 1e3)
                    ratio = "**%.2fx**" % b["speedup_vs_pytorch"]
                    mem = "%.0f / %.0f" % (b["peak_rss_kb"] / 1024, t["peak_rss_kb"] / 1024)
                else:
                    torch_cell, ratio, mem = "-", "-", "%.0f / -" % (b["peak_rss_kb"] / 1024)
                load = "-"
                if "loadavg_1min_before" in net:  # merged rounds (tools/bench_rounds.py) give min..max
                    load = ("%.1f..%.1f" if "load_note" in net else "%.1f / %.1f") % (
                        net["loadavg_1min_before"], net["loadavg_1min_after"])
                print("| %s | %d | %.1f (%.1f..%.1f) | %.1f | %.0f (%.0f%%) | %.1f | %s | %s | %s | %s |" % (
                    net["net"], b["batch"], b["ms_per_image"], b["ms_per_image_min"], b["ms_per_image_max"],
                    b["images_per_s"], b["gflops"], 100 * b["fraction_of_gemm_peak"], b["gbps"], torch_cell, ratio,
                    mem, load))
    for report in reports:
        peak = report["machine"]["gemm_gflops"]
        for net in report["results"]:
            for b in net["batches"]:
                if "layers" not in b:
                    continue
                print("\n#### %s, batch %d (%.1f ms/image; SGEMM peak %.0f GFLOP/s)\n" % (
                    net["net"], b["batch"], b["ms_per_image"], peak))
                print("| node | op | output | forward ms | backward ms | share | forward GFLOP/s | backward GFLOP/s "
                      "| % of peak |")
                print("|---|---|---|---:|---:|---:|---:|---:|---:|")
                fused = {}  # op -> count of nodes fusion removed (0 ms, not listed)
                for l in b["layers"]:
                    if l.get("fused"):
                        fused[l["op"]] = fused.get(l["op"], 0) + 1
                        continue
                    gf = "%.0f" % l["forward_gflops"] if "forward_gflops" in l else ""
                    gb = "%.0f" % l["backward_gflops"] if l.get("backward_gflops") else ""
                    pk = "%.0f%%" % (100 * l["fraction_of_peak"]) if "fraction_of_peak" in l else ""
                    print("| %s | %s | %s | %.2f | %.2f | %.1f%% | %s | %s | %s |" % (
                        l["node"], l["op"], l["output"], l["forward_ms"], l["backward_ms"], 100 * l["share"], gf, gb,
                        pk))
                if fused:
                    what = {"Relu": "%d Relus computed by their producing convolutions",
                            "Concat": "%d Concats whose inputs are written in place"}
                    print("\nNot listed (fusion, no pass of their own): %s." % ", ".join(
                        what.get(op, "%d " + op + " nodes") % n for op, n in sorted(fused.items(), reverse=True)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("--out", default="")
    ap.add_argument("--title", default="")
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    reports = []
    for path in args.results:
        with open(path) as f:
            reports.append(json.load(f))
    if args.table:
        print_tables(reports)
    if not args.out:
        return 0

    try:
        import matplotlib
    except ImportError:
        print("plot_bench.py: --out needs matplotlib (Debian: apt-get install python3-matplotlib)", file=sys.stderr)
        return 1
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []  # (net, batch, ours ms, torch ms or None, speedup or None)
    machine = None
    for report in reports:
        machine = machine or report.get("machine", {})
        for net in report["results"]:
            for b in net["batches"]:
                rows.append((net["net"], b["batch"], b["ms_per_image"], b.get("pytorch_ms_per_image"),
                             b.get("speedup_vs_pytorch")))
    if not rows:
        sys.exit("plot_bench: no results")

    nets = []
    for r in rows:
        if r[0] not in nets:
            nets.append(r[0])
    batches = sorted({r[1] for r in rows})
    fig, (ax_t, ax_r) = plt.subplots(1, 2, figsize=(12, 4.6))
    width = 0.8 / (2 * len(batches))
    colors_ours = ["#1b5e20", "#43a047", "#a5d6a7"]
    colors_torch = ["#b71c1c", "#e53935", "#ef9a9a"]
    for bi, batch in enumerate(batches):
        for ni, net in enumerate(nets):
            match = [r for r in rows if r[0] == net and r[1] == batch]
            if not match:
                continue
            _, _, ours, torch_ms, speedup = match[0]
            # The bench's own ratio (for merged rounds: the median of the rounds' ratios, as in the table).
            ratio = speedup if speedup else (torch_ms / ours if torch_ms else None)
            x = ni + (2 * bi) * width - 0.4 + width / 2
            ax_t.bar(x, ours, width, color=colors_ours[bi % 3], label="deepinside, batch %d" % batch if ni == 0 else None)
            if torch_ms:
                ax_t.bar(x + width, torch_ms, width, color=colors_torch[bi % 3],
                         label="PyTorch, batch %d" % batch if ni == 0 else None)
                ax_r.bar(ni + bi * (0.8 / len(batches)) - 0.4 + 0.4 / len(batches), ratio,
                         0.8 / len(batches), color=colors_ours[bi % 3], label="batch %d" % batch if ni == 0 else None)
                ax_r.text(ni + bi * (0.8 / len(batches)) - 0.4 + 0.4 / len(batches), ratio,
                          "%.2f" % ratio, ha="center", va="bottom", fontsize=8)
    ax_t.set_yscale("log")
    ax_t.set_xticks(range(len(nets)))
    ax_t.set_xticklabels(nets)
    ax_t.set_ylabel("saliency pass, ms per image (log)")
    ax_t.legend(fontsize=7, ncol=2)
    ax_t.grid(axis="y", which="both", alpha=0.3)
    ax_r.axhline(1.0, color="black", linewidth=0.8)
    ax_r.set_xticks(range(len(nets)))
    ax_r.set_xticklabels(nets)
    ax_r.set_ylabel("deepinside speed / PyTorch speed")
    ax_r.legend(fontsize=8)
    ax_r.grid(axis="y", alpha=0.3)
    title = args.title
    if not title and machine:
        title = "CPU saliency (forward + input gradient), %d threads; SGEMM peak %.0f GFLOP/s, copy %.0f GB/s" % (
            machine.get("threads", 0), machine.get("gemm_gflops", 0), machine.get("copy_gbps", 0))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
