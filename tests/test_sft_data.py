"""SFT normalization: meta file semantics, repeat_time, and bad input that stops with file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from internvl.data.sft import normalize_sft, read_sft
from internvl.errors import DataError


def _write_source(base: Path, name: str, records: list, repeat_time=1) -> dict:
    (base / "playground" / "data" / "imgs").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (255, 0, 0)).save(base / "playground" / "data" / "imgs" / "a.jpg")
    ann = base / "playground" / f"{name}.jsonl"
    ann.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return {name: {"root": "playground/data/", "annotation": f"playground/{name}.jsonl", "data_augment": False,
                   "repeat_time": repeat_time, "length": len(records)}}


def _rec(i, image="imgs/a.jpg", q="<image>\nWhat?", a="red"):
    rec = {"id": f"r{i}", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}
    if image is not None:
        rec["image"] = image
    return rec


def _meta(base: Path, *sources: dict) -> Path:
    meta = {}
    for s in sources:
        meta.update(s)
    path = base / "meta.json"
    path.write_text(json.dumps(meta))
    return path


def test_counts_repeat_and_text_only(tmp_path):
    a = _write_source(tmp_path, "a", [_rec(i) for i in range(10)], repeat_time=2)
    b = _write_source(tmp_path, "b", [_rec(i, image=None, q="hello") for i in range(10)], repeat_time=0.5)
    m = normalize_sft(_meta(tmp_path, a, b), tmp_path, tmp_path / "out", seed=3)
    assert m["sources"]["a"]["samples"] == 20 and m["sources"]["b"]["samples"] == 5 and m["total_samples"] == 25
    table = read_sft(tmp_path / "out").to_pylist()
    assert table[0]["image_path"] == "playground/data/imgs/a.jpg"
    assert all(r["image_path"] is None for r in table if r["source"] == "b")
    # the fractional subsample is deterministic for a seed
    m2 = normalize_sft(_meta(tmp_path, a, b), tmp_path, tmp_path / "out2", seed=3)
    assert [s["sha256"] for s in m["shards"]] == [s["sha256"] for s in m2["shards"]]


@pytest.mark.parametrize("bad, field", [
    ('{"id": 1, "image": "imgs/a.jpg", "conversations": [', None),
    (_rec(1, image="imgs/missing.jpg"), "image"),
    (_rec(1, image="../../../etc/passwd"), "image"),
    (_rec(1, q="no tag"), "conversations"),
    (_rec(1, image=None), "image"),
    (_rec(1, a="  "), "conversations[1].value"),
])
def test_bad_record_names_file_line_and_field(tmp_path, bad, field):
    src = _write_source(tmp_path, "s", [_rec(0), bad, _rec(2)])
    with pytest.raises(DataError) as err:
        normalize_sft(_meta(tmp_path, src), tmp_path, tmp_path / "out")
    assert err.value.line == 2 and err.value.path.endswith("s.jsonl")
    assert err.value.field == field
    assert "s.jsonl:2" in str(err.value)


def test_skip_mode_reports_every_skipped_record(tmp_path):
    src = _write_source(tmp_path, "s", [_rec(0), "{broken", _rec(2, image="imgs/nope.jpg"), _rec(3)])
    m = normalize_sft(_meta(tmp_path, src), tmp_path, tmp_path / "out", on_error="skip")
    report = json.loads((tmp_path / "out" / "skipped.json").read_text())
    assert [r["line"] for r in report] == [2, 3] and m["skipped"] == 2 and m["total_samples"] == 2
    assert "malformed JSON" in report[0]["reason"] and "image not found" in report[1]["reason"]
