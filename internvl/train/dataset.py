"""The SFT dataset over normalized parquet shards, and the collators (padded, or packed).

A sample that cannot be built is an error naming its annotation file and line: an unreadable image,
roles that do not alternate, image tokens cut by ``max_seq_length``, more ``<image>`` tags than images
(the original silently trained on a random other sample, or mis-spliced the image features). With
``on_error="skip"`` it is left out of its batch instead and recorded (the batch carries the record, the
Trainer counts it); nothing is substituted. A sample whose tokenization fails the original's
consistency check keeps the original's treatment (zero loss), but is flagged so the run counts it per
source.

Every item carries ``source_index`` and ``mismatch`` so those counts survive dataloader workers (they
travel inside the batches to the training process) and can be summed over ranks.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from internvl.data.sft import read_sft
from internvl.errors import DataError
from internvl.model.conversation import IMG_CONTEXT_TOKEN, Template
from internvl.model.preprocess import image_to_tensor, load_image
from internvl.train.preprocess import IGNORE_INDEX, encode

BYTES_PER_TOKEN = 4  # the length estimate of group_by_length (see SFTDataset.lengths)


class SFTDataset(torch.utils.data.Dataset):
    def __init__(self, sft_dir: str | Path, base_dir: str | Path, tokenizer, template: Template,
                 num_image_token: int, image_size: int, max_length: int, pad2square: bool = False,
                 on_error: str = "raise"):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.sft_dir = Path(sft_dir)
        self.table = read_sft(sft_dir)
        self.rows = self.table.to_pylist()
        manifest = json.loads((self.sft_dir / "manifest.json").read_text())
        self.sources = list(manifest.get("sources") or {})
        self.annotations = {name: s.get("annotation", name) for name, s in (manifest.get("sources") or {}).items()}
        self._source_index = {name: i for i, name in enumerate(self.sources)}
        self.base = Path(base_dir)
        self.tokenizer, self.template = tokenizer, template
        self.num_image_token, self.image_size = num_image_token, image_size
        self.max_length, self.pad2square = max_length, pad2square
        self.on_error = on_error
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMG_CONTEXT_TOKEN)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def lengths(self) -> list[int]:
        """Estimated sequence length per sample, for ``group_by_length``, without building a sample.

        ``text_bytes`` (UTF-8 bytes of the turns, stored by normalize_sft) / 4 + the image span: four bytes
        a token holds for English with a Llama-style BPE and about for Chinese (three bytes a character,
        ~1.5 characters a token), so one rule serves the whole mix. Upstream tokenized the raw JSON after
        "conversations" at every start and left the image tokens out; only the order within a mega-batch
        matters, which the image span does change (text-only samples are 258 tokens shorter).
        """
        if "text_bytes" not in self.table.column_names:
            raise DataError(self.sft_dir / "manifest.json", "no text_bytes column (normalized before lengths were "
                            "stored): rerun normalize_sft for group_by_length")
        span = self.num_image_token + 2
        images = self.table.column("image_path").is_valid().to_pylist()
        return [math.ceil(b / BYTES_PER_TOKEN) + span * bool(has)
                for b, has in zip(self.table.column("text_bytes").to_pylist(), images, strict=True)]

    def where(self, row: dict[str, Any]) -> str:
        return self.annotations.get(row["source"], row["source"])

    def _fail(self, row: dict[str, Any], message: str, field: str) -> DataError:
        return DataError(self.where(row), f"sample {row['source']}/{row['id']}: {message}", line=row["line"], field=field)

    def _image(self, row: dict[str, Any]) -> tuple[torch.Tensor, int]:
        if row["image_path"] is None:
            # Text-only samples carry a white image with flag 0, so the ViT runs on every step.
            white = Image.new("RGB", (self.image_size, self.image_size), (255, 255, 255))
            return image_to_tensor(white, self.image_size), 0
        path = self.base / row["image_path"]
        try:  # bytes embedded by normalize_sft(embed_images=True), else the file
            source = row["image_bytes"] if row.get("image_bytes") is not None else path
            return image_to_tensor(load_image(source), self.image_size, self.pad2square), 1
        except (OSError, ValueError) as exc:
            raise self._fail(row, f"unreadable image {path}: {exc}", "image") from None

    def build(self, index: int) -> dict[str, Any]:
        """The training sample of row ``index``; DataError (naming file and line) if it cannot be built."""
        row = self.rows[index]
        pixel_values, flag = self._image(row)
        try:
            enc = encode(row["conversations"], self.tokenizer, self.template, self.num_image_token,
                         has_image=bool(flag), max_length=self.max_length)
        except ValueError as exc:
            raise self._fail(row, str(exc), "conversations") from None
        got = int((enc.input_ids == self.image_token_id).sum())
        want = self.num_image_token * flag
        if got != want:
            if got < want and enc.truncated:
                why = (f"image tokens cut by max_seq_length {self.max_length}: {got} of {want} <IMG_CONTEXT> "
                       "tokens are left")
            else:
                tags = sum(t["value"].count("<image>") for t in row["conversations"])
                why = f"{got} <IMG_CONTEXT> tokens for {flag} image(s) ({tags} <image> tags; V1.2 has one per sample)"
            raise self._fail(row, why, "conversations")
        return {"input_ids": enc.input_ids, "labels": enc.labels, "pixel_values": pixel_values,
                "image_flags": torch.tensor([flag], dtype=torch.long),
                "source_index": self._source_index.get(row["source"], -1), "mismatch": bool(enc.mismatch)}

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            return self.build(index)
        except DataError as exc:
            if self.on_error == "raise":
                raise
            row = self.rows[index]
            return {"skipped": {"source": row["source"], "id": row["id"], "file": exc.path, "line": exc.line,
                                "reason": str(exc)}, "source_index": self._source_index.get(row["source"], -1)}


def _meta(batch: list[dict[str, Any]], kept: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-batch bookkeeping the Trainer pops before the forward pass."""
    return {"source_index": torch.tensor([b.get("source_index", -1) for b in kept], dtype=torch.long),
            "mismatch": torch.tensor([b.get("mismatch", False) for b in kept], dtype=torch.bool),
            "skipped": [b["skipped"] for b in batch if "skipped" in b]}


