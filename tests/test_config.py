"""Both configs validate against the schema; the full config points at the seed's V1.2 SFT mix."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
import yaml
from conftest import REPO, SHARED

from internvl.data.sft import read_meta
from internvl.eval import registry


def _load(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


SCHEMA = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())


@pytest.mark.parametrize("name", ["config.yaml", "demo.yaml"])
def test_config_validates_and_names_known_benchmarks(name):
    cfg = _load(name)
    jsonschema.validate(cfg, SCHEMA)
    for bench in cfg["benchmarks"]:
        registry.resolve(bench)
    assert cfg["model"] in cfg["models"] and set(cfg["table"]["models"]) <= set(cfg["models"])


def test_schema_rejects_a_train_model_without_recipe():
    cfg = copy.deepcopy(_load("demo.yaml"))
    del cfg["models"]["demo_sft"]["recipe"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(cfg, SCHEMA)


def test_full_config_uses_the_v1_2_mix(tmp_path):
    cfg = _load("config.yaml")
    assert cfg["sft"]["meta"] == "shell/data/data_yi34b_finetune.json"
    real = SHARED / "realdata" / "internvl_meta" / "data_yi34b_finetune.json"
    if not real.exists():
        pytest.skip(f"{real} not available")
    sources = read_meta(real, tmp_path)
    assert len(sources) == 9
    assert sum(s.length for s in sources) == 1_267_819
    assert all(s.repeat_time == 1 and not s.data_augment for s in sources)
    assert json.loads(real.read_text())["dvqa_train_200k"]["root"] == "playground/data/dvqa/"


def test_full_config_runs_every_split_of_the_registry():
    assert sorted(_load("config.yaml")["benchmarks"]) == sorted(registry.BENCHMARKS)


def test_full_config_sft_waits_for_every_source_its_meta_names():
    """The SFT normalization takes the stamps of `sft.sources` (group sft): each of the meta file's nine
    entries must be used by one of them (annotations, images), and the meta itself must be one."""
    from internvl.download import load_sources

    cfg = _load("config.yaml")
    doc = load_sources(REPO / "config" / "sources.yaml")
    wanted = set(cfg["sft"]["sources"])
    chosen = {n: e for n, e in doc["sources"].items() if e.get("group") in wanted or n in wanted}
    assert any(e["dest"] == cfg["sft"]["meta"] and e["root"] == "internvl_chat" for e in chosen.values())
    real = SHARED / "realdata" / "internvl_meta" / "data_yi34b_finetune.json"
    if not real.exists():
        pytest.skip(f"{real} not available")
    used = {u for e in chosen.values() for u in e.get("used_by") or []}
    missing = [name for name in json.loads(real.read_text()) if name not in used]
    assert not missing, f"meta entries with no sft source: {missing}"


def test_the_pinned_sft_meta_is_the_upstream_file():
    """sources.yaml pins sft_meta_yi34b by sha256; the shared copy of the upstream file (0bfa5e7) has it."""
    import hashlib

    from internvl.download import load_sources

    entry = load_sources(REPO / "config" / "sources.yaml")["sources"]["sft_meta_yi34b"]
    real = SHARED / "realdata" / "internvl_meta" / "data_yi34b_finetune.json"
    if not real.exists():
        pytest.skip(f"{real} not available")
    assert "0bfa5e7c19ad8e39fccaceb78100025432e03dc8" in entry["url"]
    assert entry["sha256"] == hashlib.sha256(real.read_bytes()).hexdigest() and entry["size"] == real.stat().st_size
