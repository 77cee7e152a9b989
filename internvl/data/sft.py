"""SFT sources: a meta JSON in the original ``shell/data/*.json`` format -> parquet shards + manifest.

Streaming, bounded memory whatever the input size: each annotation JSONL is read in blocks of a few
MiB, validated (:mod:`internvl.data.sft_records`: ``pyarrow.json`` plus vectorized checks, with an
exact line-by-line route that names the bad line) and written out as it goes, in row groups of a
fixed number of rows, into shards of ``shard_rows`` rows.

Bad input (malformed JSON, a missing, empty or -- with ``verify_images`` -- undecodable image, an
image path out of the source root by ``..``, an absolute path or a symlink, ``<image>`` without an
image or an image without ``<image>``, an empty answer, turns that do not alternate) stops the run
with a :class:`DataError` naming file, 1-based line and field; so do a source named twice in the meta
file, an annotation file without records and a run that ends with 0 samples. ``on_error="skip"`` instead leaves the
record out and lists it, with its reason, in ``skipped.json`` next to the output; the manifest counts
skipped records per source and per kind. The original silently trained on a random other sample
instead; nothing here is ever substituted.

``repeat_time`` is applied here, deterministically, in the original's order (the source concatenated
``repeat_time`` times): an integer part ``k`` gives ``k`` full passes over the source's records; a
fractional part ``f`` adds ``floor(f * n)`` records chosen uniformly with a seed (selection sampling,
one pass, O(1) memory), in file order, with ``repeat_index = k``. A source with ``repeat_time != 1``
is spooled once to a temporary parquet file and replayed from it, so its JSONL is parsed only once.

Same inputs, options and seed give byte-identical shards (the manifest carries their sha256).
Images stay on disk, referenced by a path relative to ``base_dir``; ``embed_images`` adds their bytes
in an ``image_bytes`` column for self-contained parquet.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import re
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from internvl.data.io import load_json, write_json_atomic
from internvl.data.sft_records import ROLES, TURN, RecordChecker
from internvl.errors import DataError
from internvl.provenance import file_sha256

__all__ = ["ROLES", "SFT_SCHEMA", "SFT_SCHEMA_EMBED", "Source", "normalize_sft", "read_meta", "read_sft",
           "validate_record"]

SFT_SCHEMA = pa.schema([
    pa.field("source", pa.string(), nullable=False),
    pa.field("id", pa.string(), nullable=False),
    pa.field("line", pa.int64(), nullable=False),
    pa.field("repeat_index", pa.int32(), nullable=False),
    pa.field("image_path", pa.string()),  # relative to the base dir; null for text-only samples
    pa.field("conversations", pa.list_(TURN), nullable=False),
    # UTF-8 bytes of the turns' text: the length estimate of group_by_length (internvl.train.dataset)
    pa.field("text_bytes", pa.int64(), nullable=False),
])
SFT_SCHEMA_EMBED = SFT_SCHEMA.append(pa.field("image_bytes", pa.binary()))  # with embed_images
ROW_GROUP_ROWS = 32_768
ROW_GROUP_ROWS_EMBED = 256
BLOCK_BYTES = 8 << 20
BLOCK_BYTES_EMBED = 1 << 20
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    name: str
    root: Path
    annotation: Path
    repeat_time: float
    length: int | None
    data_augment: bool


def _duplicate_keys(path: Path) -> None:
    """A key given twice in one JSON object (the parser keeps the last one, silently dropping the
    first source of a meta file) is an error naming the key and the line of its second use."""
    text = path.read_text(encoding="utf-8")
    dups: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:
                dups.append(key)
            seen[key] = value
        return seen

    json.loads(text, object_pairs_hook=pairs)
    if dups:
        key = dups[0]
        uses = [m.start() for m in re.finditer(re.escape(json.dumps(key)) + r"\s*:", text)]
        line = text.count("\n", 0, uses[1]) + 1 if len(uses) > 1 else None
        raise DataError(path, f"key {key!r} is given twice; a JSON object keeps only the last, so the first "
                              "would be dropped: rename or remove one", line=line, field=key)


def read_meta(meta_path: str | Path, base_dir: str | Path) -> list[Source]:
    """Parse a meta file; relative ``root``/``annotation`` paths resolve against ``base_dir``
    (the original resolved them against its working directory, ``internvl_chat/``). A source name
    given twice is an error (the original's ``json.load`` silently kept the second)."""
    meta_path, base = Path(meta_path), Path(base_dir)
    meta = load_json(meta_path)
    _duplicate_keys(meta_path)
    if not isinstance(meta, dict) or not meta:
        raise DataError(meta_path, "expected a non-empty JSON object {name: {root, annotation, ...}}")
    sources = []
    for name, entry in meta.items():
        for key in ("root", "annotation"):
            if not isinstance(entry, dict) or not isinstance(entry.get(key), str):
                raise DataError(meta_path, f"source {name!r} needs a string {key!r}", field=f"{name}.{key}")
        rt = entry.get("repeat_time", 1)
        if isinstance(rt, bool) or not isinstance(rt, int | float) or not rt > 0 or not math.isfinite(rt):
            raise DataError(meta_path, f"repeat_time must be a positive number, got {rt!r}", field=f"{name}.repeat_time")
        ann = base / entry["annotation"]
        if ann.suffix != ".jsonl":
            raise DataError(meta_path, f"annotation must be a .jsonl file, got {ann.name}", field=f"{name}.annotation")
        sources.append(Source(name, base / entry["root"], ann, float(rt), entry.get("length"),
                              bool(entry.get("data_augment", False))))
    return sources


def validate_record(rec: dict[str, Any], src: Source, line: int, check_image: bool = True) -> str | None:
    """Check one LLaVA-style record; return the image path (or None for text-only). Raises DataError."""
    rel = RecordChecker(src.annotation, src.root, src.root, check_images=check_image).validate(rec, line)
    return None if rel is None else str(Path(src.root) / rel)


def _write_options() -> dict[str, Any]:
    # No dictionaries (ids and text are mostly unique; snappy takes care of the repeated source names);
    # statistics only where a reader may filter row groups.
    return {"compression": "snappy", "use_dictionary": False, "write_statistics": ["source", "repeat_index"]}


class _ShardWriter:
    """Appends tables to ``part-NNNNN.parquet`` shards in ``folder``: fixed-size row groups and shards,
    each row group written from one contiguous buffer, so the bytes do not depend on how the rows
    arrived."""

    def __init__(self, folder: Path, schema: pa.Schema, shard_rows: int, row_group_rows: int):
        self.folder, self.schema = folder, schema
        self.shard_rows, self.row_group_rows = shard_rows, min(row_group_rows, shard_rows)
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.writer: pq.ParquetWriter | None = None
        self.rows_in_shard = 0
        self.shards: list[dict[str, Any]] = []

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.pending.append(table)
        self.pending_rows += table.num_rows
        while self.pending_rows >= self._group_size():
            self._flush(self._group_size())

    def _group_size(self) -> int:
        return min(self.row_group_rows, self.shard_rows - self.rows_in_shard)

    def _flush(self, size: int) -> None:
        rows = pa.concat_tables(self.pending)
        group, rest = rows.slice(0, size).combine_chunks(), rows.slice(size)
        self.pending = [rest] if rest.num_rows else []
        self.pending_rows = rest.num_rows
        if self.writer is None:
            path = self.folder / f"part-{len(self.shards):05d}.parquet"
            self.writer = pq.ParquetWriter(path, self.schema, **_write_options())
        self.writer.write_table(group, row_group_size=size)
        self.rows_in_shard += size
        if self.rows_in_shard == self.shard_rows:
            self._close_shard()

    def _close_shard(self) -> None:
        self.writer.close()
        path = self.folder / f"part-{len(self.shards):05d}.parquet"
        self.shards.append({"file": path.name, "rows": self.rows_in_shard, "sha256": file_sha256(path)})
        self.writer, self.rows_in_shard = None, 0

    def close(self) -> list[dict[str, Any]]:
        while self.pending_rows:
            self._flush(min(self.pending_rows, self._group_size()))
        if self.writer is not None:
            self._close_shard()
        return self.shards

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class _SkipReport:
    """``skipped.json``: a JSON list written one entry at a time (memory stays flat however many)."""

    def __init__(self, path: Path):
        self.path, self.count, self.kinds = path, 0, Counter()
        self.fh = path.open("w", encoding="utf-8")
        self.fh.write("[")

    def add(self, source: str, exc: DataError) -> None:
        kind = getattr(exc, "kind", "invalid")
        entry = {"source": source, "file": exc.path, "line": exc.line, "field": exc.field, "kind": kind,
                 "reason": str(exc)}
        self.fh.write(("\n  " if self.count == 0 else ",\n  ") + json.dumps(entry, ensure_ascii=False))
        self.count += 1
        self.kinds[kind] += 1

    def close(self) -> None:
        self.fh.write("\n]\n" if self.count else "]\n")
        self.fh.close()


def _selection(n: int, k: int, rng: random.Random) -> Callable[[int], np.ndarray]:
    """Selection sampling (Knuth's algorithm S): ``take(m)`` gives the mask for the next ``m`` of ``n``
    records; exactly ``k`` are picked overall, every k-subset equally likely, O(1) memory."""
    state = {"seen": 0, "picked": 0}

    def take(m: int) -> np.ndarray:
        mask = np.zeros(m, dtype=bool)
        seen, picked, rand = state["seen"], state["picked"], rng.random
        for j in range(m):
            if (n - seen) * rand() < k - picked:
                mask[j] = True
                picked += 1
            seen += 1
        state["seen"], state["picked"] = seen, picked
        return mask

    return take


def text_bytes(conversations: pa.Array) -> pa.Array:
    """Per row, the UTF-8 bytes of all turn values of a ``list<struct<from, value>>`` column."""
    conv = conversations.combine_chunks() if isinstance(conversations, pa.ChunkedArray) else conversations
    n = len(conv)
    if n == 0:
        return pa.array([], pa.int64())
    offsets = conv.offsets.to_numpy()
    flat = conv.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    sizes = pc.fill_null(pc.binary_length(pc.struct_field(flat, "value")), 0).to_numpy(zero_copy_only=False)
    parent = pc.list_parent_indices(conv).to_numpy()
    return pa.array(np.bincount(parent, weights=sizes, minlength=n).astype(np.int64))


def _with_source(table: pa.Table, name: str, repeat_index: int, schema: pa.Schema) -> pa.Table:
    n = table.num_rows
    cols = {"source": pa.repeat(pa.scalar(name, pa.string()), n),
            "repeat_index": pa.array(np.full(n, repeat_index, dtype=np.int32)),
            "text_bytes": text_bytes(table.column("conversations"))}
    return pa.Table.from_arrays([cols[f] if f in cols else table.column(f) for f in schema.names], schema=schema)


def _progress(total: int, desc: str, enabled: bool | None):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, dynamic_ncols=True,
                disable=None if enabled is None else not enabled, mininterval=1.0)


