"""The demo DAG through a real Slurm: sbatch per job, a job killed with scancel and retried, a no-op rerun.

Starts a single-node Slurm (tests/slurm/setup_slurm.sh: Debian's slurm-wlm + munge, installed when
missing) unless one started by that script is already up, and stops it afterwards (unless it was
already up, or INTERNVL_SLURM_KEEP=1). Needs root; skipped only without root or without both Slurm
and apt-get. Run it alone with

    .venv/bin/python -m pytest -q -m slurm tests/test_slurm_e2e.py -s

(-s shows the evidence: Slurm job ids, squeue/scontrol lines, the jobcomp records). About 4-5 minutes
on 2 CPUs: ~10 Slurm jobs, each a Snakemake process of its own, plus the retried training job.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import TINY_SIZES

REPO = Path(__file__).resolve().parents[1]
SETUP, TEARDOWN = REPO / "tests" / "slurm" / "setup_slurm.sh", REPO / "tests" / "slurm" / "teardown_slurm.sh"
RUNDIR, JOBCOMP = Path("/run/slurm-ci"), Path("/var/log/slurm-ci/jobcomp.txt")
LOCK = Path("/tmp/internvl-slurm-tests.lock")
pytestmark = [pytest.mark.slurm, pytest.mark.e2e]

# long enough to be killed after its first checkpoint (2 ranks, ~0.4 s a step here), saved every 5 steps
MAX_STEPS, SAVE_STEPS = 20, 5
TARGETS = ["results/mmbench_dev.json", "work/demo/cluster/gpu_check.json"]


def _config(tmp: Path) -> Path:
    cfg = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    cfg["demo"]["sizes"] = TINY_SIZES
    cfg["models"]["demo_align"]["recipe"].update(num_train_epochs=1, max_steps=2, save_steps=1, logging_steps=1,
                                                 per_device_train_batch_size=4)
    cfg["models"]["demo_sft"]["recipe"].update(num_train_epochs=1, max_steps=MAX_STEPS, save_steps=SAVE_STEPS,
                                               logging_steps=1, per_device_train_batch_size=4)
    cfg["inference"]["shard_size"] = 8
    path = tmp / "slurm_test.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _snakemake_cmd(tmp: Path, cfg: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp),
            "--profile", str(REPO / "profiles" / "slurm"), "--workflow-profile", str(REPO / "profiles" / "slurm-test"),
            "--verbose", *extra, "--configfile", str(cfg), "--", *TARGETS]


def _alive(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text().strip()), 0)
        return True
    except (OSError, ValueError):
        return False


def _sh(*cmd: str, timeout: int = 30) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout


def _jobcomp() -> dict[str, dict[str, str]]:
    """jobcomp/filetxt records (every finished job): id -> {JobState, Name, StartTime, ...}."""
    records = {}
    if JOBCOMP.exists():
        for line in JOBCOMP.read_text().splitlines():
            rec = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            if "JobId" in rec:
                records[rec["JobId"]] = rec
    return records


@pytest.fixture(scope="module")
def slurm_cluster():
    if os.geteuid() != 0:
        pytest.skip("needs root: installs slurm-wlm/munge, writes /etc/slurm, starts slurmctld/slurmd")
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        pytest.skip("Slurm is not installed and apt-get is unavailable to install it")
    with open(LOCK, "w") as lock:  # one Slurm test at a time on this machine
        fcntl.flock(lock, fcntl.LOCK_EX)
        already_up = all(_alive(RUNDIR / f"{d}.pid") for d in ("slurmctld", "slurmd"))
        t0 = time.monotonic()
        proc = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            pytest.fail(f"setup_slurm.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        print(f"\n[slurm] setup {time.monotonic() - t0:.1f} s: {proc.stderr.strip().splitlines()[-1]}")
        try:
            yield
        finally:
            if not already_up and os.environ.get("INTERNVL_SLURM_KEEP") != "1":
                # --purge: also the config it wrote; a leftover slurm.conf without its daemons makes every later
                # Snakemake start wait 10 s (the Slurm executor plugin runs `scontrol show config` on import)
                subprocess.run(["bash", str(TEARDOWN), "--purge"], timeout=120)


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory):
    """The demo target through sbatch; the training job is scancel'ed after its first checkpoint."""
    tmp = tmp_path_factory.mktemp("slurm_dag")
    shutil.copytree(REPO / "config", tmp / "config")
    cfg = _config(tmp)
    evidence: list[str] = []
    first_ckpt = tmp / "work" / "demo" / "train_state" / "demo_sft" / f"checkpoint-{SAVE_STEPS}" / "trainer_state.json"
    log_path = tmp / "snakemake_run1.log"
    t0 = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(_snakemake_cmd(tmp, cfg), stdout=log, stderr=subprocess.STDOUT, text=True)
        killed = None
        try:
            deadline = time.monotonic() + 600
            while killed is None and proc.poll() is None and time.monotonic() < deadline:
                if first_ckpt.exists():
                    time.sleep(0.5)  # let the checkpoint's files settle; the next save is SAVE_STEPS steps away
                    # the comment the plugin gives each job names its rule and wildcards
                    queue = _sh("squeue", "-h", "-t", "RUNNING", "-o", "%i %T %k %j")
                    evidence.append(f"squeue before scancel: {queue.strip()}")
                    for line in queue.splitlines():
                        jobid, _state, comment = line.split()[:3]
                        if comment == "rule_train_model_wildcards_demo_sft":
                            killed = jobid
                    assert killed, f"training checkpoint written but no running train_model job:\n{queue}"
                    subprocess.run(["scancel", killed], check=True, timeout=30)
                    evidence.append(f"scancel {killed} at {time.monotonic() - t0:.0f} s "
                                    f"({first_ckpt.parent.name} saved)")
                    break
                time.sleep(0.2)
            rc = proc.wait(timeout=900)
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
    elapsed = time.monotonic() - t0
    out = log_path.read_text()
    if rc != 0:
        raise AssertionError(f"snakemake via Slurm failed (rc {rc}):\n{out[-8000:]}")
    assert killed, f"the training job was never seen with a checkpoint:\n{out[-4000:]}"
    evidence.append(f"first run: {elapsed:.0f} s")
    return {"tmp": tmp, "cfg": cfg, "out": out, "killed": killed, "evidence": evidence}


