#!/usr/bin/python3
"""ctest `sweep.local`: scripts/sweep on real runs of train_mopo (2 seeds x 2 algorithms, tiny settings, a
2 000-row halfcheetah-random dataset collected with real MuJoCo by make_datasets).

Checks: plan lists 4 pending runs with stable names; bad specs fail before launching anything, naming the
key; `local -j 2` finishes them; a second `local` redoes nothing; a sweep killed mid-run resumes its
runs from their checkpoints with every epoch's metrics row exactly once; a failing run is reported with its
log tail and does not stop the others; a shared model is trained once and loaded by the runs that use it;
`report` writes the table and one PNG per dataset.

    sweep_test.py <train_mopo> <make_datasets> <source dir>
"""
import csv
import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TRAIN_MOPO, MAKE_DATASETS, SOURCE = (os.path.abspath(a) for a in sys.argv[1:4])
SWEEP = [sys.executable, os.path.join(SOURCE, "scripts", "sweep")]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def sweep(*args, timeout=900):
    return subprocess.run(SWEEP + list(args), capture_output=True, text=True, timeout=timeout)


work = tempfile.mkdtemp(prefix="mopo_sweep_test_")
try:
    data_dir = os.path.join(work, "data")
    policies = os.path.join(SOURCE, "data", "zoo", "policies", "halfcheetah")
    subprocess.run([MAKE_DATASETS, "--task", "halfcheetah", "--size", "2000",
                    "--seed", "3", "--medium-policy", os.path.join(policies, "policy_50000.pt"),
                    "--expert-policy", os.path.join(policies, "policy_150000.pt"), "--out", data_dir],
                   check=True, capture_output=True)
    tiny = {"model_training.max_epochs": 2, "rollout.rollout_batch": 200, "steps_per_epoch": 200,
            "rollout_freq": 200, "eval_episodes": 1, "sac.batch_size": 64, "sac.hidden": "[32,32]",
            # one override for both keys: each --set is validated on its own
            "ensemble": '{"hidden": [32, 32], "weight_decay": [2.5e-5, 5e-5, 1e-4]}'}
    spec = {"name": "tiny", "epochs": 6, "base_config": os.path.join(SOURCE, "configs", "quickstart-halfcheetah.json"),
            "datasets": [{"name": "hc-random", "task": "halfcheetah",
                          "file": os.path.join(data_dir, "halfcheetah-random.hdf5")}],
            "algorithms": ["mopo:max_std", "mbpo"], "seeds": [0, 1], "grid": {"lambda": [0.5]}, "set": tiny,
            "out": "runs", "train_mopo": TRAIN_MOPO}
    spec_file = os.path.join(work, "tiny.json")
    with open(spec_file, "w") as f:
        json.dump(spec, f)

    r = sweep("plan", spec_file)
    check(r.returncode == 0 and "4 runs: 4 pending" in r.stdout, "plan: 4 pending runs")
    check("pending  hc-random/mopo-max_std/lambda=0.5/seed-0" in r.stdout, "plan: stable run names")

    # Bad specs: a clear error naming the key, nothing launched.
    def bad(mutate, needle, what):
        b = json.loads(json.dumps(spec))
        mutate(b)
        path = os.path.join(work, "bad.json")
        with open(path, "w") as f:
            json.dump(b, f)
        r = sweep("local", path)
        check(r.returncode == 2 and needle in r.stderr, f"bad spec ({what}): {r.stderr.strip()[:120]}")

    bad(lambda b: b.update(seedz=[1]), "seedz: unknown key", "unknown key")
    bad(lambda b: b["datasets"][0].update(file="/nonexistent.hdf5"), "datasets[0].file: no such file",
        "missing dataset")
    bad(lambda b: b.update(algorithms=["mopo:max_std", "mopoo"]), "algorithms[1]: unknown algorithm",
        "unknown algorithm")
    bad(lambda b: b["datasets"][0].update(task="cartpole"), "datasets[0].task: unknown task", "unknown task")
    bad(lambda b: b.update(seeds=[0, 0]), "seeds: duplicate", "two runs, one directory")
    check(not os.path.exists(os.path.join(work, "runs")), "bad specs launched nothing")

    # Kill the sweep while its first two runs are past their first checkpoint, then resume.
    proc = subprocess.Popen(SWEEP + ["local", spec_file, "-j", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    run0 = os.path.join(work, "runs", "hc-random", "mopo-max_std", "lambda=0.5", "seed-0")
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and \
            not os.path.exists(os.path.join(run0, "checkpoint", "latest.json")):
        time.sleep(0.05)
    check(os.path.exists(os.path.join(run0, "checkpoint", "latest.json")), "a run checkpointed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    r = sweep("plan", spec_file)
    check("running" not in r.stdout, "after killing the sweep no run is left running")
    r = sweep("local", spec_file, "-j", "2")
    check(r.returncode == 0, "local resumes and finishes (exit 0)")
    check("resuming" in r.stdout, "an interrupted run was resumed from its checkpoint")
    r = sweep("plan", spec_file)
    check("4 runs: 4 done" in r.stdout, "plan: 4 done")
    for root, _, files in os.walk(os.path.join(work, "runs")):
        if "metrics.csv" in files:
            with open(os.path.join(root, "metrics.csv"), newline="") as f:
                epochs = [int(float(row["epoch"])) for row in csv.DictReader(f)]
            check(epochs == [1, 2, 3, 4, 5, 6], f"{os.path.relpath(root, work)}: epochs {epochs} each exactly once")
    r = sweep("local", spec_file, "-j", "2")
    check(r.returncode == 0 and "0 of 4 runs to do" in r.stdout, "a second local redoes nothing")

    # A failing run is reported with its log tail and does not stop the others.
    failing = json.loads(json.dumps(spec))
    failing["name"] = "failing"
    failing["out"] = "runs-failing"
    failing["algorithms"] = ["mopo:max_std"]
    failing["grid"] = {"lambda": [0.5], "sac.actor_lr": [1e-4, -1.0]}
    with open(os.path.join(work, "failing.json"), "w") as f:
        json.dump(failing, f)
    r = sweep("local", os.path.join(work, "failing.json"), "-j", "2")
    check(r.returncode == 1 and "FAILED" in r.stdout and "actor_lr" in r.stdout,
          "a failed run is reported with its log tail")
    r = sweep("plan", os.path.join(work, "failing.json"))
    check("2 done" in r.stdout and "2 failed" in r.stdout, "the other runs finished")
    # A run directory written by another spec is refused.
    other = json.loads(json.dumps(failing))
    other["name"] = "other"
    with open(os.path.join(work, "other.json"), "w") as f:
        json.dump(other, f)
    r = sweep("local", os.path.join(work, "other.json"))
    check(r.returncode == 2 and "written by spec 'failing'" in r.stderr, "a foreign run directory is refused")

    # One shared model per dataset and seed: trained once by its model run, loaded by the mopo and mbpo runs
    # (which wait for it), not by offline SAC; an algorithm object brings its own name and --set.
    shared = json.loads(json.dumps(spec))
    shared.update(name="shared", out="runs-shared", seeds=[0], grid={}, shared_model=True, epochs=3,
                  algorithms=["mopo:max_std", {"name": "mbpo-policy", "algo": "mbpo",
                                               "set": {"rollout.random_actions": False}}, "offline-sac"])
    shared_file = os.path.join(work, "shared.json")
    with open(shared_file, "w") as f:
        json.dump(shared, f)
    bad(lambda b: b.update(shared_model=True, grid={"ensemble.num_elites": [3]}),
        "grid.ensemble.num_elites: changes the dynamics model", "a grid key that changes a shared model")
    bad(lambda b: b.update(algorithms=[{"name": "x", "algo": "mbpo", "sets": {}}]), "algorithms[0].sets: unknown key",
        "unknown key in an algorithm object")
    r = sweep("plan", shared_file)
    check(r.returncode == 0 and r.stdout.splitlines()[0].endswith("hc-random/model/seed-0")
          and "4 runs: 4 pending" in r.stdout, "shared model: the model run is planned first")
    r = sweep("plan", shared_file, "--only", "*/offline-sac/*", "--only", "*/mopo-max_std/*")
    lines = [l for l in r.stdout.splitlines() if l.startswith("pending")]
    check(r.returncode == 0 and [l.split()[1] for l in lines] ==
          ["hc-random/model/seed-0", "hc-random/mopo-max_std/base/seed-0", "hc-random/offline-sac/base/seed-0"],
          "--only: the matching runs and the model run they need, in spec order")
    r = sweep("plan", shared_file, "--only", "*/nothing/*")
    check(r.returncode == 2 and "matches no run" in r.stderr, "--only matching nothing is an error")
    two = dict(shared, seeds=[0, 1], out="runs-by-seed")
    two_file = os.path.join(work, "two-seeds.json")
    with open(two_file, "w") as f:
        json.dump(two, f)
    names = [l.split()[1] for l in sweep("plan", two_file, "--by-seed").stdout.splitlines()
             if l.startswith("pending")]
    check(len(names) == 8 and names[0] == "hc-random/model/seed-0" and names[4] == "hc-random/model/seed-1"
          and all(n.endswith("seed-0") for n in names[:4]), "--by-seed: seed 0's model and runs, then seed 1's")
    r = sweep("local", shared_file, "-j", "2")
    out = r.stdout
    check(r.returncode == 0 and "4 finished" in out, "shared model: local finishes 4 runs")
    check(out.find("done     hc-random/model/seed-0") < out.find("start    hc-random/mopo-max_std/base/seed-0"),
          "shared model: the mopo run starts after its model run is done")
    sroot = os.path.join(work, "runs-shared", "hc-random")
    check(os.path.isfile(os.path.join(sroot, "model", "seed-0", "model.pt")), "shared model: model.pt written")
    for method, loads in (("mopo-max_std", True), ("mbpo-policy", True), ("offline-sac", False)):
        log = open(os.path.join(sroot, method, "base", "seed-0", "sweep.log")).read()
        check(("dynamics ensemble loaded from" in log) == loads and
              os.path.exists(os.path.join(sroot, method, "base", "seed-0", "model_metrics.csv")) is False,
              f"shared model: {method} {'loads it' if loads else 'does not use it'} and trains none")
    meta = json.load(open(os.path.join(sroot, "mbpo-policy", "base", "seed-0", "sweep-run.json")))
    check("rollout.random_actions=false" in meta["cmd"], "an algorithm object's set reaches its runs")
    data_file = os.path.join(data_dir, "halfcheetah-random.hdf5")
    check(meta["dataset_sha256"] == hashlib.sha256(open(data_file, "rb").read()).hexdigest()
          and meta["machine"]["cpu"] and meta["machine"]["openblas_corename"],
          "sweep-run.json names the dataset's sha256, the CPU and OpenBLAS's kernels")
    r = sweep("slurm", shared_file, "--dry-run")
    check(r.returncode == 0 and "nothing pending" in r.stdout, "shared model: slurm sees nothing pending")
    fresh = dict(shared, out="runs-shared-slurm")
    with open(shared_file, "w") as f:
        json.dump(fresh, f)
    r = sweep("slurm", shared_file, "--dry-run")
    scripts = sorted(glob.glob(os.path.join(work, "runs-shared-slurm", "slurm", "sweep-*.sbatch")))
    texts = sorted((open(p).read() for p in scripts), key=lambda t: "--dependency" in t)
    check(r.returncode == 0 and len(texts) == 2 and "--array=0-0%" in texts[0] and "--dependency" not in texts[0]
          and "#SBATCH --array=0-2%" in texts[1] and "#SBATCH --dependency=afterok:" in texts[1],
          "shared model, Slurm: a model array, then the runs' array with --dependency=afterok on it")

    r = subprocess.run(["/usr/bin/python3"] + SWEEP[1:] + ["report", spec_file, "--line", "batch max=x"],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "--line 'batch max=x': expected LABEL=VALUE" in r.stderr,
          "report: a --line that does not parse is refused, naming it")
    r = subprocess.run(["/usr/bin/python3"] + SWEEP[1:] + ["report", spec_file, "--line", "batch max=12.5"],
                       capture_output=True, text=True)
    report = os.path.join(work, "runs", "report.md")
    text = open(report).read() if os.path.exists(report) else ""
    check(r.returncode == 0 and "| mopo-max_std | lambda=0.5 | 2 / 2 |" in text, "report: table with 2/2 seeds")
    check("| mbpo | lambda=0.5 | 2 / 2 |" in text and "s0: " in text and "s1: " in text, "report: every seed")
    check(os.path.exists(os.path.join(work, "runs", "hc-random.png")), "report: one PNG per dataset")
    check("Runs made by `train_mopo` built at commit" in text, "report: the program's commit is recorded")
    check("Reference lines: batch max = 12.5" in text, "report: --line is listed (and drawn on the PNG)")
finally:
    shutil.rmtree(work, ignore_errors=True)

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
