"""The opt-in demo writers (``DemoSizes.all_benchmarks``): every registry split can be normalized from the
generated raw files, and its gold answers are consistent with its scorer.

Why gold-as-prediction: if a writer put a gold answer in a field or form the scorer does not read (a box in
the wrong convention, a VQA answer that normalizes away, MME pairs out of order, MathVista choices the rules
cannot parse), the "perfect" model would not get the maximum score. Caption scoring stubs METEOR (a 10 s JVM
start; its own tests cover it) and checks BLEU/ROUGE/CIDEr instead.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from internvl.data.benchmarks import normalize
from internvl.demo import world
from internvl.demo.writers import DemoSizes, build_demo
from internvl.eval import metrics, metrics_family_a, metrics_family_b
from internvl.eval.registry import BENCHMARKS

SIZES = dataclasses.replace(DemoSizes.tiny(), all_benchmarks=True, bench_items=6)
SERVER_ERRORS = (metrics_family_a.ServerScoredError, metrics_family_b.ServerScoredError)
SERVER_SCORED = ("vqa-vqav2-testdev", "vqa-vizwiz-test", "vqa-docvqa-test", "mmbench-test-en", "mmbench-test-cn",
                 "mmmu-test", "mathvista-test")
CAPTIONS = ("caption-coco", "caption-flickr30k", "caption-nocaps")
JUDGED = ("llava-bench", "mmvet")
BEST = {"mme": 2000.0, "tiny_lvlm": 500.0}  # MME: 10 perception subtasks x 200; Tiny LVLM: 5 categories x 100


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("all_benchmarks")
    build_demo(root, seed=0, sizes=SIZES)
    return root


@pytest.fixture(scope="module")
def tables(demo: Path) -> dict[str, pd.DataFrame]:
    return {split: normalize(split, demo / "data").to_pandas() for split in BENCHMARKS}


def _gold_prediction(split: str, row: dict[str, Any]) -> str:
    """What a model that sees the scene correctly would answer, in the split's answer format."""
    if split.startswith("refcoco"):  # InternVL's grounding output: [[x1, y1, x2, y2]] on a 0-1000 grid
        w, h = row["width"], row["height"]
        x1, y1, x2, y2 = (round(v * 1000 / s) for v, s in zip(row["bbox"], (w, h, w, h), strict=True))
        return f"[[{x1}, {y1}, {x2}, {y2}]]"
    if split == "pope":
        return "Yes" if row["label"] == "yes" else "No"
    answers = list(row["answers"])
    return Counter(answers).most_common(1)[0][0] if answers else "anything"  # VQA: the annotators' majority


def _predictions(split: str, df: pd.DataFrame) -> dict[str, str]:
    return {str(r["id"]): _gold_prediction(split, r) for r in df.to_dict(orient="records")}


# ---------------------------------------------------------------------------------------------------------


def test_all_benchmarks_is_opt_in() -> None:
    assert DemoSizes().all_benchmarks is False and DemoSizes.tiny().all_benchmarks is False


@pytest.mark.parametrize("split", list(BENCHMARKS))
def test_split_normalizes(split: str, tables: dict[str, pd.DataFrame]) -> None:
    df = tables[split]
    assert len(df) > 0
    ids = [str(i) for i in df["id"]]
    assert len(set(ids)) == len(ids)
    has_gold = [len(a) > 0 for a in df["answers"]]
    assert all(has_gold) if split not in SERVER_SCORED else not any(has_gold)


