"""Content hash of a local checkpoint directory, checked against the config's sha256 when it pins one."""
from internvl.data.io import atomic_path
from internvl.provenance import verified_checkpoint_hash

digest = verified_checkpoint_hash(snakemake.params.ckpt, snakemake.params.sha256)  # noqa: F821
with atomic_path(snakemake.output.hash) as tmp:  # noqa: F821
    tmp.write_text(digest + "\n")
