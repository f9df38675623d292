#!/usr/bin/python3
"""ctest `kill.resume`: crash safety of train_mopo under SIGKILL (issue 16, part 3).

A tiny MOPO run (2 000-row halfcheetah-random dataset collected with real MuJoCo by make_datasets, 8 short
epochs, one thread everywhere so threads cannot change results) is trained once uninterrupted as the
reference, then again killed with SIGKILL at seeded random moments and restarted each time (`--resume`
when checkpoint/latest.json exists, from scratch otherwise, as scripts/sweep does) until it finishes.
Kinds of kill: at a random time; while a checkpoint file is being written (an atomic_write temporary file
`*.tmp.*` exists under checkpoint/; the kill counts as aimed only if that file is still there afterwards);
right after a new metrics.csv row appears (before that epoch's checkpoint).

Checks: at least 5 kills, at least one inside a checkpoint write, the run finishes (exit 0) and resumed at
least once; metrics.csv and metrics.jsonl hold every epoch's row exactly once, in order; every column but
the time columns (*seconds) is identical, as text, to the reference run's (SAC losses, Q-values, alpha,
evaluation returns, rollout statistics, buffer size, step counts); no temporary file is left in checkpoint/.

    kill_resume_test.py <train_mopo> <make_datasets> <source dir> [seed]
"""
import csv
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

if len(sys.argv) not in (4, 5):
    sys.exit("usage: kill_resume_test.py <train_mopo> <make_datasets> <source dir> [seed]")
TRAIN_MOPO, MAKE_DATASETS, SOURCE = (os.path.abspath(a) for a in sys.argv[1:4])
SEED = int(sys.argv[4]) if len(sys.argv) == 5 else 16
for path in (TRAIN_MOPO, MAKE_DATASETS):
    if not os.access(path, os.X_OK):
        sys.exit(f"kill_resume_test.py: {path}: not an executable")
EPOCHS = 8
MIN_KILLS = 5
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def csv_rows(out):
    """Complete data rows of out/metrics.csv (cheap: counts newlines; polled every 0.5 ms)."""
    try:
        with open(os.path.join(out, "metrics.csv"), "rb") as f:
            return max(f.read().count(b"\n") - 1, 0)
    except OSError:
        return 0


def temp_files(out):
    return glob.glob(os.path.join(out, "checkpoint", "*.tmp.*")) + \
        glob.glob(os.path.join(out, "checkpoint", "*", "*.tmp.*"))


def checkpoint_epoch(out):
    try:
        with open(os.path.join(out, "checkpoint", "latest.json")) as f:
            return json.load(f)["epoch"]
    except (OSError, ValueError, KeyError):
        return None


