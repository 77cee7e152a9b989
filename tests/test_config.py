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
