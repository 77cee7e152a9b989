# Shared helpers: paths derived from the config, and the registry entries with config overrides.
import json
import re
from pathlib import Path

from internvl.eval import registry

WORK = config["workdir"]
DEMO = "demo" in config
MODELS = config["models"]
BENCHES = [registry.resolve(b).name for b in config["benchmarks"]]
# results/<alias>.json for the configured model, e.g. results/mmbench_dev.json
BENCH_ALIASES = sorted({a for b in BENCHES for a in registry.resolve(b).aliases} | set(BENCHES))

for _name in config["table"]["models"] + [config["model"]]:
    if _name not in MODELS:
        raise ValueError(f"config: model {_name!r} is not defined under 'models'")

def one_of(names):
    """A wildcard constraint matching exactly these names (benchmark names contain '+' and '.')."""
    return "|".join(re.escape(n) for n in names) if names else "__none__"


wildcard_constraints:
    model=one_of(MODELS),
    bench=one_of(BENCHES),


def bench_entry(bench):
    return registry.get(bench, config.get("benchmark_overrides"))


def score_params(bench):
    """Everything that changes this benchmark's score: a change reruns its inference and scoring only."""
    return json.dumps(bench_entry(bench).score_params(), sort_keys=True)


def result_path(model, bench):
    """Where the scored result of (model, benchmark) lives; the one place that names result files."""
    return f"results/{model}/{bench}.json"


def ckpt_dir(model):
    m = MODELS[model]
    return m["path"] if m["kind"] == "path" else f"{WORK}/models/{model}"


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
