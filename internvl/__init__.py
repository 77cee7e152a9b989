"""InternVL-Chat V1.2, rebuilt on transformers: model, data, training, evaluation.

Heavy imports (torch, transformers) are deferred so that data-only tools start fast.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_pretrained", "save_pretrained", "__version__"]
__version__ = "0.1.0"


def load_pretrained(path: str, **kwargs: Any):
    """Load a checkpoint in the original InternVL-Chat on-disk format -> (model, tokenizer)."""
    from internvl.model.checkpoint import load_pretrained as _load

    return _load(path, **kwargs)


def save_pretrained(model: Any, path: str, tokenizer: Any = None) -> None:
    """Write a model (and tokenizer) back in the original InternVL-Chat on-disk format."""
    from internvl.model.checkpoint import save_pretrained as _save

    _save(model, path, tokenizer=tokenizer)
