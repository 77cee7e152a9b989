"""The Snakemake DAG end to end on a tiny demo, and the "only stale steps rerun" guarantees.

One full run (about a minute) in a temporary directory, then dry runs that must plan exactly:
nothing; training + its downstream; one benchmark's inference + scoring.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TINY_SIZES

from internvl.eval import registry

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
pytestmark = pytest.mark.e2e



def _config(tmp: Path, **over) -> Path:
    cfg = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    cfg["demo"]["sizes"] = TINY_SIZES
    cfg["models"]["demo_align"]["recipe"].update(num_train_epochs=1, max_steps=2, save_steps=1, logging_steps=1,
                                                 per_device_train_batch_size=4)
    cfg["models"]["demo_sft"]["recipe"].update(num_train_epochs=1, max_steps=4, save_steps=2, logging_steps=1,
                                               per_device_train_batch_size=4)
    cfg["inference"]["shard_size"] = 8
    for key, value in over.items():
        cfg[key] = value
    path = tmp / "test.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _snakemake(tmp: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def _planned(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Job counts from a dry run's 'Job stats' table; {} when nothing is planned."""
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1]
    rows = re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
    return {m.group(1): int(m.group(2)) for m in rows if m.group(1) not in ("total", "all")}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dag")
    shutil.copytree(REPO / "config", tmp / "config")
    cfg = _config(tmp)
    _snakemake(tmp, "--configfile", str(cfg), "--", "all")
    return tmp, cfg


def test_full_run_writes_results_with_provenance(demo_run):
    tmp, _ = demo_run
    result = json.loads((tmp / "results" / "mmbench_dev.json").read_text())
    assert result["benchmark"] == "mmbench-dev-en" and result["n"] > 0
    assert set(result) >= {"benchmark", "metrics", "n", "provenance"}
    prov = result["provenance"]
    assert re.fullmatch(r"[0-9a-f]{64}", prov["checkpoint_sha256"])
    assert prov["score_params"]["generation"]["max_new_tokens"] == 100
    assert prov["packages"]["transformers"].startswith("5.")
    assert (tmp / "results" / "demo_init" / "pope.json").exists()
    # the alignment stage trained on its own mix (its parquet), the SFT on the SFT mix
    manifests = {d: json.loads((tmp / "work" / "demo" / "parquet" / d / "manifest.json").read_text())
                 for d in ("align", "sft")}
    assert list(manifests["align"]["sources"]) == ["demo_shapes_align"]
    assert manifests["align"]["total_samples"] == TINY_SIZES["align_images"]
    assert "demo_shapes_align" not in manifests["sft"]["sources"]
    for model, data in (("demo_align", "align"), ("demo_sft", "sft")):
        trained = json.loads((tmp / "work" / "demo" / "models" / model / "train_summary.json").read_text())
        assert trained["samples"] == manifests[data]["total_samples"], (model, trained)
    table = (tmp / "results" / "paper_table.md").read_text()
    assert "demo_init" in table and "demo_sft" in table and "POPE" in table
    # the training can be watched: TensorBoard scalars, the loss curve and the log history beside the model
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = tmp / "work" / "demo" / "train_state" / "demo_sft" / "tensorboard"
    acc = EventAccumulator(str(next(events.glob("events.out.tfevents.*")).parent))
    acc.Reload()
    assert {"train/loss", "train/learning_rate", "train/grad_norm", "train/tokens_per_s"} <= set(acc.Tags()["scalars"])
    model_dir = tmp / "work" / "demo" / "models" / "demo_sft"
    with Image.open(model_dir / "loss_curve.png") as png:
        assert png.size[0] >= 400 and len(png.convert("L").getcolors(maxcolors=1 << 16)) > 10  # a drawn plot, not blank
    assert [h["step"] for h in json.loads((model_dir / "log_history.json").read_text()) if "loss" in h] == [1, 2, 3, 4]


def _reversed(obj):
    return {k: _reversed(obj[k]) for k in reversed(list(obj))} if isinstance(obj, dict) else obj


