"""Shared locations: ``../shared`` beside the checkout (or $INTERNVL_SHARED), and the small file helpers
the benchmark tests share (import them with ``from conftest import ...``; tests/ is on sys.path under
pytest's default import mode)."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INTERNVL_SHARED", REPO.parent / "shared"))
FIXTURE = SHARED / "fixtures" / "official_v1_2_tiny"


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    if not FIXTURE.is_dir():
        pytest.skip(f"parity fixture not found at {FIXTURE} (set INTERNVL_SHARED)")
    return FIXTURE


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    """A tiny demo (``raw/``), its tokenizer (``tok/``) and an untrained tiny checkpoint (``ckpt/``), built
    once for the tests that only read them; tests may add files of their own names beside them."""
    from internvl.demo.tokenizer import build_demo_tokenizer
    from internvl.demo.writers import DemoSizes, build_demo, write_corpus
    from internvl.model.init import init_checkpoint

    root = tmp_path_factory.mktemp("tiny_demo")
    build_demo(root / "raw", seed=1, sizes=DemoSizes.tiny())
    build_demo_tokenizer(write_corpus(root / "raw"), root / "tok")
    init_checkpoint("tiny", root / "tok", root / "ckpt", seed=0)
    return root


# the tiny demo the DAG tests run (internvl.demo.writers.DemoSizes fields): seconds, not minutes
TINY_SIZES = {"sft_caption": 24, "sft_vqa": 32, "sft_mcq": 24, "sft_text": 8, "mmbench_questions": 12,
              "vqav2_images": 4, "coco_images": 4, "pope_images": 3, "image_size": 64, "lm_docs": 8,
              "align_images": 8}


# --- real-data samples (shared/realdata, see its PROVENANCE.md) ----------------------------------------


def _realdata() -> Path:
    env = os.environ.get("INTERNVL_SHARED")
    base = Path(env) if env else REPO.parent / "shared"
    return base / "realdata" if (base / "realdata").is_dir() else base


REALDATA = _realdata()
needs_realdata = pytest.mark.skipif(
    not (REALDATA / "PROVENANCE.md").is_file(),
    reason=f"shared real-data samples not found at {REALDATA} (set INTERNVL_SHARED to the shared/ folder)",
)


# --- writing and reading small benchmark files ---------------------------------------------------------


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def write_json(path: Path, obj: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def touch(path: Path, content: bytes = b"not decoded by the normalizer") -> None:
    """A placeholder image file (normalizers check that path images exist; they never decode them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def jpeg_b64(color: tuple[int, int, int]) -> tuple[str, bytes]:
    """An 8x8 JPEG of one colour, as base64 text (the MMBench TSV ``image`` cell) and as bytes."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="JPEG")
    return base64.b64encode(buf.getvalue()).decode(), buf.getvalue()


def png_bytes(color: tuple[int, int, int] = (10, 20, 30)) -> bytes:
    """A 4x4 PNG of one colour (an embedded image, e.g. MMMU's ``image_1``)."""
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, format="PNG")
    return buf.getvalue()
