#!/usr/bin/python3
"""Learning curves from mopo metrics CSVs, as a PNG (Debian python3-matplotlib).

    scripts/plot_curves.py --out curves.png  MOPO=runs/mopo-s*/metrics.csv  MBPO=runs/mbpo-s*/metrics.csv

Each LABEL=GLOB group is one curve: the mean over the matched runs (seeds) with a ±1 std band.
The y column defaults to eval/normalized_score (falling back to eval/return_mean when it is empty).
"""
import argparse
import csv
import glob
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path, x_col, y_col):
    xs, ys = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            y = row.get(y_col, "")
            if y in ("", "nan"):
                continue
            xs.append(float(row[x_col]))
            ys.append(float(y))
    return xs, ys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("groups", nargs="+", help="LABEL=GLOB of metrics.csv files")
    ap.add_argument("--out", required=True, help="PNG file to write")
    ap.add_argument("--x", default="epoch")
    ap.add_argument("--y", default="eval/normalized_score")
    ap.add_argument("--title", default="")
    args = ap.parse_args()

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    y_label = args.y
    for group in args.groups:
        label, _, pattern = group.partition("=")
        files = sorted(glob.glob(pattern or label))
        if not files:
            sys.exit(f"plot_curves: no file matches {pattern or label!r}")
        runs = []
        for path in files:
            xs, ys = read(path, args.x, args.y)
            if not ys and args.y == "eval/normalized_score":
                xs, ys = read(path, args.x, "eval/return_mean")
                y_label = "eval/return_mean"
            if ys:
                runs.append(dict(zip(xs, ys)))
        if not runs:
            sys.exit(f"plot_curves: {pattern!r} has no values in column {args.y!r}")
        xs = sorted(set().union(*runs))
        mean, std = [], []
        for x in xs:
            vals = [r[x] for r in runs if x in r]
            m = sum(vals) / len(vals)
            mean.append(m)
            std.append(math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals)))
        ax.plot(xs, mean, label=f"{label} (n={len(runs)})")
        ax.fill_between(xs, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], alpha=0.25)
    ax.set_xlabel(args.x)
    ax.set_ylabel(y_label)
    if args.title:
        ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"plot_curves: wrote {args.out}")


if __name__ == "__main__":
    main()
