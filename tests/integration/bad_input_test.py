#!/usr/bin/python3
"""ctest `bad.input`: the bad-input catalogue of docs/reliability.md, row by row (issue 16, item 7).

The catalogue is the Markdown table under "## Bad-input catalogue" in docs/reliability.md: one row per bad
input, with an id, the program, the input, a stable substring of the message and the exit code. This
script parses that table, builds each row's input with the builder of the same id below (real files:
datasets collected with real MuJoCo by make_datasets from the committed halfcheetah policies, damaged
copies written with h5py, a tiny real train_mopo run for its model and checkpoint), runs the real
program, and checks the exit code, that stderr contains the substring, and that there was no crash (no
signal, no "terminate called", no abort, no "internal error", no HDF5 error stack dump). A row without a
builder or a builder without a row fails the test, so the documentation and the test cannot drift.

    bad_input_test.py <bin dir> <source dir> [id ...]     (ids: run only those rows)
"""
import concurrent.futures
import csv
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from failing_runs import CRASH_SIGNS, file_size_limit  # noqa: E402

if len(sys.argv) < 3:
    sys.exit("usage: bad_input_test.py <bin dir> <source dir> [id ...]")
BIN, SOURCE = (os.path.abspath(a) for a in sys.argv[1:3])
ONLY = set(sys.argv[3:])
PROGRAMS = ("train_mopo", "make_datasets", "train_sac", "export_policy")
for program in PROGRAMS:
    if not os.access(os.path.join(BIN, program), os.X_OK):
        sys.exit(f"bad_input_test.py: {BIN}/{program}: not an executable")
DOC = os.path.join(SOURCE, "docs", "reliability.md")
POLICIES = os.path.join(SOURCE, "data", "zoo", "policies", "halfcheetah")


def parse_catalogue(path):
    """Rows of the table under '## Bad-input catalogue': (id, program, message, exit code)."""
    rows, inside = [], False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("## "):
                inside = line.strip() == "## Bad-input catalogue"
                continue
            m = re.match(r"^\| `([a-z0-9-]+)` \| `(\w+)` \| .* \| `([^`]+)` \| (\d+) \|\s*$", line)
            if inside and m:
                rows.append((m.group(1), m.group(2), m.group(3), int(m.group(4))))
    return rows


# ---- the inputs -----------------------------------------------------------------------------------------
work = tempfile.mkdtemp(prefix="mopo_bad_input_")
W = lambda *p: os.path.join(work, *p)  # noqa: E731
DATA = W("data")
HC = os.path.join(DATA, "halfcheetah-random.hdf5")
# A tiny run: small networks and few updates, so the rows that get as far as training stay cheap.
TINY = {"epochs": 1, "steps_per_epoch": 20, "rollout_freq": 20, "eval_episodes": 1, "rollout_threads": 1,
        "rollout": {"rollout_batch": 20, "horizon": 1},
        "ensemble": {"ensemble_size": 2, "num_elites": 1, "hidden": [8, 8], "weight_decay": [2.5e-5, 5e-5, 1e-4]},
        "model_training": {"max_epochs": 1, "threads": 1},
        "sac": {"hidden": [8, 8], "batch_size": 16, "update_threads": 1}}


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def tiny_config(name, change=None):
    cfg = json.loads(json.dumps(TINY))
    if change:
        change(cfg)
    return write(W(name + ".json"), json.dumps(cfg))


def h5_copy(name, change):
    """A copy of the halfcheetah-random dataset, changed by change(h5py.File)."""
    path = W(name + ".hdf5")
    shutil.copy(HC, path)
    with h5py.File(path, "r+") as f:
        change(f)
    return path


def replace(f, key, value):
    del f[key]
    f[key] = value


