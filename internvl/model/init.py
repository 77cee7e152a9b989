"""A seeded random initialisation of a preset, written as an original-format checkpoint.

For the demo this is the "untrained" model the table compares against; the tokenizer decides the
vocabulary size and the ``<IMG_CONTEXT>`` id.
"""

from __future__ import annotations

from pathlib import Path

import torch

from internvl.model.checkpoint import build_model, load_tokenizer, save_pretrained
from internvl.model.config import preset
from internvl.model.conversation import IMG_CONTEXT_TOKEN
from internvl.provenance import checkpoint_hash


def init_checkpoint(preset_name: str, tokenizer_dir: str | Path, out: str | Path, seed: int = 0,
                    hash_out: str | Path | None = None) -> str:
    tok = load_tokenizer(tokenizer_dir)
    cfg = preset(preset_name, vocab_size=len(tok))
    cfg["llm_config"].update(bos_token_id=tok.bos_token_id, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                             pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = build_model(cfg, image_token_id=tok.convert_tokens_to_ids(IMG_CONTEXT_TOKEN))
    save_pretrained(model, out, tokenizer=tok)
    digest = checkpoint_hash(out)
    if hash_out:
        Path(hash_out).write_text(digest + "\n")
    return digest
