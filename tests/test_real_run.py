"""The real config's DAG (config/config.yaml): the user's literal target starts from the downloads.

- Dry runs of the real config: ``results/mmbench_dev.json`` plans download -> normalize -> infer -> score;
  the SFT normalization waits for the SFT sources; a judged result without a ``judge:`` block is a clear
  error, other results are not affected.
- A real run with a local HTTP server on 127.0.0.1 standing in for the download hosts (a sources file
  whose URLs point at it): the MMBench dev TSV in its real format and the upstream SFT meta file (the
  real bytes, so its pinned sha256 is checked) are downloaded, the TSV normalized, the shipped demo LLM
  (in place of the 40B model) answers, the answers are scored, and every rule log says what happened.
- Failing jobs (a 404, a manual source not placed, a deleted download, an offline hub model) end with one
  ``error:`` line naming the source and the fix, also in their non-empty rule logs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from conftest import SHARED
from test_benchmarks_normalize import build_mmbench_root
from test_download import _Handler, _State

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e
META = SHARED / "realdata" / "internvl_meta" / "data_yi34b_finetune.json"


def _snakemake(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(cwd), "--cores", "2", *args]
    full = {k: v for k, v in os.environ.items() if not k.startswith("HF_")} | (env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=full)


def _ok(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


def _error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "Traceback" not in out, out[-6000:]
    return [ln for ln in out.splitlines() if ln.startswith("error: ")]


def _planned(text: str) -> dict[str, int]:
    table = text.split("Job stats:", 1)[1].split("Reasons:", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def _edges(dot: str) -> set[tuple[str, str]]:
    """(producer rule, consumer rule) pairs of a ``--dag`` graph."""
    names = {m.group(1): m.group(2) for m in re.finditer(r'^\s*(\d+)\[label = "(\w+)', dot, re.M)}
    return {(names[a], names[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M)}


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A working directory as a fresh clone has it: the config folder, nothing downloaded."""
    tmp = tmp_path_factory.mktemp("real")
    shutil.copytree(REPO / "config", tmp / "config")
    return tmp


def test_literal_target_plans_download_normalize_infer_score(clone):
    text = _ok(_snakemake(clone, "-n", "--", "results/mmbench_dev.json"))
    assert _planned(text) == {"fetch_source": 1, "download_model": 1, "normalize_benchmark": 1, "infer": 1,
                              "score": 1, "result_for_configured_model": 1}
    assert "data/.sources/mmbench_dev_20230712.json" in text
    dot = _ok(_snakemake(clone, "-n", "--dag", "--", "results/mmbench_dev.json"))
    chain = [("fetch_source", "normalize_benchmark"), ("normalize_benchmark", "infer"), ("infer", "score"),
             ("score", "result_for_configured_model"), ("download_model", "infer")]
    assert set(chain) <= _edges(dot)


def test_sft_normalization_waits_for_the_sft_sources(clone):
    text = _ok(_snakemake(clone, "-n", "--dag", "--", "work/v1_2/parquet/sft/manifest.json"))
    producers = {a for a, b in _edges(text) if b == "normalize_sft"}
    assert producers == {"fetch_source", "place_manual_source"}
    plan = _planned(_ok(_snakemake(clone, "-n", "--", "work/v1_2/parquet/sft/manifest.json")))
    assert plan["normalize_sft"] == 1 and plan["fetch_source"] > 10 and plan["place_manual_source"] >= 5


def test_judged_results_need_the_judge_block_and_nothing_else_does(clone):
    lines = _error_lines(_snakemake(clone, "-n", "--", "results/llava_bench.json"))
    assert len(lines) == 1 and lines[0].startswith("error: benchmark 'llava-bench' is scored by an LLM judge")
    assert "no 'judge:' block" in lines[0]
    cfg = yaml.safe_load((clone / "config" / "config.yaml").read_text())
    cfg["judge"] = {"base_url": "http://127.0.0.1:9/v1", "model": "judge-model", "api_key_env": None}
    judged = clone / "with_judge.yaml"
    judged.write_text(yaml.safe_dump(cfg))
    plan = _planned(_ok(_snakemake(clone, "-n", "--configfile", str(judged), "--", "all")))
    models = len(cfg["table"]["models"])  # the released model and the SFT from parts, each scored on all 42
    assert plan["normalize_benchmark"] == 42 and plan["score_judged"] == 3 * models and plan["fetch_source"] > 50
    # the headline SFT: its parts downloaded, built, planned, trained, then evaluated into the table
    assert (plan["build_parts_model"], plan["train_plan"], plan["train_model"], plan["paper_table"]) == (1, 1, 1, 1)
    assert plan["place_manual_source"] > 5 and plan["paper_table"] == 1