work = tempfile.mkdtemp(prefix="mopo_kill_test_")
try:
    data_dir = os.path.join(work, "data")
    policies = os.path.join(SOURCE, "data", "zoo", "policies", "halfcheetah")
    subprocess.run([MAKE_DATASETS, "--task", "halfcheetah", "--size", "2000", "--seed", "3",
                    "--medium-policy", os.path.join(policies, "policy_50000.pt"),
                    "--expert-policy", os.path.join(policies, "policy_150000.pt"), "--out", data_dir],
                   check=True, capture_output=True)
    # rollout_freq > steps_per_epoch: every other epoch has no rollout of its own and reports the last
    # rollout's statistics, which a resumed run must restore from the checkpoint.
    # The default networks (SAC 2x256, 7-member 4x200 ensemble), so checkpoints have their real sizes.
    tiny = {"model_training.max_epochs": 2, "model_training.threads": 1, "rollout.rollout_batch": 200,
            "steps_per_epoch": 150, "rollout_freq": 300, "eval_episodes": 1, "sac.update_threads": 1,
            "rollout_threads": 1}
    base = [TRAIN_MOPO, "--task", "halfcheetah", "--dataset", os.path.join(data_dir, "halfcheetah-random.hdf5"),
            "--config", os.path.join(SOURCE, "configs", "quickstart-halfcheetah.json"), "--seed", "0",
            "--epochs", str(EPOCHS)]
    for key, value in tiny.items():
        base += ["--set", f"{key}={value}"]

    def start(out, resume):
        log = open(os.path.join(work, os.path.basename(out) + ".log"), "a")
        cmd = base + ["--out", out] + (["--resume"] if resume else [])
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log

    # The reference: one uninterrupted run.
    ref_out = os.path.join(work, "reference")
    t0 = time.time()
    proc, log = start(ref_out, False)
    proc.wait(timeout=600)
    log.close()
    ref_seconds = time.time() - t0
    check(proc.returncode == 0, f"reference run finishes (exit {proc.returncode}, {ref_seconds:.1f} s)")
    ref_rows = read_csv(os.path.join(ref_out, "metrics.csv"))
    check([int(float(r["epoch"])) for r in ref_rows] == list(range(1, EPOCHS + 1)), "reference: one row an epoch")
    if failures:
        raise SystemExit

    # The killed run: kill kinds in a seeded order, at seeded moments, then let it finish.
    rng = random.Random(SEED)
    kinds = ["checkpoint", "row", "random", "random", "checkpoint", "row", "random"]
    rng.shuffle(kinds)
    out = os.path.join(work, "killed")
    kills, aimed_checkpoint, aimed_row, resumes, starts = 0, 0, 0, 0, 0
    pending = list(kinds)
    deadline = time.time() + 900
    while time.time() < deadline:
        resume = checkpoint_epoch(out) is not None
        resumes += resume
        starts += 1
        rows_before = csv_rows(out)
        stale = set(temp_files(out))  # left by an earlier kill (the next checkpoint removes them)
        proc, log = start(out, resume)
        kind = pending[0] if pending else None
        t_start = time.time()
        # A random kill lands anywhere in the first third of the work left (at least 1.5 epochs; the
        # process takes ~1 s to start), so kills reach later epochs while epochs remain for the others.
        left = EPOCHS - (checkpoint_epoch(out) or 0)
        when = t_start + rng.uniform(0.5, 1.0 + max(1.5, left / 3) * ref_seconds / EPOCHS)
        killed = False
        while proc.poll() is None and kind is not None:
            if kind == "random" and time.time() >= when:
                killed = True
            elif kind == "checkpoint" and set(temp_files(out)) - stale:
                killed = True
            elif kind == "row" and csv_rows(out) > rows_before:
                killed = True
            if killed:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.0005 if kind != "random" else 0.01)
        proc.wait(timeout=600)
        log.close()
        if not killed or proc.returncode != -signal.SIGKILL:
            break  # finished (or failed) on its own
        kills += 1
        rows = csv_rows(out)
        ck = checkpoint_epoch(out)
        note = ""
        if kind == "checkpoint":
            new = sorted(set(temp_files(out)) - stale)
            if new:  # the write was really interrupted: its temporary file is left behind
                aimed_checkpoint += 1
                note = f", inside a checkpoint write ({os.path.relpath(new[0], out)})"
                pending.pop(0)
            else:
                note = ", the checkpoint write ended first; aiming again"
        elif kind == "row":
            if ck is not None and rows > ck:
                aimed_row += 1
                note = f", between epoch {rows}'s row and its checkpoint"
            pending.pop(0)
        else:
            pending.pop(0)
        print(f"     kill {kills} ({kind}) {time.time() - t_start:.2f} s after start: "
              f"checkpoint at epoch {ck}, {rows} csv rows{note}", flush=True)
        if kills > 3 * len(kinds):
            break
    check(proc.returncode == 0, f"the killed run finishes after {kills} kills and {starts} starts "
                                f"({resumes} with --resume), exit {proc.returncode}")
    check(kills >= MIN_KILLS, f"at least {MIN_KILLS} SIGKILLs ({kills})")
    check(aimed_checkpoint >= 1, f"at least one kill inside a checkpoint write ({aimed_checkpoint})")
    check(resumes >= 1, f"the run was resumed from a checkpoint ({resumes} times)")
    print(f"     {aimed_row} kill(s) between an epoch's metrics row and its checkpoint", flush=True)

    rows = read_csv(os.path.join(out, "metrics.csv"))
    jrows = read_jsonl(os.path.join(out, "metrics.jsonl"))
    epochs = [int(float(r["epoch"])) for r in rows]
    check(epochs == list(range(1, EPOCHS + 1)), f"metrics.csv: every epoch exactly once ({epochs})")
    jepochs = [int(r["epoch"]) for r in jrows]
    check(jepochs == list(range(1, EPOCHS + 1)), f"metrics.jsonl: every epoch exactly once ({jepochs})")

    columns = list(ref_rows[0].keys())
    timing = [c for c in columns if c.endswith("seconds")]
    compared = [c for c in columns if c not in timing]
    check(len(rows) > 0 and list(rows[0].keys()) == columns, "same CSV columns as the reference")
    for c in ("eval/return_mean", "eval/normalized_score", "rollout/penalty", "rollout/transitions",
              "model_buffer/size", "sac/critic_loss", "sac/alpha", "sac_steps"):
        check(c in compared, f"column {c} compared")
    differing = sorted({c for r, ref in zip(rows, ref_rows) for c in compared if r.get(c) != ref[c]})
    check(len(rows) == len(ref_rows) and not differing,
          f"{len(rows)} rows x {len(compared)} columns identical to the reference (not compared: "
          f"{', '.join(timing)}){'; differ: ' + ', '.join(differing) if differing else ''}")
    ref_j = read_jsonl(os.path.join(ref_out, "metrics.jsonl"))
    jdiff = sorted({k for r, ref in zip(jrows, ref_j) for k in ref if k not in timing and r.get(k) != ref[k]})
    check(len(jrows) == len(ref_j) and not jdiff, "metrics.jsonl identical to the reference's but for times"
          + ("; differ: " + ", ".join(jdiff) if jdiff else ""))
    no_rollout = [r for r in rows if int(float(r["sac_steps"])) % 300 != 150 and int(float(r["epoch"])) > 1]
    check(any(float(r["rollout/transitions"]) > 0 for r in no_rollout),
          "epochs without a rollout of their own report the last rollout's statistics")
    check(not temp_files(out), f"no temporary files left in checkpoint/ ({temp_files(out)})")
    check(checkpoint_epoch(out) == EPOCHS, f"the final checkpoint is epoch {EPOCHS}")
except SystemExit:
    pass
finally:
    shutil.rmtree(work, ignore_errors=True)

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