def setup():
    subprocess.run([os.path.join(BIN, "make_datasets"), "--task", "halfcheetah", "--size", "1000", "--seed", "3",
                    "--medium-policy", os.path.join(POLICIES, "policy_50000.pt"),
                    "--expert-policy", os.path.join(POLICIES, "policy_150000.pt"), "--out", DATA],
                   check=True, capture_output=True)
    # Hopper-shaped data (obs 11, act 3), written with h5py in D4RL's layout.
    rng = np.random.default_rng(0)
    for name, task in (("hopper-shaped", None), ("hopper", "hopper")):
        with h5py.File(W(name + ".hdf5"), "w") as f:
            n = 300
            f["observations"] = rng.normal(size=(n, 11)).astype(np.float32)
            f["next_observations"] = rng.normal(size=(n, 11)).astype(np.float32)
            f["actions"] = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
            f["rewards"] = rng.normal(size=n).astype(np.float32)
            f["terminals"] = np.zeros(n, dtype=bool)
            timeouts = np.zeros(n, dtype=bool)
            timeouts[99::100] = True
            f["timeouts"] = timeouts
            if task:
                f["metadata/task"] = task
    # A finished tiny halfcheetah run: its model.pt and checkpoint (SAC 8x8: another network size).
    tm = os.path.join(BIN, "train_mopo")
    subprocess.run([tm, "--task", "halfcheetah", "--dataset", HC, "--config", tiny_config("tiny"),
                    "--out", W("base")], check=True, capture_output=True)
    write(W("notes.txt"), "not a model, a dataset or a policy\n")
    write(W("notes.json"), '{"epochs": 3,\n "sac": {"actor_lr": }}\n')
    os.makedirs(W("file-parent"), exist_ok=True)
    write(W("file-parent", "plain"), "a regular file where a directory is expected\n")


def run_copy(name):
    """A copy of the base run directory (for rows that change or resume it)."""
    dst = W("runs", name)
    shutil.copytree(W("base"), dst)
    return dst


def tm(*args, config=None, dataset=None, task="halfcheetah", out=None):
    """A train_mopo command line: the tiny config, the halfcheetah dataset, a fresh --out."""
    cmd = [os.path.join(BIN, "train_mopo")]
    if task is not None:
        cmd += ["--task", task]
    cmd += ["--dataset", dataset or HC, "--config", config or W("tiny.json")]
    cmd += ["--out", out or W("out", str(time.monotonic_ns()))]
    return cmd + list(args)


def defaults(args, **flags):
    """--flag value pairs for the flags args does not set itself."""
    out = []
    for flag, value in flags.items():
        if "--" + flag not in args:
            out += ["--" + flag, value]
    return out + list(args)


def md(*args, task="halfcheetah"):
    return [os.path.join(BIN, "make_datasets"), "--task", task] + defaults(
        args, size="200", out=W("zoo", str(time.monotonic_ns())))


def md_policies(medium=None, expert=None):
    return ["--medium-policy", medium or os.path.join(POLICIES, "policy_50000.pt"),
            "--expert-policy", expert or os.path.join(POLICIES, "policy_150000.pt")]


def ts(*args, task="halfcheetah"):
    return [os.path.join(BIN, "train_sac"), "--task", task] + defaults(
        args, steps="50", out=W("sac", str(time.monotonic_ns())))


def ep(*args, task="halfcheetah"):
    return [os.path.join(BIN, "export_policy"), "--task", task] + defaults(
        args, out=W("exported", str(time.monotonic_ns())), episodes="0")


def set_nan(f):
    obs = f["observations"][()]
    obs[5, 2] = np.nan
    replace(f, "observations", obs)


def truncated(name, keep):
    path = W(name + ".hdf5")
    with open(HC, "rb") as src, open(path, "wb") as dst:
        data = src.read()
        dst.write(data[:int(len(data) * keep)])
    return path


def corrupt_chunks(name):
    """The halfcheetah dataset with the gzip stream of observations overwritten by garbage."""
    path = W(name + ".hdf5")
    shutil.copy(HC, path)
    with h5py.File(path, "r") as f:
        info = f["observations"].id.get_chunk_info(0)
    with open(path, "r+b") as out:
        out.seek(info.byte_offset + 16)
        out.write(b"\xff" * 256)
    return path


def latest_json(name, text):
    run = run_copy(name)
    write(os.path.join(run, "checkpoint", "latest.json"), text)
    return run