def test_rerun_plans_nothing_after_a_full_run(demo_run):
    tmp, cfg = demo_run
    assert _planned(_snakemake(tmp, "-n", "--configfile", str(cfg), "--", "all")) == {}
    # the same settings with every mapping's keys in the opposite order: still nothing to do
    reordered = tmp / "reordered.yaml"
    reordered.write_text(yaml.safe_dump(_reversed(yaml.safe_load(cfg.read_text())), sort_keys=False))
    assert reordered.read_text() != cfg.read_text()
    assert _planned(_snakemake(tmp, "-n", "--configfile", str(reordered), "--", "all")) == {}


def _aliases(cfg: dict) -> int:
    """How many results/<alias>.json copies the configured benchmarks make."""
    return sum(len(set(registry.resolve(b).aliases) | {registry.resolve(b).name}) for b in cfg["benchmarks"])


def _plan_with_lr(tmp: Path, model: str) -> tuple[dict[str, int], int, int]:
    """Dry-run plan after changing ``model``'s learning rate; also the benchmark and result-alias counts."""
    cfg = yaml.safe_load((tmp / "test.yaml").read_text())
    cfg["models"][model]["recipe"]["learning_rate"] = 0.002
    changed = tmp / f"changed_lr_{model}.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    plan = _planned(_snakemake(tmp, "-n", "--configfile", str(changed), "--", "all"))
    return plan, len(cfg["benchmarks"]), _aliases(cfg)


def test_new_checkpoint_replans_training_and_its_downstream_only(demo_run):
    tmp, _ = demo_run
    plan, n, aliases = _plan_with_lr(tmp, "demo_sft")
    assert plan == {"train_model": 1, "infer": n, "score": n, "paper_table": 1, "result_for_configured_model": aliases}
    # a retrain with unchanged settings (forced) plans the same jobs
    forced = _planned(_snakemake(tmp, "-n", "--configfile", str(tmp / "test.yaml"), "--forcerun",
                                 "work/demo/checkpoints/demo_sft.sha256", "--", "all"))
    assert forced == plan


def test_changed_alignment_stage_replans_both_trainings_and_the_sft_results(demo_run):
    tmp, _ = demo_run
    plan, n, aliases = _plan_with_lr(tmp, "demo_align")
    # the alignment stage is not scored; the SFT trained on top of it is
    assert plan == {"train_model": 2, "infer": n, "score": n, "paper_table": 1, "result_for_configured_model": aliases}


def test_changed_alignment_data_replans_its_normalization_and_both_trainings(demo_run):
    tmp, _ = demo_run
    cfg = yaml.safe_load((tmp / "test.yaml").read_text())
    cfg["train_data"]["align"]["seed"] = 1  # another shuffle of the alignment mix
    changed = tmp / "changed_align_data.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    plan = _planned(_snakemake(tmp, "-n", "--configfile", str(changed), "--", "all"))
    n, aliases = len(cfg["benchmarks"]), _aliases(cfg)
    assert plan == {"normalize_sft": 1, "train_model": 2, "infer": n, "score": n, "paper_table": 1,
                    "result_for_configured_model": aliases}


def test_unknown_training_data_is_a_config_error(demo_run):
    tmp, _ = demo_run
    cfg = yaml.safe_load((tmp / "test.yaml").read_text())
    cfg["models"]["demo_align"]["data"] = "pretrain"
    bad = tmp / "unknown_data.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    proc = _snakemake(tmp, "-n", "--configfile", str(bad), "--", "all", check=False)
    assert proc.returncode != 0
    assert "model 'demo_align' trains on data 'pretrain'" in proc.stdout + proc.stderr
    cfg["models"]["demo_align"]["data"] = "align"
    cfg["models"]["demo_init"]["data"] = "align"  # a path model trains on nothing
    bad.write_text(yaml.safe_dump(cfg))
    proc = _snakemake(tmp, "-n", "--configfile", str(bad), "--", "all", check=False)
    assert proc.returncode != 0
    assert "model 'demo_init' has 'data', but only kind 'train' models" in proc.stdout + proc.stderr


