"""Write the paper tables (markdown + CSV) from the per-model results and the optional server scores."""
import logging

from internvl.logs import setup
from internvl.report.table import write_tables

sm = snakemake  # noqa: F821
setup(sm.log[0])
write_tables(sm.params.results, sm.output.md, sm.output.csv, server_scores=sm.params.server_scores)
logging.getLogger("paper_table").info("done: %s, %s", sm.output.md, sm.output.csv)
