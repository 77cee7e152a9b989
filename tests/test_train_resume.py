"""Trainer state is resumed only by the run it belongs to (same settings, initial weights and data)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from internvl.demo.tokenizer import build_demo_tokenizer
from internvl.model.init import init_checkpoint
from internvl.train.recipe import SFTConfig, prepare_work_dir


@pytest.fixture()
def cfg(tmp_path):
    build_demo_tokenizer(["red circle", "blue square"], tmp_path / "tok")
    init_checkpoint("tiny", tmp_path / "tok", tmp_path / "init", seed=0)
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "manifest.json").write_text('{"total_samples": 1}')
    return SFTConfig(init=str(tmp_path / "init"), sft_dir=str(tmp_path / "sft"), base_dir=str(tmp_path),
                     output=str(tmp_path / "out"), work_dir=str(tmp_path / "state"))


def _fake_checkpoint(cfg, step: int, complete: bool = True):
    ckpt = Path(cfg.work_dir) / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    if complete:
        (ckpt / "trainer_state.json").write_text("{}")
    return ckpt


def test_same_run_resumes_and_changed_settings_discard(cfg):
    assert prepare_work_dir(cfg) is False  # nothing yet
    ckpt = _fake_checkpoint(cfg, 5)
    assert prepare_work_dir(cfg) is True and ckpt.exists()
    changed = dataclasses.replace(cfg, learning_rate=cfg.learning_rate * 2)
    assert prepare_work_dir(changed) is False and not ckpt.exists()


def test_changed_data_discards_and_half_written_checkpoint_is_not_resumed(cfg, tmp_path):
    prepare_work_dir(cfg)
    ckpt = _fake_checkpoint(cfg, 5)
    (tmp_path / "sft" / "manifest.json").write_text('{"total_samples": 2}')
    assert prepare_work_dir(cfg) is False and not ckpt.exists()
    _fake_checkpoint(cfg, 7, complete=False)
    assert prepare_work_dir(cfg) is False


def test_state_without_fingerprint_is_discarded(cfg):
    ckpt = _fake_checkpoint(cfg, 3)  # left by an older version or another run
    assert prepare_work_dir(cfg) is False and not ckpt.exists()