def test_new_pretrained_llm_replans_both_models_and_no_data(demo_run):
    tmp, _ = demo_run
    cfg = yaml.safe_load((tmp / "test.yaml").read_text())
    other = tmp / "other_llm"  # another copy of the LLM: a new download location, as after a re-fetch
    shutil.copytree(REPO / "resources" / "demo_llm", other)
    cfg["models"]["demo_init"]["path"] = str(other)
    changed = tmp / "changed_llm.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    plan = _planned(_snakemake(tmp, "-n", "--configfile", str(changed), "--", "all"))
    n, aliases = len(cfg["benchmarks"]), _aliases(cfg)
    # both scored models (the LLM itself and the SFT) are new: every benchmark reruns for each
    assert plan == {"hash_local_model": 1, "train_model": 2, "infer": 2 * n, "score": 2 * n, "paper_table": 1,
                    "result_for_configured_model": aliases}


def test_pinned_hash_stops_a_run_on_other_weights(tmp_path):
    shutil.copytree(REPO / "config", tmp_path / "config")
    cfg = yaml.safe_load(_config(tmp_path).read_text())
    target = f"{cfg['workdir']}/checkpoints/demo_init.sha256"
    pinned = cfg["models"]["demo_init"]["sha256"]
    cfg["models"]["demo_init"]["sha256"] = "0" * 64
    wrong = tmp_path / "wrong_pin.yaml"
    wrong.write_text(yaml.safe_dump(cfg))
    proc = _snakemake(tmp_path, "--configfile", str(wrong), "--", target, check=False)
    assert proc.returncode != 0
    assert "differs from the configured sha256" in proc.stdout + proc.stderr
    assert not (tmp_path / target).exists()
    _snakemake(tmp_path, "--configfile", str(tmp_path / "test.yaml"), "--", target)
    assert (tmp_path / target).read_text().strip() == pinned


def test_changed_prompt_replans_only_that_benchmark(demo_run):
    tmp, _ = demo_run
    cfg = yaml.safe_load((tmp / "test.yaml").read_text())
    cfg["benchmark_overrides"] = {"pope": {"prompt": "Answer yes or no."}}
    changed = tmp / "changed_prompt.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    plan = _planned(_snakemake(tmp, "-n", "--configfile", str(changed), "--", "all"))
    # pope for both table models; the table and results/pope.json consume those scores
    assert plan == {"infer": 2, "score": 2, "paper_table": 1, "result_for_configured_model": 1}
    cfg["benchmark_overrides"] = {"vqa-vqav2-val": {"generation": {"max_new_tokens": 5}}}
    changed.write_text(yaml.safe_dump(cfg))
    plan = _planned(_snakemake(tmp, "-n", "--configfile", str(changed), "--", "all"))
    assert plan == {"infer": 2, "score": 2, "paper_table": 1, "result_for_configured_model": 2}  # vqa-vqav2-val, vqav2_val


def test_bad_input_on_the_demo_path_names_file_and_line(demo_run):
    tmp, cfg = demo_run
    ann = tmp / "work" / "demo" / "raw" / "playground" / "demo_shapes_vqa.jsonl"
    lines = ann.read_text().splitlines(keepends=True)
    ann.write_text("".join(lines[:2] + ['{"id": "broken", "conversations": [\n'] + lines[2:]))
    proc = _snakemake(tmp, "--configfile", str(cfg), "--forcerun", "normalize_sft", "--",
                      "work/demo/parquet/sft/manifest.json", check=False)
    assert proc.returncode != 0
    log = (tmp / "work" / "demo" / "logs" / "normalize_sft.log").read_text() + proc.stderr
    assert "demo_shapes_vqa.jsonl:3: malformed JSON" in log
    ann.write_text("".join(lines))
    first = json.loads((tmp / "work" / "demo" / "raw" / "data" / "pope" / "llava_pope_test.jsonl").open().readline())
    img = tmp / "work" / "demo" / "raw" / "data" / "pope" / "val2014" / first["image"]
    img.rename(img.with_suffix(".bak"))
    try:
        proc = _snakemake(tmp, "--configfile", str(cfg), "--forcerun", "normalize_benchmark", "--",
                          "work/demo/parquet/bench/pope.parquet", check=False)
        assert proc.returncode != 0
        log = (tmp / "work" / "demo" / "logs" / "normalize" / "pope.log").read_text() + proc.stderr
        assert "llava_pope_test.jsonl:1" in log and img.name in log
    finally:
        img.with_suffix(".bak").rename(img)
