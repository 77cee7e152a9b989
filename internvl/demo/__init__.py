"""Embedded demo data: a synthetic coloured-shapes world, writers for SFT and benchmark files, a tiny tokenizer.

The demo lets the whole pipeline (data normalisation, SFT, evaluation, report) run end to end on a laptop
with the real file formats, so nothing in the pipeline needs a demo-only code path.
"""

from __future__ import annotations

from internvl.demo.writers import DemoSizes, build_demo, corpus_texts, write_corpus

__all__ = ["DemoSizes", "build_demo", "corpus_texts", "write_corpus", "build_demo_tokenizer"]


def build_demo_tokenizer(*args, **kwargs):
    """Lazy wrapper: importing the demo data writers should not import ``tokenizers``."""
    from internvl.demo.tokenizer import build_demo_tokenizer as _build

    return _build(*args, **kwargs)
