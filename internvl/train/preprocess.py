"""Tokenization and loss masking of one conversation, as the original ``preprocess_mpt`` (Hermes-2).

The original tokenizes the whole rendered string, then re-tokenizes each turn to find the spans to
mask, and masks the whole sample (zero loss) when the two counts disagree. We keep that arithmetic
exactly (it decides which tokens carry loss) and report mismatches instead of only printing them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from internvl.model.conversation import Template, image_span

IGNORE_INDEX = -100


@dataclass
class Encoded:
    input_ids: torch.Tensor
    labels: torch.Tensor
    mismatch: bool  # True when the original's consistency check masked the whole sample
    truncated: bool


def render(conversations: list[dict[str, str]], template: Template) -> str:
    """Render LLaVA turns with the template, dropping a leading non-human turn like the original."""
    if conversations and conversations[0]["from"] != "human":
        conversations = conversations[1:]
    turns: list[tuple[str, str | None]] = []
    for j, turn in enumerate(conversations):
        role = "user" if turn["from"] == "human" else "assistant"
        if role != ("user", "assistant")[j % 2]:
            raise ValueError(f"turn {j}: roles must alternate human/gpt")
        # MPT style renders an empty message as a bare role string (the original's `if message:`).
        turns.append((role, turn["value"] or None))
    return template.render(turns)


def encode(conversations: list[dict[str, str]], tokenizer, template: Template, num_image_token: int,
           has_image: bool, max_length: int) -> Encoded:
    convs = [dict(t) for t in conversations]
    if has_image:
        first = next(i for i, t in enumerate(convs) if t["from"] == "human")
        if "<image>" not in convs[first]["value"]:
            convs[first]["value"] = "<image>\n" + convs[first]["value"]
    else:
        for t in convs:
            t["value"] = t["value"].replace("<image>\n", "").replace("<image>", "")
    text = render(convs, template)
    if has_image:
        text = text.replace("<image>", image_span(num_image_token))  # V1.2 replaces every occurrence
    ids = tokenizer(text, truncation=True, max_length=max_length).input_ids
    input_ids = torch.tensor(ids, dtype=torch.long)
    labels = input_ids.clone()
    pad_id = tokenizer.pad_token_id
    total_len = int((input_ids != pad_id).sum())

    sep = template.sep + template.roles[1]  # "<|im_end|><|im_start|>assistant\n"
    pieces = text.split(template.sep)
    segments = [template.sep.join(pieces[:3])] + [template.sep.join(pieces[i:i + 2]) for i in range(3, len(pieces), 2)]
    cur = 0
    for seg in segments:
        if seg == "":
            break
        seg_len = len(tokenizer(seg).input_ids) + 1  # +1: the <|im_end|> lost by the split
        parts = seg.split(sep)
        if len(parts) != 2:
            break
        instruction_len = len(tokenizer(parts[0] + sep).input_ids)
        labels[cur:cur + instruction_len] = IGNORE_INDEX
        cur += seg_len
    labels[cur:] = IGNORE_INDEX
    mismatch = False
    if cur < max_length and cur != total_len:
        labels[:] = IGNORE_INDEX
        mismatch = True
    return Encoded(input_ids, labels, mismatch, truncated=cur >= max_length)
