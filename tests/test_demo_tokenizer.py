"""The demo tokenizer: Yi-style id layout, InternVL tokens, offline loading, exact round trip, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from internvl.demo.tokenizer import INTERNVL_TOKENS, YI_SPECIAL_TOKENS, build_demo_tokenizer
from internvl.demo.writers import DemoSizes, build_demo, corpus_texts

FIXTURE = Path("/work/shared/fixtures/official_v1_2_tiny/checkpoint")
HERMES_PROMPT = (
    "<|im_start|>system\nAnswer the questions.<|im_end|><|im_start|>user\n<img>"
    + "<IMG_CONTEXT>" * 4
    + "</img>\nWhat color is the circle? Answer the question using a single word or phrase.<|im_end|>"
    "<|im_start|>assistant\nred<|im_end|>"
)
ROUND_TRIP = [
    HERMES_PROMPT,
    "A large red circle in the top left and a small blue square in the bottom right.",
    "  two  spaces, a\ttab\n\nand newlines ",
    " leading space",
    "Ünïcødé, 日本語 and an emoji 🙂",
    "<ref>the red circle</ref><box>[[1, 2, 3, 4]]</box>",
]


@pytest.fixture(scope="module")
def texts(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("demo")
    build_demo(root, seed=0, sizes=DemoSizes.tiny())
    return corpus_texts(root)


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory, texts) -> Path:
    out = tmp_path_factory.mktemp("tok")
    build_demo_tokenizer(texts, out)
    return out


@pytest.fixture(scope="module", params=["auto", "fast"])
def tokenizer(request, tok_dir):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    cls = AutoTokenizer if request.param == "auto" else PreTrainedTokenizerFast
    return cls.from_pretrained(str(tok_dir), local_files_only=True)


def test_special_token_ids_follow_the_yi_layout(tokenizer):
    for i, t in enumerate(YI_SPECIAL_TOKENS):
        assert tokenizer.convert_tokens_to_ids(t) == i
    for i, t in enumerate(INTERNVL_TOKENS):
        assert tokenizer.convert_tokens_to_ids(t) == 1200 + i
    assert len(tokenizer) == 1209
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token, tokenizer.unk_token) == (
        "<|startoftext|>", "<|im_end|>", "<unk>", "<unk>")
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (1, 7, 0)


def test_no_bos_or_eos_is_added(tokenizer):
    ids = tokenizer("red circle").input_ids
    assert ids == tokenizer.encode("red circle", add_special_tokens=False)
    assert ids[0] != 1 and ids[-1] != 7


def test_img_context_is_one_token_and_never_merges(tokenizer):
    ids = tokenizer("x<img>" + "<IMG_CONTEXT>" * 4 + "</img>\nWhat").input_ids
    assert ids.count(1202) == 4 and ids.count(1200) == 1 and ids.count(1201) == 1
    assert tokenizer("<IMG_CONTEXT>").input_ids == [1202]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip_is_exact(tokenizer, text):
    ids = tokenizer(text).input_ids
    assert tokenizer.decode(ids, clean_up_tokenization_spaces=False) == text


def test_template_words_are_single_tokens(tokenizer):
    for word in ("system", "user", "assistant", " circle", " Answer", " phrase"):
        assert len(tokenizer.encode(word, add_special_tokens=False)) == 1, word


def test_same_inputs_give_byte_identical_files(texts, tok_dir, tmp_path):
    build_demo_tokenizer(texts, tmp_path / "again")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (tmp_path / "again" / name).read_bytes() == (tok_dir / name).read_bytes(), name
    build_demo_tokenizer(texts[: len(texts) // 2], tmp_path / "half")
    assert (tmp_path / "half" / "tokenizer.json").read_bytes() != (tok_dir / "tokenizer.json").read_bytes()


def test_unreachable_vocab_size_is_an_error(texts, tmp_path):
    with pytest.raises(ValueError, match="learned vocabulary"):
        build_demo_tokenizer(texts[:10], tmp_path / "tok", vocab_size=50_000)


@pytest.mark.skipif(not FIXTURE.is_dir(), reason="official parity fixture not available")
def test_layout_matches_the_official_fixture(tok_dir):
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        assert json.loads((tok_dir / name).read_text()) == json.loads((FIXTURE / name).read_text()), name
    ours = json.loads((tok_dir / "tokenizer.json").read_text())
    ref = json.loads((FIXTURE / "tokenizer.json").read_text())
    for key in ("added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder"):
        assert ours[key] == ref[key], key
    assert ours["model"]["type"] == ref["model"]["type"] == "BPE"
    assert len(ours["model"]["vocab"]) == len(ref["model"]["vocab"]) == 1200
