"""results/<model>/<bench>.json for a server-scored split: no metrics, "server_scored": true, the submission
file to upload, and the same provenance as a locally scored result (workflow/scripts/score.py)."""
import json
from pathlib import Path

from internvl.eval import registry
from internvl.eval.results import score_file, write_result
from internvl.logs import setup
from internvl.provenance import git_commit, package_versions

sm = snakemake  # noqa: F821
setup(sm.log[0])
bench = registry.get(sm.wildcards.bench, sm.config.get("benchmark_overrides"))
scored = score_file(bench, sm.input.data, sm.input.predictions, submission=sm.input.submission)
provenance = {
    "model": sm.wildcards.model,
    "model_config": sm.params.model_config,
    "checkpoint_sha256": Path(sm.input.ckpt).read_text().strip(),
    "score_params": bench.score_params(),
    "inference": json.loads(Path(sm.input.stats).read_text()),
    "data_parquet": sm.input.data,
    "packages": package_versions(),
    "git_commit": git_commit(sm.params.repo),
}
write_result(sm.output[0], bench, scored, provenance)
