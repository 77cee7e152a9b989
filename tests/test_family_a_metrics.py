"""Scorers of the family A splits: hand-checked values for every rule and quirk, and real data paths.

Expected numbers are worked out by hand in the comments (or computed independently in the test),
never by calling the function under test twice. METEOR's JVM is never started here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

# shared helpers and the normalizer tests' builders (tests/ is on sys.path under pytest's default import mode)
from conftest import needs_realdata
from test_family_a_normalize import (
    REF_RECORDS,
    build_chartqa_root,
    build_flickr_root,
    build_gqa_root,
    build_refcoco_root,
    build_textvqa_root,
    build_vizwiz_val_root,
)

from internvl.data.benchmarks import normalize
from internvl.eval.metrics import caption_metrics, score, vqa_accuracy
from internvl.eval.metrics_family_a import (
    ServerScoredError,
    anls_score,
    box_iou,
    box_to_pixels,
    exact_match,
    gqa_convert,
    levenshtein,
    parse_box,
    refcoco_iou,
    relaxed_correct,
    vqa_accuracy_records,
)
from internvl.eval.registry import BENCHMARKS, get, resolve


def _frame(answers: list[list[str]], **extra: list) -> pd.DataFrame:
    return pd.DataFrame({"id": [str(i) for i in range(len(answers))], "answers": answers, **extra})


# --- server-scored splits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("split", "server"),
    [("vqa-vqav2-testdev", "challenge 830"), ("vqa-vizwiz-test", "challenge 1911"), ("vqa-docvqa-test", "ch=17")],
)
def test_server_scored_splits_raise(split: str, server: str) -> None:
    data = _frame([[], []])
    with pytest.raises(ServerScoredError, match="scored by the server") as err:
        score(resolve(split).metric, data, {"0": "yes", "1": "no"})
    assert server in str(err.value) and split in str(err.value)


# --- VQA accuracy with answer records (OK-VQA, TextVQA, VizWiz) --------------------------------------------

UNANSWERABLE = ["unanswerable"] * 8 + ["no"] * 2


def test_vqa_records_distinct_is_plain_vqa_accuracy() -> None:
    distinct = [json.dumps({"answer_confidence": "yes", "answer_id": i}) for i in range(10)]
    # standard leave-one-out: "unanswerable" x8 -> every subset keeps >= 7 matches -> 1.0
    assert vqa_accuracy_records("Unanswerable", UNANSWERABLE, distinct) == 1.0
    # "no" x2: dropping an "unanswerable" leaves 2 (2/3) x8, dropping a "no" leaves 1 (1/3) x2 -> 0.6
    assert vqa_accuracy_records("no", UNANSWERABLE, distinct) == pytest.approx(0.6)
    assert vqa_accuracy_records("no", UNANSWERABLE, None) == vqa_accuracy("no", UNANSWERABLE)


def test_vqa_records_identical_records_drop_together() -> None:
    same = [json.dumps({"answer_confidence": "yes"})] * 10
    # leaving out an "unanswerable" record removes all 8 copies: 0 matches -> 0 (x8);
    # leaving out a "no" record removes both "no": 8 matches -> 1 (x2); mean 0.2
    assert vqa_accuracy_records("unanswerable", UNANSWERABLE, same) == pytest.approx(0.2)
    # "no": leaving out an "unanswerable" keeps both "no" -> 2/3 (x8); leaving out "no" -> 0 (x2)
    assert vqa_accuracy_records("no", UNANSWERABLE, same) == pytest.approx(8 * (2 / 3) / 10)
    # a confidence that differs keeps records apart: 7 x ("unanswerable", yes) + 1 x ("unanswerable", maybe)
    mixed = [json.dumps({"answer_confidence": "yes"})] * 7 + [json.dumps({"answer_confidence": "maybe"})] * 3
    # "unanswerable": yes-records (x7) leave 1 maybe copy -> 1/3; the maybe one leaves 7 -> 1; "no"
    # records (both "maybe", identical) leave 8 -> 1 (x2): (7/3 + 1 + 2) / 10
    assert vqa_accuracy_records("unanswerable", UNANSWERABLE, mixed) == pytest.approx((7 / 3 + 1 + 2) / 10)


@needs_realdata
def test_textvqa_scored_from_normalized_real_answers(tmp_path: Path) -> None:
    build_textvqa_root(tmp_path)
    data = normalize("vqa-textvqa-val", tmp_path).to_pandas()
    preds = {rid: "other" for rid in data["id"]}
    preds["34602"] = "Dakota"  # 5 of 10 say "dakota": every leave-one-out keeps >= 4 matches -> 1.0
    preds["34603"] = "Copenhagen."  # 9 of 10 -> 1.0
    expected = [vqa_accuracy(preds[rid], list(a)) for rid, a in zip(data["id"], data["answers"], strict=True)]
    res = score("vqa-textvqa-val", data, preds)
    assert res["metrics"]["accuracy"] == pytest.approx(100 * sum(expected) / len(expected))
    assert expected[:2] == [1.0, 1.0]
    assert res["metrics"]["accuracy/other"] == res["metrics"]["accuracy"] and res["n"] == 40


@needs_realdata
def test_vizwiz_val_scorer_uses_record_semantics(tmp_path: Path) -> None:
    jsonl = build_vizwiz_val_root(tmp_path)
    data = normalize("vqa-vizwiz-val", tmp_path).to_pandas()
    ids = [r["question_id"] for r in jsonl]
    preds = dict(zip(ids, ["Unanswerable", "soup", "No", "white"], strict=True))
    # q0 8x unanswerable + 2x blue, all records identical per text: 0.2 (see above)
    # q1 6x soup + 4x "can of soup": soup records leave 0 soup -> 0 (x6); "can of soup" ones leave 6 -> 1 (x4): 0.4
    # q2 10x no: every record identical -> nothing left -> 0
    # q3 5x unanswerable + 5x white, "white": 0 (x5) and 1 (x5): 0.5
    res = score("vqa-vizwiz-val", data, preds)
    assert res["metrics"]["accuracy"] == pytest.approx(100 * (0.2 + 0.4 + 0.0 + 0.5) / 4)
    assert res["metrics"]["accuracy/yes/no"] == 0.0
    assert any("identical gold answer records" in n for n in res["notes"])


# --- ANLS ----------------------------------------------------------------------------------------------------


def test_levenshtein() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == levenshtein("abc", "") == 3
    assert levenshtein("flaw", "lawn") == 2
    assert levenshtein("same", "same") == 0


def test_anls_by_hand() -> None:
    assert anls_score("University of California", ["university of california"]) == 1.0
    # "san diego" vs "san diego, ca": distance 4, longer raw length 13 -> 1 - 4/13
    assert anls_score("san diego", ["san diego, ca"]) == pytest.approx(1 - 4 / 13)
    # "diego": distance 8 / 13 -> similarity 0.385 < 0.5 -> 0
    assert anls_score("diego", ["san diego, ca"]) == 0.0
    # best gold answer counts
    assert anls_score("san diego", ["foo", "San Diego"]) == 1.0
    # compared after strip/lower/whitespace collapse, but divided by the RAW length (13, not 9)
    assert anls_score("  sam   diego", ["san diego"]) == pytest.approx(1 - 1 / 13)
    # exactly at the threshold counts: "abcd" vs "abxy" -> 1 - 2/4 = 0.5
    assert anls_score("abcd", ["abxy"]) == 0.5
    assert anls_score("abcde", ["abxyz"]) == 0.0  # 1 - 3/5 = 0.4
    assert anls_score("", ["abc"]) == 0.0


def test_score_anls() -> None:
    data = _frame([["0.28"], ["itc limited", "ITC Limited"], ["san diego, ca"]])
    res = score("vqa-docvqa-val", data, {"0": "0.28", "1": "ITC", "2": "san diego"})
    # 1.0 + ("itc" vs "itc limited": distance 8 / 11 -> 0.27 -> 0) + (1 - 4/13)
    assert res["metrics"]["anls"] == pytest.approx(100 * (1 + 0 + (1 - 4 / 13)) / 3)
    assert resolve("vqa-docvqa-val").headline == "anls"


# --- ChartQA relaxed accuracy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "gold", "quirk", "fixed"),
    [
        ("105.2", "100", True, False),  # |100-105.2|/105.2 = 0.0494 vs /100 = 0.052
        ("95.1", "100", False, True),  # 4.9/95.1 = 0.0515 vs 4.9/100 = 0.049
        ("104", "100", True, True),
        ("12%", "0.12", True, True),  # "%" -> /100 on the parsed side
        ("0.12", "12%", True, True),
        (" 14\n", "14", True, True),  # prediction stripped
        ("Yes", "yes", True, True),  # case-insensitive string match
        ("0", "0", True, True),  # target 0 -> string comparison
        ("0", "0.0", False, False),  # ... which fails for "0" vs "0.0" (both variants)
        ("0.01", "0", False, False),  # quirk: |0 - 0.01| / 0.01 = 1; fixed: target 0 -> strings differ
        ("abc", "12", False, False),
        ("1e2", "100", True, True),  # Python float() parsing
    ],
)
def test_relaxed_correct(pred: str, gold: str, quirk: bool, fixed: bool) -> None:
    assert relaxed_correct(pred, [gold]) is quirk
    assert relaxed_correct(pred, [gold], fixed=True) is fixed


def test_score_relaxed_default_and_opt_in_fixed() -> None:
    data = _frame([["100"], ["100"], ["Inspired"], ["2013", "2014"]])
    preds = {"0": "105.2", "1": "95.1", "2": "inspired", "3": "2014"}
    quirk = score("vqa-chartqa-test-human", data, preds)
    assert quirk["metrics"] == {"relaxed_accuracy": 75.0}  # rows 0, 2, 3
    assert any("measured against the prediction" in n for n in quirk["notes"])
    bench = get("vqa-chartqa-test-human",
                {"vqa-chartqa-test-human": {"metric": "chartqa-relaxed-fixed", "headline": "relaxed_accuracy_fixed"}})
    fixed = score(bench.metric, data, preds)
    assert fixed["metrics"] == {"relaxed_accuracy_fixed": 75.0}  # rows 1, 2, 3
    assert bench.headline in fixed["metrics"] and any("FIXED" in n for n in fixed["notes"])


@needs_realdata
def test_chartqa_real_file_scored(tmp_path: Path) -> None:
    src = build_chartqa_root(tmp_path, "test_augmented")
    data = normalize("vqa-chartqa-test-augmented", tmp_path).to_pandas()
    assert src[2]["answer"] == "6.8" and src[0]["answer"] == "47"
    preds = {rid: r["answer"] for rid, r in zip(data["id"], src, strict=True)}
    preds[data["id"][2]] = "7.1"  # quirk: 0.3/7.1 = 0.042 -> right (fixed: 0.3/6.8 = 0.044 -> right too)
    preds[data["id"][0]] = "49.5"  # quirk: 2.5/49.5 = 0.0505 -> wrong; fixed: 2.5/47 = 0.053 -> wrong
    preds[data["id"][1]] = "2013 "  # stripped -> right
    res = score("vqa-chartqa-test-augmented", data, preds)
    assert res["metrics"]["relaxed_accuracy"] == pytest.approx(100 * 49 / 50) and res["n"] == 50


# --- GQA --------------------------------------------------------------------------------------------------------


def test_gqa_convert() -> None:
    assert gqa_convert("Yes.") == "yes"
    assert gqa_convert("No..") == "no"  # every trailing period
    assert gqa_convert("yes. ") == "yes. "  # no whitespace strip: the period is not trailing
    assert gqa_convert("Dining Table") == "dining table"


def test_score_gqa() -> None:
    data = _frame([["yes"], ["table"], ["no"], ["left"]], is_balanced=[True, True, True, False],
                  structural_type=["verify", "query", "logical", "query"])  # fmt: skip
    res = score("vqa-gqa-testdev", data, {"0": "Yes.", "1": "Table", "2": "no. ", "3": "left"})
    m = res["metrics"]
    # balanced rows 0-2: right, right, wrong ("no. " keeps its period); row 3 is not balanced
    assert m["accuracy"] == pytest.approx(200 / 3)
    assert m["accuracy/binary"] == 50.0 and m["accuracy/open"] == 100.0
    assert any("1 questions are not balanced" in n for n in res["notes"])


@needs_realdata
def test_gqa_real_questions_scored(tmp_path: Path) -> None:
    build_gqa_root(tmp_path)
    data = normalize("vqa-gqa-testdev", tmp_path).to_pandas()
    preds = {rid: "Yes." for rid in data["id"]}  # right exactly on the yes/no questions of the builder
    binary = int((data["structural_type"] == "verify").sum())
    res = score("vqa-gqa-testdev", data, preds)
    assert 0 < binary < len(data)
    assert res["metrics"]["accuracy"] == pytest.approx(100 * binary / len(data))
    assert res["metrics"]["accuracy/binary"] == 100.0 and res["metrics"]["accuracy/open"] == 0.0


# --- exact match (OCR-VQA, AI2D) ---------------------------------------------------------------------------------


def test_exact_match() -> None:
    assert exact_match(" Stephen King \n", ["stephen king"])
    assert exact_match("no", ["Yes", " NO "])
    assert not exact_match("B.", ["B"])
    assert not exact_match("Stephen", ["Stephen King"])
    data = _frame([["B"], ["A"], ["Ian Chapman"]])
    res = score("vqa-ai2d-test", data, {"0": "b", "1": "A. egg", "2": "ian chapman"})
    assert res["metrics"] == {"accuracy": pytest.approx(200 / 3)}
    assert score("vqa-ocrvqa-test", data, {"0": "B", "1": "A", "2": "x"})["metrics"]["accuracy"] == pytest.approx(
        200 / 3
    )


# --- RefCOCO -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "box", "parsed"),
    [
        ("[[100, 200, 300, 400]]", (100, 200, 300, 400), True),
        ("<ref>the man</ref><box>[[12.5, 3, 40, 50]]</box>", (12.5, 3, 40, 50), True),
        ("The box is [0.1,0.2,0.3,0.4].", (0.1, 0.2, 0.3, 0.4), True),
        ("[[12, 3, 40, 50], [1, 2, 3, 4]]", (12, 3, 40, 50), True),  # first match only
        ("[a, b, c, d] then [[1, 2, 3, 4]]", (0, 0, 0, 0), False),  # first match not numeric: zeros
        ("[1, 2, 3]", (0, 0, 0, 0), False),
        ("[1,\n2, 3, 4]", (0, 0, 0, 0), False),  # fields never span lines
        ("no box here", (0, 0, 0, 0), False),
    ],
)
def test_parse_box(answer: str, box: tuple, parsed: bool) -> None:
    assert parse_box(answer) == (tuple(float(v) for v in box), parsed)


def test_box_scaling_0_1000_and_0_1() -> None:
    # 0-1000 grid (sum >= 4): /1000, then x * W (640), y * H (480)
    assert box_to_pixels((100, 200, 300, 400), 640, 480).tolist() == pytest.approx([64, 96, 192, 192], rel=1e-6)
    # 0-1 (sum < 4): only scaled
    assert box_to_pixels((0.1, 0.2, 0.3, 0.4), 640, 480).tolist() == pytest.approx([64, 96, 192, 192], rel=1e-6)
    # sum exactly 4 is divided; a tiny 0-1000 box near the origin (sum 3) is read as 0-1 (quirk)
    assert box_to_pixels((1, 1, 1, 1), 1000, 1000).tolist() == pytest.approx([1, 1, 1, 1], rel=1e-6)
    assert box_to_pixels((0, 0, 1, 2), 640, 480).tolist() == [0, 0, 640, 960]


def test_iou_threshold() -> None:
    # 0-1 answer [0, 0, 0.5, 0.25] on a 200x400 image -> [0, 0, 100, 100]; gold [0, 0, 100, 200]:
    # inter 10000, union 20000 -> IoU exactly 0.5 (exact in float32) -> counts
    assert refcoco_iou("[0, 0, 0.5, 0.25]", [0, 0, 100, 200], 200, 400) == 0.5
    # gold one pixel taller: 10000 / 20100 < 0.5 -> miss
    assert refcoco_iou("[0, 0, 0.5, 0.25]", [0, 0, 100, 201], 200, 400) < 0.5
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert box_iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert math.isnan(box_iou([0, 0, 0, 0], [5, 5, 5, 5]))  # zero union: nan, never a hit


def test_score_refcoco() -> None:
    data = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "bbox": [[0.0, 0.0, 100.0, 200.0], [0.0, 0.0, 100.0, 201.0], [64.0, 96.0, 192.0, 192.0], [0, 0, 5.0, 5.0]],
            "width": [200, 200, 640, 640],
            "height": [400, 400, 480, 480],
        }
    )
    preds = {"a": "[0, 0, 0.5, 0.25]", "b": "[0, 0, 0.5, 0.25]", "c": "[[100, 200, 300, 400]]", "d": "left one"}
    res = score("refcoco-val", data, preds)
    # hits: a (IoU 0.5), c (same box); misses: b (< 0.5), d (no box -> zeros)
    assert res["metrics"] == {"precision_at_1": 50.0, "unparsed": 1.0, "unit_scale_boxes": 2.0}
    assert resolve("refcoco-val").headline == "precision_at_1" and resolve("refcocog-test").table == "grounding"


def test_refcoco_scored_from_normalized_table(tmp_path: Path) -> None:
    build_refcoco_root(tmp_path, "refcoco+_val")
    data = normalize("refcoco+-val", tmp_path).to_pandas()
    # answer = the gold box on the 0-1000 grid (rounded to integers as a model writes it)
    preds = {}
    for rid, r in zip(data["id"], REF_RECORDS, strict=True):
        x1, y1, x2, y2 = r["bbox"]
        w, h = r["width"], r["height"]
        preds[rid] = f"[[{round(x1 / w * 1000)}, {round(y1 / h * 1000)}, {round(x2 / w * 1000)}, {round(y2 / h * 1000)}]]"
    preds[data["id"][2]] = "[[0, 500, 100, 900]]"  # far from [0, 71, 272, 391] on a 640x427 image -> miss
    res = score("refcoco+-val", data, preds)
    assert res["metrics"]["precision_at_1"] == pytest.approx(200 / 3) and res["n"] == 3


# --- captions ------------------------------------------------------------------------------------------------------


@needs_realdata
def test_flickr30k_references_with_caption_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Normalized real flickr30k references through the existing caption scorer (METEOR off)."""
    from internvl.eval import metrics

    build_flickr_root(tmp_path)
    data = normalize("caption-flickr30k", tmp_path).to_pandas()
    refs = {int(rid): list(a) for rid, a in zip(data["id"], data["answers"], strict=True)}
    good, notes = caption_metrics(refs, {k: v[0] for k, v in refs.items()}, meteor=False)
    bad, _ = caption_metrics(refs, {k: "a picture of something" for k in refs}, meteor=False)
    assert good["CIDEr"] > 1.0 and bad["CIDEr"] < 0.2 and good["Bleu_4"] > 0.8
    assert "METEOR" not in good and any("METEOR not computed" in n for n in notes)

    # the registered scorer is the existing score_caption: patch its METEOR switch off and check the headline
    real = metrics.caption_metrics
    monkeypatch.setattr(metrics, "caption_metrics", lambda r, p, meteor=True, spice=None: real(r, p, meteor=False))
    res = score("caption-flickr30k", data, {str(k): v[0] for k, v in refs.items()})
    assert res["metrics"]["CIDEr_x100"] == pytest.approx(100 * good["CIDEr"])
    assert resolve("caption-flickr30k").headline == "CIDEr_x100"


