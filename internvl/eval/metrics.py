"""Benchmark scorers that reproduce the InternVL V1.2 metrics on normalized data.

``score(split, data, predictions)`` takes the normalized table (as a DataFrame, see
``internvl.data.schema``) and ``{id: raw model answer}``; every id must be predicted exactly once, so
a truncated or mixed-up prediction file fails instead of producing a plausible number. Results are
``{"benchmark", "metrics": {name: float}, "n", "notes"}``; percentages are x100 as the original
scripts print them, caption metrics are raw pycocoevalcap values plus ``CIDEr_x100``.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from internvl.eval.postprocess import (
    mc_postprocess,
    pope_yes_no,
    vqa_clean_whitespace,
    vqa_normalize_prediction,
    vqa_process_punctuation,
)

MMBENCH_CIRCULAR_MOD = 1_000_000  # rotated copies of MMBench question i have index i + k * 1e6


class PredictionMismatchError(ValueError):
    """Predictions and data do not cover the same ids."""


class ServerScoredError(RuntimeError):
    """The split has no local gold answers; only its evaluation server can score it (write the
    submission file with :mod:`internvl.eval.submission` instead). One class for every family, so
    callers catch one type whichever scorer raised it."""


# --- shared checks -----------------------------------------------------------------------------------


def _preview(items: Iterable[str], k: int = 5) -> str:
    items = sorted(items)
    more = f" ... (+{len(items) - k} more)" if len(items) > k else ""
    return ", ".join(repr(i) for i in items[:k]) + more


def check_predictions(split: str, data: pd.DataFrame, predictions: Mapping[str, str]) -> list[str]:
    """Return the data ids in order after checking predictions cover exactly those ids with strings."""
    if "id" not in data.columns:
        raise ValueError(f"{split}: data has no 'id' column")
    ids = [str(i) for i in data["id"].tolist()]
    if len(set(ids)) != len(ids):
        dup = [i for i, c in Counter(ids).items() if c > 1]
        raise ValueError(f"{split}: duplicate ids in data: {_preview(dup)}")
    parts = _coverage_problems(ids, predictions, "ids without a prediction", "predicted ids not in the data")
    if parts:
        raise PredictionMismatchError(f"{split}: " + "; ".join(parts))
    bad = [i for i in ids if not isinstance(predictions[i], str)]
    if bad:
        raise PredictionMismatchError(f"{split}: predictions must be strings; not for ids {_preview(bad)}")
    return ids


def _coverage_problems(ids: Iterable[str], keyed: Iterable[str], missing_what: str, unknown_what: str) -> list[str]:
    """What keeps ``keyed`` from covering exactly ``ids``: ``"<n> <missing_what>: <ids>"`` for ids it lacks,
    ``"<n> <unknown_what>: <keys>"`` for keys that are no id; empty when they match."""
    id_set, key_set = set(ids), set(keyed)
    missing, unknown = id_set - key_set, key_set - id_set
    parts = []
    if missing:
        parts.append(f"{len(missing)} {missing_what}: {_preview(missing)}")
    if unknown:
        parts.append(f"{len(unknown)} {unknown_what}: {_preview(unknown)}")
    return parts


def _require_columns(split: str, data: pd.DataFrame, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise ValueError(f"{split}: data lacks columns {missing}")


def _as_list(value: Any) -> list[str]:
    """Parquet list cells arrive as numpy arrays in pandas; make them plain lists."""
    if value is None:
        return []
    return [str(v) for v in list(value)]


def _optional_column(data: pd.DataFrame, col: str, n: int, default: Any = None) -> Sequence[Any]:
    """``data[col]``, or ``n`` times ``default`` when the table has no such column."""
    return data[col] if col in data.columns else [default] * n


def _gold_answers(split: str, rid: str, answers: Any) -> list[str]:
    """The row's gold answers as a list; a row without any is an error."""
    gold = _as_list(answers)
    if not gold:
        raise ValueError(f"{split}: id {rid} has no gold answer")
    return gold


def _pct(values: Sequence[float]) -> float:
    """Mean x100 (accuracies are reported as percentages)."""
    return 100.0 * sum(values) / len(values)


def _pct_by(groups: Mapping[str, Sequence[float]], prefix: str) -> dict[str, float]:
    """``{<prefix><key>: mean x100}`` for each group, in sorted key order."""
    return {f"{prefix}{key}": _pct(groups[key]) for key in sorted(groups)}


