#!/usr/bin/python3
"""Learning curves from mopo metrics CSVs, as a PNG (Debian python3-matplotlib).

    scripts/plot_curves.py --out curves.png  MOPO=runs/mopo-s*/metrics.csv  MBPO=runs/mbpo-s*/metrics.csv \\
        --baseline runs/mopo-s0/dataset.csv --panel rollout/penalty --panel rollout/raw_reward

Each LABEL=GLOB group is one curve: the mean over the matched runs (seeds) with a ±1 std band.
The y column defaults to eval/normalized_score (falling back to eval/return_mean when it is empty).

--baseline draws the data's score as a horizontal line: a number, LABEL=NUMBER, or a CSV file (glob)
with a behaviour_score column (train_mopo writes <out>/dataset.csv; several files are averaged), or
FILE.csv:COLUMN for another column. Repeatable.
--panel COLUMN adds a lower panel with that metrics column per epoch (e.g. the rollout's mean penalty
rollout/penalty and mean model reward rollout/raw_reward), one line per group and column. Repeatable.
"""
import argparse
import csv
import glob
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


# Readable legend names of common panel columns.
PANEL_NAMES = {
    "rollout/penalty": "penalty u (mean per model step)",
    "rollout/raw_reward": "model reward r̂ (mean per model step)",
    "rollout/penalized_reward": "penalised reward r̂ − λu",
}


def read(path, x_col, y_col):
    xs, ys = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            y = row.get(y_col, "")
            if y in ("", "nan", None):
                continue
            xs.append(float(row[x_col]))
            ys.append(float(y))
    return xs, ys


def mean_std(runs):
    """Mean and population std over runs (dicts x -> y) at every x any run has."""
    xs = sorted(set().union(*runs))
    mean, std = [], []
    for x in xs:
        vals = [r[x] for r in runs if x in r]
        m = sum(vals) / len(vals)
        mean.append(m)
        std.append(math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals)))
    return xs, mean, std


def split_group(group):
    """LABEL=GLOB -> (label, files). Labels and paths may both contain '=' (sweep run directories do):
    the first split whose glob matches files wins."""
    cuts = [i for i, c in enumerate(group) if c == "="]
    for i in cuts:
        files = sorted(glob.glob(group[i + 1:]))
        if files:
            return group[:i], files
    files = sorted(glob.glob(group))
    if files:
        return group, files
    sys.exit(f"plot_curves: no file matches {group!r} (expected LABEL=GLOB)")


def parse_baseline(spec):
    """(label, value) from NUMBER, LABEL=NUMBER, CSV-GLOB or CSV-GLOB:COLUMN."""
    label, eq, rest = spec.partition("=")
    if not eq:
        label, rest = "data", spec
    try:
        return label, float(rest)
    except ValueError:
        pass
    pattern, column = rest, "behaviour_score"
    if not glob.glob(pattern) and ":" in rest:
        pattern, _, column = rest.rpartition(":")
    files = sorted(glob.glob(pattern))
    if not files:
        sys.exit(f"plot_curves: --baseline {spec!r}: not a number and no file matches {pattern!r}")
    values = []
    for path in files:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if column not in row:
                    sys.exit(f"plot_curves: --baseline {path}: no column {column!r} (has {', '.join(row)})")
                if row[column] not in ("", "nan"):
                    values.append(float(row[column]))
    if not values:
        sys.exit(f"plot_curves: --baseline {spec!r}: no value in column {column!r}")
    return label, sum(values) / len(values)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("groups", nargs="+", help="LABEL=GLOB of metrics.csv files")
    ap.add_argument("--out", required=True, help="PNG file to write")
    ap.add_argument("--x", default="epoch")
    ap.add_argument("--y", default="eval/normalized_score")
    ap.add_argument("--title", default="")
    ap.add_argument("--baseline", action="append", default=[], help="data score line (see above)")
    ap.add_argument("--panel", action="append", default=[], help="metrics column for a lower panel")
    args = ap.parse_args()

    baselines = [parse_baseline(b) for b in args.baseline]
    groups = []
    for group in args.groups:
        label, files = split_group(group)
        groups.append((label, files))

    if args.panel:
        fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7, 6.2), dpi=120, sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    else:
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
        ax2 = None
    y_label = args.y
    for label, files in groups:
        runs = []
        for path in files:
            xs, ys = read(path, args.x, args.y)
            if not ys and args.y == "eval/normalized_score":
                xs, ys = read(path, args.x, "eval/return_mean")
                y_label = "eval/return_mean"
            if ys:
                runs.append(dict(zip(xs, ys)))
        if not runs:
            sys.exit(f"plot_curves: {label!r} has no values in column {args.y!r}")
        xs, mean, std = mean_std(runs)
        ax.plot(xs, mean, marker="." if len(xs) < 60 else None, label=f"{label} (n={len(runs)})")
        ax.fill_between(xs, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], alpha=0.25)
        for column in args.panel:
            runs = [dict(zip(*read(path, args.x, column))) for path in files]
            runs = [r for r in runs if r]
            if not runs:
                sys.exit(f"plot_curves: --panel {column!r}: no values in {label!r}")
            pxs, pmean, _ = mean_std(runs)
            name = PANEL_NAMES.get(column, column)
            ax2.plot(pxs, pmean, label=f"{label}: {name}" if len(groups) > 1 else name)
    for i, (label, value) in enumerate(baselines):
        ax.axhline(value, color="k" if i == 0 else f"C{7 + i}", linestyle="--", linewidth=1.2,
                   label=f"{label} ({value:.1f})")
    ax.set_ylabel(y_label)
    if args.title:
        ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if ax2 is not None:
        ax2.set_ylabel("per model step")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8)
        ax2.set_xlabel(args.x)
    else:
        ax.set_xlabel(args.x)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"plot_curves: wrote {args.out}")


if __name__ == "__main__":
    main()
