"""Write the paper table (markdown + CSV) from the per-model results."""
from internvl.report.table import write_tables

sm = snakemake  # noqa: F821
results = {m: {b: f"results/{m}/{b}.json" for b in sm.params.benches} for m in sm.params.models}
write_tables(results, sm.output.md, sm.output.csv)
