"""Shared locations: ``../shared`` beside the checkout (or $INTERNVL_SHARED)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INTERNVL_SHARED", REPO.parent / "shared"))
FIXTURE = SHARED / "fixtures" / "official_v1_2_tiny"


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    if not FIXTURE.is_dir():
        pytest.skip(f"parity fixture not found at {FIXTURE} (set INTERNVL_SHARED)")
    return FIXTURE