# --- a real run against a local server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    """127.0.0.1 standing in for download.openmmlab.com and raw.githubusercontent.com."""
    state = _State()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Handler,), {"state": state}))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    root, _ = build_mmbench_root(tmp_path_factory.mktemp("mmbench"))
    state.files["/mmbench_dev_20230712.tsv"] = (root / "mmbench" / "mmbench_dev_20230712.tsv").read_bytes()
    if META.is_file():
        state.files["/data_yi34b_finetune.json"] = META.read_bytes()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def real_run(clone, hosts, tmp_path_factory):
    """The real config with two changes a test needs: the shipped demo LLM in place of the 40B model on
    CPU, and a sources file whose URLs point at the local server."""
    tmp = tmp_path_factory.mktemp("run")
    shutil.copytree(clone / "config", tmp / "config")
    sources = yaml.safe_load((REPO / "config" / "sources.yaml").read_text())
    sources["sources"]["mmbench_dev_20230712"]["url"] = hosts.base + "/mmbench_dev_20230712.tsv"
    sources["sources"]["sft_meta_yi34b"]["url"] = hosts.base + "/data_yi34b_finetune.json"
    sources["sources"]["mmbench_dev_cn_20231003"]["url"] = hosts.base + "/gone.tsv"  # a 404
    (tmp / "sources.yaml").write_text(yaml.safe_dump(sources, sort_keys=False))
    cfg = yaml.safe_load((tmp / "config" / "config.yaml").read_text())
    cfg["sources_file"] = str(tmp / "sources.yaml")
    cfg["models"] = {"internvl_chat_v1_2": {"kind": "path", "path": "{repo}/resources/demo_llm"}}
    cfg["table"]["models"] = ["internvl_chat_v1_2"]
    cfg["inference"] = {"batch_size": 4, "shard_size": 8, "dtype": "float32", "device": "cpu"}
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    targets = ["results/mmbench_dev.json"] + (["data/.sources/sft_meta_yi34b.json"] if META.is_file() else [])
    dry = _ok(_snakemake(tmp, "-n", "--configfile", str(path), "--", *targets))
    proc = _snakemake(tmp, "--configfile", str(path), "--", *targets)
    return tmp, path, dry, _ok(proc)


def test_real_run_downloads_first_and_scores(real_run, hosts):
    tmp, _, dry, _ = real_run
    plan = _planned(dry)
    assert plan["fetch_source"] == (2 if META.is_file() else 1) and plan["normalize_benchmark"] == 1
    assert ("GET", "/mmbench_dev_20230712.tsv", None) in hosts.requests
    stamp = tmp / "data" / ".sources" / "mmbench_dev_20230712.json"
    parquet = tmp / "work" / "v1_2" / "parquet" / "bench" / "mmbench-dev-en.parquet"
    assert json.loads(stamp.read_text())["record"]["sha256"]
    assert stamp.stat().st_mtime <= parquet.stat().st_mtime  # normalization ran after the download
    result = json.loads((tmp / "results" / "mmbench_dev.json").read_text())
    assert result["benchmark"] == "mmbench-dev-en" and result["n"] == 4
    if META.is_file():  # the upstream meta file, checked against the sha256 pinned in sources.yaml
        assert (tmp / "shell" / "data" / "data_yi34b_finetune.json").read_bytes() == META.read_bytes()
    for log in ("data/.sources/logs/mmbench_dev_20230712.log", "work/v1_2/logs/normalize/mmbench-dev-en.log",
                "work/v1_2/logs/infer/internvl_chat_v1_2/mmbench-dev-en.log",
                "work/v1_2/logs/score/internvl_chat_v1_2/mmbench-dev-en.log"):
        text = (tmp / log).read_text()
        assert "job started" in text and "done: " in text, (log, text)
    assert "4 rows ->" in (tmp / "work/v1_2/logs/normalize/mmbench-dev-en.log").read_text()


