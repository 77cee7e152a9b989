"""A sample that cannot be built stops the run naming its annotation file and line, or with
``on_error: skip`` is left out and counted; normalization catches what it can before (two ``<image>``
tags for one image). Upstream replaced such samples with random others, or mis-spliced image features."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from internvl.data.sft import normalize_sft, read_sft
from internvl.errors import DataError
from internvl.model.checkpoint import load_tokenizer
from internvl.model.conversation import get_template
from internvl.train.dataset import SFTDataset
from internvl.train.recipe import SFTConfig, train


def _rec(i: int, q: str, image: str | None = "imgs/good.png") -> dict:
    rec = {"id": f"r{i}", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": "red"}]}
    if image:
        rec["image"] = image
    return rec


def _write(root: Path, records: list) -> Path:
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 20), (200, 10, 10)).save(root / "imgs" / "good.png")
    (root / "imgs" / "broken.jpg").write_bytes(b"\xff\xd8 these bytes are not a JPEG")
    ann = root / "ann.jsonl"
    ann.write_text("".join(json.dumps(r) + "\n" for r in records))
    meta = root / "meta.json"
    meta.write_text(json.dumps({"mix": {"root": ".", "annotation": "ann.jsonl", "repeat_time": 1}}))
    return meta


RECORDS = [
    _rec(0, "<image>\nWhat colour is the square?"),
    _rec(1, "<image>\nWhat colour is it?", image="imgs/broken.jpg"),  # exists; undecodable at run time
    _rec(2, "describe " * 120 + "<image>"),  # the image span lands past max_seq_length
    _rec(3, "What colour is red?", image=None),
]


@pytest.fixture()
def data(tmp_path, fixture_dir):
    meta = _write(tmp_path, RECORDS)
    normalize_sft(meta, tmp_path, tmp_path / "sft")
    tok = load_tokenizer(fixture_dir / "checkpoint")
    return tmp_path, tok


def _dataset(root: Path, tok, **kw) -> SFTDataset:
    return SFTDataset(root / "sft", root, tok, get_template("Hermes-2"), num_image_token=4, image_size=56,
                      max_length=kw.pop("max_length", 96), **kw)


def test_two_image_tags_for_one_image_stop_normalization(tmp_path):
    meta = _write(tmp_path, [_rec(0, "<image>\nQ"), _rec(1, "<image>\nQ <image>")])
    with pytest.raises(DataError) as err:
        normalize_sft(meta, tmp_path, tmp_path / "sft")
    assert f"{tmp_path / 'ann.jsonl'}:2: field 'conversations'" in str(err.value)
    assert "2 <image> tags for one image" in str(err.value)
    manifest = normalize_sft(meta, tmp_path, tmp_path / "sft", on_error="skip")
    assert manifest["total_samples"] == 1 and manifest["skipped_by_kind"] == {"image_tag": 1}


def test_each_bad_sample_names_its_file_and_line(data):
    root, tok = data
    ds = _dataset(root, tok)
    ann = root / "ann.jsonl"
    assert ds.build(0)["image_flags"].item() == 1 and ds.build(3)["image_flags"].item() == 0
    with pytest.raises(DataError, match="unreadable image") as err:
        ds[1]
    assert str(err.value).startswith(f"{ann}:2: field 'image': sample mix/r1:")
    with pytest.raises(DataError, match=r"image tokens cut by max_seq_length 96: 0 of 4") as err:
        ds[2]
    assert str(err.value).startswith(f"{ann}:3:")


def test_more_image_tags_than_images_is_caught_at_run_time(data):
    """Normalization refuses it; data normalized elsewhere (or before that check) still cannot mis-splice."""
    root, tok = data
    shard = root / "sft" / "part-00000.parquet"
    rows = read_sft(root / "sft").to_pylist()
    rows[0]["conversations"][0]["value"] = "<image>\nQ <image>"
    pq.write_table(read_sft(root / "sft").from_pylist(rows, schema=pq.read_schema(shard)), shard)
    with pytest.raises(DataError, match=r"8 <IMG_CONTEXT> tokens for 1 image\(s\) \(2 <image> tags") as err:
        _dataset(root, tok)[0]
    assert str(err.value).startswith(f"{root / 'ann.jsonl'}:1:")


def test_skip_leaves_them_out_and_counts_them(data, fixture_dir):
    root, tok = data
    ds = _dataset(root, tok, on_error="skip")
    assert [("skipped" in ds[i]) for i in range(4)] == [False, True, True, False]
    cfg = SFTConfig(init=str(fixture_dir / "checkpoint"), sft_dir=str(root / "sft"), base_dir=str(root),
                    output=str(root / "out"), work_dir=str(root / "state"), max_steps=2, per_device_train_batch_size=2,
                    max_seq_length=96, on_error="skip", logging_steps=1, save_steps=10, learning_rate=1e-4)
    summary = train(cfg)
    assert summary["skipped_samples"] == 2 and summary["skipped_by_source"] == {"mix": 2}
    skipped = json.loads((root / "out" / "skipped_samples.json").read_text())
    assert sorted((s["line"], s["file"]) for s in skipped) == [(2, str(root / "ann.jsonl")), (3, str(root / "ann.jsonl"))]
    assert summary["samples_seen_by_source"] == {"mix": 2}  # 4 drawn, 2 trained on


def test_raise_stops_the_run_naming_the_sample(data, fixture_dir):
    root, _ = data
    cfg = SFTConfig(init=str(fixture_dir / "checkpoint"), sft_dir=str(root / "sft"), base_dir=str(root),
                    output=str(root / "out"), work_dir=str(root / "state"), max_steps=2, per_device_train_batch_size=4,
                    max_seq_length=96, logging_steps=1, save_steps=10)
    with pytest.raises(DataError, match=rf"{root / 'ann.jsonl'}:[23]:"):
        train(cfg)
    assert not (root / "out").exists()
