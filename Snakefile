# InternVL-Chat V1.2, end to end: data -> parquet -> SFT -> inference -> scores -> paper table.
#   snakemake --cores 2 --configfile config/demo.yaml results/mmbench_dev.json
#   snakemake --profile profiles/slurm results/mmbench_dev.json
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/cluster.smk"


rule all:
    input:
        "results/paper_table.md",
        expand("results/{bench}.json", bench=BENCH_ALIASES),
