#!/usr/bin/env python3
"""Plots ring_bench TSV output: one panel per benchmark, one bar per contender.

usage: plot.py [TSV] [-o PNG]
  TSV  ring_bench --format=tsv output (default: stdin)
  PNG  where to write the plot (default: ring_bench.png beside this script)

Needs matplotlib (Debian: python3-matplotlib); exits 3 with a message if it
is missing. Lines are `benchmark<TAB>contender<TAB>median<TAB>unit`.
"""
import argparse
import os
import sys

TITLES = {
    "roundtrip_small": "Round trip, 8-byte message (lower is better)",
    "throughput_small": "One way, 64-byte messages (higher is better)",
    "throughput_bulk": "One way, 64 KiB transfers (higher is better)",
}
LOWER_IS_BETTER = {"us", "ns", "ms"}


def read_tsv(stream):
    """Returns {benchmark: [(contender, value, unit)]} in input order."""
    data = {}
    for n, line in enumerate(stream, 1):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 4:
            sys.exit(f"plot.py: line {n}: want 4 tab-separated fields, got {len(fields)}: {line!r}")
        bench, contender, value, unit = fields
        try:
            v = float(value)
        except ValueError:
            sys.exit(f"plot.py: line {n}: not a number: {value!r}")
        data.setdefault(bench, []).append((contender, v, unit))
    if not data:
        sys.exit("plot.py: no data")
    return data


def pretty(v, unit):
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Plot ring_bench TSV output.")
    ap.add_argument("tsv", nargs="?", help="ring_bench --format=tsv output (default: stdin)")
    ap.add_argument("-o", "--output", default=os.path.join(here, "ring_bench.png"))
    ap.add_argument("--title", default="bulkhead ring IPC vs kernel IPC (median of rounds)")
    args = ap.parse_args()

    if args.tsv:
        with open(args.tsv) as f:
            data = read_tsv(f)
    else:
        data = read_tsv(sys.stdin)

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot.py: matplotlib is not installed (Debian: apt-get install python3-matplotlib); "
              "no plot written", file=sys.stderr)
        return 3

    benches = list(data)
    fig, axes = plt.subplots(len(benches), 1, figsize=(9, 2.2 + 1.6 * len(benches)), squeeze=False)
    for ax, bench in zip(axes[:, 0], benches):
        rows = data[bench]
        names = [r[0] for r in rows]
        values = [r[1] for r in rows]
        unit = rows[0][2]
        if unit == "msg/s":  # millions read better than 1e7
            values = [v / 1e6 for v in values]
            unit = "million msg/s"
        colors = ["#1f77b4" if n.startswith("ring") else "#999999" for n in names]
        y = range(len(rows))
        ax.barh(list(y), values, color=colors)
        ax.set_yticks(list(y))
        ax.set_yticklabels(names)
        ax.invert_yaxis()
        # Figures span orders of magnitude (spinning vs sleeping): log scale.
        if min(values) > 0 and max(values) / min(values) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(unit + (" (log scale)" if ax.get_xscale() == "log" else ""))
        ax.set_title(TITLES.get(bench, bench), fontsize=10)
        for i, v in enumerate(values):
            ax.annotate(pretty(v, unit), (v, i), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=8)
        ax.margins(x=0.15)
    fig.suptitle(args.title, fontsize=11)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"plot.py: wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
