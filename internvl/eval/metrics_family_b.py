"""Scorers for the multimodal benchmarks (family B), reproducing the V1.2 evaluation scripts.

Same contract as :mod:`internvl.eval.metrics`: ``scorer(split, data, predictions)`` with the normalized
table and ``{id: raw model answer}``; percentages are x100. Splits that cannot be scored locally raise
instead of returning a number:

- test splits without gold (MMBench test, MMMU test, MathVista test): :class:`ServerScoredError`;
- LLaVA-Bench and MM-Vet need a GPT-4 judge: :class:`JudgeRequiredError` from ``score()``; once the
  judge has run, :func:`llava_bench_from_reviews` / :func:`mmvet_from_grades` give the final numbers;
- MathVista responses the rules cannot parse need the LLM answer extractor: :class:`ExtractorRequiredError`
  unless extractions are passed explicitly (never a silent fallback).
"""

from __future__ import annotations

# Created before the imports below on purpose: ``metrics`` registers this module at its end with
# ``SCORERS.update(metrics_family_b.SCORERS)``, which must find the name even when this module is the
# one imported first (it is filled in place at the bottom, and pushed to ``metrics`` too).
SCORERS: dict = {}

import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Mapping, Sequence  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from internvl.eval import metrics as _base  # noqa: E402
from internvl.eval.metrics import (  # noqa: E402
    PredictionMismatchError,
    ServerScoredError,
    _as_list,
    _coverage_problems,
    _gold_answers,
    _pct,
    _pct_by,
    _preview,
    _require_columns,
    _result,
    check_predictions,
    score_mmbench,
)
from internvl.eval.postprocess import levenshtein, mc_postprocess, vqa_normalize_prediction  # noqa: E402


class JudgeRequiredError(RuntimeError):
    """The split is scored by an LLM judge; score the judge's output with the ``*_from_*`` helpers."""


class ExtractorRequiredError(RuntimeError):
    """Some MathVista responses need the LLM answer extractor and no extraction was supplied."""


def _options(value: Any) -> dict[str, str]:
    return json.loads(value) if isinstance(value, str) and value else {}


def _server_scored(where: str):
    def scorer(split: str, data: pd.DataFrame, predictions: Mapping[str, str]) -> dict[str, Any]:
        raise ServerScoredError(
            f"{split}: the split has no local gold answers; it is server-scored ({where}). Submit the "
            "predictions there instead of scoring them here."
        )

    return scorer


def _judge_required(helper: str, judge: str):
    def scorer(split: str, data: pd.DataFrame, predictions: Mapping[str, str]) -> dict[str, Any]:
        raise JudgeRequiredError(
            f"{split}: needs a judge ({judge}); run the judge on the predictions, then compute the score "
            f"with internvl.eval.metrics_family_b.{helper}(...)"
        )

    return scorer


# --- MME ---------------------------------------------------------------------------------------------

MME_PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark",
                  "artwork", "OCR")
MME_COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
_CJK = re.compile(r"[\u4e00-\u9fa5]")


def mme_postprocess(response: str) -> str:
    """``eval.py``'s post-processing: drop newlines, 不是/是/否 -> No/Yes/No, lowercase, true/false ->
    yes/no, delete CJK characters (U+4E00..U+9FA5). Replacement order matters (不是 before 是)."""
    text = response.replace("\n", "").replace("不是", "No").replace("是", "Yes").replace("否", "No")
    text = text.lower().replace("true", "yes").replace("false", "no")
    return _CJK.sub("", text)


def mme_parse(answer: str) -> str:
    """``calculation.py``: exactly yes/no, else yes/no within the first 4 characters, else "other"."""
    if answer in ("yes", "no"):
        return answer
    head = answer[:4]
    if "yes" in head:
        return "yes"
    if "no" in head:
        return "no"
    return "other"