def test_rerun_plans_nothing_and_a_redownload_reruns_nothing(real_run):
    tmp, path, _, _ = real_run
    assert "Nothing to be done" in _ok(_snakemake(tmp, "-n", "--configfile", str(path), "--", "results/mmbench_dev.json"))
    stamp = tmp / "data" / ".sources" / "mmbench_dev_20230712.json"
    os.utime(stamp)  # a re-verified download (a newer stamp) is ancient(): nothing downstream reruns
    assert "Nothing to be done" in _ok(_snakemake(tmp, "-n", "--configfile", str(path), "--", "results/mmbench_dev.json"))


def test_a_failed_download_is_one_error_line_and_logged(real_run):
    tmp, path, _, _ = real_run
    lines = _error_lines(_snakemake(tmp, "--configfile", str(path), "--", "data/.sources/mmbench_dev_cn_20231003.json"))
    assert len(lines) == 1 and "source 'mmbench_dev_cn_20231003'" in lines[0] and "HTTP 404" in lines[0]
    log = (tmp / "data/.sources/logs/mmbench_dev_cn_20231003.log").read_text()
    assert "job started" in log and lines[0] in log


def test_a_manual_source_says_where_to_place_what(real_run):
    tmp, path, _, _ = real_run
    lines = _error_lines(_snakemake(tmp, "--configfile", str(path), "--", "data/.sources/flickr30k_images.json"))
    dest = (tmp / "data" / "flickr30k" / "Images").resolve()
    assert len(lines) == 1
    assert f"place Images/ from https://bryanplummer.com/Flickr30kEntities/ at {dest}" in lines[0]
    assert lines[0] in (tmp / "data/.sources/logs/flickr30k_images.log").read_text()


def test_missing_data_names_the_source_and_the_fix(real_run):
    tmp, path, _, _ = real_run
    tsv = tmp / "data" / "mmbench" / "mmbench_dev_20230712.tsv"
    kept = tsv.read_bytes()
    tsv.unlink()
    try:
        lines = _error_lines(_snakemake(tmp, "--configfile", str(path), "--forcerun", "normalize_benchmark", "--",
                                        "work/v1_2/parquet/bench/mmbench-dev-en.parquet"))
    finally:
        tsv.write_bytes(kept)
    assert len(lines) == 1 and "mmbench_dev_20230712.tsv: file not found" in lines[0]
    assert "source 'mmbench_dev_20230712'" in lines[0] and "delete data/.sources/mmbench_dev_20230712.json" in lines[0]
    assert lines[0] in (tmp / "work/v1_2/logs/normalize/mmbench-dev-en.log").read_text()


def test_a_config_error_is_one_line(clone, tmp_path):
    cfg = yaml.safe_load((clone / "config" / "config.yaml").read_text())
    cfg["sft"]["sources"] = ["sft", "no_such_group"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    lines = _error_lines(_snakemake(clone, "-n", "--configfile", str(bad), "--", "work/v1_2/parquet/sft/manifest.json"))
    assert len(lines) == 1 and "training data 'sft' lists source 'no_such_group'" in lines[0]


def test_an_offline_hub_model_names_its_config_entry(clone, tmp_path):
    hf = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    lines = _error_lines(_snakemake(clone, "--", "work/v1_2/checkpoints/internvl_chat_v1_2.sha256", env=hf))
    assert len(lines) == 1 and "HF_HUB_OFFLINE=1" in lines[0] and "model 'internvl_chat_v1_2'" in lines[0]
    assert "models.internvl_chat_v1_2.revision in the config" in lines[0] and "sources.yaml" not in lines[0]
    assert lines[0] in (clone / "work/v1_2/logs/download/internvl_chat_v1_2.log").read_text()