def damaged_agent(name):
    run = run_copy(name)
    write(os.path.join(run, "checkpoint", "epoch-1", "agent.pt"), "garbage")
    return run


def flip_first_record(src, dst):
    """Writes `dst`: the LibTorch file `src` with one byte of its first record changed (a zip file: the first
    local header at offset 0, 30 bytes, then the record's name and extra field, then its bytes)."""
    data = bytearray(open(src, "rb").read())
    name_len, extra_len = struct.unpack_from("<HH", data, 26)
    data[30 + name_len + extra_len] ^= 0x10
    with open(dst, "wb") as f:
        f.write(data)
    return dst


def damaged_trainer_state(name):
    run = run_copy(name)
    trainer = os.path.join(run, "checkpoint", "epoch-1", "trainer.pt")
    flip_first_record(trainer, trainer)
    return run


AGENT = lambda: W("base", "checkpoint", "epoch-1", "agent.pt")  # noqa: E731
HC_POLICY = os.path.join(POLICIES, "policy_50000.pt")

# id -> () -> (command, preexec_fn or None). The ids are the first column of the catalogue.
BUILDERS = {
    # train_mopo: configuration
    "tm-config-unknown-key": lambda: (tm(config=tiny_config("unknown", lambda c: c["sac"].update(actr_lr=1))),),
    "tm-config-wrong-type": lambda: (tm(config=tiny_config("type", lambda c: c["sac"].update(actor_lr="fast"))),),
    "tm-config-malformed": lambda: (tm(config=W("notes.json")),),
    "tm-config-missing": lambda: (tm(config=W("no-such-config.json")),),
    "tm-config-not-object": lambda: (tm(config=write(W("list.json"), "[1, 2]")),),
    "tm-config-negative-lr": lambda: (tm(config=tiny_config("lr", lambda c: c["sac"].update(actor_lr=-1))),),
    "tm-config-elites": lambda: (tm(config=tiny_config("elites", lambda c: c["ensemble"].update(num_elites=5))),),
    "tm-config-real-ratio": lambda: (tm(config=tiny_config("ratio", lambda c: c.update(real_ratio=1.5))),),
    "tm-config-int-range": lambda: (tm(config=tiny_config("big", lambda c: c.update(epochs=1e30))),),
    "tm-set-unknown-key": lambda: (tm("--set", "sac.actor_lrr=1e-4"),),
    "tm-set-no-equals": lambda: (tm("--set", "sac.actor_lr"),),
    "tm-set-wrong-type": lambda: (tm("--set", "epochs=[1]"),),
    "tm-set-negative": lambda: (tm("--set", "steps_per_epoch=-5"),),
    "tm-set-not-utf8": lambda: (tm("--set", b"task=half\xffcheetah"),),
    # train_mopo: command line
    "tm-unknown-task": lambda: (tm(task="cheetah"),),
    "tm-no-task": lambda: (tm(task=None),),
    "tm-unknown-flag": lambda: (tm("--epochz", "3"),),
    "tm-epochs-not-number": lambda: (tm("--epochs", "ten"),),
    "tm-epochs-negative": lambda: (tm("--epochs", "-5"),),
    "tm-unknown-algo": lambda: (tm("--algo", "dqn"),),
    "tm-unknown-penalty": lambda: (tm("--penalty", "max_sdt"),),
    "tm-penalty-with-bc": lambda: (tm("--algo", "bc", "--penalty", "max_std"),),
    "tm-model-with-resume": lambda: (tm("--resume", "--model", W("base", "model.pt")),),
    # train_mopo: datasets
    "tm-dataset-missing": lambda: (tm(dataset=W("no-such.hdf5")),),
    "tm-dataset-text": lambda: (tm(dataset=W("notes.txt")),),
    "tm-dataset-truncated": lambda: (tm(dataset=truncated("truncated", 0.5)),),
    "tm-dataset-corrupt-chunk": lambda: (tm(dataset=corrupt_chunks("corrupt")),),
    "tm-dataset-no-actions": lambda: (tm(dataset=h5_copy("no-actions", lambda f: f.__delitem__("actions"))),),
    "tm-dataset-short-rewards": lambda: (
        tm(dataset=h5_copy("short", lambda f: replace(f, "rewards", f["rewards"][()][:-1]))),),
    "tm-dataset-rank": lambda: (
        tm(dataset=h5_copy("rank", lambda f: replace(f, "observations", f["observations"][()][:, :, None]))),),
    "tm-dataset-empty": lambda: (tm(dataset=h5_copy("empty", lambda f: [
        replace(f, k, f[k][()][:0]) for k in ("observations", "actions", "rewards", "terminals", "timeouts",
                                              "next_observations", "infos/qpos", "infos/qvel")])),),
    "tm-dataset-nan": lambda: (tm(dataset=h5_copy("nan", set_nan)),),
    "tm-dataset-string": lambda: (tm(dataset=h5_copy("string", lambda f: replace(f, "rewards", "high"))),),
    "tm-dataset-group": lambda: (
        tm(dataset=h5_copy("group", lambda f: [f.__delitem__("actions"), f.create_group("actions")])),),
    "tm-dataset-other-task": lambda: (tm(task="walker2d"),),
    "tm-dataset-other-dims": lambda: (tm(dataset=W("hopper-shaped.hdf5")),),
    # train_mopo: models and checkpoints
    "tm-model-missing": lambda: (tm("--model", W("no-such-model.pt")),),
    "tm-model-text": lambda: (tm("--model", W("notes.txt")),),
    "tm-model-agent-file": lambda: (tm("--model", AGENT()),),
    "tm-model-damaged": lambda: (tm("--model", flip_first_record(W("base", "model.pt"), W("damaged-model.pt"))),),
    "tm-model-other-task": lambda: (tm("--model", W("base", "model.pt"), task="hopper", dataset=W("hopper.hdf5")),),
    "tm-model-members": lambda: (
        tm("--model", W("base", "model.pt"), config=tiny_config("members", lambda c: c["ensemble"].update(
            ensemble_size=3))),),
    "tm-resume-nothing": lambda: (tm("--resume"),),
    "tm-resume-other-task": lambda: (
        tm("--resume", task="hopper", dataset=W("hopper.hdf5"), out=run_copy("other-task")),),
    "tm-resume-other-penalty": lambda: (tm("--resume", "--penalty", "mean_std", out=run_copy("other-penalty")),),
    "tm-resume-latest-malformed": lambda: (tm("--resume", out=latest_json("latest-bad", "{\"epoch\": 1,")),),
    "tm-resume-latest-keys": lambda: (tm("--resume", out=latest_json("latest-keys", "{\"epoch\": 1}")),),
    "tm-resume-missing-epoch-dir": lambda: (
        tm("--resume", out=latest_json("latest-dir", json.dumps({"epoch": 1, "dir": "epoch-9"}))),),
    "tm-resume-agent-garbage": lambda: (tm("--resume", out=damaged_agent("agent-garbage")),),
    "tm-resume-trainer-damaged": lambda: (tm("--resume", out=damaged_trainer_state("trainer-damaged")),),
    # train_mopo: writes that fail
    "tm-out-under-file": lambda: (tm(out=W("file-parent", "plain", "run")),),
    "tm-write-file-too-large": lambda: (tm(), file_size_limit(1000)),
    # make_datasets
    "md-unknown-task": lambda: (md(task="cheetah"),),
    "md-size-zero": lambda: (md("--size", "0"),),
    "md-size-not-number": lambda: (md("--size", "many"),),
    "md-set-unknown-key": lambda: (md("--set", "sise=10"),),
    "md-gzip-level": lambda: (md("--set", "gzip_level=12"),),
    "md-config-malformed": lambda: (md("--config", W("notes.json")),),
    "md-policy-missing": lambda: (md(*md_policies(medium=W("no-such-policy.pt"))),),
    "md-policy-text": lambda: (md(*md_policies(medium=W("notes.txt"))),),
    "md-policy-damaged": lambda: (
        md(*md_policies(medium=flip_first_record(HC_POLICY, W("damaged-policy.pt")))),),
    "md-policy-other-task": lambda: (md(*md_policies(), task="hopper"),),
    "md-ant-angle-task": lambda: (md("--with-ant-angle", "30"),),
    "md-out-under-file": lambda: (md("--out", W("file-parent", "plain", "zoo"), *md_policies()),),
    "md-write-file-too-large": lambda: (md(*md_policies()), file_size_limit(20000)),
    # train_sac
    "ts-unknown-task": lambda: (ts(task="cheetah"),),
    "ts-steps-zero": lambda: (ts("--steps", "0"),),
    "ts-set-unknown-key": lambda: (ts("--set", "sac.gama=0.9"),),
    "ts-set-bad-value": lambda: (ts("--set", "sac.tau=2"),),
    "ts-config-missing": lambda: (ts("--config", W("no-such-config.json")),),
    "ts-config-malformed": lambda: (ts("--config", W("notes.json")),),
    "ts-seed-negative": lambda: (ts("--seed", "-1"),),
    "ts-out-under-file": lambda: (ts("--out", W("file-parent", "plain", "sac")),),
    # export_policy
    "ep-no-input": lambda: (ep(),),
    "ep-agent-missing": lambda: (ep("--agent", W("no-such-agent.pt")),),
    "ep-agent-text": lambda: (ep("--agent", W("notes.txt")),),
    "ep-agent-model-file": lambda: (ep("--agent", W("base", "model.pt")),),
    "ep-agent-other-task": lambda: (ep("--agent", AGENT(), task="hopper"),),
    "ep-agent-other-size": lambda: (ep("--agent", AGENT()),),
    "ep-policy-other-task": lambda: (ep("--policy", HC_POLICY, task="hopper"),),
    "ep-policy-text": lambda: (ep("--policy", W("notes.txt")),),
    "ep-agent-and-policy": lambda: (ep("--agent", AGENT(), "--policy", HC_POLICY),),
    "ep-unknown-task": lambda: (ep("--policy", HC_POLICY, task="cheetah"),),
    "ep-bad-format": lambda: (ep("--policy", HC_POLICY, "--format", "onnx"),),
    "ep-episodes-negative": lambda: (ep("--policy", HC_POLICY, "--episodes", "-1"),),
    "ep-out-under-file": lambda: (ep("--policy", HC_POLICY, "--out", W("file-parent", "plain", "p.pt")),),
}


