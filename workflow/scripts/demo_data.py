"""Generate the embedded demo (raw files in the real formats)."""
import json
import logging

from internvl.data.io import write_json_atomic
from internvl.demo.writers import DemoSizes, build_demo
from internvl.logs import setup

setup(snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
summary = build_demo(p.root, seed=p.seed, sizes=DemoSizes(**json.loads(p.sizes)))
write_json_atomic(snakemake.output.summary, summary)  # noqa: F821
logging.getLogger("demo").info("done: %s", snakemake.output.summary)  # noqa: F821
