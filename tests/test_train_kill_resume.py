"""Killed, preempted and resumed training gives the uninterrupted run's steps exactly.

Through the real Snakemake rule (train_model, in-process as a one-GPU job runs): SIGKILL between two
saves, and SIGKILL while a checkpoint is being written (the case where transformers would pick the half
written folder as the latest and fail on every retry); the rerun's per-step loss, learning rate and
grad norm equal an uninterrupted run's. The same for ZeRO-3 on 2 processes; SIGUSR1 to a running
2-process job makes both ranks save and stop, and the rerun resumes from that step. The kills are
injected with INTERNVL_FAULT (internvl.train.trainer)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import TINY_SIZES
from trainrun import build_tiny, history, run, settings

from internvl.train.checkpoints import ASIDE_DIR, COMPLETE_NAME

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e
TARGET = "work/demo/checkpoints/demo_sft.sha256"


def _config(path: Path, **recipe) -> Path:
    cfg = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    cfg["demo"]["sizes"] = TINY_SIZES
    sft = cfg["models"]["demo_sft"]
    sft["init"] = "demo_init"
    sft["recipe"].update({"num_train_epochs": 1, "max_steps": 8, "save_steps": 3, "logging_steps": 1,
                          "per_device_train_batch_size": 4, **recipe})
    del cfg["models"]["demo_align"]
    cfg["table"]["models"] = ["demo_init"]
    path.write_text(yaml.safe_dump(cfg))
    return path


def _snakemake(d: Path, cfg: Path, env: dict[str, str] | None = None, check: bool = True):
    import os

    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(d), "--cores", "2",
           "--configfile", str(cfg), "--", TARGET]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A work dir where everything before training is done (demo data, normalization, the init hash)."""
    base = tmp_path_factory.mktemp("prepared")
    shutil.copytree(REPO / "config", base / "config")
    cfg = _config(base / "test.yaml")
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(base), "--cores",
                          "2", "--configfile", str(cfg), "--", "work/demo/parquet/sft/manifest.json",
                          "work/demo/checkpoints/demo_init.sha256"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    return base


def _copy(prepared: Path, dest: Path) -> Path:
    shutil.copytree(prepared, dest, symlinks=True)
    return dest


def _history(d: Path) -> list[dict]:
    rows = json.loads((d / "work" / "demo" / "models" / "demo_sft" / "log_history.json").read_text())
    return [{k: r[k] for k in ("step", "loss", "learning_rate", "grad_norm")} for r in rows if "loss" in r]