def _accuracy_by_type(accs: Sequence[float], types: Iterable[Any]) -> dict[str, float]:
    """``accuracy`` over all rows, then ``accuracy/<type>`` per non-null type (the VQA tables)."""
    per_type: dict[str, list[float]] = defaultdict(list)
    for acc, atype in zip(accs, types, strict=True):
        if atype is not None:
            per_type[str(atype)].append(acc)
    return {"accuracy": _pct(accs), **_pct_by(per_type, "accuracy/")}


def _result(split: str, metrics: dict[str, float], n: int, notes: list[str]) -> dict[str, Any]:
    return {"benchmark": split, "metrics": {k: float(v) for k, v in metrics.items()}, "n": n, "notes": notes}


# --- VQA accuracy ------------------------------------------------------------------------------------


def vqa_accuracy(prediction: str, gt_answers: Sequence[str]) -> float:
    """Accuracy of one answer in [0, 1], as InternVL's copy of the VQA evaluator computes it.

    The prediction is always fully normalized; GT answers get whitespace clean-up and, only when they
    are not all identical, the punctuation step. The score is the mean over leave-one-out subsets
    (drop GT answer i) of min(1, #matches among the others / 3).
    """
    if not gt_answers:
        raise ValueError("vqa_accuracy needs at least one gold answer")
    gts = [vqa_clean_whitespace(a) for a in gt_answers]
    pred = vqa_normalize_prediction(prediction)
    if len(set(gts)) > 1:
        gts = [vqa_process_punctuation(a) for a in gts]
    hits = [a == pred for a in gts]
    total = sum(hits)
    return sum(min(1.0, (total - h) / 3.0) for h in hits) / len(gts)


def score_vqa(split: str, data: pd.DataFrame, predictions: Mapping[str, str]) -> dict[str, Any]:
    """Overall and per-answer-type VQA accuracy x100 (unrounded; the original prints 2 decimals)."""
    ids = check_predictions(split, data, predictions)
    _require_columns(split, data, ["answers"])
    accs = [vqa_accuracy(predictions[rid], _as_list(answers)) for rid, answers in zip(ids, data["answers"], strict=True)]
    metrics = _accuracy_by_type(accs, _optional_column(data, "answer_type", len(ids)))
    notes = [
        "VQA accuracy as InternVL's VQAEval copy: every prediction normalized (the official script "
        "normalizes only when the 10 GT answers disagree); values unrounded, the original prints 2 dp"
    ]
    return _result(split, metrics, len(ids), notes)


# --- POPE --------------------------------------------------------------------------------------------


def pope_counts(preds: Sequence[str], labels: Sequence[str]) -> dict[str, int]:
    """TP/FP/TN/FN with "yes" as the positive class, pairing ``preds[k]`` with ``labels[k]``."""
    if len(preds) != len(labels):
        raise ValueError(f"{len(preds)} predictions vs {len(labels)} labels")
    c = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    for p, y in zip(preds, labels, strict=True):
        if p == "yes":
            c["tp" if y == "yes" else "fp"] += 1
        else:
            c["tn" if y == "no" else "fn"] += 1
    return c


def score_pope(split: str, data: pd.DataFrame, predictions: Mapping[str, str]) -> dict[str, Any]:
    """Per-category accuracy, precision, recall, F1, yes-ratio (x100) and the mean F1 headline.

    The original pairs answers with label-file lines by order; the normalizer did that pairing and
    verified it (same image and question), and here answers are matched to rows by id, so order in
    the prediction file no longer matters. Precision/recall with an empty denominator crash the
    original; we report 0 and say so.
    """
    ids = check_predictions(split, data, predictions)
    _require_columns(split, data, ["split", "label"])
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for rid, cat, label in zip(ids, data["split"], data["label"], strict=True):
        preds, labels = groups.setdefault(str(cat), ([], []))
        if label not in ("yes", "no"):
            raise ValueError(f"{split}: id {rid} has label {label!r}; POPE labels are 'yes' or 'no'")
        preds.append(pope_yes_no(predictions[rid]))
        labels.append(label)
    metrics: dict[str, float] = {}
    notes: list[str] = []
    f1s = []
    for cat in sorted(groups):
        preds, labels = groups[cat]
        c = pope_counts(preds, labels)
        n = len(preds)
        tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
        if tp + fp == 0 or tp + fn == 0:
            notes.append(f"{cat}: precision or recall has a zero denominator (the original crashes); set to 0")
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        metrics.update(
            {
                f"{cat}/accuracy": 100.0 * (tp + tn) / n,
                f"{cat}/precision": 100.0 * precision,
                f"{cat}/recall": 100.0 * recall,
                f"{cat}/f1": 100.0 * f1,
                f"{cat}/yes_ratio": 100.0 * preds.count("yes") / n,
                **{f"{cat}/{k}": float(v) for k, v in c.items()},
            }
        )
    metrics["f1_mean"] = 100.0 * sum(f1s) / len(f1s)
    if len(groups) != 3:
        notes.append(f"headline f1_mean is the mean over {sorted(groups)} only (POPE has 3 categories)")
    return _result(split, metrics, len(ids), notes)


