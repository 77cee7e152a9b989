"""Raw benchmark files -> normalized parquet."""
from pathlib import Path

from internvl.data.benchmarks import normalize, write_parquet
from internvl.logs import setup

setup(snakemake.log[0])  # noqa: F821
write_parquet(normalize(snakemake.wildcards.bench, Path(snakemake.params.data_root)), snakemake.output[0])  # noqa: F821
