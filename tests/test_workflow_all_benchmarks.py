"""Every split of the seed's evaluation list through the Snakemake DAG on the demo model.

The demo writes each split's raw files in its real format (``DemoSizes.all_benchmarks``); the DAG
normalizes, infers, scores (locally, through a fake OpenAI-compatible judge on 127.0.0.1, or as a
server submission) and builds the paper tables, all on the untrained tiny model (the plumbing is
under test here, not the scores; tests/test_workflow_e2e.py covers training and reruns).
"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from test_judge import FakeJudge
from test_workflow_e2e import REPO, TINY_SIZES, _planned, _snakemake

from internvl.eval import registry
from internvl.eval.metrics import SCORERS

pytestmark = pytest.mark.e2e
SERVER_SCORED = {"vqa-vqav2-testdev", "vqa-vizwiz-test", "vqa-docvqa-test", "mmbench-test-en", "mmbench-test-cn",
                 "mmmu-test", "mathvista-test"}


# the table needs every (model, split) result; two alias copies stand for the rest (each is a cp job)
TARGETS = ("results/paper_table.md", "results/mmbench_dev.json", "results/refcoco_val.json")


@pytest.fixture(scope="module")
def all_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dag_all")
    shutil.copytree(REPO / "config", tmp / "config")
    judge = FakeJudge()
    cfg = yaml.safe_load((REPO / "config" / "demo_all.yaml").read_text())
    cfg["demo"]["sizes"] = {**TINY_SIZES, "all_benchmarks": True, "bench_items": 2}
    cfg["models"] = {"demo_init": cfg["models"]["demo_init"]}  # the shipped LLM as it is: no training
    cfg["model"] = "demo_init"
    cfg["table"]["models"] = ["demo_init"]
    cfg["judge"]["base_url"] = judge.base_url
    cfg["inference"]["shard_size"] = 8
    path = tmp / "all.yaml"
    path.write_text(yaml.safe_dump(cfg))
    try:
        _snakemake(tmp, "--configfile", str(path), "--", *TARGETS)
        yield tmp, path, judge
    finally:
        judge.close()


def test_every_split_of_the_seed_list_is_configured():
    cfg = yaml.safe_load((REPO / "config" / "demo_all.yaml").read_text())
    assert [registry.resolve(b).name for b in cfg["benchmarks"]] == list(registry.BENCHMARKS)


def test_every_split_gets_a_result(all_run):
    tmp, _, judge = all_run
    slug = None
    for name, bench in registry.BENCHMARKS.items():
        if bench.judge:
            found = list((tmp / "results" / "demo_init").glob(f"{name}@*.json"))
            assert len(found) == 1, name
            slug = found[0].stem.split("@", 1)[1]
            result = json.loads(found[0].read_text())
            assert result["provenance"]["judge"], name
        else:
            result = json.loads((tmp / "results" / "demo_init" / f"{name}.json").read_text())
        assert result["benchmark"] == name and result["n"] > 0, name
        assert result["provenance"]["checkpoint_sha256"], name
        if name in SERVER_SCORED:
            assert result["server_scored"] is True and result["metrics"] == {}, name
            assert (tmp / result["submission"]).is_file(), name
        else:
            assert name in SCORERS and result["metrics"], name
            assert result["headline"]["metric"] == bench.headline, name
    assert slug and slug.startswith("gpt-4-0613")
    assert judge.requests, "the judge-scored splits never called the judge"


def test_paper_tables_and_aliases(all_run):
    tmp, _, _ = all_run
    table = (tmp / "results" / "paper_table.md").read_text()
    for title in ("Multimodal", "Captioning", "grounding"):
        assert title.lower() in table.lower(), title
    assert (tmp / "results" / "mmbench_dev.json").is_file() and (tmp / "results" / "refcoco_val.json").is_file()


def test_nothing_is_stale_after_the_run(all_run):
    tmp, path, _ = all_run
    assert _planned(_snakemake(tmp, "--configfile", str(path), "-n", "--", *TARGETS)) == {}
