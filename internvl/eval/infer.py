"""Batched, sharded, resumable generation over a normalized benchmark split.

Finished shards live in a cache directory keyed by a fingerprint of checkpoint content + benchmark
data + every generation setting, outside Snakemake's outputs: a killed job restarts where it stopped,
and a changed parameter gets a new fingerprint, so stale answers are never reused. Batching uses left
padding; ``bench/eval_throughput.py`` checks it gives the same greedy tokens as batch 1.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from internvl.data.io import atomic_path, write_jsonl_atomic
from internvl.errors import DataError
from internvl.eval.prompts import build_question
from internvl.eval.registry import Benchmark
from internvl.model.preprocess import image_to_tensor, load_image
from internvl.provenance import checkpoint_hash, file_sha256

log = logging.getLogger(__name__)


def load_rows(data: str | Path) -> list[dict[str, Any]]:
    return pd.read_parquet(data).to_dict(orient="records")


def row_image(row: dict[str, Any], data_root: Path, size: int, pad2square: bool) -> torch.Tensor:
    if row.get("image_bytes") is not None:
        source: Any = bytes(row["image_bytes"])
        where = f"{row['id']} (embedded image)"
    else:
        source = data_root / row["image_path"]
        where = str(source)
    try:
        return image_to_tensor(load_image(source), size, pad2square)
    except (OSError, ValueError) as exc:
        raise DataError(where, f"unreadable image for question {row['id']}: {exc}") from None


def fingerprint(ckpt_hash: str, data_hash: str, bench: Benchmark, dtype: str) -> str:
    payload = {"checkpoint": ckpt_hash, "data": data_hash, "bench": bench.name, "params": bench.score_params(),
               "dtype": dtype}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


class Generator:
    """Left-padded batched ``generate`` with the model's template, equivalent to ``chat()`` per sample."""

    def __init__(self, model, tokenizer, data_root: Path):
        self.model, self.tok, self.data_root = model, tokenizer, data_root
        self.tok.padding_side = "left"
        self.size = int(model.config.force_image_size)
        self.pad2square = bool(model.config.pad2square)
        self.device = model.lm_head.weight.device

    @torch.no_grad()
    def generate(self, rows: list[dict[str, Any]], questions: list[str], gen: dict[str, Any]) -> list[str]:
        prompts = [self.model.build_prompt(q) for q in questions]
        enc = self.tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        pixels = torch.stack([row_image(r, self.data_root, self.size, self.pad2square) for r in rows])
        out = self.model.generate(
            input_ids=enc.input_ids.to(self.device), attention_mask=enc.attention_mask.to(self.device),
            pixel_values=pixels.to(self.device, self.model.dtype),
            **self.model.generation_kwargs(self.tok, gen),
        )
        new = out[:, enc.input_ids.shape[1]:]
        return self.tok.batch_decode(new, skip_special_tokens=True)


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def run_inference(checkpoint: str | Path, data: str | Path, data_root: str | Path, bench: Benchmark,
                  out: str | Path, cache_dir: str | Path, batch_size: int = 16, shard_size: int = 64,
                  dtype: str = "float32", device: str = "cpu") -> dict[str, Any]:
    """Write ``out`` (JSONL of {id, prediction}) and return run statistics (fingerprint, reused shards)."""
    from internvl.model.checkpoint import load_pretrained

    rows = load_rows(data)
    fp = fingerprint(checkpoint_hash(checkpoint), file_sha256(Path(data)), bench, dtype)
    shard_dir = Path(cache_dir) / fp
    shard_dir.mkdir(parents=True, exist_ok=True)
    (shard_dir / "fingerprint.json").write_text(json.dumps(
        {"checkpoint": str(checkpoint), "data": str(data), "bench": bench.name, "params": bench.score_params()},
        indent=1))
    shards = list(_batches(rows, shard_size))
    todo = [i for i in range(len(shards)) if not (shard_dir / f"shard-{i:05d}.jsonl").exists()]
    model = tok = None
    if todo:
        model, tok = load_pretrained(checkpoint, dtype=dtype, device=device)
        gen = Generator(model, tok, Path(data_root))
    done = sum(len(shards[i]) for i in range(len(shards)) if i not in todo)
    if done:
        log.info("%s: reusing %d finished shards (%d questions) from %s",
                 bench.name, len(shards) - len(todo), done, shard_dir)
    bar = tqdm(total=len(rows), initial=done, desc=f"infer {bench.name}", unit="q")
    for i in todo:
        records = []
        for batch in _batches(shards[i], batch_size):
            questions = [build_question(r, bench) for r in batch]
            answers = gen.generate(batch, questions, bench.generation.as_kwargs())
            records += [{"id": r["id"], "question": q, "prediction": a}
                        for r, q, a in zip(batch, questions, answers, strict=True)]
            bar.update(len(batch))
        write_jsonl_atomic(shard_dir / f"shard-{i:05d}.jsonl", records)
    bar.close()
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for i in range(len(shards)):
            fh.write((shard_dir / f"shard-{i:05d}.jsonl").read_text(encoding="utf-8"))
    return {"fingerprint": fp, "shards": len(shards), "reused_shards": len(shards) - len(todo),
            "batch_size": batch_size, "dtype": dtype, "device": device, "n": len(rows)}
