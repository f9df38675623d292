#!/usr/bin/python3
"""ctest `write.failure`: writes that fail leave the previous files valid and name the path (issue 16, item 5).

Real failures of real runs, three mechanisms:
  * file too large: RLIMIT_FSIZE on the child process (SIGXFSZ ignored, so write(2) fails with EFBIG, as on
    a full quota); needs no privileges;
  * disk full: a small tmpfs filled up to a few pages (ENOSPC); needs root (mount);
  * read-only: a read-only bind mount of the checkpoint directory or of metrics.csv, a read-only remount of
    the tmpfs (EROFS); needs root (chmod does not stop root, so it would not simulate anything).
What is written: train_mopo's checkpoint (checkpoint/epoch-k/{agent,model,trainer}.pt, latest.json) and
metrics rows (metrics.csv, metrics.jsonl); make_datasets' HDF5 datasets.

Each case: a first run succeeds; the failing run exits 2 with the path and the reason on stderr and no
crash; afterwards the previous checkpoint / metrics / datasets are byte-identical and still load (train_mopo
--resume continues from the checkpoint and writes every epoch's row exactly once; h5py opens the
datasets), and no temporary file (`*.tmp.*`) or half-written checkpoint directory is left.

Without root (or where mount is refused) the mount cases are skipped, each saying why, and the script exits
77 (ctest SKIP_RETURN_CODE) after running the others; a failure anywhere exits 1.

    write_failure_test.py <bin dir> <source dir>
"""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import h5py

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from failing_runs import CRASH_SIGNS, file_size_limit  # noqa: E402

if len(sys.argv) != 3:
    sys.exit("usage: write_failure_test.py <bin dir> <source dir>")
BIN, SOURCE = (os.path.abspath(a) for a in sys.argv[1:3])
TRAIN_MOPO, MAKE_DATASETS = os.path.join(BIN, "train_mopo"), os.path.join(BIN, "make_datasets")
POLICIES = os.path.join(SOURCE, "data", "zoo", "policies", "halfcheetah")
failures, skipped, mounts = [], [], []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def sh(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True)


def mount(*args):
    r = sh("mount", *args)
    if r.returncode == 0:
        mounts.append(args[-1])
    return r


def umount(path):
    sh("umount", path)
    if path in mounts:
        mounts.remove(path)


def can_mount(work):
    if os.geteuid() != 0:
        return "not root: mounting a tmpfs or a read-only bind mount needs root"
    probe = os.path.join(work, "probe")
    os.makedirs(probe)
    r = mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", probe)
    if r.returncode != 0:
        return f"mount -t tmpfs was refused ({r.stderr.strip()})"
    umount(probe)
    return None


def digest(paths):
    out = {}
    for p in sorted(paths):
        with open(p, "rb") as f:
            out[os.path.basename(os.path.dirname(p)) + "/" + os.path.basename(p)] = hashlib.sha256(f.read()).hexdigest()
    return out


def temp_files(root):
    return glob.glob(os.path.join(root, "**", "*.tmp.*"), recursive=True)


def fill(mountpoint, leave):
    """Fills the file system at mountpoint until `leave` bytes are free (a filler file)."""
    st = os.statvfs(mountpoint)
    free = st.f_bavail * st.f_frsize
    with open(os.path.join(mountpoint, "filler"), "wb") as f:
        f.write(b"\0" * max(free - leave, 0))
    st = os.statvfs(mountpoint)
    return st.f_bavail * st.f_frsize


def expect_failure(name, p, path_part, reason):
    check(p.returncode == 2, f"{name}: exit 2 (got {p.returncode})")
    check(path_part in p.stderr and reason in p.stderr,
          f"{name}: stderr names the path ({path_part}) and the reason ({reason}): {p.stderr.strip()[-400:]!r}")
    check(not any(s in p.stderr for s in CRASH_SIGNS), f"{name}: no crash")