def _submissions(out: str) -> list[tuple[str, str, str]]:
    """(rule, slurm job id, slurm log) for every sbatch submission in a snakemake log."""
    subs = []
    for m in re.finditer(r"submitted with SLURM jobid (\d+) \(log: (\S+?)\)", out):
        rule = re.search(r"/slurm_logs/rule_([^/]+)/", m.group(2)).group(1)
        subs.append((rule, m.group(1), m.group(2)))
    return subs


def test_jobs_went_through_sbatch_with_slurm_logs(slurm_run):
    out, subs = slurm_run["out"], _submissions(slurm_run["out"])
    rules = [r for r, _, _ in subs]
    for rule in ("demo_data", "hash_local_model", "normalize_benchmark", "normalize_sft", "train_model",
                 "infer", "score", "result_for_configured_model", "gpu_check"):
        assert rule in rules, f"{rule} was not submitted to Slurm: {rules}"
    assert len({j for _, j, _ in subs}) == len(subs), "a Slurm job id was reported twice"
    comp = _jobcomp()
    for rule, jobid, log in subs:
        assert Path(log).is_file(), f"no Slurm log for job {jobid} ({rule})"
        assert jobid in comp, f"job {jobid} ({rule}) missing from the jobcomp records"
        if jobid != slurm_run["killed"]:
            assert comp[jobid]["JobState"] == "COMPLETED", comp[jobid]
    # the sbatch lines carry the test profile's resources (partition, CPU-only) and the multi-task launch
    sbatch_re = r"sbatch call: sbatch .*?--comment rule_(\w+?)(?:_wildcards_\S+)? .*"
    sbatch = {m.group(1): m.group(0) for m in re.finditer(sbatch_re, out)}
    assert "-p debug" in sbatch["normalize_sft"] and "--ntasks=1" in sbatch["normalize_sft"]
    assert "--gpus" not in sbatch["infer"] and "--gres" not in sbatch["infer"]
    assert "--nodes=1 " in sbatch["train_model"] and "--ntasks=2" in sbatch["train_model"]
    assert "--ntasks-per-gpu" not in sbatch["train_model"] and "--requeue" in sbatch["train_model"]
    assert "--gres=gpu:2" in sbatch["gpu_check"] and "--ntasks-per-gpu" not in sbatch["gpu_check"]
    result = json.loads((slurm_run["tmp"] / "results" / "mmbench_dev.json").read_text())
    assert result["benchmark"] == "mmbench-dev-en" and result["n"] > 0
    lines = [f"{rule:28s} slurm job {jobid:>4s}  {comp[jobid]['JobState']:10s} {Path(log).relative_to(slurm_run['tmp'])}"
             for rule, jobid, log in subs]
    print("\n[slurm] " + "\n[slurm] ".join(slurm_run["evidence"] + lines))


