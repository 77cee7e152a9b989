"""The normalized benchmark schema: one parquet per split, one row per question.

Core columns (always present, in this order):

- ``id`` (string): the benchmark's own question id as a string when the raw record has one
  (question_id, questionId, index, id, pid, lndex), else ``<raw file stem>:<0-based record index>``.
- ``image_path`` (string, nullable): image path relative to the benchmark data root.
- ``image_bytes`` (binary, nullable): encoded image bytes where the raw file embeds them (MMBench).
- ``question`` (string): the question text as stored in the raw file (prompt suffixes are added by
  the evaluation registry at inference time, so a prompt change never re-normalizes data).
- ``hint`` (string, nullable): context shown before the question (MMBench/ScienceQA hint).
- ``options`` (string): JSON object ``{"A": "...", ...}`` in display order, ``"{}"`` when none.
- ``answers`` (list<string>): every gold answer (VQA: all 10; captions: every reference; MC: the letter).

Benchmark-specific columns (e.g. ``category``, ``split``, ``image_id``, ``label``) follow the core
ones and are documented by each normalizer.
"""

from __future__ import annotations

import json

import pyarrow as pa

CORE_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("image_path", pa.string()),
    pa.field("image_bytes", pa.binary()),
    pa.field("question", pa.string(), nullable=False),
    pa.field("hint", pa.string()),
    pa.field("options", pa.string(), nullable=False),
    pa.field("answers", pa.list_(pa.string()), nullable=False),
]
CORE_COLUMNS = [f.name for f in CORE_FIELDS]


def options_json(options: dict[str, str] | None) -> str:
    return json.dumps(options or {}, ensure_ascii=False)


def parse_options(value: str) -> dict[str, str]:
    return json.loads(value) if value else {}


def table_from_rows(rows: list[dict], extra: dict[str, pa.DataType] | None = None) -> pa.Table:
    """Build a table with the core schema plus typed benchmark-specific columns."""
    fields = list(CORE_FIELDS) + [pa.field(k, t) for k, t in (extra or {}).items()]
    schema = pa.schema(fields)
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"duplicate id {dup!r} in normalized rows")
    cols = {f.name: [r.get(f.name) for r in rows] for f in fields}
    return pa.Table.from_pydict(cols, schema=schema)
