"""Running the SFT recipe the way a job does, for the training tests: a tiny normalized SFT set and
initial checkpoint (built once per session), and ``run()`` = ``internvl train RECIPE`` in one process
or under ``internvl.train.launch`` (torchrun, gloo) with several."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
# small and fast: 3 layers ViT/LLM (the tiny preset), 1e-3 keeps the steps far apart
BASE = {"max_steps": 4, "per_device_train_batch_size": 2, "logging_steps": 1, "save_steps": 2,
        "learning_rate": 1e-3, "max_seq_length": 512}


def build_tiny(root: Path) -> dict[str, str]:
    """Demo raw files, tokenizer, an untrained tiny checkpoint and the normalized SFT set under ``root``."""
    from internvl.data.sft import normalize_sft
    from internvl.demo.tokenizer import build_demo_tokenizer
    from internvl.demo.writers import DemoSizes, build_demo, write_corpus
    from internvl.model.init import init_checkpoint

    build_demo(root / "raw", seed=1, sizes=DemoSizes.tiny())
    build_demo_tokenizer(write_corpus(root / "raw"), root / "tok")
    init_checkpoint("tiny", root / "tok", root / "init", seed=0)
    normalize_sft(root / "raw" / "playground" / "meta" / "demo_finetune.json", root / "raw", root / "sft")
    return {"init": str(root / "init"), "sft_dir": str(root / "sft"), "base_dir": str(root / "raw")}


def settings(tiny: dict[str, str], out: Path, **over: Any) -> dict[str, Any]:
    return {**tiny, **BASE, "output": str(out / "model"), "work_dir": str(out / "state"), **over}


def run(cfg: dict[str, Any], world: int = 1, *, check: bool = True, timeout: int = 600,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``internvl train`` on ``cfg`` with ``world`` processes; the recipe YAML lands beside the output."""
    out = Path(cfg["output"]).parent
    out.mkdir(parents=True, exist_ok=True)
    recipe = out / f"recipe-{os.getpid()}-{len(list(out.glob('recipe-*.yaml')))}.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    target = ["-m", "internvl.cli", "train", str(recipe)]
    launcher = ["-m", "internvl.train.launch", f"--nproc-per-node={world}", "--"] if world > 1 else []
    cmd = [sys.executable, *launcher, *target]
    environ = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=environ, cwd=str(out))
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def history(run_dir: Path) -> list[dict[str, Any]]:
    """The per-step (loss, learning_rate, grad_norm) log of a finished run."""
    rows = json.loads((run_dir / "model" / "log_history.json").read_text())
    return [{k: r[k] for k in ("step", "loss", "learning_rate", "grad_norm")} for r in rows if "loss" in r]


def weights(ckpt: Path) -> dict[str, Any]:
    from internvl.model.checkpoint import _read_safetensors

    return _read_safetensors(ckpt)


def max_diff(a: dict[str, Any], b: dict[str, Any]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
