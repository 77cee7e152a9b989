"""Score predictions and write the result JSON with its provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from internvl.data.io import iter_jsonl, write_json_atomic
from internvl.errors import DataError
from internvl.eval.judge import JudgeClient
from internvl.eval.judged import score_judged
from internvl.eval.metrics import check_predictions, score
from internvl.eval.registry import Benchmark
from internvl.eval.submission import is_server_scored, submission_format
from internvl.provenance import git_commit, package_versions


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


def score_file(bench: Benchmark, data: str | Path, predictions: str | Path,
               submission: str | Path | None = None, judge: JudgeClient | None = None) -> dict[str, Any]:
    """Score predictions; a server-scored split gets :func:`server_scored_result` instead of an error.

    A judge-scored split (``bench.judge``) is scored through ``judge`` (:mod:`internvl.eval.judged`);
    without one its scorer raises ``JudgeRequiredError`` / ``ExtractorRequiredError``.
    """
    frame = pd.read_parquet(data)
    frame["id"] = frame["id"].astype(str)
    if is_server_scored(bench):
        return server_scored_result(bench, frame, read_predictions(predictions), submission)
    if bench.judge and judge is not None:
        return score_judged(bench.metric, bench.judge, frame, read_predictions(predictions), judge)
    return score(bench.metric, frame, read_predictions(predictions))


def server_scored_result(bench: Benchmark, frame: pd.DataFrame, predictions: dict[str, str],
                         submission: str | Path | None) -> dict[str, Any]:
    """No local gold: empty metrics, ``server_scored: true`` and the submission file to upload (its number
    enters the paper table through ``table.server_scores``). The ids are still checked, as for scoring."""
    ids = check_predictions(bench.name, frame, predictions)
    fmt = submission_format(bench)
    return {"benchmark": bench.name, "metrics": {}, "n": len(ids), "server_scored": True,
            "submission": None if submission is None else str(submission),
            "notes": [f"server-scored: upload the submission file to {fmt.server}"]}


def provenance(model: str, model_config: dict[str, Any], checkpoint_hash_file: str | Path, bench: Benchmark,
               inference_stats: str | Path, data: str | Path, repo: str | Path) -> dict[str, Any]:
    """What a result records about how it was made: checkpoint content hash, every score-affecting
    setting, the inference run's statistics, package versions and the git commit."""
    return {
        "model": model,
        "model_config": model_config,
        "checkpoint_sha256": Path(checkpoint_hash_file).read_text().strip(),
        "score_params": bench.score_params(),
        "inference": json.loads(Path(inference_stats).read_text()),
        "data_parquet": str(data),
        "packages": package_versions(),
        "git_commit": git_commit(repo),
    }


def write_result(out: str | Path, bench: Benchmark, scored: dict[str, Any], provenance: dict[str, Any]) -> dict:
    result = {
        "benchmark": bench.name,
        "metrics": scored["metrics"],
        "headline": {"metric": bench.headline, "value": scored["metrics"].get(bench.headline)},
        "n": scored["n"],
        "notes": list(scored.get("notes", [])) + list(bench.notes),
        "provenance": provenance,
    }
    result.update({k: scored[k] for k in ("server_scored", "submission", "judge") if k in scored})
    write_json_atomic(out, result)
    return result
