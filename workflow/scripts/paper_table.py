"""Write the paper table (markdown + CSV) from the per-model results."""
from internvl.report.table import write_tables

sm = snakemake  # noqa: F821
write_tables(sm.params.results, sm.output.md, sm.output.csv)