def normalize_sft(meta_path: str | Path, base_dir: str | Path, out_dir: str | Path, seed: int = 0,
                  on_error: str = "raise", check_images: bool = True, verify_images: bool = False,
                  embed_images: bool = False, shard_rows: int = 200_000, progress: bool | None = None,
                  block_bytes: int | None = None, fast: bool = True) -> dict[str, Any]:
    """Write ``out_dir/part-*.parquet`` and ``out_dir/manifest.json`` (last); returns the manifest.

    ``check_images``: each image must exist as a regular file inside its source root (directories
    are listed once and cached: about a microsecond per record). ``verify_images`` also decodes every
    image, to catch truncated, corrupt, empty or unreadable files; it is opt-in because a decode
    costs milliseconds per image (an hour or more of CPU for the 1.2M V1.2 mix, against seconds for the
    existence check) -- run it once on a new data tree. ``embed_images`` stores the bytes in an
    ``image_bytes`` column (and implies ``check_images``). ``progress``: a tqdm bar per source over
    its annotation bytes (None: only on a terminal). ``fast=False`` forces the line-by-line route
    (for tests; the output is the same).

    Shards are built in a staging folder and moved into place only when every source went through,
    so a failed run leaves the previous output as it was.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if shard_rows < 1:
        raise ValueError("shard_rows must be positive")
    check_images = check_images or embed_images
    base, out = Path(base_dir), Path(out_dir)
    sources = read_meta(meta_path, base)
    schema = SFT_SCHEMA_EMBED if embed_images else SFT_SCHEMA
    block_bytes = block_bytes or (BLOCK_BYTES_EMBED if embed_images else BLOCK_BYTES)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".staging-*"):  # left by a run that was killed
        shutil.rmtree(stale, ignore_errors=True)
    staging = out / f".staging-{os.getpid()}"
    staging.mkdir()
    writer = _ShardWriter(staging, schema, shard_rows, ROW_GROUP_ROWS_EMBED if embed_images else ROW_GROUP_ROWS)
    report = _SkipReport(staging / "skipped.json") if on_error == "skip" else None
    manifest: dict[str, Any] = {
        "meta": str(meta_path), "meta_sha256": file_sha256(Path(meta_path)), "seed": seed,
        "options": {"on_error": on_error, "check_images": check_images, "verify_images": verify_images,
                    "embed_images": embed_images, "shard_rows": shard_rows},
        "sources": {}, "shards": [], "skipped": 0, "skipped_by_kind": {}, "skipped_report": None,
    }
    try:
        for src in sources:
            manifest["sources"][src.name] = _normalize_source(src, base, seed, writer, report, staging, schema,
                                                              block_bytes, progress, fast, check_images,
                                                              verify_images, embed_images)
        manifest["shards"] = writer.close()
        if report is not None:
            report.close()
    except BaseException:
        writer.abort()
        if report is not None:
            report.fh.close()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    manifest["total_samples"] = sum(s["samples"] for s in manifest["sources"].values())
    if report is not None:
        manifest["skipped"] = report.count
        manifest["skipped_by_kind"] = dict(sorted(report.kinds.items()))
        manifest["skipped_report"] = "skipped.json"
    if manifest["total_samples"] == 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(meta_path, f"0 samples in all ({manifest['skipped']} records skipped, see the sources' "
                                   "annotation files): nothing to train on")
    _publish(staging, out, manifest, report is not None)
    return manifest


def _normalize_source(src: Source, base: Path, seed: int, writer: _ShardWriter, report: _SkipReport | None,
                      staging: Path, schema: pa.Schema, block_bytes: int, progress: bool | None, fast: bool,
                      check_images: bool, verify_images: bool, embed_images: bool) -> dict[str, Any]:
    checker = RecordChecker(src.annotation, src.root, base, check_images=check_images,
                            verify_images=verify_images, embed_images=embed_images)
    if not src.annotation.is_file():
        raise DataError(src.annotation, "file not found")
    kinds: Counter = Counter()

    def on_bad(exc: DataError) -> None:
        kinds[getattr(exc, "kind", "invalid")] += 1
        report.add(src.name, exc)

    spool_path = staging / ".spool.parquet"
    spool = None if src.repeat_time == 1 else pq.ParquetWriter(spool_path, checker.schema)
    ann_hash, n_records, n_lines = hashlib.sha256(), 0, 0
    with src.annotation.open("rb") as fh, _progress(src.annotation.stat().st_size, src.name, progress) as bar:
        def consumed(chunk: bytes) -> None:
            ann_hash.update(chunk)
            bar.update(len(chunk))

        for block in checker.blocks(fh, block_bytes, consumed):
            table = checker.process(block, on_bad if report is not None else None, fast=fast)
            n_lines = block.line0 - 1 + block.n_lines
            n_records += table.num_rows
            if spool is None:
                writer.write(_with_source(table, src.name, 0, schema))
            else:
                spool.write_table(table)
            bar.set_postfix(records=n_records, refresh=False)
    whole = int(math.floor(src.repeat_time))
    picked = int(round((src.repeat_time - whole) * n_records, 6))  # the original's int(n * repeat_time)
    if spool is not None:
        spool.close()
        for r in range(whole):
            for batch in pq.ParquetFile(spool_path).iter_batches(batch_size=ROW_GROUP_ROWS):
                writer.write(_with_source(pa.Table.from_batches([batch]), src.name, r, schema))
        if picked:
            take = _selection(n_records, picked, random.Random(f"{seed}:{src.name}"))
            for batch in pq.ParquetFile(spool_path).iter_batches(batch_size=ROW_GROUP_ROWS):
                chosen = pa.Table.from_batches([batch]).filter(pa.array(take(batch.num_rows)))
                writer.write(_with_source(chosen, src.name, whole, schema))
        spool_path.unlink()
    skipped = sum(kinds.values())
    if n_records + skipped == 0:
        raise DataError(src.annotation, f"no records (an empty or blank file); source {src.name!r} of the meta file "
                                        "would add 0 samples: check the download or remove the source")
    samples = whole * n_records + picked
    if src.length is not None and src.length != n_records + skipped:
        log.warning("%s: meta says length %s, the annotation has %d records", src.name, src.length,
                    n_records + skipped)
    log.info("%s: %d records (%d skipped) x %g -> %d samples", src.name, n_records, skipped, src.repeat_time,
             samples)
    return {"annotation": str(src.annotation), "annotation_sha256": ann_hash.hexdigest(), "lines": n_lines,
            "records": n_records, "skipped": skipped, "skipped_by_kind": dict(sorted(kinds.items())),
            "repeat_time": src.repeat_time, "samples": samples, "declared_length": src.length}


def _publish(staging: Path, out: Path, manifest: dict[str, Any], with_report: bool) -> None:
    """Move the new shards (and report) into ``out``, drop stale ones, write the manifest last."""
    new = {s["file"] for s in manifest["shards"]}
    (out / "manifest.json").unlink(missing_ok=True)  # no moment where an old manifest names new shards
    for name in sorted(new):
        os.replace(staging / name, out / name)
    for old in out.glob("part-*.parquet"):
        if old.name not in new:
            old.unlink()
    if with_report:
        os.replace(staging / "skipped.json", out / "skipped.json")
    elif (out / "skipped.json").exists():
        (out / "skipped.json").unlink()
    shutil.rmtree(staging, ignore_errors=True)
    write_json_atomic(out / "manifest.json", manifest)


def read_sft(out_dir: str | Path) -> pa.Table:
    out = Path(out_dir)
    manifest = json.loads((out / "manifest.json").read_text())
    tables = [pq.read_table(out / s["file"]) for s in manifest["shards"]]
    return pa.concat_tables(tables) if tables else SFT_SCHEMA.empty_table()