work = tempfile.mkdtemp(prefix="mopo_write_failure_")
try:
    data = os.path.join(work, "data")
    zoo = [MAKE_DATASETS, "--task", "halfcheetah", "--size", "1000", "--medium-policy",
           os.path.join(POLICIES, "policy_50000.pt"), "--expert-policy", os.path.join(POLICIES, "policy_150000.pt")]
    subprocess.run(zoo + ["--seed", "3", "--out", data], check=True, capture_output=True)
    dataset = os.path.join(data, "halfcheetah-random.hdf5")
    # Cheap epochs (no evaluation until the last, 20 SAC updates), SAC 64x64 so agent.pt (~200 KB) is much
    # larger than the small files written before it (dataset.csv, config.json, metrics rows).
    config = os.path.join(work, "config.json")
    with open(config, "w") as f:
        json.dump({"steps_per_epoch": 20, "rollout_freq": 20, "eval_episodes": 1, "eval_every": 1000,
                   "rollout_threads": 1, "rollout": {"rollout_batch": 20, "horizon": 1},
                   "ensemble": {"ensemble_size": 2, "num_elites": 1, "hidden": [8, 8], "weight_decay": [2.5e-5, 5e-5, 1e-4]},
                   "model_training": {"max_epochs": 1, "threads": 1},
                   "sac": {"hidden": [64, 64], "batch_size": 16, "update_threads": 1}}, f)

    def train(out, epochs, resume=False, preexec=None):
        cmd = [TRAIN_MOPO, "--task", "halfcheetah", "--dataset", dataset, "--config", config, "--epochs",
               str(epochs), "--out", out] + (["--resume"] if resume else [])
        return subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=600,
                              preexec_fn=preexec)

    def snapshot(run):
        ckpt = glob.glob(os.path.join(run, "checkpoint", "*", "*.pt")) + [os.path.join(run, "checkpoint", "latest.json")]
        return digest(ckpt), digest([os.path.join(run, "metrics.csv"), os.path.join(run, "metrics.jsonl")])

    def epochs_of(run):
        with open(os.path.join(run, "metrics.csv")) as f:
            lines = f.read().splitlines()
        col = lines[0].split(",").index("epoch")
        csv_epochs = [int(float(line.split(",")[col])) for line in lines[1:]]
        with open(os.path.join(run, "metrics.jsonl")) as f:
            jsonl_epochs = [int(json.loads(line)["epoch"]) for line in f if line.strip()]
        return csv_epochs, jsonl_epochs

    def latest_epoch(run):
        with open(os.path.join(run, "checkpoint", "latest.json")) as f:
            return json.load(f)["epoch"]

    def checkpoint_kept(name, run, before, k):
        """After a failed epoch-(k+1) checkpoint: checkpoint k is intact and the run resumes from it."""
        ckpt_before, _ = before
        check(snapshot(run)[0] == ckpt_before, f"{name}: checkpoint epoch-{k} and latest.json byte-identical")
        check(not os.path.exists(os.path.join(run, "checkpoint", f"epoch-{k + 1}")),
              f"{name}: the half-written epoch-{k + 1} directory was removed")
        check(not temp_files(run), f"{name}: no temporary file left ({temp_files(run)})")

    def resumes(name, run, epochs):
        p = train(run, epochs, resume=True)
        check(p.returncode == 0, f"{name}: --resume from the kept checkpoint finishes (exit {p.returncode}) "
                                 f"{p.stderr.strip()[-300:]}")
        check(epochs_of(run) == (list(range(1, epochs + 1)),) * 2,
              f"{name}: metrics.csv and metrics.jsonl hold epochs 1..{epochs} exactly once ({epochs_of(run)})")
        check(latest_epoch(run) == epochs, f"{name}: latest.json is epoch {epochs}")

    # ---- no root needed: RLIMIT_FSIZE -------------------------------------------------------------------
    name = "checkpoint, file too large"
    run = os.path.join(work, "run-fsize-ckpt")
    check(train(run, 1).returncode == 0, f"{name}: first run")
    agent_size = os.path.getsize(os.path.join(run, "checkpoint", "epoch-1", "agent.pt"))
    before = snapshot(run)
    limit = agent_size // 2
    check(limit > 20000 and limit > os.path.getsize(os.path.join(run, "config.json")),
          f"{name}: agent.pt ({agent_size} B) is the first file over the limit ({limit} B)")
    p = train(run, 2, resume=True, preexec=file_size_limit(limit))
    expect_failure(name, p, os.path.join("checkpoint", "epoch-2", "agent.pt"), "File too large")
    checkpoint_kept(name, run, before, 1)
    resumes(name, run, 2)

    name = "metrics, file too large"
    run = os.path.join(work, "run-fsize-metrics")
    check(train(run, 12).returncode == 0, f"{name}: first run (12 epochs)")
    csv_size = os.path.getsize(os.path.join(run, "metrics.csv"))
    limit = csv_size + 40  # the next row starts and is cut
    check(all(os.path.getsize(os.path.join(run, f)) < limit for f in ("config.json", "dataset.csv")),
          f"{name}: metrics.csv ({csv_size} B) is the first file to grow over the limit ({limit} B)")
    before = snapshot(run)
    p = train(run, 13, resume=True, preexec=file_size_limit(limit))
    expect_failure(name, p, "metrics.csv", "File too large")
    check(snapshot(run) == before, f"{name}: metrics.csv, metrics.jsonl and the checkpoint byte-identical "
                                   "(the cut row was removed again)")
    resumes(name, run, 13)

    name = "dataset, file too large"
    out = os.path.join(work, "zoo-fsize")
    subprocess.run(zoo + ["--seed", "3", "--out", out], check=True, capture_output=True)
    files = sorted(glob.glob(os.path.join(out, "*.hdf5")))
    before = digest(files)
    p = subprocess.run(zoo + ["--seed", "4", "--out", out], capture_output=True, text=True, errors="replace",
                       preexec_fn=file_size_limit(100000))
    expect_failure(name, p, os.path.join(out, "halfcheetah-random.hdf5"), "File too large")

    def datasets_kept(name, out, files, before):
        check(digest(files) == before, f"{name}: the previous datasets are byte-identical")
        readable = True
        for path in files:
            with h5py.File(path, "r") as f:
                shape = f["observations"].shape
                readable = readable and shape[0] >= 1000 and shape[1] == 17
                readable = readable and f["metadata/task"][()] == b"halfcheetah"
        check(readable, f"{name}: h5py reads every previous dataset (observations (>= 1000, 17), metadata/task)")
        check(not temp_files(out), f"{name}: no temporary file left ({temp_files(out)})")

    datasets_kept(name, out, files, before)

    # ---- root: tmpfs (disk full) and read-only mounts -------------------------------------------------
    why = can_mount(work)
    if why:
        for case in ("checkpoint, disk full", "checkpoint, read-only directory", "metrics, read-only file",
                     "dataset, disk full", "dataset, read-only file system"):
            print(f"SKIP {case}: {why}", flush=True)
            skipped.append(case)
    else:
        name = "checkpoint, disk full"
        fs1 = os.path.join(work, "tmpfs-run")
        os.makedirs(fs1)
        mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", fs1)
        run = os.path.join(fs1, "run")
        check(train(run, 1).returncode == 0, f"{name}: first run on a tmpfs")
        agent_size = os.path.getsize(os.path.join(run, "checkpoint", "epoch-1", "agent.pt"))
        before = snapshot(run)
        free = fill(fs1, agent_size // 2)
        p = train(run, 2, resume=True)
        expect_failure(name, p, os.path.join("checkpoint", "epoch-2", "agent.pt"), "No space left on device")
        print(f"     ({free} B were free, agent.pt needs {agent_size} B)")
        checkpoint_kept(name, run, before, 1)
        os.remove(os.path.join(fs1, "filler"))
        resumes(name, run, 2)
        umount(fs1)

        name = "checkpoint, read-only directory"
        run = os.path.join(work, "run-ro-ckpt")
        check(train(run, 1).returncode == 0, f"{name}: first run")
        before = snapshot(run)
        ckpt = os.path.join(run, "checkpoint")
        mount("--bind", ckpt, ckpt)
        mount("-o", "remount,bind,ro", ckpt)
        p = train(run, 2, resume=True)
        umount(ckpt)
        expect_failure(name, p, os.path.join("checkpoint", "epoch-2"), "Read-only file system")
        checkpoint_kept(name, run, before, 1)
        resumes(name, run, 2)

        name = "metrics, read-only file"
        metrics = os.path.join(run, "metrics.csv")
        before = snapshot(run)
        mount("--bind", metrics, metrics)
        mount("-o", "remount,bind,ro", metrics)
        p = train(run, 3, resume=True)
        umount(metrics)
        expect_failure(name, p, metrics, "Read-only file system")
        check(snapshot(run) == before, f"{name}: metrics and checkpoint byte-identical")
        resumes(name, run, 3)

        name = "dataset, disk full"
        fs2 = os.path.join(work, "tmpfs-zoo")
        os.makedirs(fs2)
        mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", fs2)
        out = os.path.join(fs2, "zoo")
        subprocess.run(zoo + ["--seed", "3", "--out", out], check=True, capture_output=True)
        files = sorted(glob.glob(os.path.join(out, "*.hdf5")))
        before = digest(files)
        free = fill(fs2, 64 * 1024)
        p = subprocess.run(zoo + ["--seed", "4", "--out", out], capture_output=True, text=True, errors="replace")
        expect_failure(name, p, os.path.join(out, "halfcheetah-random.hdf5"), "No space left on device")
        datasets_kept(name, out, files, before)

        name = "dataset, read-only file system"
        os.remove(os.path.join(fs2, "filler"))
        mount("-o", "remount,ro", fs2)
        p = subprocess.run(zoo + ["--seed", "4", "--out", out], capture_output=True, text=True, errors="replace")
        expect_failure(name, p, os.path.join(out, "halfcheetah-random.hdf5"), "Read-only file system")
        datasets_kept(name, out, files, before)
        umount(fs2)
finally:
    for m in reversed(list(mounts)):
        umount(m)
    shutil.rmtree(work, ignore_errors=True)

if failures:
    print(f"\n{len(failures)} failure(s):\n  " + "\n  ".join(failures))
    sys.exit(1)
if skipped:
    print(f"\n{len(skipped)} case(s) skipped (see SKIP above); the others passed")
    sys.exit(77)
print("all write-failure cases passed")