# Paths are bytes on Linux: names that are not UTF-8 must work, and the JSON files that record them stay
# valid JSON (each bad byte shown as U+FFFD; mopo/core/json_text.hpp). Until 2026-12-04 train_mopo (the
# dataset path in summary.json), make_datasets (the policy paths in the cards) and train_sac (the output
# path in config.json) stopped with "internal error: [json.exception.type_error.316]" after their work.
def check_non_utf8_paths():
    problems = []
    odd = os.fsencode(W("odd")) + b"/n\xe9-\xff"  # Latin-1 bytes, as a non-UTF-8 locale would write them
    os.makedirs(odd, exist_ok=True)
    link = lambda target, name: (os.symlink(os.fsencode(target), odd + name), odd + name)[1]  # noqa: E731
    cases = [
        ("train_mopo", [os.fsencode(os.path.join(BIN, "train_mopo")), b"--task", b"halfcheetah",
                        b"--dataset", link(HC, b"/data-\xff,1.hdf5"), b"--config", os.fsencode(W("tiny.json")),
                        b"--out", odd + b"/run-\xff"], odd + b"/run-\xff/summary.json"),
        ("make_datasets", md_policies_bytes(link) + [b"--out", odd + b"/zoo-\xff"],
         odd + b"/zoo-\xff/halfcheetah-medium.json"),
        ("train_sac", [os.fsencode(os.path.join(BIN, "train_sac")), b"--task", b"halfcheetah", b"--steps", b"50",
                       b"--out", odd + b"/sac-\xff"], odd + b"/sac-\xff/config.json"),
    ]
    for program, cmd, record in cases:
        p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=300)
        crash = [s for s in CRASH_SIGNS if s in p.stderr]
        if p.returncode != 0 or crash:
            problems.append(f"non-UTF-8 paths: {program} exit {p.returncode}: {p.stderr.strip()[-300:]}")
            continue
        try:
            with open(record, encoding="utf-8") as f:
                text = f.read()
            json.loads(text)
            if "\ufffd" not in text:
                problems.append(f"non-UTF-8 paths: {os.fsdecode(record)} does not show the path's bad bytes")
        except (OSError, ValueError) as e:
            problems.append(f"non-UTF-8 paths: {program}: {os.fsdecode(record)}: {e}")
    # The dataset path holds a comma too: dataset.csv quotes it, so its columns stay in place.
    try:
        with open(odd + b"/run-\xff/dataset.csv", newline="", encoding="utf-8", errors="surrogateescape") as f:
            row = next(csv.DictReader(f))
        if not row["dataset"].endswith(",1.hdf5") or None in row or not row["transitions"].isdigit():
            problems.append(f"dataset.csv: a path with a comma split the row: {row}")
    except (OSError, StopIteration, KeyError) as e:
        problems.append(f"dataset.csv: {e}")
    print(("ok   " if not problems else "FAIL ") + "non-UTF-8 paths (train_mopo, make_datasets, train_sac)",
          flush=True)
    return problems