# --- registry consistency --------------------------------------------------------------------------------------------


def test_family_a_headlines_are_produced() -> None:
    """Every locally scored family A row's headline is a key of its scorer's output."""
    simple = {
        "vqa-okvqa-val": _frame([["yes"] * 10]),
        "vqa-textvqa-val": _frame([["yes"] * 10]),
        "vqa-vizwiz-val": _frame([["yes"] * 10]),
        "vqa-docvqa-val": _frame([["yes"]]),
        "vqa-chartqa-test-human": _frame([["yes"]]),
        "vqa-chartqa-test-augmented": _frame([["yes"]]),
        "vqa-gqa-testdev": _frame([["yes"]]),
        "vqa-ocrvqa-val": _frame([["yes"]]),
        "vqa-ocrvqa-test": _frame([["yes"]]),
        "vqa-ai2d-test": _frame([["yes"]]),
    }
    for split, data in simple.items():
        bench = BENCHMARKS[split]
        assert score(bench.metric, data, {"0": "yes"})["metrics"][bench.headline] == 100.0, split
    grounding = [b for b in BENCHMARKS.values() if b.table == "grounding"]
    assert len(grounding) >= 8
    box = pd.DataFrame({"id": ["0"], "bbox": [[0.0, 0.0, 10.0, 10.0]], "width": [10], "height": [10]})
    for bench in grounding:
        assert score(bench.metric, box, {"0": "[[0, 0, 1000, 1000]]"})["metrics"][bench.headline] == 100.0
