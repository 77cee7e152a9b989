"""Submission files for the server-scored splits, written as the V1.2 scripts wrote them.

Seven splits have no local gold answers (their scorers raise :class:`ServerScoredError`); their score
comes from uploading a file to the benchmark's server. ``write_submission(bench, data, predictions, out)``
turns the normalized table and the ``{id: raw answer}`` predictions into that file. Every id must be
predicted exactly once (:func:`internvl.eval.metrics.check_predictions`), because a server silently
scores a missing answer as wrong. Rows keep the data order (the original's order: input-file order).

Formats (the V1.2 script each reproduces, see internvl_eval_table.md):

- ``vqa-vqav2-testdev`` (``eval/vqa``, EvalAI challenge 830): JSON list of
  ``{"question", "question_id": int, "answer"}``; ``question`` is the text sent to ``chat()`` (question + " " +
  prompt), as the original kept it; EvalAI reads ``question_id``/``answer`` and ignores it.
- ``vqa-vizwiz-test`` (EvalAI challenge 1911): JSON list of ``{"image", "answer"}``, ``image`` = the
  question id without ``data/vizwiz/test/`` (the normalizer's ``submission_image``).
- ``vqa-docvqa-test`` (RRC, ch=17): JSON list of ``{"questionId": int, "answer"}``.
- The three VQA files hold the raw answer: ``evaluate_vqa.py`` defines a ``post_process`` but never calls
  it. They are written by ``json.dump`` with its defaults (``ensure_ascii``, no indent, no final newline).
- ``mmbench-test-en`` / ``-cn`` (MMBench server, CircularEval): ``.xlsx``, the TSV without
  hint/category/source/image/comment/l2-category and with ``prediction`` inserted at position 6, i.e.
  ``index, question, A, B, C, D, prediction`` (+ further option columns, then ``answer`` when the split has
  gold); ``prediction`` is the MC post-process letter (:func:`internvl.eval.postprocess.mc_postprocess`, the
  scorer's). Options that are NaN in the TSV are empty cells, as pandas wrote them. The TSV's ``split``
  column is not kept by the normalizer and so is not written.
- ``mmmu-test`` (EvalAI challenge 2179): JSON ``{id: answer}`` with ``indent=4``; the MC post-process when
  the question has options, else the raw answer (what the val scorer compares).
- ``mathvista-test``: JSON ``{pid: {problem fields..., "query", "response"}}`` with ``indent=4``: the HF
  record minus ``decoded_image`` plus the raw ``response``, rebuilt from the normalized columns (``answer``
  and the metadata ``img_height``/``img_width``/``split`` are not in the normalized table and are left
  out; the test split has no public answer anyway).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from internvl.data.io import atomic_path
from internvl.data.schema import parse_options
from internvl.eval.metrics import check_predictions
from internvl.eval.postprocess import mc_postprocess
from internvl.eval.prompts import build_question
from internvl.eval.registry import Benchmark

MMBENCH_PREDICTION_POSITION = 6  # evaluate_mmbench.py: cur_df.insert(6, 'prediction', None)
MATHVISTA_IMAGE_BASE = "MathVista/"  # normalized image paths are relative to data_root; HF's start at images/


@dataclass(frozen=True)
class SubmissionFormat:
    """How one server-scored split is submitted: the file extension and where it goes."""

    ext: str
    server: str
    build: Callable[[Benchmark, pd.DataFrame, list[str], Mapping[str, str]], bytes | pd.DataFrame]


def _json_bytes(obj: Any, indent: int | None = None) -> bytes:
    """``json.dump(obj, f[, indent])`` with Python's defaults, as the original scripts wrote the files."""
    return json.dumps(obj, indent=indent).encode("ascii")


def _column(data: pd.DataFrame, split: str, col: str) -> list[Any]:
    if col not in data.columns:
        raise ValueError(f"{split}: data lacks column {col!r} (normalize the split with internvl normalize)")
    return data[col].tolist()


def _int_id(split: str, rid: str) -> int:
    try:
        return int(rid)
    except ValueError:
        raise ValueError(f"{split}: id {rid!r} is not an integer; the server expects integer question ids") from None


def _vqav2(bench: Benchmark, data: pd.DataFrame, ids: list[str], preds: Mapping[str, str]) -> bytes:
    rows = data.to_dict(orient="records")
    return _json_bytes([{"question": build_question(row, bench), "question_id": _int_id(bench.name, rid),
                         "answer": preds[rid]} for rid, row in zip(ids, rows, strict=True)])


def _vizwiz(bench: Benchmark, data: pd.DataFrame, ids: list[str], preds: Mapping[str, str]) -> bytes:
    images = _column(data, bench.name, "submission_image")
    return _json_bytes([{"image": image, "answer": preds[rid]} for rid, image in zip(ids, images, strict=True)])


def _docvqa(bench: Benchmark, data: pd.DataFrame, ids: list[str], preds: Mapping[str, str]) -> bytes:
    return _json_bytes([{"questionId": _int_id(bench.name, rid), "answer": preds[rid]} for rid in ids])


