# Raw data (the demo generator, or the downloads of download.smk) -> normalized parquet.


if DEMO:

    rule demo_data:
        output:
            summary=demo_summary(),
        params:
            seed=config["demo"].get("seed", 0),
            sizes=canonical(config["demo"].get("sizes", {})),
            root=f"{WORK}/raw",
        log:
            f"{WORK}/logs/demo_data.log",
        script:
            "../scripts/demo_data.py"

    rule demo_tokenizer:
        input:
            demo_summary(),
        output:
            f"{WORK}/tokenizer/tokenizer.json",
        params:
            root=f"{WORK}/raw",
            out=f"{WORK}/tokenizer",
        log:
            f"{WORK}/logs/demo_tokenizer.log",
        script:
            "../scripts/demo_tokenizer.py"


rule normalize_benchmark:
    input:
        bench_raw_inputs,  # the demo, or the ancient() download stamps of the split's sources
    output:
        f"{WORK}/parquet/bench/{{bench}}.parquet",
    params:
        data_root=config["data_root"],
    log:
        f"{WORK}/logs/normalize/{{bench}}.log",
    script:
        "../scripts/normalize_benchmark.py"


rule normalize_sft:
    # one job per training data set (config `sft`, and each `train_data` entry)
    input:
        train_data_raw_inputs,  # the demo, or the ancient() download stamps of the set's `sources`
    output:
        f"{WORK}/parquet/{{data}}/manifest.json",
    wildcard_constraints:
        data=one_of(TRAIN_DATA),
    params:
        meta=train_data_setting("meta"),
        base_dir=train_data_setting("base_dir"),
        seed=train_data_setting("seed", 0),
        on_error=train_data_setting("on_error", "raise"),
        verify_images=train_data_setting("verify_images", False),
        embed_images=train_data_setting("embed_images", False),
        out=lambda w: train_data_dir(w.data),
    log:
        f"{WORK}/logs/normalize_{{data}}.log",
    script:
        "../scripts/normalize_sft.py"
