"""Write results/<model>/submissions/<bench>.<ext>, the file a server-scored split is uploaded as."""
import json
import logging

from internvl.errors import DataError
from internvl.eval import registry
from internvl.eval.metrics import PredictionMismatchError
from internvl.eval.submission import write_submission
from internvl.logs import setup

sm = snakemake  # noqa: F821
setup(sm.log[0])
bench = registry.get(sm.wildcards.bench, sm.config.get("benchmark_overrides"))
try:
    summary = write_submission(bench, sm.input.data, sm.input.predictions, sm.output[0])
except PredictionMismatchError as exc:  # stale predictions: inference has to run again
    raise DataError(sm.input.predictions, f"{exc}; run inference again with `snakemake --forcerun infer -- "
                    f"{sm.input.predictions}`") from None
logging.getLogger("submission").info("done: %s", json.dumps(summary))
