"""Batched, sharded, resumable generation over a normalized benchmark split.

Finished shards live in a cache directory keyed by a fingerprint of checkpoint content + benchmark
data + every generation setting + dtype + shard and batch size, outside Snakemake's outputs: a killed
job restarts where it stopped, and a changed parameter gets a new fingerprint, so stale answers are
never reused. Shard size fixes which rows a shard holds; batch size which rows are padded together
(the same greedy tokens in float32, ``bench/eval_throughput.py``, but not guaranteed in bfloat16), so
both are part of the key. A reused shard must also hold exactly the ids of its rows, or it is
generated again. ``dtype`` accepts the usual short names (bf16, fp16, fp32); anything else is a
:class:`ConfigError`, and the loaded model must have that dtype.
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
from internvl.errors import ConfigError, DataError
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


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}


def canonical_dtype(name: str) -> str:
    """``bf16`` -> ``bfloat16`` etc.; an unknown name is an error (never a silent float32)."""
    key = str(name).strip().lower().removeprefix("torch.")
    key = DTYPE_ALIASES.get(key, key)
    if key not in DTYPES:
        raise ConfigError(f"inference dtype {name!r} is not one of {sorted(DTYPES)} (or {sorted(DTYPE_ALIASES)})")
    return key


def fingerprint(ckpt_hash: str, data_hash: str, bench: Benchmark, dtype: str, shard_size: int = 64,
                batch_size: int = 16) -> str:
    payload = {"checkpoint": ckpt_hash, "data": data_hash, "bench": bench.name, "params": bench.score_params(),
               "dtype": canonical_dtype(dtype), "shard_size": shard_size, "batch_size": batch_size}
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


def worker_devices(device: str, workers: int) -> list[str]:
    """One device per data-parallel worker: ``cuda`` with 4 workers -> cuda:0..cuda:3; CPU workers share the CPU."""
    if workers < 1:
        raise ValueError(f"inference workers must be >= 1, got {workers}")
    if workers == 1 or device == "cpu" or ":" in device:
        if workers > 1 and ":" in device:
            raise ValueError(f"device {device!r} names one GPU; use 'cuda' to spread {workers} workers over GPUs")
        return [device] * workers
    return [f"{device}:{i}" for i in range(workers)]


def _shard_path(shard_dir: Path, i: int) -> Path:
    return shard_dir / f"shard-{i:05d}.jsonl"


def _run_shards(rank: int, checkpoint: str, data: str, data_root: str, bench: Benchmark, shard_dir: str,
                shard_ids: list[list[int]], shard_size: int, batch_size: int, dtype: str, devices: list[str],
                threads: int, progress: bool, shards: list[list[dict[str, Any]]] | None = None) -> None:
    """Generate this worker's shards (``shard_ids[rank]``), each written atomically as soon as it is done.

    A shard holds the same rows and batches whatever the number of workers, so the answers do not
    depend on how the work was split. A spawned worker reads the data itself (``shards`` None); the
    in-process path passes the shards it already has.
    """
    from internvl.model.checkpoint import load_pretrained

    if threads:
        torch.set_num_threads(threads)
    mine = shard_ids[rank]
    if not mine:
        return
    if shards is None:
        shards = list(_batches(load_rows(data), shard_size))
    model, tok = load_pretrained(checkpoint, dtype=dtype, device=devices[rank])
    if model.dtype != DTYPES[dtype]:
        raise RuntimeError(f"{checkpoint}: asked for {dtype}, the loaded model is {model.dtype}")
    gen = Generator(model, tok, Path(data_root))
    bar = tqdm(total=sum(len(shards[i]) for i in mine), desc=f"infer {bench.name}", unit="q", disable=not progress)
    for i in mine:
        records = []
        for batch in _batches(shards[i], batch_size):
            questions = [build_question(r, bench) for r in batch]
            answers = gen.generate(batch, questions, bench.generation.as_kwargs())
            records += [{"id": r["id"], "question": q, "prediction": a}
                        for r, q, a in zip(batch, questions, answers, strict=True)]
            bar.update(len(batch))
        write_jsonl_atomic(_shard_path(Path(shard_dir), i), records)
    bar.close()


def _run_parallel(args: tuple, workers: int, shard_dir: Path, todo: list[int], shards: list[list[Any]], done: int,
                  total: int, name: str) -> None:
    """Spawn one process per worker; the parent shows one progress bar (with ETA) from finished shards.

    A worker that fails stops the run with its traceback (``torch.multiprocessing`` re-raises it); shards
    other workers finished stay in the cache for the next attempt.
    """
    import torch.multiprocessing as mp

    ctx = mp.spawn(_run_shards, args=args, nprocs=workers, join=False)
    bar = tqdm(total=total, initial=done, desc=f"infer {name} ({workers} workers)", unit="q")
    finished: set[int] = set()
    while not ctx.join(timeout=2):
        for i in todo:
            if i not in finished and _shard_path(shard_dir, i).exists():
                finished.add(i)
                bar.update(len(shards[i]))
    bar.update(sum(len(shards[i]) for i in todo if i not in finished))
    bar.close()


def _reusable(path: Path, rows: list[dict[str, Any]]) -> bool:
    """A finished shard counts only if it holds exactly the ids of its rows, in order."""
    if not path.exists():
        return False
    try:
        ids = [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (json.JSONDecodeError, KeyError, TypeError):
        ids = None
    if ids != [r["id"] for r in rows]:
        log.warning("%s does not hold the answers of its %d rows; generating it again", path, len(rows))
        path.unlink()
        return False
    return True


def run_inference(checkpoint: str | Path, data: str | Path, data_root: str | Path, bench: Benchmark,
                  out: str | Path, cache_dir: str | Path, batch_size: int = 16, shard_size: int = 64,
                  dtype: str = "float32", device: str = "cpu", workers: int = 1,
                  threads_per_worker: int = 0) -> dict[str, Any]:
    """Write ``out`` (JSONL of {id, question, prediction}) and return run statistics.

    ``workers`` > 1 runs data-parallel: unfinished shards are dealt round-robin to one process per
    device (see :func:`worker_devices`). The output is the same file whatever ``workers`` is, because
    shards, not workers, define the batches; the fingerprint therefore leaves ``workers`` out.
    """
    dtype = canonical_dtype(dtype)
    if shard_size < 1 or batch_size < 1:
        raise ConfigError(f"inference shard_size and batch_size must be >= 1, got {shard_size} and {batch_size}")
    rows = load_rows(data)
    fp = fingerprint(checkpoint_hash(checkpoint), file_sha256(Path(data)), bench, dtype, shard_size, batch_size)
    shard_dir = Path(cache_dir) / fp
    shard_dir.mkdir(parents=True, exist_ok=True)
    (shard_dir / "fingerprint.json").write_text(json.dumps(
        {"checkpoint": str(checkpoint), "data": str(data), "bench": bench.name, "params": bench.score_params(),
         "dtype": dtype, "shard_size": shard_size, "batch_size": batch_size}, indent=1))
    shards = list(_batches(rows, shard_size))
    todo = [i for i in range(len(shards)) if not _reusable(_shard_path(shard_dir, i), shards[i])]
    done = sum(len(shards[i]) for i in range(len(shards)) if i not in todo)
    if done:
        log.info("%s: reusing %d finished shards (%d questions) from %s",
                 bench.name, len(shards) - len(todo), done, shard_dir)
    devices = worker_devices(device, min(workers, max(len(todo), 1)))
    shard_ids = [todo[r::len(devices)] for r in range(len(devices))]
    args = (str(checkpoint), str(data), str(data_root), bench, str(shard_dir), shard_ids, shard_size, batch_size,
            dtype, devices, threads_per_worker)
    if todo and len(devices) == 1:
        _run_shards(0, *args, progress=True, shards=shards)
    elif todo:
        _run_parallel((*args, False), len(devices), shard_dir, todo, shards, done, len(rows), bench.name)
    missing = [i for i in range(len(shards)) if not _shard_path(shard_dir, i).exists()]
    if missing:
        raise RuntimeError(f"{bench.name}: shards {missing[:5]} were not written by the workers ({shard_dir})")
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for i in range(len(shards)):
            fh.write(_shard_path(shard_dir, i).read_text(encoding="utf-8"))
    return {"fingerprint": fp, "shards": len(shards), "reused_shards": len(shards) - len(todo),
            "batch_size": batch_size, "dtype": dtype, "device": device, "workers": len(devices), "n": len(rows)}
