"""Post-processing and scorers: hand-checked cases, plus real POPE answers against real labels.

Expected numbers are computed by hand (or independently inside the test), never by calling the
function under test twice.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from conftest import REALDATA, needs_realdata, read_jsonl
from test_benchmarks_normalize import build_pope_root

from internvl.data.benchmarks import normalize
from internvl.eval.metrics import (
    SCORERS,
    PredictionMismatchError,
    caption_metrics,
    score,
    spice_available,
    vqa_accuracy,
)
from internvl.eval.postprocess import (
    mc_postprocess,
    pope_yes_no,
    vqa_normalize_prediction,
    vqa_process_punctuation,
)
from internvl.eval.registry import BENCHMARKS, resolve

# --- MC post-process -------------------------------------------------------------------------------

OPTS = {"A": "metal", "B": "wood", "C": "wooden table"}


@pytest.mark.parametrize(
    ("pred", "expected"),
    [
        ("B", "B"),  # single char
        ("  C \n", "C"),  # stripped first
        ("Z", "Z"),  # a single char is returned even if it is no option
        ("B. wood", "B"),  # leading option letter
        ("A wooden table", "A"),  # the leading letter wins over option text
        ("It is made of wood", "B"),  # first option whose text is a substring
        ("the wooden table", "B"),  # "wood" (B) comes before "wooden table" (C) in option order
        ("plastic", "plastic"),  # nothing matches: raw text, scores wrong
        ("", ""),  # the original crashes here
        ("   ", ""),
    ],
)
def test_mc_postprocess(pred: str, expected: str) -> None:
    assert mc_postprocess(pred, OPTS) == expected


# --- VQA normalization and accuracy -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Two", "2"),
        ("none", "0"),
        ("a dog.", "dog"),
        ("The Dog", "dog"),
        ("dont", "don't"),
        ("don't", "don't"),
        ("Im", "im"),  # capitalised contraction keys never match after lower-casing
        ("1,000", "1000"),  # digit-comma-digit: punctuation deleted, not spaced
        ("red, white", "red white"),  # ", " touches a space: deleted
        ("black/white", "black white"),  # no space next to "/": replaced by a space
        ("yes!", "yes"),
        ("3.5", "3.5"),  # period before a digit kept
        ("5.", "5"),  # period after a digit but not before one: removed
        ("U.S.A.", "usa"),
        ("  left\tside\n", "left side"),
    ],
)
def test_vqa_normalize_prediction(raw: str, expected: str) -> None:
    assert vqa_normalize_prediction(raw) == expected


def test_vqa_gt_gets_punctuation_only() -> None:
    assert vqa_process_punctuation("Two dogs.") == "Two dogs"  # no lower-casing, no number mapping


# Real VQA v2 val answers (DAM-QA restval records of question 63144000 and 452060001).
WATER_COLD = ["yes", "yes", "yes", "yes", "yes", "yes", "yes", "no", "no", "yes"]
HOLDING = [
    "racket",
    "yes",
    "tennis racket",
    "racket",
    "tennis racket",
    "racquet",
    "tennis racket",
    "tennis racket",
    "tennis racket",
    "racket",
]


def test_vqa_accuracy_by_hand() -> None:
    # 8 x "yes": every leave-one-out subset keeps >= 7 matches -> 1.0
    assert vqa_accuracy("Yes", WATER_COLD) == 1.0
    # "no" (2 of 10): dropping a "yes" leaves 2 matches (2/3) x8; dropping a "no" leaves 1 (1/3) x2
    assert vqa_accuracy("no", WATER_COLD) == pytest.approx((8 * 2 / 3 + 2 * 1 / 3) / 10)  # 0.6
    # "racket" x3: dropping one of them leaves 2 (2/3) x3, otherwise 3 (1.0) x7 -> 0.9
    assert vqa_accuracy("Racket.", HOLDING) == pytest.approx((3 * 2 / 3 + 7) / 10)
    # "racquet" x1: dropping it leaves 0, otherwise 1/3 x9 -> 0.3
    assert vqa_accuracy("racquet", HOLDING) == pytest.approx(9 * (1 / 3) / 10)
    assert vqa_accuracy("a tennis racket", HOLDING) == 1.0
    assert vqa_accuracy("two", ["2"] * 10) == 1.0
    assert vqa_accuracy("2", ["two"] * 10) == 0.0  # GT is not number-mapped
    assert vqa_accuracy("dont", ["don't"] * 3 + ["no"] * 7) == pytest.approx(1.0 * 7 / 10 + (2 / 3) * 3 / 10)
    assert vqa_accuracy("", WATER_COLD) == 0.0


def test_score_vqa_overall_and_per_type() -> None:
    data = pd.DataFrame(
        {
            "id": ["1", "2", "3"],
            "answers": [WATER_COLD, HOLDING, ["2"] * 10],
            "answer_type": ["yes/no", "other", "number"],
        }
    )
    res = score("vqa-vqav2-val", data, {"1": "no", "2": "racket", "3": "Two"})
    m = res["metrics"]
    assert res["benchmark"] == "vqa-vqav2-val" and res["n"] == 3
    assert m["accuracy"] == pytest.approx(100 * (0.6 + 0.9 + 1.0) / 3)
    assert m["accuracy/yes/no"] == pytest.approx(60.0)
    assert m["accuracy/other"] == pytest.approx(90.0)
    assert m["accuracy/number"] == pytest.approx(100.0)
    assert resolve("vqa-vqav2-val").headline in m


def test_prediction_ids_must_match() -> None:
    data = pd.DataFrame({"id": ["1", "2"], "answers": [["a"] * 10, ["b"] * 10], "answer_type": ["other"] * 2})
    with pytest.raises(PredictionMismatchError, match=r"ids without a prediction: '2'"):
        score("vqa-vqav2-val", data, {"1": "a"})
    with pytest.raises(PredictionMismatchError, match=r"not in the data: '7'"):
        score("vqa-vqav2-val", data, {"1": "a", "2": "b", "7": "c"})
    with pytest.raises(PredictionMismatchError, match="strings"):
        score("vqa-vqav2-val", data, {"1": "a", "2": None})
    with pytest.raises(KeyError, match="no scorer"):
        score("nope", data, {})


# --- POPE ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes", "yes"),
        ("No", "no"),
        ("No, there is no dog.", "no"),
        ("Yes, there is a dog. No cat.", "yes"),  # only the first sentence counts
        ("There is no dog", "no"),
        ("There is not a dog", "no"),
        ("Not at all", "yes"),  # "Not" is not in the word list
        ("no\n", "yes"),  # split on " " only: "no\n" is not the word "no"
        ("nope", "yes"),
        ("", "yes"),
    ],
)
def test_pope_yes_no(text: str, expected: str) -> None:
    assert pope_yes_no(text) == expected


@needs_realdata
def test_pope_llava_answers_against_real_labels(tmp_path: Path) -> None:
    build_pope_root(tmp_path)
    questions = read_jsonl(tmp_path / "pope" / "llava_pope_test.jsonl")
    data = normalize("pope", tmp_path).to_pandas()
    answers = read_jsonl(REALDATA / "pope" / "reference_outputs" / "llava-v1.5-13b_answers.jsonl")
    predictions = {str(a["question_id"]): a["text"] for a in answers}

    # independent expectation: labels straight from the label files (k-th question <-> k-th line),
    # answers are plain "Yes"/"No" in this file so the mapping is trivial
    assert {a["text"] for a in answers} == {"Yes", "No"}
    by_qid = {a["question_id"]: a["text"].lower() for a in answers}
    expected_f1 = []
    res = score("pope", data, predictions)
    m = res["metrics"]
    for s in ("adversarial", "popular", "random"):
        labels = [r["label"] for r in read_jsonl(REALDATA / "pope" / "coco" / f"coco_pope_{s}.json")]
        preds = [by_qid[q["question_id"]] for q in questions if q["category"] == s]
        # the label files are longer than this sample; like the original, the first len(preds) lines pair up
        pairs = list(zip(preds, labels[: len(preds)], strict=True))
        tp = sum(p == "yes" and y == "yes" for p, y in pairs)
        fp = sum(p == "yes" and y == "no" for p, y in pairs)
        tn = sum(p == "no" and y == "no" for p, y in pairs)
        fn = sum(p == "no" and y == "yes" for p, y in pairs)
        prec, rec = tp / (tp + fp), tp / (tp + fn)
        f1 = 2 * prec * rec / (prec + rec)
        expected_f1.append(f1)
        assert (m[f"{s}/tp"], m[f"{s}/fp"], m[f"{s}/tn"], m[f"{s}/fn"]) == (tp, fp, tn, fn)
        assert m[f"{s}/accuracy"] == pytest.approx(100 * (tp + tn) / len(pairs))
        assert m[f"{s}/precision"] == pytest.approx(100 * prec)
        assert m[f"{s}/recall"] == pytest.approx(100 * rec)
        assert m[f"{s}/f1"] == pytest.approx(100 * f1)
        assert m[f"{s}/yes_ratio"] == pytest.approx(100 * preds.count("yes") / len(preds))
    # hand-counted from the files: adversarial 9/3/7/1, popular 9/1/9/1, random 10/0/9/1
    assert (m["adversarial/tp"], m["adversarial/fp"], m["random/fp"], m["random/tn"]) == (9, 3, 0, 9)
    assert m["f1_mean"] == pytest.approx(100 * sum(expected_f1) / 3)
    assert m["f1_mean"] == pytest.approx(100 * (18 / 22 + 0.9 + 20 / 21) / 3)
    assert res["n"] == 60 and resolve("pope").headline == "f1_mean"

    del predictions["20000005"]
    with pytest.raises(PredictionMismatchError, match="20000005"):
        score("pope", data, predictions)


def test_pope_zero_denominator_is_reported() -> None:
    data = pd.DataFrame({"id": ["1", "2"], "split": ["random"] * 2, "label": ["no", "no"]})
    res = score("pope", data, {"1": "No.", "2": "no"})
    assert res["metrics"]["random/precision"] == 0.0 and res["metrics"]["random/accuracy"] == 100.0
    assert any("zero denominator" in n for n in res["notes"])
    assert any("mean over ['random'] only" in n for n in res["notes"])


# --- MMBench ---------------------------------------------------------------------------------------


def _mmb(rows: list[tuple[str, dict, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [r[0] for r in rows],
            "options": [json.dumps(r[1]) for r in rows],
            "answers": [[r[2]] for r in rows],
            "category": [r[3] for r in rows],
        }
    )


def test_mmbench_plain_and_circular() -> None:
    two = {"A": "cat", "B": "dog"}
    data = _mmb(
        [
            ("5", two, "A", "animals"),
            ("1000005", {"A": "dog", "B": "cat"}, "B", "animals"),
            ("6", two, "B", "animals"),
            ("1000006", {"A": "dog", "B": "cat"}, "A", "animals"),
            ("7", {"A": "1", "B": "2", "C": "3"}, "C", "counting"),
        ]
    )
    preds = {"5": "A", "1000005": "It is a cat", "6": "B", "1000006": "B. cat", "7": ""}
    res = score("mmbench-dev-en", data, preds)
    m = res["metrics"]
    # correct: 5, 1000005, 6 (3 of 5); groups: 5 ok, 6 not (1000006 wrong), 7 not (empty)
    assert m["accuracy"] == pytest.approx(60.0)
    assert m["circular_accuracy"] == pytest.approx(100 / 3)
    assert m["accuracy/animals"] == pytest.approx(75.0) and m["circular_accuracy/animals"] == pytest.approx(50.0)
    assert m["accuracy/counting"] == 0.0 and m["empty_predictions"] == 1.0
    assert any("1 empty predictions" in n for n in res["notes"])
    assert resolve("mmbench-dev-en").headline == "circular_accuracy"


def test_mmbench_without_copies_says_so() -> None:
    data = _mmb([("1", {"A": "x", "B": "y"}, "A", "c"), ("2", {"A": "x", "B": "y"}, "B", "c")])
    res = score("mmbench-dev-en", data, {"1": "A", "2": "A"})
    assert res["metrics"]["accuracy"] == res["metrics"]["circular_accuracy"] == 50.0
    assert any("equals plain accuracy" in n for n in res["notes"])


# --- captions --------------------------------------------------------------------------------------


def _coco_refs() -> dict[int, list[str]]:
    gt = json.loads((REALDATA / "coco_caption" / "coco_test_karpathy.json").read_text())
    refs: dict[int, list[str]] = {}
    for a in gt["annotations"]:
        refs.setdefault(a["image_id"], []).append(a["caption"])
    return refs


@needs_realdata
def test_caption_metrics_prediction_equals_a_reference() -> None:
    refs = _coco_refs()
    preds = {k: v[0] for k, v in refs.items()}
    metrics, notes = caption_metrics(refs, preds, meteor=False)
    assert metrics["Bleu_4"] > 0.9 and metrics["Bleu_1"] > 0.99
    assert math.isfinite(metrics["CIDEr"]) and metrics["CIDEr"] > 1.0
    assert 0.5 < metrics["ROUGE_L"] <= 1.0
    assert "METEOR" not in metrics
    if not spice_available():
        assert "SPICE" not in metrics and any("SPICE skipped" in n for n in notes)
    worse, _ = caption_metrics(refs, {k: "a picture of something" for k in refs}, meteor=False)
    assert worse["CIDEr"] < metrics["CIDEr"] and worse["Bleu_4"] < 0.1


@needs_realdata
def test_caption_score_with_meteor() -> None:
    """The one test that starts METEOR's JVM (~7 s)."""
    refs = dict(list(_coco_refs().items())[:6])
    data = pd.DataFrame({"id": [str(k) for k in refs], "answers": list(refs.values())})
    preds = {str(k): v[1] for k, v in refs.items()}
    res = score("caption-coco", data, preds)
    m = res["metrics"]
    assert set(m) >= {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "CIDEr_x100"}
    assert 0.3 < m["METEOR"] <= 1.0 and m["Bleu_4"] > 0.9
    assert m["CIDEr_x100"] == pytest.approx(100 * m["CIDEr"])
    assert res["n"] == 6 and resolve("caption-coco").headline == "CIDEr_x100"


def test_registry_keys() -> None:
    assert {resolve(b).metric for b in BENCHMARKS} <= set(SCORERS)
