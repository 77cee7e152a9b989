"""Raw benchmark files -> normalized parquet. A missing file names the source that fetches it."""
import logging
from pathlib import Path

from internvl.data.benchmarks import normalize, write_parquet
from internvl.download import explain_missing
from internvl.errors import DataError
from internvl.logs import setup

sm = snakemake  # noqa: F821
setup(sm.log[0])
log = logging.getLogger("normalize")
bench, data_root = sm.wildcards.bench, Path(sm.params.data_root)
log.info("%s: reading %s (downloads: %s)", bench, data_root, ", ".join(map(str, sm.input)) or "demo")
try:
    table = normalize(bench, data_root)
except DataError as exc:
    raise explain_missing(exc, sm.config, Path(sm.scriptdir).parents[1]) from None
write_parquet(table, sm.output[0])
log.info("done: %s: %d rows -> %s", bench, table.num_rows, sm.output[0])