@pytest.mark.parametrize("split", list(BENCHMARKS))
def test_gold_answers_get_the_best_score(split: str, tables: dict[str, pd.DataFrame],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    df = tables[split]
    preds = _predictions(split, df)
    if split in SERVER_SCORED:
        with pytest.raises(SERVER_ERRORS):
            metrics.score(split, df, preds)
        return
    if split in JUDGED:
        with pytest.raises(metrics_family_b.JudgeRequiredError):
            metrics.score(split, df, preds)
        return
    if split in CAPTIONS:
        monkeypatch.setattr(metrics, "_meteor", lambda gts, res: 1.0)
        m = metrics.score(split, df, preds)["metrics"]
        assert m["Bleu_4"] > 0.99 and m["ROUGE_L"] > 0.99 and m["CIDEr_x100"] > 200, m
        return
    result = metrics.score(split, df, preds)
    headline = BENCHMARKS[split].headline
    assert result["metrics"][headline] == pytest.approx(BEST.get(split, 100.0)), result
    if split == "mme":
        assert result["metrics"]["cognition"] == pytest.approx(800.0)


def test_judged_splits_reach_the_maximum_with_perfect_judgements(tables: dict[str, pd.DataFrame]) -> None:
    llava = tables["llava-bench"]
    assert set(llava["category"]) == {"conv", "detail", "complex"}
    tens = {str(i): 10.0 for i in llava["id"]}
    assert metrics_family_b.llava_bench_from_reviews(llava, tens, tens)["metrics"]["relative_score"] == 100.0
    mmvet = tables["mmvet"]
    ones = {str(k): 1.0 for k in mmvet["mmvet_key"]}
    assert metrics_family_b.mmvet_from_grades(mmvet, ones)["metrics"]["total"] == pytest.approx(100.0)


def test_mathvista_letters_need_the_extractor_then_score_right(tables: dict[str, pd.DataFrame]) -> None:
    df = tables["mathvista-testmini"]
    letters, extracted = {}, {}
    for r in df.to_dict(orient="records"):
        options = metrics_family_b._options(r["options"])
        letter = next((k for k, v in options.items() if v == r["answers"][0]), None)
        letters[str(r["id"])] = letter or r["answers"][0]
        if letter:
            extracted[str(r["id"])] = f"({letter})"
    assert extracted, "the demo MathVista split has multiple-choice problems"
    with pytest.raises(metrics_family_b.ExtractorRequiredError):
        metrics.score("mathvista-testmini", df, letters)
    result = metrics_family_b.score_mathvista("mathvista-testmini", df, letters, extractions=extracted)
    assert result["metrics"]["accuracy"] == pytest.approx(100.0)


def test_refcoco_boxes_are_the_drawn_extent(demo: Path, tables: dict[str, pd.DataFrame]) -> None:
    """The gold box hugs the shape: its centre row/column is coloured, the ring just outside is background."""
    from PIL import Image

    df = tables["refcoco-val"]
    for r in df.to_dict(orient="records"):
        img = np.asarray(Image.open(demo / "data" / r["image_path"]).convert("RGB"), dtype=int)
        x1, y1, x2, y2 = (int(v) for v in r["bbox"])
        background = np.asarray(world.BACKGROUND)
        inside = img[(y1 + y2) // 2 + 1, x1 + (x2 - x1) // 2]
        assert np.abs(inside - background).sum() > 60
        for x, y in ((x1 - 2, (y1 + y2) // 2), (x2 + 1, (y1 + y2) // 2), ((x1 + x2) // 2, y2 + 1)):
            if 0 <= x < img.shape[1] and 0 <= y < img.shape[0]:
                assert np.abs(img[y, x] - background).sum() < 40, (r["question"], x, y)


def test_shape_box_matches_the_renderer() -> None:
    rng = random.Random(4)
    for _ in range(40):
        scene = world.sample_scene(rng)
        for size in (64, 224):
            pixels = np.asarray(world.render(scene, size))
            for s in scene.shapes:
                half = size // 2
                mask = np.zeros(pixels.shape[:2], dtype=bool)
                cell = (slice(s.row * half, (s.row + 1) * half), slice(s.col * half, (s.col + 1) * half))
                mask[cell] = (pixels[cell] == world.COLORS[s.color]).all(-1)
                ys, xs = np.nonzero(mask)
                assert world.shape_box(s, size) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_opt_in_leaves_the_original_benchmarks_untouched(demo: Path, tmp_path: Path) -> None:
    """The four original benchmarks come out byte-identical with or without the extra splits."""
    build_demo(tmp_path, seed=0, sizes=DemoSizes.tiny())
    plain = _files(tmp_path / "data")
    everything = _files(demo / "data")
    assert plain and all(everything[name] == data for name, data in plain.items())
    assert len(everything) > len(plain)


def test_same_seed_same_bytes(demo: Path, tmp_path: Path) -> None:
    build_demo(tmp_path / "again", seed=0, sizes=SIZES)
    again = _files(tmp_path / "again" / "data")
    assert again == _files(demo / "data")
    for name in ("mmmu/MMMU/Math/validation-00000-of-00001.parquet", "mme/Your_Results/count.txt",
                 "refcoco/refcocog_val.jsonl", "MathVista/testmini.json", "mmbench/mmbench_dev_cn_20231003.tsv"):
        assert name in again
    build_demo(tmp_path / "other", seed=1, sizes=SIZES)
    assert (tmp_path / "other/data/refcoco/refcocog_val.jsonl").read_bytes() != again["refcoco/refcocog_val.jsonl"]
