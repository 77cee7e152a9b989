"""What produced a result: checkpoint content hash, package versions, git commit.

Hashing an 80 GB checkpoint takes minutes, so per-file digests are cached in a sidecar keyed by
size and mtime; a changed file is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "pandas", "pyarrow", "pillow", "numpy",
            "pycocoevalcap", "snakemake", "internvl-repro")
_SIDECAR = ".internvl_sha256.json"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_hash(ckpt: str | Path) -> str:
    """Content hash over config.json, the safetensors shards and the tokenizer files."""
    ckpt = Path(ckpt)
    names = sorted(p.name for p in ckpt.iterdir() if p.is_file() and (
        p.suffix == ".safetensors" or p.name in ("config.json", "tokenizer.json", "tokenizer.model")))
    if not names:
        raise FileNotFoundError(f"{ckpt}: no checkpoint files to hash")
    sidecar = ckpt / _SIDECAR
    cache: dict[str, Any] = {}
    if sidecar.exists():
        try:
            cache = json.loads(sidecar.read_text())
        except json.JSONDecodeError:
            cache = {}
    digests = {}
    for name in names:
        st = (ckpt / name).stat()
        key = f"{st.st_size}:{st.st_mtime_ns}"
        entry = cache.get(name)
        digests[name] = entry["sha256"] if entry and entry.get("key") == key else file_sha256(ckpt / name)
        cache[name] = {"key": key, "sha256": digests[name]}
    try:
        sidecar.write_text(json.dumps(cache, indent=1))
    except OSError:
        pass  # read-only checkpoint: hashing still worked, only the cache is lost
    return hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()


def verified_checkpoint_hash(ckpt: str | Path, expected: str | None) -> str:
    """:func:`checkpoint_hash`, checked against the hash a config pins (``sha256``), when it pins one.

    Why: a shipped or copied checkpoint can arrive altered (a Git LFS pointer instead of the weights, a
    partial copy, a retrained model under the same path); scores from it would silently describe another
    model.
    """
    got = checkpoint_hash(ckpt)
    if expected is not None and got != expected.lower():
        raise ValueError(f"{ckpt}: checkpoint content hash {got} differs from the configured sha256 {expected}: "
                         "the files there are not the checkpoint the config names (re-fetch them, or update "
                         "the config's sha256 if the change is intended)")
    return got


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(repo: str | Path = ".") -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha.strip() + ("-dirty" if dirty.strip() else "")