# --- MMBench -----------------------------------------------------------------------------------------


def score_mmbench(split: str, data: pd.DataFrame, predictions: Mapping[str, str]) -> dict[str, Any]:
    """Plain and CircularEval accuracy (x100), overall and per category, after the MC post-process.

    CircularEval groups rows by ``index % 1e6`` (rotated copies of a question); a group counts only
    if all its rows are right. With no copies the two numbers coincide, which a note says. The
    official server additionally asks an LLM to map unmatched free text to a letter; not done here.
    """
    ids = check_predictions(split, data, predictions)
    _require_columns(split, data, ["options", "answers", "category"])
    notes: list[str] = []
    correct: list[bool] = []
    empty = 0
    groups: dict[int, list[bool]] = defaultdict(list)
    group_cat: dict[int, str] = {}
    per_cat: dict[str, list[bool]] = defaultdict(list)
    for rid, options, answers, cat in zip(ids, data["options"], data["answers"], data["category"], strict=True):
        gold = _as_list(answers)
        if len(gold) != 1:
            raise ValueError(f"{split}: id {rid} has {len(gold)} gold answers; MMBench scoring needs exactly one")
        raw = predictions[rid]
        if not raw.strip():
            empty += 1
        ok = mc_postprocess(raw, json.loads(options)) == gold[0]
        correct.append(ok)
        per_cat[str(cat)].append(ok)
        group = int(rid) % MMBENCH_CIRCULAR_MOD
        groups[group].append(ok)
        group_cat.setdefault(group, str(cat))
    metrics: dict[str, float] = {
        "accuracy": _pct(correct),
        "circular_accuracy": 100.0 * sum(all(g) for g in groups.values()) / len(groups),
        "empty_predictions": float(empty),
    }
    for cat in sorted(per_cat):
        metrics[f"accuracy/{cat}"] = _pct(per_cat[cat])
        cat_groups = [all(g) for k, g in groups.items() if group_cat[k] == cat]
        metrics[f"circular_accuracy/{cat}"] = 100.0 * sum(cat_groups) / len(cat_groups)
    if all(len(g) == 1 for g in groups.values()):
        notes.append("no rotated copies (index % 1e6 unique): circular_accuracy equals plain accuracy")
    else:
        single = sum(len(g) == 1 for g in groups.values())
        notes.append(f"CircularEval over {len(groups)} question groups ({single} without rotated copies)")
    if empty:
        notes.append(f"{empty} empty predictions scored as wrong (the original crashes on them)")
    return _result(split, metrics, len(ids), notes)


# --- captions (pycocoevalcap) ------------------------------------------------------------------------

_LINE_BREAKS = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def spice_available() -> bool:
    """SPICE needs Stanford CoreNLP 3.6.0 jars that pycocoevalcap downloads on first use (offline: fails)."""
    try:
        import pycocoevalcap
    except ImportError:
        return False
    for base in map(Path, pycocoevalcap.__path__):
        lib = base / "spice" / "lib"
        if (lib / "stanford-corenlp-3.6.0.jar").is_file() and (lib / "stanford-corenlp-3.6.0-models.jar").is_file():
            return True
    return False


def _one_line(text: str) -> tuple[str, bool]:
    """The PTB tokenizer runs line by line; any line break inside a caption would shift all later ones."""
    out = text
    for ch in _LINE_BREAKS:
        out = out.replace(ch, " ")
    return out, out != text


