#!/usr/bin/python3
"""ctest `sweep.slurm`: `scripts/sweep slurm` against a real single-node Slurm (slurmctld + slurmd + munged
started here, on localhost, with a generated slurm.conf in a temporary directory; nothing under /etc is used
or changed), on real runs of train_mopo: 2 seeds x 2 algorithms, tiny settings, a 2 000-row
halfcheetah-random dataset collected with real MuJoCo by make_datasets (as tests/integration/sweep_test.py).

Checks: the job array is submitted with the throttle; a second `sweep slurm` while it is queued or running
submits nothing; while two tasks are frozen mid-run (`scontrol suspend`, so no check depends on how fast the
machine is) a second process may not train into a busy run, and one task requeued mid-run (`scontrol requeue`)
resumes its run from the checkpoint
with every epoch's metrics row exactly once; `plan` (run directories only, no scheduler) ends with 4 done;
every task has its own log; `report` writes the table and the PNG. The daemons are always stopped.

Skips (exit 77, ctest SKIP_RETURN_CODE) when Slurm cannot run here, saying why: not root (slurmd must be),
Slurm/MUNGE not installed and not installable (it installs them with `scripts/install-deps.sh --slurm`
unless MOPO_SLURM_TEST_INSTALL=0), or a daemon does not come up.

    sweep_slurm_test.py <train_mopo> <make_datasets> <source dir>
"""
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77
TRAIN_MOPO, MAKE_DATASETS, SOURCE = (os.path.abspath(a) for a in sys.argv[1:4])
SWEEP = [sys.executable, os.path.join(SOURCE, "scripts", "sweep")]
TOOLS = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo", "munged", "mungekey",
         "munge", "unmunge")
T0 = time.time()
failures = []


def note(msg):
    print(f"[{time.time() - T0:6.1f} s] {msg}", flush=True)


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def skip(why):
    print(f"SKIP sweep.slurm: {why}", flush=True)
    sys.exit(SKIP)


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return f"({path}: no such file)\n"


