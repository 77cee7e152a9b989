"""Score predictions and write the result JSON with its provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from internvl.data.io import iter_jsonl, write_json_atomic
from internvl.errors import DataError
from internvl.eval.metrics import score
from internvl.eval.registry import Benchmark


def read_predictions(path: str | Path) -> dict[str, str]:
    preds: dict[str, str] = {}
    for line, rec in iter_jsonl(path):
        if "id" not in rec or not isinstance(rec.get("prediction"), str):
            raise DataError(path, "each line needs 'id' and a string 'prediction'", line=line)
        key = str(rec["id"])
        if key in preds:
            raise DataError(path, f"duplicate prediction for id {key!r}", line=line, field="id")
        preds[key] = rec["prediction"]
    return preds


def score_file(bench: Benchmark, data: str | Path, predictions: str | Path) -> dict[str, Any]:
    frame = pd.read_parquet(data)
    frame["id"] = frame["id"].astype(str)
    return score(bench.metric, frame, read_predictions(predictions))


def write_result(out: str | Path, bench: Benchmark, scored: dict[str, Any], provenance: dict[str, Any]) -> dict:
    result = {
        "benchmark": bench.name,
        "metrics": scored["metrics"],
        "headline": {"metric": bench.headline, "value": scored["metrics"].get(bench.headline)},
        "n": scored["n"],
        "notes": list(scored.get("notes", [])) + list(bench.notes),
        "provenance": provenance,
    }
    write_json_atomic(out, result)
    return result
