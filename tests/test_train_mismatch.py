"""Tokenization mismatches (the original's consistency check zeroes a sample's loss) are counted per
source over every rank and dataloader worker, and past a threshold they stop the run.

A tokenizer that adds a BOS to every call breaks the check's arithmetic for every multi-turn sample (the
upstream failure of a tokenizer that does not fit the template). One epoch, each sample seen once over 2
ranks x 2 dataloader workers: the run's count per source must equal the check applied to every sample
of the set, computed here directly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from trainrun import build_tiny, run, settings

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tiny_bos(tmp_path_factory):
    tiny = build_tiny(tmp_path_factory.mktemp("tiny_sft"))
    bos_init = tmp_path_factory.mktemp("bos") / "init"
    shutil.copytree(tiny["init"], bos_init)
    tok_file = bos_init / "tokenizer.json"
    tok = json.loads(tok_file.read_text())
    bos = next(t for t in tok["added_tokens"] if t["content"] == "<|startoftext|>")
    tok["post_processor"] = {
        "type": "TemplateProcessing", "single": [{"SpecialToken": {"id": bos["content"], "type_id": 0}},
                                                 {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {bos["content"]: {"id": bos["content"], "ids": [bos["id"]], "tokens": [bos["content"]]}}}
    tok_file.write_text(json.dumps(tok))
    return {**tiny, "init": str(bos_init)}


def _expected(tiny: dict) -> dict[str, int]:
    from internvl.model.checkpoint import load_tokenizer
    from internvl.model.config import preset  # noqa: F401 - the init's own config gives the image tokens
    from internvl.model.conversation import get_template
    from internvl.train.dataset import SFTDataset

    cfg = json.loads((Path(tiny["init"]) / "config.json").read_text())
    tokens = int((cfg["force_image_size"] // cfg["vision_config"]["patch_size"]) ** 2 * cfg["downsample_ratio"] ** 2)
    ds = SFTDataset(tiny["sft_dir"], tiny["base_dir"], load_tokenizer(tiny["init"]), get_template("Hermes-2"), tokens,
                    image_size=cfg["force_image_size"], max_length=512)
    out: dict[str, int] = {}
    for i, row in enumerate(ds.rows):
        if ds[i]["mismatch"]:
            out[row["source"]] = out.get(row["source"], 0) + 1
    return out


def test_mismatches_are_counted_over_ranks_and_workers(tiny_bos, tmp_path):
    expected = _expected(tiny_bos)
    assert 0 < sum(expected.values()) < 46 and len(expected) > 1  # some samples, several sources
    cfg = settings(tiny_bos, tmp_path / "count", max_steps=-1, num_train_epochs=1, save_steps=100,
                   per_device_train_batch_size=1, dataloader_num_workers=2, mismatch_threshold=None)
    run(cfg, world=2)
    summary = json.loads((tmp_path / "count" / "model" / "train_summary.json").read_text())
    assert sum(summary["samples_seen_by_source"].values()) == summary["samples"] == 46  # each sample once
    assert summary["tokenization_mismatches_by_source"] == expected
    assert summary["tokenization_mismatches"] == sum(expected.values())
    logged = [h["tokenization_mismatches"] for h in json.loads((tmp_path / "count" / "model" /
                                                                "log_history.json").read_text()) if "loss" in h]
    assert logged == sorted(logged) and logged[-1] == sum(expected.values())  # running totals at each log


def test_too_many_mismatches_stop_the_run_saying_why(tiny_bos, tmp_path):
    cfg = settings(tiny_bos, tmp_path / "stop", max_steps=20, save_steps=50, per_device_train_batch_size=2,
                   mismatch_threshold=0.05, mismatch_min_samples=4)
    proc = run(cfg, world=1, check=False)
    assert proc.returncode == 2
    errors = [ln[ln.index("error: "):] for ln in proc.stderr.splitlines() if "error: " in ln]  # after a progress bar
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = errors[0]
    assert "failed the tokenization consistency check" in line
    assert "threshold 5.0%" in line and "tokenizer or template" in line
    assert not (tmp_path / "stop" / "model").exists()
