# Shared helpers: paths derived from the config, and the registry entries with config overrides.
import json
import re
from pathlib import Path

from internvl.eval import registry
from internvl.eval.judge import JudgeConfig
from internvl.eval.judged import protocol as judge_protocol

WORK = config["workdir"]
DEMO = "demo" in config
MODELS = config["models"]
BENCHES = [registry.resolve(b).name for b in config["benchmarks"]]
# results/<alias>.json for the configured model, e.g. results/mmbench_dev.json
BENCH_ALIASES = sorted({a for b in BENCHES for a in registry.resolve(b).aliases} | set(BENCHES))

for _name in config["table"]["models"] + [config["model"]]:
    if _name not in MODELS:
        raise ValueError(f"config: model {_name!r} is not defined under 'models'")

# Training data sets by name: "sft" (the config's `sft` block) plus any under `train_data`, e.g. the
# projector-pretraining mix of a freeze_llm stage. A train model picks one with `data` (default "sft").
TRAIN_DATA = {"sft": config["sft"], **config.get("train_data", {})}
for _name, _m in MODELS.items():
    if "data" in _m and _m["kind"] != "train":
        raise ValueError(f"config: model {_name!r} has 'data', but only kind 'train' models train on a data set")
    if _m["kind"] == "train" and _m.get("data", "sft") not in TRAIN_DATA:
        raise ValueError(f"config: model {_name!r} trains on data {_m['data']!r}, which is neither 'sft' nor a name "
                         f"under 'train_data' (defined: {sorted(TRAIN_DATA)})")


def train_data_of(model):
    return MODELS[model].get("data", "sft")


def train_data_setting(key, default=None):
    """A params function: ``key`` of the job's training data set (``default`` where the set leaves it out)."""
    return lambda w: TRAIN_DATA[w.data].get(key, default)


def train_data_dir(data):
    """The normalized parquet of a training data set (the default set keeps its old place, parquet/sft)."""
    return f"{WORK}/parquet/{data}"


def one_of(names):
    """A wildcard constraint matching exactly these names (benchmark names contain '+' and '.')."""
    return "|".join(re.escape(n) for n in names) if names else "__none__"


wildcard_constraints:
    model=one_of(MODELS),
    bench=one_of(BENCHES),


def canonical(obj):
    """A dict-valued param as sorted JSON: Snakemake compares params by their text, so otherwise merely
    reordering keys in the YAML (or a tool that rewrites it sorted) would rerun the rule."""
    return json.dumps(obj, sort_keys=True)


def bench_entry(bench):
    return registry.get(bench, config.get("benchmark_overrides"))


def score_params(bench):
    """Everything that changes this benchmark's score: a change reruns its inference and scoring only."""
    return json.dumps(bench_entry(bench).score_params(), sort_keys=True)


# LLM judge (LLaVA-Bench, MM-Vet, MathVista extraction): the config's optional `judge:` block. Checked
# here when present; required only when a judged result is requested (see judged_score_inputs).
JUDGE = JudgeConfig.from_config(config["judge"]) if config.get("judge") is not None else None
NO_JUDGE = "no-judge-configured"
JUDGE_SLUG = JUDGE.slug if JUDGE is not None else NO_JUDGE
JUDGED_BENCHES = [b for b in BENCHES if bench_entry(b).judge]


def require_judge(bench):
    if JUDGE is None:
        raise ValueError(
            f"benchmark {bench!r} is scored by an LLM judge ({bench_entry(bench).judge} protocol), but the config "
            "has no 'judge:' block; add one (base_url, model, api_key_env, timeout_s, max_retries; README "
            "'Judge-scored benchmarks') or drop the benchmark from 'benchmarks'"
        )
    return JUDGE


def judge_params(bench):
    """The judge settings that change a judged score (judge identity + protocol prompts/decoding): a params
    entry of the judged score rule only, so a new judge reruns scoring and never inference."""
    judge = require_judge(bench)
    return json.dumps({"judge": judge.score_params(), "protocol": judge_protocol(bench_entry(bench).judge).fingerprint()},
                      sort_keys=True)


def judged_score_inputs(wildcards):
    """Inputs of score_judged; fails with a clear message (at DAG time) when no judge is configured."""
    require_judge(wildcards.bench)
    return {
        "predictions": f"{WORK}/predictions/{wildcards.model}/{wildcards.bench}.jsonl",
        "stats": f"{WORK}/predictions/{wildcards.model}/{wildcards.bench}.stats.json",
        "data": f"{WORK}/parquet/bench/{wildcards.bench}.parquet",
        "ckpt": ckpt_hash_file(wildcards.model),
    }


def result_path(model, bench):
    """Where the scored result of (model, benchmark) lives; the one place that names result files.

    A judge-scored benchmark's file names its judge (results/<model>/<bench>@<judge slug>.json), so
    results of different judges never overwrite each other."""
    if bench_entry(bench).judge:
        return f"results/{model}/{bench}@{JUDGE_SLUG}.json"
    return f"results/{model}/{bench}.json"


REPO_DIR = workflow.basedir  # the Snakefile's folder: this repository


def ckpt_dir(model):
    """Where a model's checkpoint lives; a path model's ``{repo}`` stands for this repository (shipped files)."""
    m = MODELS[model]
    return m["path"].replace("{repo}", REPO_DIR) if m["kind"] == "path" else f"{WORK}/models/{model}"


def ckpt_hash_file(model):
    """A small file holding the checkpoint's content hash: downstream jobs rerun iff weights change."""
    return f"{WORK}/checkpoints/{model}.sha256"


def demo_summary():
    return f"{WORK}/raw/demo_summary.json"


def raw_inputs(wildcards=None):
    # Real data arrives through the download rules (ancient: never a rerun trigger); the demo's
    # raw files are made by one rule whose summary stands for all of them.
    return [demo_summary()] if DEMO else []


def tokenizer_dir():
    tok = config["tokenizer"]
    if tok == "demo":
        return f"{WORK}/tokenizer"
    return tok
