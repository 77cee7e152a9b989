"""SFT normalization: meta file semantics, repeat_time, streaming determinism, and every kind of bad
input stopping with file:line and field (or, with on_error="skip", listed in skipped.json).

Most checks run through both routes of the validator -- the fast one (pyarrow.json + vectorized
checks) and the exact line-by-line one -- which must agree to the byte.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from internvl.data.sft import normalize_sft, read_sft, validate_record
from internvl.data.sft_records import PY_WHITESPACE
from internvl.errors import DataError

ROUTES = [pytest.param(True, id="fast"), pytest.param(False, id="exact")]


def _write_source(base: Path, name: str, records: list, repeat_time=1) -> dict:
    imgs = base / "playground" / "data" / "imgs"
    imgs.mkdir(parents=True, exist_ok=True)
    if not (imgs / "a.jpg").exists():
        Image.new("RGB", (8, 8), (255, 0, 0)).save(imgs / "a.jpg")
    ann = base / "playground" / f"{name}.jsonl"
    ann.write_bytes(b"".join((r if isinstance(r, bytes) else (r if isinstance(r, str) else json.dumps(r)).encode())
                             + b"\n" for r in records))
    return {name: {"root": "playground/data/", "annotation": f"playground/{name}.jsonl", "data_augment": False,
                   "repeat_time": repeat_time, "length": len(records)}}


def _rec(i, image="imgs/a.jpg", q="<image>\nWhat?", a="red"):
    rec = {"id": f"r{i}", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}
    if image is not None:
        rec["image"] = image
    return rec


def _turns(i, *turns, image="imgs/a.jpg"):
    rec = {"id": f"r{i}", "conversations": [{"from": f, "value": v} for f, v in turns]}
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


def _hashes(manifest: dict) -> list[str]:
    return [s["sha256"] for s in manifest["shards"]]


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
    assert _hashes(m) == _hashes(m2)


def test_repeat_time_integer_passes_and_seeded_fraction(tmp_path):
    a = _write_source(tmp_path, "a", [_rec(i) for i in range(7)], repeat_time=3)
    b = _write_source(tmp_path, "b", [_rec(i) for i in range(40)], repeat_time=0.25)
    c = _write_source(tmp_path, "c", [_rec(i) for i in range(10)], repeat_time=1.5)
    m = normalize_sft(_meta(tmp_path, a, b, c), tmp_path, tmp_path / "out", seed=1)
    rows = read_sft(tmp_path / "out").to_pylist()
    ra = [(r["id"], r["repeat_index"]) for r in rows if r["source"] == "a"]
    # the original concatenates the dataset repeat_time times: full passes, in file order
    assert ra == [(f"r{i}", p) for p in range(3) for i in range(7)]
    rb = [r for r in rows if r["source"] == "b"]
    assert len(rb) == 10 == m["sources"]["b"]["samples"] and {r["repeat_index"] for r in rb} == {0}
    lines = [r["line"] for r in rb]
    assert lines == sorted(lines) and len(set(lines)) == 10  # a subset, in file order
    rc = [r for r in rows if r["source"] == "c"]
    assert len(rc) == 15 and [r["repeat_index"] for r in rc].count(1) == 5
    again = normalize_sft(_meta(tmp_path, a, b, c), tmp_path, tmp_path / "again", seed=1)
    other = normalize_sft(_meta(tmp_path, a, b, c), tmp_path, tmp_path / "other", seed=2)
    assert _hashes(again) == _hashes(m) and _hashes(other) != _hashes(m)
    other_b = [r["line"] for r in read_sft(tmp_path / "other").to_pylist() if r["source"] == "b"]
    assert other_b != lines


@pytest.mark.parametrize("fast", ROUTES)
def test_streaming_output_does_not_depend_on_blocks_or_route(tmp_path, fast):
    rng = random.Random(0)
    recs = [_rec(i, q="<image>\n" + "x" * rng.randint(1, 300), a="y" * rng.randint(1, 900)) if i % 3
            else _rec(i, image=None, q="hi " * rng.randint(1, 50)) for i in range(500)]
    src = _write_source(tmp_path, "s", recs)
    meta = _meta(tmp_path, src)
    ref = normalize_sft(meta, tmp_path, tmp_path / "ref", shard_rows=128)
    small = normalize_sft(meta, tmp_path, tmp_path / "small", shard_rows=128, block_bytes=997, fast=fast)
    assert len(ref["shards"]) == 4 and [s["rows"] for s in ref["shards"]] == [128, 128, 128, 116]
    assert _hashes(small) == _hashes(ref)
    assert [r["id"] for r in read_sft(tmp_path / "small").to_pylist()] == [f"r{i}" for i in range(500)]
    assert ref["sources"]["s"]["annotation_sha256"] == small["sources"]["s"]["annotation_sha256"]


# (record, field, message) -- one per kind of bad input; the bad record is always on line 2
BAD = {
    "malformed_json": ('{"id": 1, "image": "imgs/a.jpg", "conversations": [', None, "malformed JSON"),
    "not_an_object": ("[1, 2]", None, "expected a JSON object, got list"),
    "invalid_utf8": (b'{"id": "\xff", "conversations": []}', None, "invalid UTF-8"),
    "lone_surrogate": ('{"id": "x", "image": "imgs/a.jpg", "conversations": [{"from": "human", "value": '
                       '"<image>\\ud800"}, {"from": "gpt", "value": "a"}]}', "conversations", "not valid Unicode"),
    "missing_image": (_rec(1, image="imgs/missing.jpg"), "image", "image not found: "),
    "image_is_a_directory": (_rec(1, image="imgs"), "image", "image is not a regular file"),
    "dotdot_path": (_rec(1, image="../../../etc/passwd"), "image", "escapes the source root"),
    "dotdot_inside": (_rec(1, image="imgs/../imgs/a.jpg"), "image", "('..')"),
    "absolute_path": (_rec(1, image="/etc/passwd"), "image", "absolute image path"),
    "image_list": ({**_rec(1), "image": ["imgs/a.jpg"]}, "image", "expected a single image path, got list"),
    "tag_without_image": (_rec(1, image=None), "image", "<image> in a conversation without an image"),
    "image_without_tag": (_rec(1, q="no tag"), "conversations", "first human turn has no <image>"),
    "empty_answer": (_rec(1, a="  "), "conversations[1].value", "empty answer"),
    "unicode_blank_answer": (_rec(1, a="\u3000\x1c\n"), "conversations[1].value", "empty answer"),
    "unanswered_question": (_turns(1, ("human", "<image>\nQ"), ("gpt", "A"), ("human", "and?")),
                            "conversations[2]", "the last human turn has no answer"),
    "roles_not_alternating": (_turns(1, ("human", "<image>\nQ"), ("gpt", "A"), ("gpt", "B")),
                              "conversations[2].from", "roles must alternate"),
    "unknown_role": (_turns(1, ("system", "be nice"), ("human", "<image>\nQ"), ("gpt", "A")),
                     "conversations[0]", "turn 0 must be"),
    "value_not_a_string": (_turns(1, ("human", "<image>\nQ"), ("gpt", 3)), "conversations[1]", "turn 1 must be"),
    "no_conversation": ({"id": "x", "image": "imgs/a.jpg"}, "conversations", "missing or empty conversation list"),
    "only_a_gpt_turn": (_turns(1, ("gpt", "A"), image=None), "conversations", "no human turn"),
}


@pytest.mark.parametrize("fast", ROUTES)
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_record_names_file_line_and_field(tmp_path, case, fast):
    bad, field, message = BAD[case]
    src = _write_source(tmp_path, "s", [_rec(0), bad, _rec(2)])
    with pytest.raises(DataError) as err:
        normalize_sft(_meta(tmp_path, src), tmp_path, tmp_path / "out", fast=fast)
    assert err.value.line == 2 and err.value.path.endswith("s.jsonl")
    assert err.value.field == field
    assert "s.jsonl:2" in str(err.value) and message in str(err.value)
    assert not (tmp_path / "out" / "manifest.json").exists()


def _corrupt_images(data: Path) -> None:
    Image.new("RGB", (64, 48), (0, 90, 200)).save(data / "good.jpg", quality=90)
    whole = (data / "good.jpg").read_bytes()
    (data / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (data / "garbage.jpg").write_bytes(b"this is not an image")
    (data / "empty.jpg").write_bytes(b"")


@pytest.mark.parametrize("fast", ROUTES)
@pytest.mark.parametrize("name, message", [
    ("truncated.jpg", "corrupt or truncated image (OSError: "),  # "image file is truncated", "Truncated File Read"
    ("garbage.jpg", "corrupt or truncated image (UnidentifiedImageError: cannot identify image file"),
    ("empty.jpg", "image file is empty (0 bytes)"),
])
def test_corrupt_image_bytes_with_verify_images(tmp_path, name, message, fast):
    src = _write_source(tmp_path, "s", [_rec(0), _rec(1, image=f"imgs/{name}"), _rec(2, image="imgs/good.jpg")])
    _corrupt_images(tmp_path / "playground" / "data" / "imgs")
    meta = _meta(tmp_path, src)
    # the default check is existence only: decoding every image is opt-in
    assert normalize_sft(meta, tmp_path, tmp_path / "plain", fast=fast)["total_samples"] == 3
    with pytest.raises(DataError) as err:
        normalize_sft(meta, tmp_path, tmp_path / "out", verify_images=True, fast=fast)
    assert "s.jsonl:2" in str(err.value) and err.value.field == "image" and message in str(err.value)
    assert name in str(err.value)


@pytest.mark.parametrize("fast", ROUTES)
def test_symlinks_out_of_the_root_are_rejected(tmp_path, fast):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    Image.new("RGB", (8, 8)).save(outside / "secret.jpg")
    src = _write_source(tmp_path, "s", [_rec(0), _rec(1, image="imgs/link.jpg"), _rec(2, image="out/secret.jpg"),
                                        _rec(3, image="imgs/inside.jpg")])
    imgs = tmp_path / "playground" / "data" / "imgs"
    (imgs / "link.jpg").symlink_to(outside / "secret.jpg")
    (imgs.parent / "out").symlink_to(outside, target_is_directory=True)
    (imgs / "inside.jpg").symlink_to(imgs / "a.jpg")  # a symlink that stays inside is fine
    meta = _meta(tmp_path, src)
    with pytest.raises(DataError) as err:
        normalize_sft(meta, tmp_path, tmp_path / "out", fast=fast)
    assert "s.jsonl:2" in str(err.value) and "symlink out of the source root" in str(err.value)
    m = normalize_sft(meta, tmp_path, tmp_path / "out", on_error="skip", fast=fast)
    report = json.loads((tmp_path / "out" / "skipped.json").read_text())
    assert [(r["line"], r["kind"]) for r in report] == [(2, "image_escape"), (3, "image_escape")]
    assert "through a symlinked directory" in report[1]["reason"] and m["total_samples"] == 2
    assert [r["image_path"] for r in read_sft(tmp_path / "out").to_pylist()] == \
        ["playground/data/imgs/a.jpg", "playground/data/imgs/inside.jpg"]


@pytest.mark.parametrize("fast", ROUTES)
def test_skip_mode_reports_every_skipped_record(tmp_path, fast):
    cases = sorted(BAD)
    records = [_rec(0)]
    for case in cases:
        records += ["", BAD[case][0], _rec(len(records))]  # a blank line before each bad record
    src = _write_source(tmp_path, "s", records)
    good = _write_source(tmp_path, "t", [_rec(i) for i in range(3)])
    m = normalize_sft(_meta(tmp_path, src, good), tmp_path, tmp_path / "out", on_error="skip", fast=fast)
    report = json.loads((tmp_path / "out" / "skipped.json").read_text())
    assert [r["line"] for r in report] == [3 + 3 * k for k in range(len(cases))]
    for entry, case in zip(report, cases, strict=True):
        _, field, message = BAD[case]
        assert entry["source"] == "s" and entry["file"].endswith("s.jsonl") and entry["field"] == field
        assert message in entry["reason"] and entry["reason"].startswith(f"{entry['file']}:{entry['line']}:")
    assert m["skipped"] == len(cases) and m["sources"]["s"]["skipped"] == len(cases)
    assert m["sources"]["s"]["records"] == len(cases) + 1 and m["sources"]["t"]["skipped"] == 0
    assert sum(m["skipped_by_kind"].values()) == len(cases) and m["skipped_by_kind"]["image_escape"] == 3
    assert m["sources"]["s"]["skipped_by_kind"] == m["skipped_by_kind"]
    assert m["total_samples"] == len(cases) + 4 and m["skipped_report"] == "skipped.json"
    kept = [r for r in read_sft(tmp_path / "out").to_pylist() if r["source"] == "s"]
    assert [r["line"] for r in kept] == [1] + [4 + 3 * k for k in range(len(cases))]
    # a clean run in raise mode removes the stale report
    normalize_sft(_meta(tmp_path, good), tmp_path, tmp_path / "out")
    assert not (tmp_path / "out" / "skipped.json").exists()


def test_a_failed_run_leaves_the_previous_output(tmp_path):
    src = _write_source(tmp_path, "s", [_rec(i) for i in range(5)])
    meta = _meta(tmp_path, src)
    before = normalize_sft(meta, tmp_path, tmp_path / "out")
    _write_source(tmp_path, "s", [_rec(0), _rec(1, image="imgs/gone.jpg")])
    with pytest.raises(DataError, match="s.jsonl:2"):
        normalize_sft(meta, tmp_path, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "manifest.json").read_text()) == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["manifest.json", "part-00000.parquet"]


@pytest.mark.parametrize("fast", ROUTES)
def test_line_numbers_count_blank_lines_and_crlf(tmp_path, fast):
    ann_lines = [json.dumps(_rec(0)), "", "   ", json.dumps(_rec(3)) + "\r", json.dumps(_rec(4, image="imgs/x.jpg"))]
    src = _write_source(tmp_path, "s", ann_lines)
    with pytest.raises(DataError) as err:
        normalize_sft(_meta(tmp_path, src), tmp_path, tmp_path / "out", fast=fast)
    assert err.value.line == 5
    (tmp_path / "playground" / "s.jsonl").write_text("\n".join(ann_lines[:4]) + "\n" + json.dumps(_rec(5)))
    normalize_sft(_meta(tmp_path, src), tmp_path, tmp_path / "out", fast=fast)  # no final newline
    assert [(r["id"], r["line"]) for r in read_sft(tmp_path / "out").to_pylist()] == [("r0", 1), ("r3", 4), ("r5", 5)]


def _random_record(rng: random.Random, i: int):
    """A record that is fine, or subtly not, in one of many ways (both routes must agree on it).

    Oddities that pyarrow cannot type (a number where text belongs, a broken line) are rare, so that
    most blocks take the fast route."""
    if rng.random() < 0.5:  # fine, in one of the accepted shapes
        return rng.choice([_rec(i), _rec(i, image=None, q="hi"), _rec(i, q="Q <image>", a="\u00a0x "),
                           _turns(i, ("gpt", ""), ("human", "<image>\nQ"), ("gpt", "A"), ("human", "B"), ("gpt", "C")),
                           {**_rec(i, image="./imgs/a.jpg"), "id": ""}])
    roles = rng.choice([["human", "gpt"], ["human", "gpt", "human", "gpt"], ["gpt", "human", "gpt"], ["human"],
                        ["gpt"], ["human", "human"], ["human", "gpt", "gpt"], ["system", "human", "gpt"], []])
    answers = ["red", " red", "\u3000", "", "  \n", "\x1c", "\u00a0x", "\u00a0"]
    questions = ["<image>\nQ", "Q <image>", "Q", "", " <image>", "<Image>"]
    turns = []
    for role in roles:
        turn = {"from": role, "value": rng.choice(answers if role == "gpt" else questions)}
        if role == "gpt" and rng.random() < 0.04:  # a second <image> tag (one image per sample in V1.2)
            turn["value"] = "a <image> b"
        if rng.random() < 0.03:
            turn = rng.choice([None, {"from": role}, {"from": role, "value": None}, {"value": "x"}])
        elif rng.random() < 0.05:
            turn["weight"] = [0.5, {"x": None}]
        turns.append(turn)
    rec = {"conversations": turns if rng.random() > 0.03 else None}
    image = rng.choice([None, "", "imgs/a.jpg", "imgs/a.jpg", "imgs/a.jpg", "./imgs/a.jpg", "imgs//a.jpg",
                        "imgs/nope.jpg", "../a.jpg", "/abs.jpg", "imgs/", "imgs", "nodir/a.jpg"])
    if image is not None:
        rec["image"] = image
    rid = rng.choice([f"id{i}", "", None])
    if rid is not None:
        rec["id"] = rid
    if rng.random() < 0.01:
        return rng.choice(["{broken", "[]", "", "  ", {**rec, "id": i}, {**rec, "image": ["imgs/a.jpg"]},
                           {**rec, "conversations": "text"}, {**rec, "conversations": [{"from": "gpt", "value": 1}]}])
    return rec


@pytest.mark.parametrize("seed", [0, 1])
def test_fast_and_exact_routes_agree_on_random_records(tmp_path, seed, monkeypatch):
    from internvl.data.sft_records import RecordChecker

    rng = random.Random(seed)
    records = [_random_record(rng, i) for i in range(600)]
    src = _write_source(tmp_path, "s", records)
    meta = _meta(tmp_path, src)
    exact = normalize_sft(meta, tmp_path, tmp_path / "exact", on_error="skip", fast=False)
    routes = {"exact": 0, "fast": 0}
    python_block, arrow_block = RecordChecker._python_block, RecordChecker._arrow_block

    def count(route, fn):
        def wrapper(*args, **kwargs):
            routes[route] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(RecordChecker, "_python_block", count("exact", python_block))
    monkeypatch.setattr(RecordChecker, "_arrow_block", count("fast", arrow_block))
    fast = normalize_sft(meta, tmp_path, tmp_path / "fast", on_error="skip", block_bytes=1024)
    assert routes["fast"] > 2 * routes["exact"] > 0
    assert (tmp_path / "fast" / "skipped.json").read_text() == (tmp_path / "exact" / "skipped.json").read_text()
    assert _hashes(fast) == _hashes(exact)
    assert fast["sources"] == exact["sources"] and 250 < fast["total_samples"] < 500
    kinds = set(fast["skipped_by_kind"])
    assert {"bad_turn", "bad_roles", "empty_answer", "image_tag", "image_escape", "image_missing"} <= kinds


def test_image_paths_are_normalized_and_ids_filled(tmp_path):
    recs = [{**_rec(0, image="./imgs//a.jpg")}, {"conversations": _rec(1)["conversations"], "image": "imgs/a.jpg"},
            {**_rec(2), "id": 7}]
    src = _write_source(tmp_path, "s", recs)
    normalize_sft(_meta(tmp_path, src), tmp_path, tmp_path / "out")
    rows = read_sft(tmp_path / "out").to_pylist()
    assert [r["image_path"] for r in rows] == ["playground/data/imgs/a.jpg"] * 3
    assert [r["id"] for r in rows] == ["r0", "s:2", "7"]
    assert validate_record(recs[0], _source(tmp_path), 1) == str(tmp_path / "playground/data/imgs/a.jpg")


def test_integer_ids_take_the_fast_route(tmp_path, monkeypatch):
    from internvl.data.sft_records import RecordChecker

    src = _write_source(tmp_path, "s", [{**_rec(i), "id": i} for i in range(50)])
    monkeypatch.setattr(RecordChecker, "_python_block", None)  # would fail if called
    normalize_sft(_meta(tmp_path, src), tmp_path, tmp_path / "out", block_bytes=1000)
    assert [r["id"] for r in read_sft(tmp_path / "out").to_pylist()] == [str(i) for i in range(50)]


def _source(base: Path):
    from internvl.data.sft import read_meta

    return read_meta(base / "meta.json", base)[0]


def test_embed_images_stores_the_bytes(tmp_path):
    src = _write_source(tmp_path, "s", [_rec(0), _rec(1, image=None, q="hi"), _rec(2)])
    m = normalize_sft(_meta(tmp_path, src), tmp_path, tmp_path / "out", embed_images=True)
    rows = read_sft(tmp_path / "out").to_pylist()
    jpg = (tmp_path / "playground" / "data" / "imgs" / "a.jpg").read_bytes()
    assert [r["image_bytes"] for r in rows] == [jpg, None, jpg] and m["options"]["embed_images"]
    assert pq.ParquetFile(tmp_path / "out" / "part-00000.parquet").metadata.num_rows == 3


def test_cli_flags_and_error_message(tmp_path, capsys):
    from internvl.cli import main

    src = _write_source(tmp_path, "s", [_rec(0), _rec(1, image="imgs/t.jpg")])
    _corrupt_images(tmp_path / "playground" / "data" / "imgs")
    (tmp_path / "playground" / "data" / "imgs" / "t.jpg").write_bytes(b"\xff\xd8\xff")
    args = ["normalize-sft", str(_meta(tmp_path, src)), "--base-dir", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main(args) == 0
    assert main(args + ["--verify-images"]) == 2
    assert "s.jsonl:2: field 'image': corrupt or truncated image" in capsys.readouterr().err
    assert main(args + ["--verify-images", "--on-error", "skip", "--embed-images"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"total_samples": 1, "skipped": 1}


def test_python_whitespace_table_is_complete():
    assert set(PY_WHITESPACE) == {c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_image_with_verify_images(tmp_path):
    src = _write_source(tmp_path, "s", [_rec(0), _rec(1, image="imgs/locked.jpg")])
    locked = tmp_path / "playground" / "data" / "imgs" / "locked.jpg"
    Image.new("RGB", (8, 8)).save(locked)
    locked.chmod(0)
    with pytest.raises(DataError, match=r"s.jsonl:2: field 'image': image unreadable"):
        normalize_sft(_meta(tmp_path, src), tmp_path, tmp_path / "out", verify_images=True)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"], ids=["empty", "blank-lines"])
def test_an_empty_annotation_file_is_an_error(tmp_path, content):
    """Fault 6: an empty annotation file gave 0 samples and exit code 0."""
    src = _write_source(tmp_path, "good", [_rec(0)])
    empty = _write_source(tmp_path, "empty", [])
    (tmp_path / "playground" / "empty.jsonl").write_bytes(content)
    with pytest.raises(DataError, match="no records") as err:
        normalize_sft(_meta(tmp_path, src, empty), tmp_path, tmp_path / "out")
    assert str(tmp_path / "playground" / "empty.jsonl") in str(err.value)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_a_source_named_twice_in_the_meta_is_an_error(tmp_path):
    """Fault 6: the same source name twice in a meta JSON silently dropped the first entry."""
    a = _write_source(tmp_path, "a", [_rec(0)])["a"]
    b = _write_source(tmp_path, "b", [_rec(1), _rec(2)])["b"]
    meta = tmp_path / "meta.json"
    meta.write_text('{\n  "dup": ' + json.dumps(a) + ',\n  "other": ' + json.dumps(b) + ',\n  "dup": '
                    + json.dumps(b) + "\n}\n")
    with pytest.raises(DataError, match="'dup'") as err:
        normalize_sft(meta, tmp_path, tmp_path / "out")
    assert str(meta) in str(err.value) and "twice" in str(err.value)


def test_zero_samples_in_all_is_an_error(tmp_path):
    """Every record skipped: the run stops instead of writing an empty training set."""
    src = _write_source(tmp_path, "bad", [_rec(0, image="imgs/missing.jpg")])
    with pytest.raises(DataError, match="0 samples in all"):
        normalize_sft(_meta(tmp_path, src), tmp_path, tmp_path / "out", on_error="skip")
    assert not (tmp_path / "out" / "manifest.json").exists()
