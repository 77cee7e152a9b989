# The paper table over every (table model, benchmark) result.


rule paper_table:
    input:
        [result_path(m, b) for m in config["table"]["models"] for b in BENCHES],
    output:
        md="results/paper_table.md",
        csv="results/paper_table.csv",
    params:
        models=config["table"]["models"],
        benches=BENCHES,
        results={m: {b: result_path(m, b) for b in BENCHES} for m in config["table"]["models"]},
    script:
        "../scripts/paper_table.py"
