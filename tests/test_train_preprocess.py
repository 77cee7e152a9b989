"""Loss masking as the original preprocess_mpt: loss only on answers and the <|im_end|> closing each."""

from __future__ import annotations

import pytest

from internvl.model.checkpoint import load_tokenizer
from internvl.model.conversation import get_template
from internvl.train.preprocess import IGNORE_INDEX, encode, render

HERMES = get_template("Hermes-2")


@pytest.fixture(scope="module")
def tok(fixture_dir):
    return load_tokenizer(fixture_dir / "checkpoint")


def _supervised_text(tok, enc) -> str:
    ids = [int(i) for i, lab in zip(enc.input_ids, enc.labels, strict=True) if lab != IGNORE_INDEX]
    return tok.decode(ids)


def test_render_matches_hermes2_layout():
    convs = [{"from": "human", "value": "<image>\nQ1"}, {"from": "gpt", "value": "A1"},
             {"from": "human", "value": "Q2"}, {"from": "gpt", "value": "A2"}]
    assert render(convs, HERMES) == (
        "<|im_start|>system\nAnswer the questions.<|im_end|><|im_start|>user\n<image>\nQ1<|im_end|>"
        "<|im_start|>assistant\nA1<|im_end|><|im_start|>user\nQ2<|im_end|><|im_start|>assistant\nA2<|im_end|>"
    )


def test_multi_turn_masks_everything_but_answers(tok):
    convs = [{"from": "human", "value": "<image>\nWhat color is the circle?"}, {"from": "gpt", "value": "red"},
             {"from": "human", "value": "How many shapes?"}, {"from": "gpt", "value": "two"}]
    enc = encode(convs, tok, HERMES, num_image_token=4, has_image=True, max_length=512)
    assert not enc.mismatch
    assert _supervised_text(tok, enc) == "red<|im_end|>two<|im_end|>"
    assert list(enc.input_ids).count(tok.convert_tokens_to_ids("<IMG_CONTEXT>")) == 4


def test_leading_gpt_turn_is_dropped_and_text_only_strips_image_tag(tok):
    convs = [{"from": "gpt", "value": "ignored"}, {"from": "human", "value": "<image>\nhi"},
             {"from": "gpt", "value": "hello"}]
    enc = encode(convs, tok, HERMES, num_image_token=4, has_image=False, max_length=512)
    assert "<img>" not in tok.decode(enc.input_ids) and "ignored" not in tok.decode(enc.input_ids)
    assert _supervised_text(tok, enc) == "hello<|im_end|>"


def test_truncation_skips_the_consistency_check(tok):
    convs = [{"from": "human", "value": "<image>\n" + "describe " * 50}, {"from": "gpt", "value": "a long answer " * 20}]
    enc = encode(convs, tok, HERMES, num_image_token=4, has_image=True, max_length=40)
    assert enc.truncated and len(enc.input_ids) == 40 and not enc.mismatch
