"""Write results/<model>/submissions/<bench>.<ext>, the file a server-scored split is uploaded as."""
import json
import logging

from internvl.eval import registry
from internvl.eval.submission import write_submission
from internvl.logs import setup

sm = snakemake  # noqa: F821
setup(sm.log[0])
bench = registry.get(sm.wildcards.bench, sm.config.get("benchmark_overrides"))
logging.getLogger("submission").info(json.dumps(write_submission(bench, sm.input.data, sm.input.predictions, sm.output[0])))
