"""Sharded safetensors, one tensor at a time: reading, writing with an index, and the original<->HF
name translation as a stream.

Why streaming: the V1.2 checkpoint is 80 GB in bf16. A loader or saver that builds the whole state
dict holds that much host memory per process (8 ranks on a node: 640 GB), so everything here keeps at
most one shard's worth of tensors (writing) or one tensor (reading) in memory.

Layout written (transformers' convention, which :func:`internvl.model.checkpoint._read_safetensors`
and the upstream loader read): one ``model.safetensors`` when everything fits in one shard, else
``model-00001-of-0000N.safetensors`` ... plus ``model.safetensors.index.json`` (``metadata.total_size``
and ``weight_map``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(size: int | str) -> int:
    """``"5GB"`` -> 5e9 bytes (decimal units as transformers' ``max_shard_size``; ``MiB``/``GiB`` binary)."""
    if isinstance(size, int):
        return size
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", str(size))
    if not m or (m.group(2) and m.group(2).upper() not in _UNITS):
        raise ValueError(f"shard size {size!r}: expected bytes or a number with B/KB/MB/GB/TB/KiB/MiB/GiB")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper() or "B"])


def shard_files(path: str | Path) -> list[Path]:
    """The safetensors files of a checkpoint directory, in index order (or the single file)."""
    path = Path(path)
    index = path / INDEX_NAME
    if index.exists():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (path / SINGLE_NAME).exists():
        names = [SINGLE_NAME]
    else:
        raise FileNotFoundError(f"{path}: no {SINGLE_NAME} or {INDEX_NAME} (only safetensors checkpoints are loaded)")
    files = [path / n for n in names]
    for f in files:
        if not f.exists():
            raise FileNotFoundError(f"{f}: checkpoint shard missing (named in {index})")
    return files


def tensor_keys(path: str | Path) -> list[str]:
    """Every tensor name of a checkpoint, read from the shard headers only."""
    keys: list[str] = []
    for f in shard_files(path):
        with safe_open(str(f), framework="pt") as fh:
            keys.extend(fh.keys())
    return keys


def iter_tensors(path: str | Path) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) for every tensor of a checkpoint, one at a time, shard by shard."""
    for f in shard_files(path):
        with safe_open(str(f), framework="pt") as fh:
            for k in fh.keys():
                yield k, fh.get_tensor(k)


class ShardWriter:
    """Append tensors; a shard is written as soon as the next tensor would overflow it.

    At most one shard of tensors is held. Files are written under temporary names and renamed to
    their final ``-of-N`` names by :meth:`close`, which writes the index last.
    """

    def __init__(self, out_dir: str | Path, max_shard_size: int | str = "5GB", metadata: dict[str, str] | None = None):
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.limit = parse_size(max_shard_size)
        self.metadata = {"format": "pt", **(metadata or {})}
        self.pending: dict[str, torch.Tensor] = {}
        self.pending_bytes = 0
        self.written: list[tuple[Path, list[str]]] = []
        self.total_bytes = 0
        self.peak_bytes = 0  # the most tensor bytes held at once (what the memory bound is about)
        self.count = 0  # shard files, once closed

    def add(self, name: str, tensor: torch.Tensor) -> None:
        if name in self.pending or any(name in keys for _, keys in self.written):
            raise KeyError(f"tensor {name!r} written twice")
        nbytes = tensor.numel() * tensor.element_size()
        if self.pending and self.pending_bytes + nbytes > self.limit:
            self._flush()
        self.pending[name] = tensor.detach().contiguous().cpu()
        self.pending_bytes += nbytes
        self.total_bytes += nbytes
        self.peak_bytes = max(self.peak_bytes, self.pending_bytes)

    def _flush(self) -> None:
        tmp = self.out / f".shard-{len(self.written):05d}.tmp"
        save_file(self.pending, str(tmp), metadata=self.metadata)
        self.written.append((tmp, list(self.pending)))
        self.pending, self.pending_bytes = {}, 0

    def close(self) -> list[str]:
        """Write the last shard, name the shards, write the index (if more than one); returns file names."""
        if self.pending or not self.written:
            self._flush()
        n = self.count = len(self.written)
        if n == 1:
            os.replace(self.written[0][0], self.out / SINGLE_NAME)
            (self.out / INDEX_NAME).unlink(missing_ok=True)
            return [SINGLE_NAME]
        weight_map, names = {}, []
        for i, (tmp, keys) in enumerate(self.written, start=1):
            name = f"model-{i:05d}-of-{n:05d}.safetensors"
            os.replace(tmp, self.out / name)
            names.append(name)
            weight_map.update(dict.fromkeys(keys, name))
        (self.out / SINGLE_NAME).unlink(missing_ok=True)
        index = {"metadata": {"total_size": self.total_bytes}, "weight_map": dict(sorted(weight_map.items()))}
        tmp_index = self.out / (INDEX_NAME + ".tmp")
        tmp_index.write_text(json.dumps(index, indent=2) + "\n")
        os.replace(tmp_index, self.out / INDEX_NAME)
        return names


def write_sharded(items: Iterable[tuple[str, torch.Tensor]], out_dir: str | Path,
                  max_shard_size: int | str = "5GB") -> list[str]:
    writer = ShardWriter(out_dir, max_shard_size)
    for name, tensor in items:
        writer.add(name, tensor)
    return writer.close()
