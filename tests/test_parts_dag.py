"""A model built from its parts, through the DAG, then trained with V1.2's knobs (drop path 0.4, LLM
checkpointing): the path of the real config's headline SFT (InternViT repo + Yi repo + projector .pth),
on the upstream-format parity fixture split into those three real layouts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TINY_SIZES

from internvl.model.parts import split_into_parts

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


def test_parts_model_builds_and_trains_through_the_dag(tmp_path, fixture_dir):
    parts = split_into_parts(fixture_dir / "checkpoint", tmp_path / "parts")
    shutil.copytree(REPO / "config", tmp_path / "config")
    cfg = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    cfg["demo"]["sizes"] = TINY_SIZES
    cfg["models"] = {
        "demo_init": cfg["models"]["demo_init"],
        "fixture_parts": {"kind": "parts", "vision": parts["vision_dir"], "llm": parts["llm_dir"],
                          "projector": str(Path(parts["mlp_path"]).relative_to(parts["vision_dir"])),
                          "template": "Hermes-2", "select_layer": -1, "downsample_ratio": 0.5, "seed": 0},
        "fixture_sft": {"kind": "train", "init": "fixture_parts",
                        "recipe": {"max_steps": 2, "per_device_train_batch_size": 2, "drop_path_rate": 0.4,
                                   "grad_checkpoint": True, "logging_steps": 1, "save_steps": 10,
                                   "max_seq_length": 256, "learning_rate": 1e-4}},
    }
    cfg["model"], cfg["table"]["models"] = "fixture_sft", ["fixture_sft"]
    config = tmp_path / "parts.yaml"
    config.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "2",
           "--configfile", str(config), "--", "work/demo/checkpoints/fixture_sft.sha256"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "rule build_parts_model" in proc.stdout + proc.stderr
    built = tmp_path / "work" / "demo" / "models"
    tok = json.loads((built / "fixture_parts" / "tokenizer.json").read_text())
    added = {t["content"]: t["id"] for t in tok["added_tokens"]}
    assert [added[t] for t in ("<img>", "</img>", "<IMG_CONTEXT>", "<box>", "</box>")] == [1200, 1201, 1202, 1207, 1208]
    trained = json.loads((built / "fixture_sft" / "config.json").read_text())
    assert trained["vision_config"]["drop_path_rate"] == 0.4  # recorded as upstream's saved config does
    summary = json.loads((built / "fixture_sft" / "train_summary.json").read_text())
    assert summary["global_steps"] == 2 and summary["config"]["drop_path_rate"] == 0.4
    again = subprocess.run([*cmd[:-2], "-n", "--", cmd[-1]], capture_output=True, text=True, timeout=300)
    assert "Nothing to be done" in again.stdout + again.stderr
