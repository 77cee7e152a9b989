"""Trainer state is resumed only by the run it belongs to, and only from a complete checkpoint.

What belongs to a run: the optimisation settings, the initial weights' and the data's content, the
world size and the DeepSpeed config (internvl.train.recipe.run_record). Bookkeeping (logging, save
interval, workers) does not. Checkpoints of another run and incomplete ones are moved aside, never
deleted."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from internvl.demo.tokenizer import build_demo_tokenizer
from internvl.model.init import init_checkpoint
from internvl.train.checkpoints import ASIDE_DIR, COMPLETE_NAME, mark_complete, rotate
from internvl.train.recipe import SFTConfig, prepare_work_dir, run_fingerprint


@pytest.fixture()
def cfg(tmp_path):
    build_demo_tokenizer(["red circle", "blue square"], tmp_path / "tok")
    init_checkpoint("tiny", tmp_path / "tok", tmp_path / "init", seed=0)
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "manifest.json").write_text('{"total_samples": 1}')
    return SFTConfig(init=str(tmp_path / "init"), sft_dir=str(tmp_path / "sft"), base_dir=str(tmp_path),
                     output=str(tmp_path / "out"), work_dir=str(tmp_path / "state"))


def _checkpoint(cfg, step: int, complete: bool = True, world: int = 1):
    ckpt = Path(cfg.work_dir) / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(b"weights")
    if complete:
        mark_complete(ckpt, run_fingerprint(cfg, world), step, world)
    return ckpt


def _aside(cfg) -> list[str]:
    return sorted(p.name for p in (Path(cfg.work_dir) / ASIDE_DIR).glob("*/checkpoint-*"))


def test_the_newest_complete_checkpoint_of_the_same_run_is_resumed(cfg):
    assert prepare_work_dir(cfg) is None  # nothing yet
    _checkpoint(cfg, 3)
    ckpt = _checkpoint(cfg, 6)
    assert prepare_work_dir(cfg) == ckpt


def test_a_checkpoint_cut_off_while_being_written_is_moved_aside_not_picked(cfg):
    """A kill during the save of checkpoint-9 leaves a folder without the marker: the run resumes from
    checkpoint-6, and checkpoint-9 is kept under superseded/ for inspection."""
    six = _checkpoint(cfg, 6)
    _checkpoint(cfg, 9, complete=False)
    assert prepare_work_dir(cfg) == six
    assert _aside(cfg) == ["checkpoint-9"] and not (Path(cfg.work_dir) / "checkpoint-9").exists()


def test_bookkeeping_settings_keep_the_checkpoints(cfg):
    ckpt = _checkpoint(cfg, 4)
    for change in ({"logging_steps": 1}, {"save_steps": 7}, {"dataloader_num_workers": 4},
                   {"save_total_limit": 3}, {"mismatch_threshold": None}, {"on_error": "skip"}):
        assert prepare_work_dir(dataclasses.replace(cfg, **change)) == ckpt, change


@pytest.mark.parametrize("change", [{"learning_rate": 2e-5}, {"global_batch_size": 16}, {"drop_path_rate": 0.4},
                                    {"loss_reduction": "global_token_mean"}, {"deepspeed": "zero3"}])
def test_optimisation_settings_move_the_checkpoints_aside(cfg, change):
    prepare_work_dir(cfg)  # the run that wrote checkpoint-4
    _checkpoint(cfg, 4)
    changed = dataclasses.replace(cfg, **change)
    ds = {"zero_optimization": {"stage": 3}} if "deepspeed" in change else None
    assert prepare_work_dir(changed, ds=ds) is None
    assert _aside(cfg) == ["checkpoint-4"]
    record = json.loads(next((Path(cfg.work_dir) / ASIDE_DIR).glob("*/run_fingerprint.json")).read_text())
    assert record["fingerprint"] == run_fingerprint(cfg)  # the moved run says what it was


def test_world_size_data_and_weights_belong_to_the_run(cfg, tmp_path):
    _checkpoint(cfg, 4)
    assert prepare_work_dir(cfg, world_size=2) is None  # ZeRO partitions the optimizer state by rank
    _checkpoint(cfg, 5, world=2)
    (tmp_path / "sft" / "manifest.json").write_text('{"total_samples": 2}')
    assert prepare_work_dir(cfg, world_size=2) is None
    assert _aside(cfg) == ["checkpoint-4", "checkpoint-5"]


def test_rotation_never_removes_the_last_complete_checkpoint(cfg):
    work = Path(cfg.work_dir)
    _checkpoint(cfg, 2)
    _checkpoint(cfg, 4)
    _checkpoint(cfg, 6, complete=False)  # being written
    assert [p.name for p in rotate(work, keep=1)] == ["checkpoint-2"]
    assert sorted(p.name for p in work.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]
    assert (work / "checkpoint-4" / COMPLETE_NAME).exists()