def missing_tools():
    return [t for t in TOOLS if shutil.which(t, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None]


def ensure_slurm_installed():
    missing = missing_tools()
    if not missing:
        return
    if os.environ.get("MOPO_SLURM_TEST_INSTALL", "1") == "0":
        skip(f"{', '.join(missing)} not installed (MOPO_SLURM_TEST_INSTALL=0: not installing; "
             "`scripts/install-deps.sh --slurm` installs Slurm and MUNGE)")
    note(f"installing Slurm and MUNGE (missing: {', '.join(missing)}) with scripts/install-deps.sh --slurm")
    r = subprocess.run([os.path.join(SOURCE, "scripts", "install-deps.sh"), "--slurm"], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0 or missing_tools():
        skip(f"could not install Slurm and MUNGE (install-deps.sh --slurm exit {r.returncode}):\n"
             + (r.stdout + r.stderr)[-1500:])


def last_line(r):
    text = (r.stdout.strip() or r.stderr.strip() or "(no output)")
    return text.splitlines()[-1]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Cluster:
    """munged + slurmctld + slurmd on localhost, everything (key, socket, state, spool, logs) under `root`.
    Every process started here, and everything they start (job steps, train_mopo), carries MOPO_SLURM_TEST_ID
    in its environment, so stop() can find any survivor by it."""

    def __init__(self, root):
        self.root = root
        self.procs = {}
        self.tag = f"{root}:{os.getpid()}"
        self.node = socket.gethostname().split(".")[0]
        self.env = dict(os.environ, SLURM_CONF=os.path.join(root, "etc", "slurm.conf"), MOPO_SLURM_TEST_ID=self.tag)
        for k in list(self.env):  # not inside someone else's allocation
            if k.startswith(("SLURM_", "SBATCH_", "SQUEUE_")) and k != "SLURM_CONF":
                del self.env[k]

    def path(self, *p):
        return os.path.join(self.root, *p)

    def start(self):
        os.chmod(self.root, 0o755)
        for d, mode in (("munge", 0o700), ("run", 0o755), ("etc", 0o755), ("state", 0o700), ("spool", 0o755),
                        ("log", 0o755)):
            os.makedirs(self.path(d), exist_ok=True)
            os.chmod(self.path(d), mode)
        key, sock = self.path("munge", "munge.key"), self.path("run", "munge.socket")
        r = subprocess.run(["mungekey", "--create", "--keyfile", key], capture_output=True, text=True)
        if r.returncode != 0:
            skip(f"mungekey could not create a key: {r.stderr.strip()}")
        self.spawn("munged", ["munged", "--foreground", f"--socket={sock}", f"--key-file={key}",
                              f"--pid-file={self.path('run', 'munged.pid')}",
                              f"--seed-file={self.path('munge', 'munged.seed')}",
                              f"--log-file={self.path('log', 'munged.log')}"])

        def munge_ok():
            p = subprocess.run(f"munge -n -S {sock} | unmunge -S {sock}", shell=True, capture_output=True)
            return p.returncode == 0

        if not wait_for(munge_ok, 10):
            self.skip_with_logs("munged did not come up (munge -n | unmunge failed)", "munged")
        note("munged is up")

        ctld_port, d_port = free_port(), free_port()
        cpus = min(2, os.cpu_count() or 1)
        conf = f"""# generated by {os.path.basename(__file__)}: a one-node test cluster on localhost
ClusterName=mopotest
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser={pwd_name()}
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock}
StateSaveLocation={self.path('state')}
SlurmdSpoolDir={self.path('spool')}
SlurmctldPidFile={self.path('run', 'slurmctld.pid')}
SlurmdPidFile={self.path('run', 'slurmd.pid')}
SlurmctldLogFile={self.path('log', 'slurmctld.log')}
SlurmdLogFile={self.path('log', 'slurmd.log')}
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=10
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=test Nodes={self.node} Default=YES MaxTime=60 State=UP
"""
        tmp = self.path("etc", "slurm.conf.tmp")
        with open(tmp, "w") as f:
            f.write(conf)
        os.replace(tmp, self.env["SLURM_CONF"])
        self.spawn("slurmctld", ["slurmctld", "-D", "-f", self.env["SLURM_CONF"]])
        self.spawn("slurmd", ["slurmd", "-D", "-f", self.env["SLURM_CONF"], "-N", self.node])

        def node_idle():
            for name, p in self.procs.items():
                if p.poll() is not None:
                    self.skip_with_logs(f"{name} exited ({p.returncode}) while starting", name)
            r = self.run(["sinfo", "-h", "-n", self.node, "-o", "%T"])
            return r.returncode == 0 and r.stdout.strip() == "idle"

        if not wait_for(node_idle, 30, 0.5):
            self.skip_with_logs("the node did not become idle within 30 s", "slurmctld", "slurmd")
        note(f"slurmctld (port {ctld_port}) and slurmd (node {self.node}, {cpus} CPUs, port {d_port}) are up")

    def spawn(self, name, cmd):
        out = open(self.path("log", f"{name}.out"), "w")
        self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=self.env, start_new_session=True, preexec_fn=_term_with_parent)
        out.close()

    def skip_with_logs(self, why, *names):
        logs = "".join(f"--- {n}:\n" + tail(self.path("log", f"{n}.out")) for n in names)
        self.stop()
        skip(f"{why}\n{logs}")

    def run(self, cmd, **kw):
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, **kw)

    def stop(self):
        """Cancels every job, stops the daemons, then kills anything still carrying this cluster's tag."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.run(["scancel", "--full", "--user", pwd_name()], timeout=20)
            wait_for(lambda: self.run(["squeue", "-h"]).stdout.strip() == "", 20, 0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for pid in tagged_pids(self.tag):
            try:
                os.kill(pid, signal.SIGKILL)
                note(f"killed leftover process {pid}")
            except ProcessLookupError:
                pass
        self.procs.clear()


def _term_with_parent():
    """In a daemon before exec: SIGTERM when this test dies, even by SIGKILL (Linux PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


def pwd_name():
    import pwd
    return pwd.getpwuid(os.geteuid()).pw_name


def tagged_pids(tag):
    """Processes (other than this one) whose environment has MOPO_SLURM_TEST_ID=<tag>."""
    needle = f"MOPO_SLURM_TEST_ID={tag}".encode() + b"\0"
    pids = []
    for e in os.listdir("/proc"):
        if not e.isdigit() or int(e) == os.getpid():
            continue
        try:
            with open(f"/proc/{e}/environ", "rb") as f:
                if needle in f.read() + b"\0":
                    pids.append(int(e))
        except OSError:
            pass
    return pids


def main():
    if os.geteuid() != 0:
        skip("not root: the test cluster's slurmd must run as root (it starts each job as its user)")
    ensure_slurm_installed()
    base = os.environ.get("TMPDIR", "/tmp")
    if len(base) > 40:  # the MUNGE socket path must fit a sockaddr_un (108 bytes)
        base = "/tmp"
    work = tempfile.mkdtemp(prefix="mopo_slurm_", dir=base)
    os.chmod(work, 0o755)  # munged requires every directory above its socket to be searchable by all
    cluster = Cluster(os.path.join(work, "cluster"))
    os.makedirs(cluster.root)
    try:
        cluster.start()
        data_dir = os.path.join(work, "data")
        policies = os.path.join(SOURCE, "data", "zoo", "policies", "halfcheetah")
        subprocess.run([MAKE_DATASETS, "--task", "halfcheetah", "--size", "2000",
                        "--seed", "3", "--medium-policy", os.path.join(policies, "policy_50000.pt"),
                        "--expert-policy", os.path.join(policies, "policy_150000.pt"), "--out", data_dir],
                       check=True, capture_output=True)
        note("dataset made")
        epochs = 8  # task 0 is requeued after its first epoch: leave it time to be requeued mid-run
        tiny = {"model_training.max_epochs": 2, "rollout.rollout_batch": 200, "steps_per_epoch": 200,
                "rollout_freq": 200, "eval_episodes": 1, "eval_every": 1, "sac.batch_size": 64,
                "sac.hidden": "[32,32]", "ensemble": '{"hidden": [32, 32], "weight_decay": [2.5e-5, 5e-5, 1e-4]}'}
        spec = {"name": "tiny-slurm", "epochs": epochs,
                "base_config": os.path.join(SOURCE, "configs", "quickstart-halfcheetah.json"),
                "datasets": [{"name": "hc-random", "task": "halfcheetah",
                              "file": os.path.join(data_dir, "halfcheetah-random.hdf5")}],
                "algorithms": ["mopo:max_std", "mbpo"], "seeds": [0, 1], "set": tiny, "out": "runs",
                "train_mopo": TRAIN_MOPO}
        spec_file = os.path.join(work, "tiny-slurm.json")
        with open(spec_file, "w") as f:
            json.dump(spec, f)
        out = os.path.join(work, "runs")

        def sweep(*args, timeout=120):
            return subprocess.run(SWEEP + list(args), capture_output=True, text=True, timeout=timeout,
                                  env=cluster.env)

        r = sweep("plan", spec_file)
        check(r.returncode == 0 and "4 runs: 4 pending" in r.stdout, "plan: 4 pending runs")

        r = sweep("slurm", spec_file, "--partition", "test", "--time", "00:30:00", "--throttle", "2")
        print(r.stdout + r.stderr, end="")
        m = re.search(r"submitted job array (\d+)", r.stdout)
        if not check(r.returncode == 0 and m, "slurm: the job array is submitted"):
            return
        job = m.group(1)
        note(f"submitted job array {job}")
        script = re.search(r"-> (\S+\.sbatch)", r.stdout).group(1)
        text = open(script).read()
        check("#SBATCH --array=0-3%2" in text and "#SBATCH --requeue" in text and "#SBATCH --partition=test" in text,
              "the sbatch script: 4 array indices, throttle 2, requeue, the partition")
        r = cluster.run(["squeue", "-h", "-r", "-j", job, "-o", "%i %T"])
        note("squeue: " + " ".join(r.stdout.split()))
        check(r.returncode == 0 and len(r.stdout.splitlines()) == 4, "squeue lists the 4 array tasks")

        r = sweep("plan", spec_file)
        check("pending" not in r.stdout and f"(Slurm job {job}_3)" in r.stdout,
              f"plan: the runs are queued, not pending ({last_line(r)})")

        # Submitting again, or `local`, while the array is queued or running runs nothing twice.
        r = sweep("slurm", spec_file, "--partition", "test", "--throttle", "2")
        check(r.returncode == 0 and "submitted" not in r.stdout and "nothing pending" in r.stdout,
              f"a second `sweep slurm` submits nothing ({last_line(r)})")
        r = sweep("local", spec_file, "-j", "2")
        check(r.returncode == 0 and "0 of 4 runs to do" in r.stdout,
              f"`sweep local` runs none of them ({last_line(r)})")

        # Cancel task 3 while the throttle still holds it back: the next `sweep slurm` submits that run again.
        pending3 = cluster.run(["squeue", "-h", "-j", f"{job}_3", "-o", "%T"]).stdout.strip()
        check(pending3 == "PENDING", f"task {job}_3 is held back by the throttle ({pending3})")
        cluster.run(["scancel", f"{job}_3"])
        # Tasks 0-2 may start or finish meanwhile (a loaded machine): only task 3 must be gone.
        check(wait_for(lambda: "3" not in cluster.run(["squeue", "-h", "-j", job, "-r", "-o", "%K"]).stdout.split()
                       or None, 20, 0.2) is not None, f"scancel {job}_3")
        r = sweep("slurm", spec_file, "--partition", "test", "--throttle", "2")
        m2 = re.search(r"submitted job array (\d+)", r.stdout)
        check(r.returncode == 0 and m2 and "1 pending runs" in r.stdout and "no longer queued" in r.stdout,
              f"after scancel {job}_3 its run is submitted again, alone: {r.stdout.strip()}")
        job2 = m2.group(1) if m2 else "?"

        # Requeue array task 0 once its run has written a checkpoint: it must resume from it.
        index_file = script.replace("/sweep-", "/runs-").replace(".sbatch", ".json")
        index = json.load(open(index_file))
        run0 = os.path.join(out, *index[0].split("/"))
        ckpt = os.path.join(run0, "checkpoint", "latest.json")

        def checkpointed():
            try:
                return json.load(open(ckpt)).get("epoch", 0) >= 1
            except (OSError, ValueError):
                return False

        if not check(wait_for(checkpointed, 300, 0.1), f"task {job}_0 ({index[0]}) wrote a checkpoint"):
            print(tail(os.path.join(run0, "sweep.log")))
            return
        # Freeze tasks 0 and 1 (`scontrol suspend`: SIGSTOP to their processes) so that neither run can finish
        # while the checks below run, however loaded the machine is; both are mid-run here.
        run1 = os.path.join(out, *index[1].split("/"))
        busy = wait_for(lambda: os.path.exists(os.path.join(run1, "sweep-lock.json")), 60, 0.1)
        for t in (0, 1):
            r = cluster.run(["scontrol", "suspend", f"{job}_{t}"])
            check(r.returncode == 0, f"scontrol suspend {job}_{t} {r.stderr.strip()}")
        epoch0 = json.load(open(ckpt)).get("epoch", 0)
        if not check(epoch0 < epochs and busy, f"runs 0 and 1 are mid-run when suspended (run 0 at epoch {epoch0})"):
            return
        # While task 1 trains its run, no second process may train into that directory.
        r = sweep("run-one", spec_file, "--index-file", index_file, "--index", "1")
        check(r.returncode == 1 and "another process runs it" in r.stderr,
              f"run-one of a run that task {job}_1 is training refuses: {last_line(r)}")
        r = cluster.run(["scontrol", "resume", f"{job}_1"])
        check(r.returncode == 0, f"scontrol resume {job}_1 {r.stderr.strip()}")
        # Requeue the suspended task 0 mid-run: it must resume from its checkpoint.
        r = cluster.run(["scontrol", "requeue", f"{job}_0"])
        check(r.returncode == 0, f"scontrol requeue {job}_0 {r.stderr.strip()}")
        note(f"requeued {job}_0 after epoch {epoch0}")
        # A requeued job is held back ~2 min (its BeginTime) before it is eligible again; start it now instead.
        def task0():
            return cluster.run(["squeue", "-h", "-j", f"{job}_0", "-o", "%T %r"]).stdout.split()

        check(wait_for(lambda: task0()[:1] == ["PENDING"], 60, 0.2), f"{job}_0 is pending again after the requeue")
        # Requeued while suspended, Slurm also holds it (JobHeldAdmin): release it.
        cluster.run(["scontrol", "release", f"{job}_0"])
        cluster.run(["scontrol", "update", f"jobid={job}_0", "StartTime=now"])
        check(wait_for(lambda: not any(r in " ".join(task0()) for r in ("BeginTime", "JobHeld")), 30, 0.5),
              f"{job}_0 is eligible again ({task0()})")

        def finished():
            r = sweep("plan", spec_file)
            last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr
            return last if ("4 runs: 4 done" in last or "failed" in last) else None

        last = wait_for(finished, 600, 2)
        note(f"plan: {last}")
        check(last and "4 runs: 4 done" in last, "plan: 4 done, read from the run directories")
        if not last or "failed" in last:
            print(sweep("plan", "-v", spec_file).stdout)
        r = cluster.run(["scontrol", "show", "job", f"{job}_0"])
        restarts = re.search(r"Restarts=(\d+)", r.stdout)
        job_state = re.search(r"JobState=(\S+)", r.stdout)
        check(restarts and int(restarts.group(1)) == 1 and job_state and job_state.group(1) == "COMPLETED",
              f"{job}_0 restarted once and completed: {restarts.group(0) if restarts else '?'} "
              f"{job_state.group(0) if job_state else '?'}")
        log0 = open(os.path.join(run0, "sweep.log")).read() if os.path.exists(os.path.join(run0, "sweep.log")) else ""
        check(log0.count(" slurm: ") == 2 and "--resume" in log0.split(" slurm: ")[-1],
              "the requeued task's run was started twice, the second time with --resume")
        check("resumed at epoch" in log0, "train_mopo resumed from the checkpoint")
        task_log = os.path.join(out, "slurm", "logs", f"{job}_0.out")
        check("DUE TO JOB REQUEUE" in tail(task_log, 50), f"its task log {job}_0.out records the requeue")
        logs = sorted(os.listdir(os.path.join(out, "slurm", "logs")))
        check(logs == [f"{job}_{i}.out" for i in range(3)] + [f"{job2}_0.out"],
              f"one log per array task that ran: {logs}")
        for root, _, files in os.walk(out):
            if "metrics.csv" in files:
                with open(os.path.join(root, "metrics.csv"), newline="") as f:
                    seen = [int(float(row["epoch"])) for row in csv.DictReader(f)]
                check(seen == list(range(1, epochs + 1)), f"{os.path.relpath(root, out)}: epochs {seen} each once")

        r = sweep("slurm", spec_file)
        check(r.returncode == 0 and "nothing pending" in r.stdout, "a finished sweep submits nothing")
        r = subprocess.run(["/usr/bin/python3"] + SWEEP[1:] + ["report", spec_file], capture_output=True, text=True)
        report = os.path.join(out, "report.md")
        text = open(report).read() if os.path.exists(report) else ""
        check(r.returncode == 0 and "| mopo-max_std | base | 2 / 2 |" in text and "| mbpo | base | 2 / 2 |" in text,
              "report: table with 2/2 seeds per algorithm")
        png = os.path.join(out, "hc-random.png")
        check(os.path.isfile(png) and os.path.getsize(png) > 0 and "![hc-random](hc-random.png)" in text,
              "report: the PNG, linked from the report")
    finally:
        cluster.stop()
        left = tagged_pids(cluster.tag)
        check(not left, f"no process of the test cluster is left ({left})")
        if failures:
            for name in ("slurmctld", "slurmd"):
                print(f"--- {name} log tail:\n" + tail(cluster.path("log", f"{name}.out")), end="")
        shutil.rmtree(work, ignore_errors=True)
    note(f"{len(failures)} failure(s)")


def _interrupted(signum, _frame):
    raise SystemExit(f"interrupted by signal {signum}")  # unwinds through main's finally: the daemons stop


if __name__ == "__main__":
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _interrupted)
    main()
    sys.exit(1 if failures else 0)
