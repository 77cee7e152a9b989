"""SFT sources: a meta JSON in the original ``shell/data/*.json`` format -> parquet shards + manifest.

Each source is streamed line by line and validated; a bad record stops the run with file, line and
field (``on_error="skip"`` instead records it, with its reason, in a report next to the output).
The original silently replaced broken samples by random others at training time; we never do.
``repeat_time`` is applied here, deterministically: integers repeat, fractions subsample with a seed.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from internvl.data.io import atomic_path, iter_jsonl, load_json, write_json_atomic
from internvl.errors import DataError

SFT_SCHEMA = pa.schema([
    pa.field("source", pa.string(), nullable=False),
    pa.field("id", pa.string(), nullable=False),
    pa.field("line", pa.int64(), nullable=False),
    pa.field("repeat_index", pa.int32(), nullable=False),
    pa.field("image_path", pa.string()),  # relative to the base dir; null for text-only samples
    pa.field("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())])), nullable=False),
])
ROLES = ("human", "gpt")


@dataclass(frozen=True)
class Source:
    name: str
    root: Path
    annotation: Path
    repeat_time: float
    length: int | None
    data_augment: bool


def read_meta(meta_path: str | Path, base_dir: str | Path) -> list[Source]:
    """Parse a meta file; relative ``root``/``annotation`` paths resolve against ``base_dir``
    (the original resolved them against its working directory, ``internvl_chat/``)."""
    meta_path, base = Path(meta_path), Path(base_dir)
    meta = load_json(meta_path)
    if not isinstance(meta, dict) or not meta:
        raise DataError(meta_path, "expected a non-empty JSON object {name: {root, annotation, ...}}")
    sources = []
    for name, entry in meta.items():
        for key in ("root", "annotation"):
            if not isinstance(entry, dict) or not isinstance(entry.get(key), str):
                raise DataError(meta_path, f"source {name!r} needs a string {key!r}", field=f"{name}.{key}")
        rt = entry.get("repeat_time", 1)
        if not isinstance(rt, int | float) or rt <= 0:
            raise DataError(meta_path, f"repeat_time must be a positive number, got {rt!r}", field=f"{name}.repeat_time")
        ann = base / entry["annotation"]
        if ann.suffix != ".jsonl":
            raise DataError(meta_path, f"annotation must be a .jsonl file, got {ann.name}", field=f"{name}.annotation")
        sources.append(Source(name, base / entry["root"], ann, float(rt), entry.get("length"),
                              bool(entry.get("data_augment", False))))
    return sources


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def validate_record(rec: dict[str, Any], src: Source, line: int, check_image: bool = True) -> str | None:
    """Check one LLaVA-style record; return the image path (or None for text-only). Raises DataError."""
    path = src.annotation
    convs = rec.get("conversations")
    if not isinstance(convs, list) or not convs:
        raise DataError(path, "missing or empty conversation list", line=line, field="conversations")
    for j, turn in enumerate(convs):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str) or turn.get("from") not in ROLES:
            raise DataError(path, f"turn {j} must be {{'from': 'human'|'gpt', 'value': str}}", line=line,
                            field=f"conversations[{j}]")
    start = 1 if convs[0]["from"] != "human" else 0  # the original drops a leading gpt turn
    for j, turn in enumerate(convs[start:], start=start):
        if turn["from"] != ROLES[(j - start) % 2]:
            raise DataError(path, "roles must alternate human/gpt", line=line, field=f"conversations[{j}].from")
        if turn["from"] == "gpt" and not turn["value"].strip():
            raise DataError(path, "empty answer", line=line, field=f"conversations[{j}].value")
    has_tag = any("<image>" in t["value"] for t in convs)
    image = rec.get("image")
    if image in (None, ""):
        if has_tag:
            raise DataError(path, "<image> in a conversation without an image", line=line, field="image")
        return None
    if not isinstance(image, str):
        raise DataError(path, f"expected a single image path, got {type(image).__name__}", line=line, field="image")
    if "<image>" not in convs[start]["value"]:
        raise DataError(path, "image given but the first human turn has no <image>", line=line, field="conversations")
    full = src.root / image
    if Path(image).is_absolute() or not _inside(full, src.root):
        raise DataError(path, f"image path escapes the source root {src.root}: {image!r}", line=line, field="image")
    if check_image and not full.is_file():
        raise DataError(path, f"image not found: {full}", line=line, field="image")
    return str(full)


def _relative_to_base(image: Path, base: Path) -> str:
    """Store paths relative to the base dir so a data tree can move; absolute only if it lives elsewhere."""
    if _inside(image, base):
        return image.resolve().relative_to(base.resolve()).as_posix()
    return str(image.resolve())


def _repeat(n_records: int, repeat_time: float, seed: int, name: str) -> list[tuple[int, int]]:
    """(record index, repeat index) pairs: k full passes plus a seeded subsample for the fraction."""
    whole, frac = int(math.floor(repeat_time)), repeat_time - math.floor(repeat_time)
    pairs = [(i, r) for r in range(whole) for i in range(n_records)]
    if frac > 0:
        rng = random.Random(f"{seed}:{name}")
        picked = sorted(rng.sample(range(n_records), int(round(frac * n_records))))
        pairs += [(i, whole) for i in picked]
    return pairs


def _iter_valid(src: Source, base: Path, on_error: str, skipped: list[dict], check_images: bool
                ) -> Iterator[dict[str, Any]]:
    def bad_line(exc: DataError) -> None:
        skipped.append({"source": src.name, "file": str(src.annotation), "line": exc.line, "reason": str(exc)})

    for index, (line, rec) in enumerate(iter_jsonl(src.annotation, bad_line if on_error == "skip" else None)):
        try:
            image = validate_record(rec, src, line, check_image=check_images)
        except DataError as exc:
            if on_error != "skip":
                raise
            skipped.append({"source": src.name, "file": str(src.annotation), "line": line, "reason": str(exc)})
            continue
        rid = rec.get("id")
        yield {
            "source": src.name,
            "id": str(rid) if rid not in (None, "") else f"{src.annotation.stem}:{index}",
            "line": line,
            "image_path": None if image is None else _relative_to_base(Path(image), base),
            "conversations": [{"from": t["from"], "value": t["value"]} for t in rec["conversations"]],
        }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def normalize_sft(meta_path: str | Path, base_dir: str | Path, out_dir: str | Path, seed: int = 0,
                  on_error: str = "raise", check_images: bool = True, shard_rows: int = 200_000) -> dict[str, Any]:
    """Write ``out_dir/part-*.parquet`` and ``out_dir/manifest.json``; returns the manifest."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    base, out = Path(base_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sources = read_meta(meta_path, base)
    manifest: dict[str, Any] = {"meta": str(meta_path), "seed": seed, "sources": {}, "shards": [], "skipped": 0}
    skipped: list[dict] = []
    buffer: list[dict] = []

    def flush() -> None:
        if not buffer:
            return
        dest = out / f"part-{len(manifest['shards']):05d}.parquet"
        with atomic_path(dest, suffix=".parquet") as tmp:
            pq.write_table(pa.Table.from_pylist(buffer, schema=SFT_SCHEMA), tmp)
        manifest["shards"].append({"file": dest.name, "rows": len(buffer), "sha256": _sha256(dest)})
        buffer.clear()

    for src in sources:
        n_skipped_before = len(skipped)
        records = list(_iter_valid(src, base, on_error, skipped, check_images))
        pairs = _repeat(len(records), src.repeat_time, seed, src.name)
        for i, r in pairs:
            buffer.append({**records[i], "repeat_index": r})
            if len(buffer) >= shard_rows:
                flush()
        manifest["sources"][src.name] = {
            "annotation": str(src.annotation), "annotation_sha256": _sha256(src.annotation),
            "records": len(records), "skipped": len(skipped) - n_skipped_before,
            "repeat_time": src.repeat_time, "samples": len(pairs), "declared_length": src.length,
        }
    flush()
    manifest["skipped"] = len(skipped)
    manifest["total_samples"] = sum(s["samples"] for s in manifest["sources"].values())
    if skipped:
        write_json_atomic(out / "skipped.json", skipped)
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def read_sft(out_dir: str | Path) -> pa.Table:
    out = Path(out_dir)
    manifest = json.loads((out / "manifest.json").read_text())
    tables = [pq.read_table(out / s["file"]) for s in manifest["shards"]]
    return pa.concat_tables(tables) if tables else SFT_SCHEMA.empty_table()