def md_policies_bytes(link):
    return [os.fsencode(os.path.join(BIN, "make_datasets")), b"--task", b"halfcheetah", b"--size", b"200",
            b"--medium-policy", link(os.path.join(POLICIES, "policy_50000.pt"), b"/medium-\xff.pt"),
            b"--expert-policy", link(os.path.join(POLICIES, "policy_150000.pt"), b"/expert-\xff.pt")]


def run_row(row):
    rid, program, message, code = row
    built = BUILDERS[rid]()
    cmd, preexec = built[0], (built[1] if len(built) > 1 else None)
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=300, preexec_fn=preexec)
    problems = []
    if os.path.basename(cmd[0]) != program:
        problems.append(f"the builder runs {os.path.basename(cmd[0])}, the table says {program}")
    if p.returncode < 0:
        problems.append(f"killed by signal {-p.returncode}")
    elif p.returncode != code:
        problems.append(f"exit {p.returncode}, expected {code}")
    if message not in p.stderr:
        problems.append(f"stderr lacks `{message}`")
    problems += [f"stderr shows a crash: {s!r}" for s in CRASH_SIGNS if s in p.stderr]
    return rid, problems, p, time.time() - t0


def main():
    rows = parse_catalogue(DOC)
    failures = []
    ids = [r[0] for r in rows]
    if len(ids) != len(set(ids)):
        failures.append("duplicate ids in the catalogue")
    for rid in sorted(set(ids) - set(BUILDERS)):
        failures.append(f"{rid}: a catalogue row without a builder in bad_input_test.py")
    for rid in sorted(set(BUILDERS) - set(ids)):
        failures.append(f"{rid}: a builder without a row in docs/reliability.md")
    print(f"{len(rows)} catalogue rows in {DOC}", flush=True)
    t0 = time.time()
    setup()
    print(f"inputs built in {time.time() - t0:.1f} s", flush=True)
    todo = [r for r in rows if r[0] in BUILDERS and (not ONLY or r[0] in ONLY)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for rid, problems, p, seconds in pool.map(run_row, todo):
            print(("ok   " if not problems else "FAIL ") + f"{rid} ({seconds:.1f} s)", flush=True)
            if problems:
                failures.append(f"{rid}: " + "; ".join(problems))
                print("     " + "; ".join(problems) + "\n     stderr: " + p.stderr.strip()[-1500:], flush=True)
    print(f"{len(todo)} rows run in {time.time() - t0:.1f} s")
    if not ONLY:
        failures += check_non_utf8_paths()
    return failures


try:
    failures = main()
finally:
    shutil.rmtree(work, ignore_errors=True)
if failures:
    print(f"\n{len(failures)} failure(s):\n  " + "\n  ".join(failures))
    sys.exit(1)
print("all rows passed")
