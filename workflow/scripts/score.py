"""Score predictions; write results/<model>/<bench>.json (judged: <bench>@<judge slug>.json) with provenance."""
import json
import logging
from pathlib import Path

from internvl.errors import DataError
from internvl.eval import registry
from internvl.eval.judge import JudgeClient, JudgeConfig
from internvl.eval.metrics import PredictionMismatchError
from internvl.eval.results import provenance, score_file, write_result
from internvl.logs import setup

sm = snakemake  # noqa: F821
setup(sm.log[0])
bench = registry.get(sm.wildcards.bench, sm.config.get("benchmark_overrides"))
client = None
if bench.judge:
    # score_judged passes the score-affecting judge settings as params; the operational ones (api_key_env,
    # timeout_s, max_retries) come from the config, so changing them reruns nothing.
    judge_params = json.loads(getattr(sm.params, "judge", None) or "null")
    if judge_params is None:
        raise ValueError(f"{bench.name} is judge-scored: it is produced by rule score_judged (result_path names "
                         "results/<model>/<bench>@<judge slug>.json), not by rule score")
    config = JudgeConfig.from_config(sm.config.get("judge"))
    if config.score_params() != judge_params["judge"] or config.slug != sm.wildcards.judge:
        raise ValueError(f"judge config {config.score_params()} / slug {config.slug!r} differ from the job's "
                         f"{judge_params['judge']} / {sm.wildcards.judge!r}")
    client = JudgeClient(config, Path(sm.params.judge_cache) / config.slug / f"{bench.name}.jsonl")
try:
    scored = score_file(bench, sm.input.data, sm.input.predictions, judge=client)
except PredictionMismatchError as exc:  # stale predictions: inference has to run again
    raise DataError(sm.input.predictions, f"{exc}; the predictions do not fit {sm.input.data}: run inference again "
                    f"with `snakemake --forcerun infer -- {sm.input.predictions}`") from None
prov = provenance(sm.wildcards.model, json.loads(sm.params.model_config), sm.input.ckpt, bench, sm.input.stats,
                  sm.input.data, sm.params.repo)
if client is not None:
    prov["judge"] = {k: v for k, v in scored["judge"].items() if k != "items"}
    prov["judge"]["cache"] = str(client.cache.path) if client.cache is not None else None
write_result(sm.output[0], bench, scored, prov)
logging.getLogger("score").info("done: %s: %s -> %s", bench.name, json.dumps(scored.get("metrics")), sm.output[0])
