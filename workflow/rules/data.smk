# Raw data (the demo generator, or downloads) -> normalized parquet.


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
        raw_inputs,
    output:
        f"{WORK}/parquet/bench/{{bench}}.parquet",
    params:
        data_root=config["data_root"],
    log:
        f"{WORK}/logs/normalize/{{bench}}.log",
    script:
        "../scripts/normalize_benchmark.py"


rule normalize_sft:
    input:
        raw_inputs,
    output:
        f"{WORK}/parquet/sft/manifest.json",
    params:
        meta=config["sft"]["meta"],
        base_dir=config["sft"]["base_dir"],
        seed=config["sft"].get("seed", 0),
        on_error=config["sft"].get("on_error", "raise"),
        verify_images=config["sft"].get("verify_images", False),
        embed_images=config["sft"].get("embed_images", False),
        out=f"{WORK}/parquet/sft",
    log:
        f"{WORK}/logs/normalize_sft.log",
    script:
        "../scripts/normalize_sft.py"
