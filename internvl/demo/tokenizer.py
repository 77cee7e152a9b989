"""A tiny, offline, deterministic byte-level BPE tokenizer laid out like InternVL V1.2's Yi tokenizer.

Why this layout: the pipeline's preprocessing and masking code depends on tokenizer facts, not on the
vocabulary itself: ids 0-8 hold the Yi / Nous-Hermes-2 control tokens (``<unk>`` = pad = 0, ``<|im_start|>``
= 6, ``<|im_end|>`` = 7 = eos), no BOS/EOS is added when encoding, and the nine InternVL tokens are appended
as special tokens after the learned vocabulary, in the order the finetune script adds them, so
``<IMG_CONTEXT>`` is one token. The files match the layout of the official parity fixture
(``shared/fixtures/official_v1_2_tiny/checkpoint``) and load with ``AutoTokenizer.from_pretrained``.

Byte-level BPE (no normaliser, no prefix space) round-trips any text exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from internvl.data.io import atomic_path

YI_SPECIAL_TOKENS: tuple[str, ...] = (
    "<unk>", "<|startoftext|>", "<|endoftext|>", "<|reserved_3|>", "<|reserved_4|>", "<|reserved_5|>",
    "<|im_start|>", "<|im_end|>", "<|im_sep|>",
)
INTERNVL_TOKENS: tuple[str, ...] = ("<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>",
                                    "<box>", "</box>")
BOS, EOS, PAD, UNK = "<|startoftext|>", "<|im_end|>", "<unk>", "<unk>"
DEFAULT_VOCAB_SIZE = 1200  # learned part incl. ids 0-8; the InternVL tokens then take 1200-1208
MODEL_MAX_LENGTH = 4096


def _added(content: str) -> AddedToken:
    return AddedToken(content, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)


def _filler() -> list[str]:
    """Fixed extra text so the learned vocabulary can reach its target size on a tiny templated corpus.

    Without it a few hundred distinct words run out of merges early and the vocab size (hence the
    model's embedding shape) would depend on the corpus. Numbers and a word list are neutral material.
    """
    words = ("the of and to in is that it for on with as was at by this from be or an are not have but had "
             "one all were there what when your can said use each which she do how their if will up other about "
             "out many then them these so some her would make like him into time has look two more write go see "
             "number no way could people my than first water been call who oil its now find long down day did get "
             "come made may part over new sound take only little work know place year live me back give most very "
             "after thing our just name good sentence man think say great where help through much before line right "
             "too mean old any same tell boy follow came want show also around form three small set put end does "
             "another well large must big even such because turn here why ask went men read need land different "
             "home us move try kind hand picture again change off play spell air away animal house point page letter "
             "mother answer found study still learn should world high every near add food between own below country "
             "plant last school father keep tree never start city earth eye light thought head under story saw left "
             "few while along might close something seem next hard open example begin life always those both paper "
             "together got group often run important until children side feet car mile night walk white sea began "
             "grow took river four carry state once book hear stop without second later miss idea enough eat face "
             "watch far real almost let above girl sometimes mountain cut young talk soon list song being leave "
             "family chart document table figure image photo question option choice color colour shape circle "
             "square triangle rectangle line dot corner edge center middle top bottom upper lower red green blue "
             "yellow purple orange black white gray grey brown pink count size position object scene").split()
    lines = [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)]
    lines += [" ".join(str(n) for n in range(start, start + 50)) for start in range(0, 1000, 50)]
    return lines


def train_bpe(texts: list[str], vocab_size: int = DEFAULT_VOCAB_SIZE) -> Tokenizer:
    """Train the byte-level BPE with the Yi control tokens at ids 0-8 (no InternVL tokens yet)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=[_added(t) for t in YI_SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts) + _filler(), trainer=trainer)
    return tok


def _token_entry(content: str) -> dict[str, Any]:
    return {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}


def _write_json(dest: Path, obj: Any) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def build_demo_tokenizer(texts: list[str], out_dir: Path, vocab_size: int = DEFAULT_VOCAB_SIZE) -> None:
    """Train on ``texts`` and write ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json``.

    Same texts -> byte-identical files. Raises if the learned vocabulary does not reach ``vocab_size``
    (the InternVL token ids would then move).
    """
    out_dir = Path(out_dir)
    tok = train_bpe(texts, vocab_size)
    if tok.get_vocab_size() != vocab_size:
        raise ValueError(f"learned vocabulary has {tok.get_vocab_size()} tokens, expected {vocab_size}; "
                         "give the tokenizer more text or a smaller vocab_size")
    tok.add_special_tokens([_added(t) for t in INTERNVL_TOKENS])
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "tokenizer.json") as tmp:
        tok.save(str(tmp), pretty=True)

    decoder = {str(tok.token_to_id(t)): {**_token_entry(t), "special": True}
               for t in YI_SPECIAL_TOKENS + INTERNVL_TOKENS}
    _write_json(out_dir / "tokenizer_config.json", {
        "added_tokens_decoder": decoder,
        "bos_token": BOS,
        "clean_up_tokenization_spaces": False,
        "eos_token": EOS,
        "model_max_length": MODEL_MAX_LENGTH,
        "pad_token": PAD,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": UNK,
    })
    _write_json(out_dir / "special_tokens_map.json", {
        "bos_token": _token_entry(BOS),
        "eos_token": _token_entry(EOS),
        "pad_token": _token_entry(PAD),
        "unk_token": _token_entry(UNK),
    })
