#!/usr/bin/env python3
"""Plot an online-SAC evaluation curve (eval.csv written by mopo::train::train_sac_online).

usage: /usr/bin/python3 docs/results/plot_sac.py <eval.csv> <out.png> --title T [--target R] [--train train.csv]

Draws the mean deterministic evaluation return (10 episodes) with a ±1 std band, the mean training
episode return from train.csv when given, and the target return as a dashed line.
"""
import argparse
import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("eval_csv")
    ap.add_argument("out_png")
    ap.add_argument("--title", default="SAC")
    ap.add_argument("--target", type=float)
    ap.add_argument("--train")
    args = ap.parse_args()

    rows = read(args.eval_csv)
    steps = [float(r["step"]) / 1000 for r in rows]
    mean = [float(r["return_mean"]) for r in rows]
    std = [float(r["return_std"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    ax.plot(steps, mean, "-o", ms=3, label="evaluation (10 episodes, deterministic)")
    ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], alpha=0.2)
    if args.train:
        tr = [r for r in read(args.train) if r["episode_return"] not in ("", "nan")]
        ax.plot([float(r["step"]) / 1000 for r in tr], [float(r["episode_return"]) for r in tr], lw=0.8,
                alpha=0.6, label="training episodes (stochastic)")
    if args.target is not None:
        ax.axhline(args.target, ls="--", c="k", lw=1, label=f"target {args.target:g}")
    ax.set_xlabel("environment steps (thousands)")
    ax.set_ylabel("return")
    ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out_png)


if __name__ == "__main__":
    main()
