"""A seeded random initialisation of a preset, saved in the original checkpoint format."""
import logging

from internvl.logs import setup
from internvl.model.init import init_checkpoint

setup(snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
init_checkpoint(p.preset, p.tokenizer, snakemake.output.ckpt, seed=p.seed, hash_out=snakemake.output.hash)  # noqa: F821
logging.getLogger("init").info("done: %s (preset %s, seed %s)", snakemake.output.ckpt, p.preset, p.seed)  # noqa: F821
