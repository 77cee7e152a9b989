"""results/<model>/<bench>.json for a server-scored split: no metrics, "server_scored": true, the submission
file to upload, and the same provenance as a locally scored result (workflow/scripts/score.py)."""
import json
import logging

from internvl.eval import registry
from internvl.eval.results import provenance, score_file, write_result
from internvl.logs import setup

sm = snakemake  # noqa: F821
setup(sm.log[0])
bench = registry.get(sm.wildcards.bench, sm.config.get("benchmark_overrides"))
scored = score_file(bench, sm.input.data, sm.input.predictions, submission=sm.input.submission)
prov = provenance(sm.wildcards.model, json.loads(sm.params.model_config), sm.input.ckpt, bench, sm.input.stats,
                  sm.input.data, sm.params.repo)
write_result(sm.output[0], bench, scored, prov)
logging.getLogger("score").info("done: %s: server-scored; upload %s (result %s)", bench.name, sm.input.submission,
                                sm.output[0])
