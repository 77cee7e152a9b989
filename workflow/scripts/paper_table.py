"""Write the paper tables (markdown + CSV) from the per-model results and the optional server scores."""
from internvl.report.table import write_tables

sm = snakemake  # noqa: F821
write_tables(sm.params.results, sm.output.md, sm.output.csv, server_scores=sm.params.server_scores)
