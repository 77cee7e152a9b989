"""Prompts exactly as the V1.2 eval scripts built them, and registry overrides."""

from __future__ import annotations

import json

import pytest

from internvl.eval import registry
from internvl.eval.prompts import build_question


def _row(**kw):
    base = {"id": "1", "question": "What is it?", "hint": None, "options": "{}", "answers": []}
    base.update(kw)
    return base


def test_mmbench_prompt_with_hint_and_options():
    row = _row(hint="Look closely.\nTwo lines.", options=json.dumps({"A": "cat", "B": "dog"}))
    assert build_question(row, registry.resolve("mmbench_dev")) == (
        "Look closely.\nTwo lines.\nWhat is it?\nA. cat\nB. dog\n"
        "Answer with the option's letter from the given choices directly.")


def test_mmbench_prompt_nan_hint_is_skipped():
    row = _row(hint=float("nan"), options=json.dumps({"A": "x"}))
    assert build_question(row, registry.resolve("mmbench-dev-en")).startswith("What is it?\nA. x\n")


def test_vqa_suffix_and_pope_trailing_space():
    assert build_question(_row(), registry.resolve("vqav2_val")) == (
        "What is it? Answer the question using a single word or phrase.")
    # eval/pope appends " " + "" to the question, which already carries the instruction
    assert build_question(_row(question="Is there a cat?\nAnswer."), registry.resolve("pope")) == "Is there a cat?\nAnswer. "


def test_caption_prompt_ignores_question():
    assert build_question(_row(question=""), registry.resolve("caption-coco")) == (
        "Provide a one-sentence caption for the provided image.")


def test_overrides_change_score_params_and_unknown_fields_fail():
    base = registry.get("pope")
    over = registry.get("pope", {"pope": {"prompt": "x", "generation": {"max_new_tokens": 3}}})
    assert over.score_params() != base.score_params() and over.generation.max_new_tokens == 3
    assert registry.get("vqa-vqav2-val", {"pope": {"prompt": "x"}}) == registry.resolve("vqa-vqav2-val")
    with pytest.raises(TypeError):
        registry.get("pope", {"pope": {"generation": {"beams": 3}}})
    with pytest.raises(KeyError):
        registry.resolve("no-such-benchmark")


def test_every_registry_entry_has_scorer_and_normalizer():
    from internvl.data.benchmarks import NORMALIZERS
    from internvl.eval.metrics import SCORERS

    for bench in registry.BENCHMARKS.values():
        assert bench.metric in SCORERS, bench.name
        assert bench.name in NORMALIZERS, bench.name
