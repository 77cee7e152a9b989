# Shared helpers: paths derived from the config, and the registry entries with config overrides.
import json
import os
import re
import sys
from pathlib import Path

from internvl.download import DownloadError, load_sources
from internvl.eval import registry
from internvl.eval.judge import JudgeConfig, JudgeConfigError
from internvl.eval.judged import protocol as judge_protocol


def config_error(message):
    """Stop with one `error:` line: a setting is wrong or missing, and the message says which and what to
    do (as an exception, Snakemake would print it with a traceback of this file)."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(1)


WORK = config["workdir"]
DEMO = "demo" in config
MODELS = config["models"]
BENCHES = [registry.resolve(b).name for b in config["benchmarks"]]
# results/<alias>.json for the configured model, e.g. results/mmbench_dev.json
BENCH_ALIASES = sorted({a for b in BENCHES for a in registry.resolve(b).aliases} | set(BENCHES))

for _name in config["table"]["models"] + [config["model"]]:
    if _name not in MODELS:
        config_error(f"config: model {_name!r} is not defined under 'models'")

# Training data sets by name: "sft" (the config's `sft` block) plus any under `train_data`, e.g. the
# projector-pretraining mix of a freeze_llm stage. A train model picks one with `data` (default "sft").
TRAIN_DATA = {"sft": config["sft"], **config.get("train_data", {})}
for _name, _m in MODELS.items():
    if "data" in _m and _m["kind"] != "train":
        config_error(f"config: model {_name!r} has 'data', but only kind 'train' models train on a data set")
    if _m["kind"] == "train" and _m.get("data", "sft") not in TRAIN_DATA:
        config_error(f"config: model {_name!r} trains on data {_m['data']!r}, which is neither 'sft' nor a name "
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
try:
    JUDGE = JudgeConfig.from_config(config["judge"]) if config.get("judge") is not None else None
except JudgeConfigError as exc:  # a bad judge block
    config_error(f"config: judge: {exc}")
NO_JUDGE = "no-judge-configured"
JUDGE_SLUG = JUDGE.slug if JUDGE is not None else NO_JUDGE
JUDGED_BENCHES = [b for b in BENCHES if bench_entry(b).judge]


def require_judge(bench):
    if JUDGE is None:
        config_error(
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


# --- sources: every raw input of a real run is the output of a download rule (download.smk) -----------
# config/sources.yaml (config `sources_file`) lists every weight and data source; each ends in a stamp
# <data_root>/.sources/<name>.json. Rules that read downloaded files take the stamps wrapped in ancient():
# a download never triggers a rerun, and re-verifying a source (deleting its stamp) changes nothing
# downstream; a normalization still waits for its downloads.
SOURCES_FILE = str(Path(REPO_DIR, config.get("sources_file", "config/sources.yaml")))
try:
    _SOURCES_DOC = load_sources(SOURCES_FILE)
except (DownloadError, OSError) as exc:
    config_error(exc)
SOURCES = _SOURCES_DOC["sources"]
SOURCE_ROOTS = dict(_SOURCES_DOC["roots"], data=config["data_root"])
SOURCE_STATE = f"{config['data_root']}/.sources"
SOURCE_GROUPS = sorted({e.get("group") for e in SOURCES.values() if e.get("group")})


def source_stamp(name):
    if name not in SOURCES:
        config_error(f"unknown source {name!r} ({SOURCES_FILE})")
    return f"{SOURCE_STATE}/{name}.json"


def source_inputs(*names):
    """ancient() stamps of the named sources: use these as inputs of rules that read downloaded files."""
    return [ancient(source_stamp(n)) for n in names]


def sources_in(*groups):
    return [n for n, e in SOURCES.items() if e.get("group") in groups]


def sources_used_by(*users):
    """Names of the sources whose used_by names a benchmark (evaluate.sh task) or an SFT dataset."""
    return [n for n, e in SOURCES.items() if set(e.get("used_by") or []) & set(users)]


def sources_for(*users):
    """The ancient stamps of :func:`sources_used_by`."""
    return source_inputs(*sources_used_by(*users))


def source_dest(name):
    e = SOURCES[name]
    return os.path.normpath(os.path.join(SOURCE_ROOTS[e["root"]], e["dest"]))


def train_data_sources(data):
    """Sources a training data set reads: its `sources` (group or source names), else the source that
    writes its meta file (if one does)."""
    spec = TRAIN_DATA[data].get("sources")
    if spec is None:
        meta = os.path.normpath(TRAIN_DATA[data]["meta"])
        return [n for n in SOURCES if source_dest(n) == meta]
    names = []
    for item in spec:
        if item in SOURCES:
            names.append(item)
        elif item in SOURCE_GROUPS:
            names += sources_in(item)
        else:
            config_error(f"config: training data {data!r} lists source {item!r}, which is neither a source nor "
                         f"a group of {SOURCES_FILE} (groups: {SOURCE_GROUPS})")
    return list(dict.fromkeys(names))


def raw_inputs(wildcards=None):
    """The demo's raw files are made by one rule whose summary stands for all of them."""
    return [demo_summary()] if DEMO else []


def bench_raw_inputs(wildcards):
    """What a benchmark's normalization reads: the demo, or the download stamps of its sources."""
    return raw_inputs() if DEMO else sources_for(wildcards.bench)


def train_data_raw_inputs(wildcards):
    return raw_inputs() if DEMO else source_inputs(*train_data_sources(wildcards.data))


def tokenizer_dir():
    tok = config["tokenizer"]
    if tok == "demo":
        return f"{WORK}/tokenizer"
    return tok
