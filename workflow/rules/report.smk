# The paper tables (the seed README's three, internvl/report/table.py) over every (table model, benchmark)
# result; server-scored cells come from the optional table.server_scores file.


rule paper_table:
    input:
        results=[result_path(m, b) for m in config["table"]["models"] for b in BENCHES],
        server_scores=[config["table"]["server_scores"]] if config["table"].get("server_scores") else [],
    output:
        md="results/paper_table.md",
        csv="results/paper_table.csv",
    params:
        models=config["table"]["models"],
        benches=BENCHES,
        results={m: {b: result_path(m, b) for b in BENCHES} for m in config["table"]["models"]},
        server_scores=config["table"].get("server_scores"),
    log:
        f"{WORK}/logs/paper_table.log",
    script:
        "../scripts/paper_table.py"