def _mmbench(bench: Benchmark, data: pd.DataFrame, ids: list[str], preds: Mapping[str, str]) -> pd.DataFrame:
    options = [parse_options(o) for o in _column(data, bench.name, "options")]
    extra = sorted({k for opts in options for k in opts} - set("ABCD"))
    letters = ["A", "B", "C", "D", *extra]
    frame = pd.DataFrame({
        "index": [_int_id(bench.name, rid) for rid in ids],
        "question": _column(data, bench.name, "question"),
        **{letter: [opts.get(letter) for opts in options] for letter in letters},
    })
    answers = [list(a) for a in _column(data, bench.name, "answers")]
    if any(answers):
        frame["answer"] = [a[0] if a else None for a in answers]
    frame.insert(MMBENCH_PREDICTION_POSITION, "prediction",
                 [mc_postprocess(preds[rid], opts) for rid, opts in zip(ids, options, strict=True)])
    return frame


def _mmmu(bench: Benchmark, data: pd.DataFrame, ids: list[str], preds: Mapping[str, str]) -> bytes:
    options = [parse_options(o) for o in _column(data, bench.name, "options")]
    return _json_bytes({rid: mc_postprocess(preds[rid], opts) if opts else preds[rid]
                        for rid, opts in zip(ids, options, strict=True)}, indent=4)


def _none_if_nan(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value


def _mathvista(bench: Benchmark, data: pd.DataFrame, ids: list[str], preds: Mapping[str, str]) -> bytes:
    meta_keys = ("category", "context", "grade", "language", "skills", "source", "task")
    out: dict[str, Any] = {}
    for rid, row in zip(ids, data.to_dict(orient="records"), strict=True):
        image = row.get("image_path")
        if isinstance(image, str) and image.startswith(MATHVISTA_IMAGE_BASE):
            image = image[len(MATHVISTA_IMAGE_BASE):]
        choices = list(parse_options(row["options"]).values()) or None
        meta = {k: ([str(s) for s in row[k]] if row[k] is not None else []) if k == "skills" else _none_if_nan(row[k])
                for k in meta_keys if k in row}
        out[rid] = {  # HF MathVista's field order
            "pid": rid,
            "question": _none_if_nan(row.get("problem")),
            "image": image,
            "choices": choices,
            "unit": _none_if_nan(row.get("unit")),
            "precision": _none_if_nan(row.get("precision")),
            "question_type": row.get("question_type"),
            "answer_type": row.get("answer_type"),
            "metadata": meta,
            "query": row["question"],
            "response": preds[rid],
        }
    return _json_bytes(out, indent=4)


SUBMISSION_FORMATS: dict[str, SubmissionFormat] = {
    "vqa-vqav2-testdev": SubmissionFormat("json", "EvalAI (VQA challenge 830)", _vqav2),
    "vqa-vizwiz-test": SubmissionFormat("json", "EvalAI (VizWiz challenge 1911)", _vizwiz),
    "vqa-docvqa-test": SubmissionFormat("json", "the RRC DocVQA server (rrc.cvc.uab.es, ch=17)", _docvqa),
    "mmbench-test-en": SubmissionFormat("xlsx", "the MMBench evaluation server (CircularEval)", _mmbench),
    "mmbench-test-cn": SubmissionFormat("xlsx", "the MMBench evaluation server (CircularEval)", _mmbench),
    "mmmu-test": SubmissionFormat("json", "EvalAI (MMMU challenge 2179)", _mmmu),
    "mathvista-test": SubmissionFormat("json", "the MathVista test evaluation", _mathvista),
}


def is_server_scored(bench: Benchmark | str) -> bool:
    """Whether the split is scored by a server (no local gold): it gets a submission file, not a score."""
    return (bench if isinstance(bench, str) else bench.name) in SUBMISSION_FORMATS


def submission_format(bench: Benchmark | str) -> SubmissionFormat:
    name = bench if isinstance(bench, str) else bench.name
    if name not in SUBMISSION_FORMATS:
        raise KeyError(f"{name!r} is scored locally; submission files exist for {sorted(SUBMISSION_FORMATS)}")
    return SUBMISSION_FORMATS[name]


def build_submission(bench: Benchmark, data: pd.DataFrame, predictions: Mapping[str, str]) -> bytes | pd.DataFrame:
    """The submission content: JSON bytes, or for MMBench the frame written to ``.xlsx``."""
    fmt = submission_format(bench)
    data = data.reset_index(drop=True)
    data["id"] = data["id"].astype(str)
    ids = check_predictions(bench.name, data, predictions)
    return fmt.build(bench, data, ids, predictions)


def write_submission(bench: Benchmark, data: str | Path, predictions: str | Path, out: str | Path) -> dict[str, Any]:
    """Write the split's submission file from normalized parquet + predictions JSONL; returns a summary.

    ``out`` must end in the split's extension (``.json`` or ``.xlsx``) so a file is never uploaded in
    the wrong format. The file appears atomically (a failed write leaves nothing behind).
    """
    from internvl.eval.results import read_predictions

    fmt = submission_format(bench)
    out = Path(out)
    if out.suffix != f".{fmt.ext}":
        raise ValueError(f"{bench.name}: the submission is a .{fmt.ext} file; got {out.name!r}")
    content = build_submission(bench, pd.read_parquet(data), read_predictions(predictions))
    with atomic_path(out, suffix=out.suffix) as tmp:
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            content.to_excel(tmp, index=False, engine="openpyxl")
    return {"benchmark": bench.name, "submission": str(out), "server": fmt.server, "n": len(content)
            if isinstance(content, pd.DataFrame) else len(json.loads(content))}