def test_cancelled_training_job_is_retried_and_resumes(slurm_run):
    out, killed, tmp = slurm_run["out"], slurm_run["killed"], slurm_run["tmp"]
    # the alignment stage runs once; the SFT is killed, then retried
    train_jobs = [j for r, j, log in _submissions(out) if r == "train_model" and "/demo_sft/" in log]
    assert len(train_jobs) == 2 and train_jobs[0] == killed, train_jobs
    assert f"SLURM-job '{killed}' failed, SLURM status is: 'CANCELLED'" in out
    assert "Trying to restart job" in out
    comp = _jobcomp()
    assert comp[killed]["JobState"] == "CANCELLED" and comp[train_jobs[1]]["JobState"] == "COMPLETED"
    summary = json.loads((tmp / "work" / "demo" / "models" / "demo_sft" / "train_summary.json").read_text())
    assert summary["resumed"] is True and summary["global_steps"] == MAX_STEPS
    ctl = _sh("scontrol", "show", "job", killed)
    print(f"\n[slurm] scontrol show job {killed}: "
          + " ".join(w for w in ctl.split() if w.split("=")[0] in ("JobId", "JobState", "Reason", "RunTime")))
    print(f"[slurm] retry: slurm job {train_jobs[1]} resumed from checkpoint-{SAVE_STEPS}.. -> "
          f"global_steps {summary['global_steps']}, resumed={summary['resumed']}")


def test_gpu_check_records_each_rank(slurm_run):
    check = json.loads((slurm_run["tmp"] / "work" / "demo" / "cluster" / "gpu_check.json").read_text())
    assert check["world_size"] == 2 and len(check["ranks"]) == 2
    assert {r["node_rank"] for r in check["ranks"]} == {0, 1}  # two Slurm tasks = two rendezvous nodes
    for r in check["ranks"]:
        assert r["all_reduce_sum"] == 2
        # the node's 2 fake GPUs, one to each of its 2 launcher tasks (internvl.train.launch, by SLURM_LOCALID)
        assert r["slurm"]["SLURM_GPUS_ON_NODE"] == "2" and r["cuda_visible_devices"] == str(r["slurm"]["SLURM_LOCALID"])
        assert r["device_count"] == 0  # CPU torch: the fake devices are /dev/null
    gpu_jobs = [j for rule, j, _ in _submissions(slurm_run["out"]) if rule == "gpu_check"]
    assert check["ranks"][0]["slurm"]["SLURM_JOB_ID"] == gpu_jobs[0]
    print("\n[slurm] gpu_check: " + "; ".join(
        f"rank {r['rank']} node_rank {r['node_rank']} CUDA_VISIBLE_DEVICES={r['cuda_visible_devices']} "
        f"device_count={r['device_count']} job {r['slurm']['SLURM_JOB_ID']}.{r['slurm']['SLURM_STEP_ID']}"
        for r in check["ranks"]))


def test_rerun_submits_nothing(slurm_run):
    tmp, cfg = slurm_run["tmp"], slurm_run["cfg"]
    before = set(_jobcomp())
    t0 = time.monotonic()
    proc = subprocess.run(_snakemake_cmd(tmp, cfg), capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Nothing to be done" in out
    assert "sbatch call" not in out and not _submissions(out)
    assert set(_jobcomp()) == before and not _sh("squeue", "-h").strip()
    print(f"\n[slurm] rerun: nothing to be done, no sbatch ({time.monotonic() - t0:.1f} s)")
