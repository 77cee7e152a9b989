"""The SFT dataset over normalized parquet shards, and the padding collator.

A sample that cannot be built (unreadable image, roles that do not alternate) is an error naming
its source, id and raw line: the original silently trained on a random other sample instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image

from internvl.data.sft import read_sft
from internvl.errors import DataError
from internvl.model.conversation import Template
from internvl.model.preprocess import image_to_tensor, load_image
from internvl.train.preprocess import IGNORE_INDEX, encode


class SFTDataset(torch.utils.data.Dataset):
    def __init__(self, sft_dir: str | Path, base_dir: str | Path, tokenizer, template: Template,
                 num_image_token: int, image_size: int, max_length: int, pad2square: bool = False):
        self.rows = read_sft(sft_dir).to_pylist()
        self.base = Path(base_dir)
        self.tokenizer, self.template = tokenizer, template
        self.num_image_token, self.image_size = num_image_token, image_size
        self.max_length, self.pad2square = max_length, pad2square
        self.mismatches = 0

    def __len__(self) -> int:
        return len(self.rows)

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
            raise DataError(path, f"unreadable image for sample {row['source']}/{row['id']} "
                            f"(annotation line {row['line']}): {exc}") from None

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = self.rows[index]
        pixel_values, flag = self._image(row)
        enc = encode(row["conversations"], self.tokenizer, self.template, self.num_image_token,
                     has_image=bool(flag), max_length=self.max_length)
        if enc.mismatch:
            self.mismatches += 1
        return {"input_ids": enc.input_ids, "labels": enc.labels, "pixel_values": pixel_values,
                "image_flags": torch.tensor([flag], dtype=torch.long)}


def pad_collate(batch: list[dict[str, torch.Tensor]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad to the longest sample (right side): ids with the pad id, labels with -100.

    Padding each sample to 2048 as at 0bfa5e7 gives the same loss (padded positions carry no loss
    and are masked out of attention); padding per batch only saves compute.
    """
    longest = max(len(b["input_ids"]) for b in batch)
    ids = torch.full((len(batch), longest), pad_token_id, dtype=torch.long)
    labels = torch.full((len(batch), longest), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), longest), dtype=torch.long)
    for i, b in enumerate(batch):
        n = len(b["input_ids"])
        ids[i, :n], labels[i, :n], mask[i, :n] = b["input_ids"], b["labels"], 1
    out = {"input_ids": ids, "labels": labels, "attention_mask": mask}
    if "pixel_values" in batch[0]:  # text-only corpora (internvl.train.lm_pretrain) carry no image fields
        out["pixel_values"] = torch.stack([b["pixel_values"] for b in batch])
        out["image_flags"] = torch.stack([b["image_flags"] for b in batch])
    return out