def _summary(d: Path) -> dict:
    return json.loads((d / "work" / "demo" / "models" / "demo_sft" / "train_summary.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(prepared, tmp_path_factory):
    d = _copy(prepared, tmp_path_factory.mktemp("u") / "run")
    _snakemake(d, d / "test.yaml")
    return _history(d)


def test_sigkill_between_saves_resumes_the_same_steps(prepared, uninterrupted, tmp_path):
    """Killed after step 4 (checkpoints every 3), rerun with another logging interval: it resumes from
    checkpoint-3 (the interval is bookkeeping, not part of the run), and every logged value is what the
    uninterrupted run's steps give: steps 1-3 as before the kill, then each log the mean loss of the steps
    since the previous one, with the last step's learning rate and grad norm."""
    d = _copy(prepared, tmp_path / "run")
    killed = _snakemake(d, d / "test.yaml", env={"INTERNVL_FAULT": "step:4"}, check=False)
    assert killed.returncode != 0
    state = d / "work" / "demo" / "train_state" / "demo_sft"
    assert (state / "checkpoint-3" / COMPLETE_NAME).exists() and not (state / "checkpoint-6").exists()
    _snakemake(d, _config(d / "relogged.yaml", logging_steps=2))
    assert _summary(d)["resumed_from"].endswith("checkpoint-3")
    u = {r["step"]: r for r in uninterrupted}
    assert len(u) == 8
    expected = [u[1], u[2], u[3]]
    for first, last in ((4, 4), (5, 6), (7, 8)):  # logs at steps divisible by 2, from the resumed step 3 on
        loss = sum(u[k]["loss"] for k in range(first, last + 1)) / (last - first + 1)
        expected.append({**u[last], "loss": loss})
    got = _history(d)
    assert [r["step"] for r in got] == [r["step"] for r in expected] == [1, 2, 3, 4, 6, 8]
    for g, e in zip(got, expected, strict=True):
        assert (g["learning_rate"], g["grad_norm"]) == (e["learning_rate"], e["grad_norm"])
        assert g["loss"] == pytest.approx(e["loss"], rel=1e-6)  # the mean is summed in float32 there


def test_sigkill_during_a_save_resumes_from_the_last_complete_checkpoint(prepared, uninterrupted, tmp_path):
    d = _copy(prepared, tmp_path / "run")
    killed = _snakemake(d, d / "test.yaml", env={"INTERNVL_FAULT": "save:6"}, check=False)
    assert killed.returncode != 0
    state = d / "work" / "demo" / "train_state" / "demo_sft"
    half = state / "checkpoint-6"
    assert half.is_dir() and not (half / COMPLETE_NAME).exists() and not (half / "trainer_state.json").exists()
    _snakemake(d, d / "test.yaml")
    assert _summary(d)["resumed_from"].endswith("checkpoint-3")
    assert _history(d) == uninterrupted
    assert [p.name for p in (state / ASIDE_DIR).glob("*/checkpoint-*")] == ["checkpoint-6"]  # kept, not deleted


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny(tmp_path_factory.mktemp("tiny_sft"))


ZERO3 = {"deepspeed": "zero3", "max_steps": 7, "save_steps": 3}


def test_zero3_sigkill_during_a_save_resumes_exactly(tiny, tmp_path):
    run(settings(tiny, tmp_path / "u", **ZERO3), world=2)
    cfg = settings(tiny, tmp_path / "k", **ZERO3)
    killed = run(cfg, world=2, check=False, env={"INTERNVL_FAULT": "save:6"})
    assert killed.returncode != 0
    run(cfg, world=2)
    summary = json.loads((tmp_path / "k" / "model" / "train_summary.json").read_text())
    assert summary["resumed_from"].endswith("checkpoint-3")
    assert history(tmp_path / "k") == history(tmp_path / "u")


def test_sigusr1_to_one_rank_saves_on_every_rank_and_the_rerun_resumes_there(tiny, tmp_path):
    """SIGUSR1 reaches only rank 1 (signals arrive at different times on different nodes): the ranks agree on
    the step, all save it (a ZeRO-3 save is collective), and the job exits 75 for a retry, which resumes from
    that step."""
    import os
    import signal

    import psutil

    # one epoch of the tiny set, a sample per rank and step: ~23 steps, long enough to be signalled under way
    cfg = settings(tiny, tmp_path / "p", max_steps=-1, num_train_epochs=1, save_steps=2, logging_steps=1,
                   per_device_train_batch_size=1, deepspeed="zero3")
    out = tmp_path / "p"
    out.mkdir()
    recipe = out / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen([sys.executable, "-m", "internvl.train.launch", "--nproc-per-node=2", "--", "-m",
                             "internvl.cli", "train", str(recipe)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    state = out / "state"
    deadline = time.monotonic() + 300
    try:
        while not (state / "checkpoint-2" / COMPLETE_NAME).exists():  # training is under way
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-4000:]
            time.sleep(0.2)
        workers = [c for c in psutil.Process(proc.pid).children(recursive=True)
                   if "internvl.cli" in " ".join(c.cmdline()) and "torch.distributed.run" not in " ".join(c.cmdline())]
        rank1 = next(w for w in workers if w.environ().get("RANK") == "1")
        os.kill(rank1.pid, signal.SIGUSR1)
        logs, _ = proc.communicate(timeout=300)
    finally:  # a rank left alone in a collective would hang: never leave it behind
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 75, logs[-4000:]
    saved = sorted(int(p.name.split("-")[1]) for p in state.glob("checkpoint-*") if (p / COMPLETE_NAME).exists())
    step = saved[-1]
    assert step > 2, (saved, logs[-2000:])
    for rank in (0, 1):
        assert (state / f"checkpoint-{step}" / f"rng_state_{rank}.pth").exists()
    assert logs.count("SIGUSR1 received") == 1  # one rank was told; both saved
    assert not (out / "model").exists()  # stopped, not finished
    run(cfg, world=2)
    summary = json.loads((out / "model" / "train_summary.json").read_text())
    assert summary["resumed_from"].endswith(f"checkpoint-{step}") and summary["global_steps"] > step


def test_the_launcher_forwards_preemption_signals_to_every_rank(tmp_path):
    """SIGUSR1 to the launcher (what a Slurm step signal or a kill of the task reaches) arrives at both ranks;
    torchrun itself ignores it; the launcher exits 75 when the ranks stop on it."""
    import os
    import signal

    script = tmp_path / "rank.py"
    script.write_text(
        "import os, signal, sys, time\n"
        "from pathlib import Path\n"
        "def stop(signum, frame):\n"
        "    Path(sys.argv[1], os.environ['RANK']).write_text(signal.Signals(signum).name)\n"
        "    sys.exit(75)\n"
        "signal.signal(signal.SIGUSR1, stop)\n"
        "Path(sys.argv[1], 'ready-' + os.environ['RANK']).touch()\n"
        "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-m", "internvl.train.launch", "--nproc-per-node=2", "--", str(script),
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{r}").exists() for r in (0, 1)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGUSR1)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 75, out[-3000:]
    assert [(tmp_path / str(r)).read_text() for r in (0, 1)] == ["SIGUSR1", "SIGUSR1"]
    assert "forwarded to the training ranks" in out
