# The paper table over every (table model, benchmark) result.


rule paper_table:
    input:
        expand("results/{model}/{bench}.json", model=config["table"]["models"], bench=BENCHES),
    output:
        md="results/paper_table.md",
        csv="results/paper_table.csv",
    params:
        models=config["table"]["models"],
        benches=BENCHES,
    script:
        "../scripts/paper_table.py"