def _split(batch: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    kept = [b for b in batch if "skipped" not in b]
    return kept, not kept


def _empty_batch(pad_token_id: int, like: dict[str, Any] | None, image_size: int | None) -> list[dict[str, Any]]:
    """A one-token, no-loss stand-in for a micro-batch whose every sample was skipped: the forward (and, under
    ZeRO-3, every rank's parameter gathers) still has to run; the Trainer multiplies its loss by 0."""
    size = image_size or 1
    pixels = torch.zeros(3, size, size) if like is None else torch.zeros_like(like["pixel_values"])
    return [{"input_ids": torch.tensor([pad_token_id]), "labels": torch.tensor([IGNORE_INDEX]), "pixel_values": pixels,
             "image_flags": torch.tensor([0])}]


def pad_collate(batch: list[dict[str, Any]], pad_token_id: int, image_size: int | None = None) -> dict[str, Any]:
    """Pad to the longest sample (right side): ids with the pad id, labels with -100.

    Padding each sample to 2048 as at 0bfa5e7 gives the same loss (padded positions carry no loss
    and are masked out of attention); padding per batch only saves compute.
    """
    kept, empty = _split(batch)
    rows = _empty_batch(pad_token_id, None, image_size) if empty else kept
    longest = max(len(b["input_ids"]) for b in rows)
    ids = torch.full((len(rows), longest), pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), longest), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for i, b in enumerate(rows):
        n = len(b["input_ids"])
        ids[i, :n], labels[i, :n], mask[i, :n] = b["input_ids"], b["labels"], 1
    out: dict[str, Any] = {"input_ids": ids, "labels": labels, "attention_mask": mask}
    if "pixel_values" in rows[0]:  # text-only corpora (internvl.train.lm_pretrain) carry no image fields
        out["pixel_values"] = torch.stack([b["pixel_values"] for b in rows])
        out["image_flags"] = torch.stack([b["image_flags"] for b in rows])
    if "source_index" in batch[0]:
        out.update(_meta(batch, kept), empty_batch=empty)
    return out


def packed_collate(batch: list[dict[str, Any]], pad_token_id: int, image_size: int | None = None) -> dict[str, Any]:
    """Padding-free packing: the micro-batch's samples concatenated into one row, ``position_ids`` restarting
    at 0 for each sample and no attention mask, so transformers builds per-sample (block-diagonal causal)
    attention for sdpa/eager and varlen attention for flash_attention_2. The first label of each sample is
    -100, so no sample predicts the next one's first token. Images stay in sample order, which is the order
    of their ``<IMG_CONTEXT>`` spans. Same samples per step as padding, so the optimisation is the padded one
    up to float summation order; only the compute on pad tokens is gone.
    """
    kept, empty = _split(batch)
    rows = _empty_batch(pad_token_id, None, image_size) if empty else kept
    ids = torch.cat([b["input_ids"] for b in rows]).unsqueeze(0)
    labels = []
    for b in rows:
        lab = b["labels"].clone()
        lab[0] = IGNORE_INDEX
        labels.append(lab)
    position_ids = torch.cat([torch.arange(len(b["input_ids"])) for b in rows]).unsqueeze(0)
    out: dict[str, Any] = {"input_ids": ids, "labels": torch.cat(labels).unsqueeze(0), "position_ids": position_ids,
                           "pixel_values": torch.stack([b["pixel_values"] for b in rows]),
                           "image_flags": torch.stack([b["image_flags"] for b in rows])}
    if "source_index" in batch[0]:
        out.update(_meta(batch, kept), empty_batch=empty)
    return out
