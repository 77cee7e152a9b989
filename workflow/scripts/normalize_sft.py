"""SFT meta file + annotations -> parquet shards and manifest."""
from internvl.data.sft import normalize_sft
from internvl.logs import setup

setup(snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
normalize_sft(p.meta, p.base_dir, p.out, seed=p.seed, on_error=p.on_error, verify_images=p.verify_images,
              embed_images=p.embed_images)
