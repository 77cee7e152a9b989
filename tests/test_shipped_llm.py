"""The shipped demo LLM (resources/demo_llm): pinned by content hash, copied by ``internvl.demo.ship``, and it
does what it is shipped for (in-context existence lookups about a scene in words)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from internvl.demo import diagnose
from internvl.demo.ship import ship
from internvl.model.checkpoint import load_pretrained
from internvl.provenance import checkpoint_hash, verified_checkpoint_hash

SHIPPED = REPO / "resources" / "demo_llm"


@pytest.fixture(scope="module")
def shipped_copy(tmp_path_factory) -> Path:
    """A copy, so hashing leaves no cache file in the repository."""
    dest = tmp_path_factory.mktemp("shipped") / "demo_llm"
    shutil.copytree(SHIPPED, dest, ignore=shutil.ignore_patterns(".internvl_sha256.json"))
    return dest


def test_demo_config_pins_the_shipped_files(shipped_copy):
    model = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())["models"]["demo_init"]
    assert model["kind"] == "path" and model["path"] == "{repo}/resources/demo_llm"
    assert verified_checkpoint_hash(shipped_copy, model["sha256"]) == model["sha256"]


def test_a_changed_file_fails_the_pin_naming_the_checkpoint(shipped_copy, tmp_path):
    pinned = checkpoint_hash(shipped_copy)
    other = tmp_path / "llm"
    shutil.copytree(shipped_copy, other)
    config = other / "config.json"
    config.write_text(config.read_text().replace('"downsample_ratio"', '"downsample_ratio" ', 1))
    with pytest.raises(ValueError, match=rf"{other}: checkpoint content hash [0-9a-f]{{64}} differs"):
        verified_checkpoint_hash(other, pinned)
    assert verified_checkpoint_hash(other, None) != pinned  # no pin: the hash is reported, not checked


def test_ship_copies_checkpoint_files_only_and_replaces_the_destination(tiny_demo, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(tiny_demo / "ckpt", src)
    (src / "trainer_state.json").write_text("{}")
    dest = tmp_path / "resources" / "demo_llm"
    dest.mkdir(parents=True)
    (dest / "stale.safetensors").write_text("old")
    digest = ship(src, dest)
    assert digest == checkpoint_hash(src)
    names = {p.name for p in dest.iterdir()}
    assert "stale.safetensors" not in names and "trainer_state.json" not in names
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names and ".internvl_sha256.json" not in names
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]  # no staging left behind
    (src / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        ship(src, tmp_path / "again")


def test_shipped_llm_answers_existence_about_a_scene_in_words(shipped_copy):
    model, tok = load_pretrained(shipped_copy)
    model.eval()
    probes = [p for p in diagnose.make_probes(40, seed=7) if p.skill == "exists"]
    report = diagnose.score(probes, diagnose.chat_answerer(model, tok), with_image=False)["exists"]
    # chance is 0.5 (half the objects are present); 40 questions at 0.75 is > 3 sd above it
    assert report["accuracy"] >= 0.75, report
