"""Content hash of a local checkpoint directory."""
from internvl.provenance import checkpoint_hash

with open(snakemake.output.hash, "w") as fh:  # noqa: F821
    fh.write(checkpoint_hash(snakemake.params.ckpt) + "\n")  # noqa: F821
