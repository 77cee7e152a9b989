"""Download a checkpoint from the Hugging Face hub at a pinned revision (huggingface_hub)."""
from internvl.hub import download_checkpoint
from internvl.logs import setup

setup(snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
download_checkpoint(p.repo_id, p.revision, snakemake.output.ckpt, hash_out=snakemake.output.hash)  # noqa: F821