def score_mme(split: str, data: pd.DataFrame, predictions: Mapping[str, str]) -> dict[str, Any]:
    """Per subtask 100*acc + 100*acc+ (pairs = consecutive rows), perception / cognition sums.

    A post-processed response that still contains a tab makes the original's line split into more
    than 4 fields; ``calculation.py`` then skips the line (it counts in no accuracy, and its image
    cannot reach acc+). Reproduced and noted. A carriage return would split the line in the
    original; such responses are only counted in a note.
    """
    ids = check_predictions(split, data, predictions)
    _require_columns(split, data, ["category", "answers"])
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for rid, cat, answers in zip(ids, data["category"], data["answers"], strict=True):
        gold = _as_list(answers)
        if len(gold) != 1 or gold[0].lower() not in ("yes", "no"):
            raise ValueError(f"{split}: id {rid} needs one Yes/No gold answer, has {gold}")
        groups[str(cat)].append((rid, gold[0].lower()))
    metrics: dict[str, float] = {}
    notes: list[str] = []
    dropped = carriage = 0
    for cat, items in groups.items():
        if len(items) % 2:
            raise ValueError(f"{split}: subtask {cat} has {len(items)} questions; MME pairs them two by two")
        correct = counted = pairs_ok = other = 0
        for k in range(0, len(items), 2):
            pair_correct = 0
            for rid, gold in items[k:k + 2]:
                text = mme_postprocess(predictions[rid])
                carriage += "\r" in text
                if "\t" in text:  # the original's 4-field split fails: line skipped
                    dropped += 1
                    continue
                pred = mme_parse(text.lower())
                counted += 1
                other += pred == "other"
                if pred == gold:
                    correct += 1
                    pair_correct += 1
            pairs_ok += pair_correct == 2
        acc = correct / counted if counted else 0.0
        acc_plus = pairs_ok / (len(items) // 2)
        metrics[f"{cat}/acc"] = 100.0 * acc
        metrics[f"{cat}/acc_plus"] = 100.0 * acc_plus
        metrics[f"{cat}/score"] = 100.0 * acc + 100.0 * acc_plus
        metrics[f"{cat}/other"] = float(other)
    for name, subtasks in (("perception", MME_PERCEPTION), ("cognition", MME_COGNITION)):
        present = [s for s in subtasks if s in groups]
        if present:
            metrics[name] = sum(metrics[f"{s}/score"] for s in present)
        if len(present) != len(subtasks):
            notes.append(f"{name} sums {len(present)} of {len(subtasks)} subtasks "
                         f"(missing {[s for s in subtasks if s not in groups]})")
    unknown = sorted(set(groups) - set(MME_PERCEPTION) - set(MME_COGNITION))
    if unknown:
        notes.append(f"subtasks {unknown} are in neither perception nor cognition")
    if dropped:
        notes.append(f"{dropped} responses contain a tab after post-processing: skipped as calculation.py does")
    if carriage:
        notes.append(f"{carriage} responses contain a carriage return (the original's line reading would split "
                     "them); scored as one answer here")
    return _result(split, metrics, len(ids), notes)


# --- MMMU --------------------------------------------------------------------------------------------

MMMU_DOMAINS: dict[str, tuple[str, ...]] = {
    "Art and Design": ("Art", "Art_Theory", "Design", "Music"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Health and Medicine": ("Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine",
                            "Pharmacy", "Public_Health"),
    "Humanities and Social Science": ("History", "Literature", "Sociology", "Psychology"),
    "Tech and Engineering": ("Agriculture", "Architecture_and_Engineering", "Computer_Science", "Electronics",
                             "Energy_and_Power", "Materials", "Mechanical_Engineering"),
}
_MMMU_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
_MMMU_TRIVIAL = (":", ",", ".", "!", "?", ";", "'")
_NUM_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
_NUM_SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_NUM_SIMPLE = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


def mmmu_is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def mmmu_normalize_str(text: str) -> list[Any]:
    """A number becomes [float rounded to 2 dp]; a string is lowercased, and a 1-character string
    becomes [" x", "x "] so that it cannot match inside words."""
    text = text.strip()
    if mmmu_is_number(text):
        return [round(float(text.replace(",", "")), 2)]
    text = text.lower()
    return [" " + text, text + " "] if len(text) == 1 else [text]


def mmmu_extract_numbers(text: str) -> list[str]:
    """Numbers with thousands commas, then scientific notation, then plain numbers (in that order)."""
    return _NUM_COMMAS.findall(text) + _NUM_SCIENTIFIC.findall(text) + _NUM_SIMPLE.findall(text)


def _mmmu_key_responses(response: str) -> list[str]:
    text = response.strip().strip(".").lower()
    # the sentence split looks for ". " + capital letter, but runs after lower(): only "\n" splits
    subs = re.split(r"\.\s(?=[A-Z])|\n", text)
    keys: list[str] = []
    for i, sub in enumerate(subs):
        indicators = _MMMU_INDICATORS + (("=",) if i == len(subs) - 1 else ())
        shortest: str | None = None
        for ind in indicators:
            if ind in sub:
                tail = sub.split(ind)[-1].strip()
                if not shortest or len(tail) < len(shortest):  # an empty tail counts as "none yet"
                    shortest = tail
        if shortest and shortest.strip() not in _MMMU_TRIVIAL:
            keys.append(shortest)
    return keys or [text]


def mmmu_parse_open_response(response: str) -> list[Any]:
    """MMMU's ``parse_open_response``: the tail after the last cue word of each line (``=`` too in the
    last line), plus every number found in those tails, each normalized by :func:`mmmu_normalize_str`;
    duplicates removed."""
    keys = _mmmu_key_responses(response)
    candidates = list(keys)
    for k in keys:
        candidates.extend(mmmu_extract_numbers(k))
    out: list[Any] = []
    for c in candidates:
        for v in mmmu_normalize_str(c):
            if v not in out:
                out.append(v)
    return out


def mmmu_eval_open(gold: Sequence[str], parsed: Sequence[Any]) -> bool:
    """Correct if a parsed string contains a normalized gold string, or a parsed float equals a gold one."""
    norm: list[Any] = []
    for g in gold:
        norm.extend(mmmu_normalize_str(g))
    for p in parsed:
        if isinstance(p, str):
            if any(isinstance(a, str) and a in p for a in norm):
                return True
        elif any(not isinstance(a, str) and p == a for a in norm):
            return True
    return False


def score_mmmu(split: str, data: pd.DataFrame, predictions: Mapping[str, str]) -> dict[str, Any]:
    """Instance-weighted accuracy x100, overall, per subject and per domain (``main_eval_only.py``).

    The MC post-process is applied whenever the question has options (as ``evaluate_mmmu.py``); then
    multiple-choice questions need the exact gold letter and open questions go through
    :func:`mmmu_parse_open_response`. The original scores only the validation split locally; dev is
    scored the same way here because its gold answers are public.
    """
    ids = check_predictions(split, data, predictions)
    _require_columns(split, data, ["options", "answers", "question_type", "subject"])
    per_subject: dict[str, list[bool]] = defaultdict(list)
    correct_all: list[bool] = []
    empty = 0
    for rid, options, answers, qtype, subject in zip(
        ids, data["options"], data["answers"], data["question_type"], data["subject"], strict=True
    ):
        gold = _gold_answers(split, rid, answers)
        opts = _options(options)
        raw = predictions[rid]
        empty += not raw.strip()
        pred = mc_postprocess(raw, opts) if opts else raw
        if qtype == "multiple-choice":
            ok = pred in gold
        else:
            ok = mmmu_eval_open(gold, mmmu_parse_open_response(pred))
        correct_all.append(ok)
        per_subject[str(subject)].append(ok)
    metrics: dict[str, float] = {"accuracy": _pct(correct_all)}
    for domain, subjects in MMMU_DOMAINS.items():
        hits = [x for s in subjects for x in per_subject.get(s, [])]
        if hits:
            metrics[f"accuracy/Overall-{domain}"] = _pct(hits)
    metrics.update(_pct_by(per_subject, "accuracy/"))
    notes = ["instance-weighted accuracy as MMMU main_eval_only.py (which prints fractions rounded to 3 dp)"]
    if empty:
        notes.append(f"{empty} empty predictions scored as wrong (the original MC post-process crashes on them)")
    return _result(split, metrics, len(ids), notes)


# --- multiple choice with a letter gold (ScienceQA) -----------------------------------------------


def score_mc_letter(split: str, data: pd.DataFrame, predictions: Mapping[str, str]) -> dict[str, Any]:
    """Acc@1 x100: the MC post-process must give the gold letter exactly (``evaluate_scienceqa.py``)."""
    ids = check_predictions(split, data, predictions)
    _require_columns(split, data, ["options", "answers"])
    correct = empty = 0
    for rid, options, answers in zip(ids, data["options"], data["answers"], strict=True):
        gold = _as_list(answers)
        if len(gold) != 1:
            raise ValueError(f"{split}: id {rid} needs exactly one gold letter, has {gold}")
        empty += not predictions[rid].strip()
        correct += mc_postprocess(predictions[rid], _options(options)) == gold[0]
    notes = [f"{empty} empty predictions scored as wrong (the original crashes on them)"] if empty else []
    return _result(split, {"accuracy": 100.0 * correct / len(ids)}, len(ids), notes)


# --- MMVP --------------------------------------------------------------------------------------------


def score_mmvp(split: str, data: pd.DataFrame, predictions: Mapping[str, str]) -> dict[str, Any]:
    """Pair accuracy x100: rows 1-2, 3-4, ... in data order; a pair counts if both answers are right.

    Divided by the number of complete pairs (150 for the full set); a trailing odd row is not scored.
    """
    ids = check_predictions(split, data, predictions)
    _require_columns(split, data, ["options", "answers"])
    right: list[bool] = []
    for rid, options, answers in zip(ids, data["options"], data["answers"], strict=True):
        opts = _options(options)
        raw = predictions[rid]
        pred = mc_postprocess(raw, opts) if opts else raw
        right.append(pred in _as_list(answers))
    n_pairs = len(right) // 2
    if n_pairs == 0:
        raise ValueError(f"{split}: MMVP needs at least one pair of questions, got {len(right)} rows")
    pairs_ok = sum(right[2 * k] and right[2 * k + 1] for k in range(n_pairs))
    notes = []
    if len(right) % 2:
        notes.append(f"the last of {len(right)} rows has no partner and is not scored (as the original)")
    metrics = {"pair_accuracy": 100.0 * pairs_ok / n_pairs, "question_accuracy": _pct(right), "pairs": float(n_pairs)}
    return _result(split, metrics, len(ids), notes)


# --- Tiny LVLM-eHub --------------------------------------------------------------------------------

TINY_LVLM_CATEGORIES = ("Visual_Reasoning", "Visual_Perception", "Visual_Knowledge_Acquisition",
                        "Visual_Commonsense", "Object_Hallucination")


def tiny_lvlm_correct(prediction: str, gt_answers: Sequence[str]) -> bool:
    """Both sides VQA-normalized; correct if some GT appears as a whole word (``\\b`` on both ends)."""
    pred = vqa_normalize_prediction(prediction)
    for gt in gt_answers:
        if re.search(r"\b" + re.escape(vqa_normalize_prediction(gt)) + r"\b", pred):
            return True
    return False


def score_tiny_lvlm(split: str, data: pd.DataFrame, predictions: Mapping[str, str]) -> dict[str, Any]:
    """Per category accuracy x100 and ``overall`` = their sum (max 500), as ``calculate_score.py``."""
    ids = check_predictions(split, data, predictions)
    _require_columns(split, data, ["category", "answers"])
    per_cat: dict[str, list[bool]] = defaultdict(list)
    for rid, cat, answers in zip(ids, data["category"], data["answers"], strict=True):
        per_cat[str(cat)].append(tiny_lvlm_correct(predictions[rid], _as_list(answers)))
    metrics = _pct_by(per_cat, "accuracy/")
    metrics["overall"] = sum(metrics[f"accuracy/{c}"] for c in per_cat)
    notes = []
    missing = [c for c in TINY_LVLM_CATEGORIES if c not in per_cat]
    if missing:
        notes.append(f"overall sums {len(per_cat)} categories; missing {missing}")
    return _result(split, metrics, len(ids), notes)


# --- SEED-Bench-1 ------------------------------------------------------------------------------------

SEED_QUESTION_TYPES: dict[int, str] = {
    1: "Scene Understanding", 2: "Instance Identity", 3: "Instance Attributes", 4: "Instance Location",
    5: "Instances Counting", 6: "Spatial Relation", 7: "Instance Interaction", 8: "Visual Reasoning",
    9: "Text Understanding", 10: "Action Recognition", 11: "Action Prediction", 12: "Procedure Understanding",
}  # fmt: skip


def score_seed(split: str, data: pd.DataFrame, predictions: Mapping[str, str]) -> dict[str, Any]:
    """First character of the raw prediction vs the gold letter; per type, image (1-9), video, total.

    A type without questions scores 0 with a count of 0 and a note (``calculation.py`` divides by
    zero there); an empty prediction counts as wrong (the original indexes it and crashes).
    """
    ids = check_predictions(split, data, predictions)
    _require_columns(split, data, ["answers", "question_type_id"])
    names = dict(SEED_QUESTION_TYPES)
    if "question_type" in data.columns:
        names.update({int(t): str(n) for t, n in zip(data["question_type_id"], data["question_type"], strict=True)})
    per_type: dict[int, list[bool]] = {t: [] for t in names}
    empty = 0
    for rid, answers, tid in zip(ids, data["answers"], data["question_type_id"], strict=True):
        gold = _as_list(answers)
        if len(gold) != 1:
            raise ValueError(f"{split}: id {rid} needs exactly one gold letter, has {gold}")
        pred = predictions[rid]
        empty += pred == ""
        first = pred if len(pred) <= 1 else pred[0]
        per_type.setdefault(int(tid), []).append(first == gold[0])
    metrics: dict[str, float] = {}
    notes: list[str] = []
    no_results = []
    for tid in sorted(per_type):
        res = per_type[tid]
        name = names.get(tid, str(tid))
        metrics[f"accuracy/{name}"] = _pct(res) if res else 0.0
        metrics[f"count/{name}"] = float(len(res))
        if not res:
            no_results.append(name)
    for key, lo, hi in (("image_accuracy", 1, 9), ("video_accuracy", 10, 12)):
        res = [x for t, r in per_type.items() if lo <= t <= hi for x in r]
        metrics[key] = _pct(res) if res else 0.0
        if not res:
            notes.append(f"{key}: no questions of types {lo}-{hi}; reported as 0 (the original crashes)")
    everything = [x for r in per_type.values() for x in r]
    metrics["total_accuracy"] = _pct(everything)
    if no_results:
        notes.append(f"types without questions scored 0/0 -> 0 (the original divides by zero): {no_results}")
    if empty:
        notes.append(f"{empty} empty predictions scored as wrong (the original crashes on them)")
    return _result(split, metrics, len(ids), notes)


# --- MathVista (rule path) ---------------------------------------------------------------------------


def mathvista_rule_extraction(response: str, question_type: str, answer_type: str,
                              choices: Sequence[str]) -> str | None:
    """The rules ``extract_answer.py`` tries before calling the LLM; ``None`` = the LLM is needed.

    Empty response -> ""; a multi-choice response equal to a choice -> itself; an integer answer that
    ``int()`` parses -> ``str(int(response))``; a float answer that ``float()`` parses ->
    ``str(float(response))``. (``quick_extract`` is off in V1.2.)
    """
    if response == "":
        return ""
    if question_type == "multi_choice" and response in choices:
        return response
    if answer_type == "integer":
        try:
            return str(int(response))
        except ValueError:
            pass
    if answer_type == "float":
        try:
            return str(float(response))
        except ValueError:
            pass
    return None


def mathvista_normalize(extraction: Any, choices: Sequence[str], question_type: str, answer_type: str,
                        precision: float | None, hf_precision_quirk: bool = True) -> str | None:
    """``calculate_score.py``'s ``normalize_extracted_answer``.

    Multi-choice: strip; the first "(X)" gives letter X (upper-cased); a letter of the options maps to
    its choice text, anything else to the Levenshtein-closest choice (first on ties). Integer:
    ``str(int(float(x)))``; float: ``str(round(float(x), precision))``; list: ``str(x)``; a failure
    gives ``None``. With ``hf_precision_quirk`` the V1.2 script's ``round(x, precision)`` receives the
    HF dataset's float precision (e.g. 1.0), which raises, so every float answer normalizes to
    ``None`` (later InternVL versions cast ``int(precision)``).
    """
    if question_type == "multi_choice":
        text = extraction.strip() if isinstance(extraction, str) else str(extraction)
        letter = re.findall(r"\(([a-zA-Z])\)", text)
        if letter:
            text = letter[0].upper()
        letters = [chr(ord("A") + i) for i in range(len(choices))]
        if text in letters:
            return choices[letters.index(text)]
        distances = [levenshtein(text, c) for c in choices]
        return choices[distances.index(min(distances))]
    if answer_type == "integer":
        try:
            return str(int(float(extraction)))
        except (TypeError, ValueError, OverflowError):
            return None
    if answer_type == "float":
        if hf_precision_quirk and precision is not None:
            return None  # round(x, 1.0) -> TypeError in the original -> None
        try:
            digits = None if precision is None else int(precision)
            return str(round(float(extraction), digits))
        except (TypeError, ValueError, OverflowError):
            return None
    if answer_type == "list":
        return str(extraction)
    return extraction


def _mathvista_problems(split: str, data: pd.DataFrame) -> list[dict[str, Any]]:
    _require_columns(split, data, ["options", "answers", "question_type", "answer_type", "precision"])
    out = []
    for row in data.to_dict(orient="records"):
        prec = row["precision"]
        out.append({
            "id": str(row["id"]),
            "choices": list(_options(row["options"]).values()),
            "question_type": row["question_type"],
            "answer_type": row["answer_type"],
            "precision": None if prec is None or (isinstance(prec, float) and math.isnan(prec)) else float(prec),
            "answers": _as_list(row["answers"]),
            "row": row,
        })
    return out


def mathvista_needs_extractor(split: str, data: pd.DataFrame, predictions: Mapping[str, str]) -> list[str]:
    """Ids whose response the rules cannot parse (the ones to send to the LLM answer extractor)."""
    check_predictions(split, data, predictions)
    return [p["id"] for p in _mathvista_problems(split, data)
            if mathvista_rule_extraction(predictions[p["id"]], p["question_type"], p["answer_type"],
                                         p["choices"]) is None]


def score_mathvista(split: str, data: pd.DataFrame, predictions: Mapping[str, str],
                    extractions: Mapping[str, str] | None = None, hf_precision_quirk: bool = True) -> dict[str, Any]:
    """Accuracy x100 of ``prediction == answer`` after rule (or supplied LLM) extraction and normalization.

    ``extractions`` ({id: extracted answer}) or a non-null ``extraction`` column in ``data`` supply the
    LLM extractor's output for the responses the rules cannot parse; the rules still come first, as in
    ``extract_answer.py``. If any such response has no extraction, :class:`ExtractorRequiredError`
    lists them. Also per question_type, answer_type and metadata field (as ``calculate_score.py``).
    """
    ids = check_predictions(split, data, predictions)
    problems = _mathvista_problems(split, data)
    supplied: dict[str, str] = {}
    if "extraction" in data.columns:
        for rid, ext in zip(ids, data["extraction"], strict=True):
            if isinstance(ext, str):
                supplied[rid] = ext
    if extractions is not None:
        unknown = set(extractions) - set(ids)
        if unknown:
            raise PredictionMismatchError(f"{split}: extractions for ids not in the data: {_preview(unknown)}")
        supplied.update({str(k): v for k, v in extractions.items()})
    results: list[tuple[dict[str, Any], bool]] = []
    need: list[str] = []
    by_llm = 0
    for p in problems:
        rid = p["id"]
        if not p["answers"]:
            raise ValueError(f"{split}: id {rid} has no gold answer")
        ext = mathvista_rule_extraction(predictions[rid], p["question_type"], p["answer_type"], p["choices"])
        if ext is None:
            if rid not in supplied:
                need.append(rid)
                continue
            ext = supplied[rid]
            by_llm += 1
        pred = mathvista_normalize(ext, p["choices"], p["question_type"], p["answer_type"], p["precision"],
                                   hf_precision_quirk)
        results.append((p, pred == p["answers"][0]))
    if need:
        raise ExtractorRequiredError(
            f"{split}: {len(need)} responses need the LLM answer extractor (gpt-3.5-turbo few-shot in V1.2); "
            f"pass extractions={{id: extracted answer}} or an 'extraction' column for ids {_preview(need)}"
        )
    metrics: dict[str, float] = {"accuracy": _pct([ok for _, ok in results])}
    for key in ("question_type", "answer_type", "language", "source", "category", "task", "context", "grade"):
        groups: dict[str, list[bool]] = defaultdict(list)
        for p, ok in results:
            value = p["row"].get(key)
            if isinstance(value, str):
                groups[value].append(ok)
        metrics.update(_pct_by(groups, f"accuracy/{key}/"))
    skills: dict[str, list[bool]] = defaultdict(list)
    for p, ok in results:
        for s in _as_list(p["row"].get("skills")):
            skills[s].append(ok)
    metrics.update(_pct_by(skills, "accuracy/skills/"))
    metrics["llm_extracted"] = float(by_llm)
    notes = [f"{by_llm} of {len(results)} answers from the supplied LLM extractions, the rest from the rules"]
    n_float = sum(p["answer_type"] == "float" and p["precision"] is not None for p, _ in results)
    if hf_precision_quirk and n_float:
        notes.append(f"hf_precision_quirk: {n_float} float answers scored wrong as at 0bfa5e7 (round(x, float "
                     "precision) raises there); pass hf_precision_quirk=False for the intended rounding")
    return _result(split, metrics, len(ids), notes)


# --- judge-scored: LLaVA-Bench and MM-Vet --------------------------------------------------------


def _check_scores(name: str, ids: list[str], scores: Mapping[str, Any]) -> None:
    parts = _coverage_problems(ids, scores, f"ids without a {name}", f"{name}s for ids not in the data")
    if parts:
        raise PredictionMismatchError("; ".join(parts))


def llava_bench_from_reviews(data: pd.DataFrame, model_scores: Mapping[str, float],
                             reference_scores: Mapping[str, float]) -> dict[str, Any]:
    """Final LLaVA-Bench numbers from the GPT-4 review scores, as ``summarize_gpt_review.py`` prints them.

    ``reference_scores`` are the judge's scores of the GPT-4 reference (Assistant 1), ``model_scores``
    those of the model (Assistant 2), per question id. Per category and for ``all``: the means of the
    two are rounded to 3 dp, then ``relative_score`` = round(100 * model / reference, 1); also
    ``reference_score_x10`` / ``model_score_x10`` = round(10 * mean, 1). A failed review parse is
    [-1, -1] in the original and is averaged in as such (noted).
    """
    split = "llava-bench"
    _require_columns(split, data, ["id", "category"])
    ids = [str(i) for i in data["id"]]
    _check_scores("model score", ids, model_scores)
    _check_scores("reference score", ids, reference_scores)
    groups: dict[str, list[list[float]]] = defaultdict(list)
    failed = 0
    for rid, cat in zip(ids, data["category"], strict=True):
        pair = [float(reference_scores[rid]), float(model_scores[rid])]
        failed += pair == [-1.0, -1.0]
        groups[f"llava_bench_{cat}"].append(pair)
        groups["all"].append(pair)
    metrics: dict[str, float] = {}
    for key in sorted(groups):
        ref, model = (round(float(x), 3) for x in np.asarray(groups[key], dtype=float).mean(0).tolist())
        suffix = "" if key == "all" else "/" + key.removeprefix("llava_bench_")
        metrics[f"relative_score{suffix}"] = round(model / ref * 100, 1)
        metrics[f"reference_score_x10{suffix}"] = round(ref * 10, 1)
        metrics[f"model_score_x10{suffix}"] = round(model * 10, 1)
    notes = ["relative score = 100 * mean(model) / mean(GPT-4 reference), means rounded to 3 dp first, as "
             "summarize_gpt_review.py"]
    if failed:
        notes.append(f"{failed} reviews are [-1, -1] (unparsable judge output) and are averaged in, as the original")
    return _result(split, metrics, len(ids), notes)


def mmvet_from_grades(data: pd.DataFrame, grades: Mapping[str, float]) -> dict[str, Any]:
    """Final MM-Vet numbers from the GPT-4 grader's per-question scores (0.0-1.0).

    ``grades`` is keyed by question id or by ``v1_<id>`` (the upload keys). ``total`` = 100 * mean over
    all questions; ``<capability>`` = 100 * mean over the questions that need it.
    """
    split = "mmvet"
    _require_columns(split, data, ["id", "capability"])
    ids = [str(i) for i in data["id"]]
    if "mmvet_key" in data.columns and grades and all(str(k).startswith("v1_") for k in grades):
        key_to_id = {str(k): i for k, i in zip(data["mmvet_key"], ids, strict=True)}
        unknown = [k for k in grades if k not in key_to_id]
        if unknown:
            raise PredictionMismatchError(f"grades for keys not in the data: {_preview(unknown)}")
        grades = {key_to_id[k]: v for k, v in grades.items()}
    _check_scores("grade", ids, grades)
    bad = [i for i in ids if not 0.0 <= float(grades[i]) <= 1.0]
    if bad:
        raise ValueError(f"MM-Vet grades must be in [0, 1]; not for ids {_preview(bad)}")
    per_cap: dict[str, list[float]] = defaultdict(list)
    scores = []
    for rid, caps in zip(ids, data["capability"], strict=True):
        g = float(grades[rid])
        scores.append(g)
        for c in _as_list(caps):
            per_cap[c].append(g)
    metrics = {"total": _pct(scores), **_pct_by(per_cap, "")}
    return _result(split, metrics, len(ids), ["mean grader score x100 (unrounded; the grader prints 1 dp)"])


# --- registry ----------------------------------------------------------------------------------------

SCORERS.update({
    "mme": score_mme,
    "mmbench-dev-cn": score_mmbench,
    "mmbench-test-en": _server_scored("MMBench evaluation server, CircularEval"),
    "mmbench-test-cn": _server_scored("MMBench evaluation server, CircularEval"),
    "mmmu-dev": score_mmmu,
    "mmmu-val": score_mmmu,
    "mmmu-test": _server_scored("EvalAI, MMMU challenge 2179"),
    "scienceqa": score_mc_letter,
    "tiny_lvlm": score_tiny_lvlm,
    "llava-bench": _judge_required("llava_bench_from_reviews", "GPT-4-0613 review against the GPT-4 reference"),
    "mmvet": _judge_required("mmvet_from_grades", "the official MM-Vet GPT-4 grader"),
    "mmvp": score_mmvp,
    "mathvista-testmini": score_mathvista,
    "mathvista-test": _server_scored("MathVista test evaluation server"),
    "seed": score_seed,
})
_base.SCORERS.update(SCORERS)  # no-op when metrics.py already registered this module
