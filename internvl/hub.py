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


def download_checkpoint(repo_id: str, revision: str, out: str | Path, hash_out: str | Path | None = None,
                        pin_hint: str = "the model's revision in the config") -> str:
    """The same snapshot path as the data sources: the resolved commit and per-file sha256 are recorded.

    ``pin_hint`` names where the revision is set (a hub model of config/config.yaml), for the offline error."""
    from internvl.download import fetch_hf_snapshot

    out = Path(out)
    fetch_hf_snapshot(repo_id, revision, out, allow_patterns=ALLOW, name=repo_id, pin_hint=pin_hint)
    if not any(out.glob("*.safetensors")):
        raise FileNotFoundError(f"{repo_id}@{revision}: no safetensors weights (pickle checkpoints are not loaded)")
    digest = checkpoint_hash(out)
    if hash_out:
        Path(hash_out).write_text(digest + "\n")
    return digest