def caption_metrics(
    references: Mapping[int, Sequence[str]],
    predictions: Mapping[int, str],
    meteor: bool = True,
    spice: bool | None = None,
) -> tuple[dict[str, float], list[str]]:
    """COCO caption metrics with our own scorer list (never ``COCOEvalCap.evaluate()``, whose
    unconditional SPICE set-up fails offline and loses every metric).

    Same steps as COCOEvalCap: PTB-tokenize references and predictions separately, then Bleu(4),
    METEOR, ROUGE_L, CIDEr (and SPICE when ``spice`` is true, or None and its jars are present).
    Returns raw pycocoevalcap values and notes.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    if set(references) != set(predictions):
        raise ValueError("references and predictions must have the same image ids")
    notes: list[str] = []
    changed = 0
    gts: dict[int, list[dict[str, str]]] = {}
    res: dict[int, list[dict[str, str]]] = {}
    for img in references:
        refs = []
        for c in references[img]:
            c1, ch = _one_line(c)
            changed += ch
            refs.append({"caption": c1})
        if not refs:
            raise ValueError(f"image {img} has no reference caption")
        gts[img] = refs
        p1, ch = _one_line(predictions[img])
        changed += ch
        res[img] = [{"caption": p1}]
    if changed:
        notes.append(f"{changed} captions had carriage returns / line separators replaced by spaces")
    tok = PTBTokenizer()
    gts_t, res_t = tok.tokenize(gts), tok.tokenize(res)
    for img in gts:
        if len(gts_t.get(img, [])) != len(gts[img]) or len(res_t.get(img, [])) != 1:
            raise RuntimeError(f"PTB tokenizer output does not line up with the input (image {img})")

    metrics: dict[str, float] = {}
    bleu, _ = Bleu(4).compute_score(gts_t, res_t, verbose=0)
    metrics.update({f"Bleu_{i + 1}": b for i, b in enumerate(bleu)})
    if meteor:
        metrics["METEOR"] = _meteor(gts_t, res_t)
    else:
        notes.append("METEOR not computed (disabled by the caller)")
    metrics["ROUGE_L"], _ = Rouge().compute_score(gts_t, res_t)
    metrics["CIDEr"], _ = Cider().compute_score(gts_t, res_t)
    use_spice = spice_available() if spice is None else spice
    if use_spice:
        from pycocoevalcap.spice.spice import Spice

        try:
            metrics["SPICE"], _ = Spice().compute_score(gts_t, res_t)
        except (subprocess.CalledProcessError, OSError) as exc:
            notes.append(f"SPICE failed ({exc}); not reported")
    else:
        notes.append("SPICE skipped: Stanford CoreNLP 3.6.0 jars are not in pycocoevalcap/spice/lib (offline)")
    return {k: float(v) for k, v in metrics.items()}, notes


def _meteor(gts: dict, res: dict) -> float:
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = Meteor()
    try:
        value, _ = scorer.compute_score(gts, res)
    finally:  # stop the JVM now rather than whenever the object is collected
        proc = scorer.meteor_p
        if proc.poll() is None:
            proc.stdin.close()
            proc.kill()
            proc.wait()
    return float(value)


def score_caption(split: str, data: pd.DataFrame, predictions: Mapping[str, str]) -> dict[str, Any]:
    """BLEU-1..4, METEOR, ROUGE_L, CIDEr (raw), SPICE when available, and headline ``CIDEr_x100``."""
    ids = check_predictions(split, data, predictions)
    _require_columns(split, data, ["answers"])
    refs = {int(rid): _as_list(a) for rid, a in zip(ids, data["answers"], strict=True)}
    preds = {int(rid): predictions[rid] for rid in ids}
    metrics, notes = caption_metrics(refs, preds, meteor=True)
    metrics["CIDEr_x100"] = 100.0 * metrics["CIDEr"]
    return _result(split, metrics, len(ids), notes)


# --- registry ----------------------------------------------------------------------------------------

Scorer = Callable[[str, pd.DataFrame, Mapping[str, str]], dict[str, Any]]

SCORERS: dict[str, Scorer] = {
    "mmbench-dev-en": score_mmbench,
    "vqa-vqav2-val": score_vqa,
    "caption-coco": score_caption,
    "pope": score_pope,
}

def score(split: str, data: pd.DataFrame, predictions: dict[str, str]) -> dict[str, Any]:
    """Score ``{id: raw answer}`` for one split; see the module docstring for the result format."""
    if split not in SCORERS:
        raise KeyError(f"no scorer for split {split!r}; known: {sorted(SCORERS)}")
    return SCORERS[split](split, data, predictions)

from internvl.eval import metrics_family_a  # noqa: E402

SCORERS.update(metrics_family_a.SCORERS)

from internvl.eval import metrics_family_b  # noqa: E402

SCORERS.update(metrics_family_b.SCORERS)
