"""Checkpoint downloads from the Hugging Face hub at pinned revisions.

``HF_ENDPOINT`` selects a mirror and ``HF_HUB_OFFLINE=1`` serves from the local cache only; both are
huggingface_hub's own settings. Only safetensors weights and the tokenizer/config files are fetched:
the bundled remote code is never needed (we do not run it).
"""

from __future__ import annotations

import logging
from pathlib import Path

from internvl.provenance import checkpoint_hash

log = logging.getLogger(__name__)
ALLOW = ["*.json", "*.safetensors", "tokenizer.model", "*.txt", "*.jinja"]


def download_checkpoint(repo_id: str, revision: str, out: str | Path, hash_out: str | Path | None = None) -> str:
    from huggingface_hub import snapshot_download

    out = Path(out)
    log.info("downloading %s@%s -> %s", repo_id, revision, out)
    snapshot_download(repo_id=repo_id, revision=revision, local_dir=str(out), allow_patterns=ALLOW)
    if not any(out.glob("*.safetensors")):
        raise FileNotFoundError(f"{repo_id}@{revision}: no safetensors weights (pickle checkpoints are not loaded)")
    digest = checkpoint_hash(out)
    if hash_out:
        Path(hash_out).write_text(digest + "\n")
    return digest
