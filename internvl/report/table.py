"""The paper table: one row per model (plus the V1.2 paper row), one column per benchmark headline."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from internvl.data.io import atomic_path
from internvl.eval.registry import resolve

TABLE_TITLES = {"multimodal": "Multimodal benchmarks", "caption_vqa": "Captioning & VQA", "grounding": "Visual grounding"}


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def build_tables(results: dict[str, dict[str, Path]]) -> tuple[str, str]:
    """``results[model][benchmark] -> result json``; returns (markdown, csv)."""
    benches = sorted({b for per in results.values() for b in per}, key=lambda b: (resolve(b).table, b))
    loaded = {m: {b: json.loads(Path(p).read_text()) for b, p in per.items()} for m, per in results.items()}
    md, rows = [], [["table", "model"] + [resolve(b).column for b in benches]]
    for table in dict.fromkeys(resolve(b).table for b in benches):
        cols = [b for b in benches if resolve(b).table == table]
        md.append(f"### {TABLE_TITLES.get(table, table)}\n")
        md.append("| model | " + " | ".join(f"{resolve(b).column} ({resolve(b).headline})" for b in cols) + " |")
        md.append("|---|" + "---:|" * len(cols))
        paper = [resolve(b).paper_value for b in cols]
        md.append("| InternVL-Chat-V1.2 (paper) | " + " | ".join(_fmt(v) for v in paper) + " |")
        for model, per in loaded.items():
            vals = [per[b]["headline"]["value"] if b in per else None for b in cols]
            cells = []
            for v, p in zip(vals, paper, strict=True):
                cells.append(_fmt(v) if v is None or p is None else f"{v:.1f} ({v - p:+.1f})")
            md.append(f"| {model} | " + " | ".join(cells) + " |")
        md.append("")
    for model, per in loaded.items():
        rows.append(["all", model] + [per[b]["headline"]["value"] if b in per else "" for b in benches])
    md.append("Numbers in parentheses: difference to the V1.2 paper value. n per benchmark: " + ", ".join(
        f"{b}={next(iter(loaded.values()))[b]['n']}" for b in benches if b in next(iter(loaded.values()))))
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return "\n".join(md) + "\n", buf.getvalue()


def write_tables(results: dict[str, dict[str, Path]], md_out: str | Path, csv_out: str | Path) -> str:
    md, table_csv = build_tables(results)
    for dest, text in ((md_out, md), (csv_out, table_csv)):
        with atomic_path(dest) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return md
