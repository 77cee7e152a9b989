# Per (model, benchmark): batched inference -> predictions -> scored result with provenance.


rule infer:
    input:
        ckpt=lambda w: ckpt_hash_file(w.model),
        data=f"{WORK}/parquet/bench/{{bench}}.parquet",
    output:
        predictions=f"{WORK}/predictions/{{model}}/{{bench}}.jsonl",
        stats=f"{WORK}/predictions/{{model}}/{{bench}}.stats.json",
    params:
        score_params=lambda w: score_params(w.bench),
        ckpt_dir=lambda w: ckpt_dir(w.model),
        data_root=config["data_root"],
        cache=f"{WORK}/cache/infer",
        batch_size=config["inference"]["batch_size"],
        shard_size=config["inference"].get("shard_size", 64),
        dtype=config["inference"]["dtype"],
        device=config["inference"]["device"],
        workers=config["inference"].get("workers", 1),
    resources:
        gpu=lambda w: 0 if config["inference"]["device"] == "cpu" else config["inference"].get("workers", 1),
    log:
        f"{WORK}/logs/infer/{{model}}/{{bench}}.log",
    script:
        "../scripts/infer.py"


rule score:
    input:
        predictions=f"{WORK}/predictions/{{model}}/{{bench}}.jsonl",
        stats=f"{WORK}/predictions/{{model}}/{{bench}}.stats.json",
        data=f"{WORK}/parquet/bench/{{bench}}.parquet",
        ckpt=lambda w: ckpt_hash_file(w.model),
    output:
        "results/{model}/{bench}.json",
    params:
        score_params=lambda w: score_params(w.bench),
        model_config=lambda w: canonical(MODELS[w.model]),
        repo=workflow.basedir,
    log:
        f"{WORK}/logs/score/{{model}}/{{bench}}.log",
    script:
        "../scripts/score.py"


# LLaVA-Bench, MM-Vet, MathVista testmini: scored through the config's LLM judge (internvl.eval.judged).
# The file names the judge (result_path); the judge settings are a params entry of this rule only, so a
# new judge reruns scoring, never inference; every call is cached under {WORK}/cache/judge/<judge slug>/.
rule score_judged:
    input:
        unpack(judged_score_inputs),
    output:
        "results/{model}/{bench}@{judge}.json",
    wildcard_constraints:
        bench=one_of(JUDGED_BENCHES),
        judge=one_of([JUDGE_SLUG]),
    params:
        score_params=lambda w: score_params(w.bench),
        judge=lambda w: judge_params(w.bench),
        judge_cache=f"{WORK}/cache/judge",
        model_config=lambda w: canonical(MODELS[w.model]),
        repo=workflow.basedir,
    log:
        f"{WORK}/logs/score/{{model}}/{{bench}}@{{judge}}.log",
    script:
        "../scripts/score.py"


rule result_for_configured_model:
    input:
        lambda w: result_path(config["model"], registry.resolve(w.alias).name),
    output:
        "results/{alias}.json",
    wildcard_constraints:
        alias=one_of(BENCH_ALIASES),
    shell:
        "cp {input} {output}"


# Server-scored splits (no local gold): the file each server takes (internvl/eval/submission.py), and in
# place of `score` a result with empty metrics, "server_scored": true and the submission's path. The
# server's number enters the paper table through config table.server_scores.
from internvl.eval.submission import SUBMISSION_FORMATS

SERVER_BENCHES = [b for b in BENCHES if b in SUBMISSION_FORMATS]


def submission_path(model, bench):
    """results/<model>/submissions/<bench>.<json|xlsx>: the file to upload for a server-scored split."""
    return f"results/{model}/submissions/{bench}.{SUBMISSION_FORMATS[bench].ext}"


rule submission:
    input:
        predictions=f"{WORK}/predictions/{{model}}/{{bench}}.jsonl",
        data=f"{WORK}/parquet/bench/{{bench}}.parquet",
    output:
        "results/{model}/submissions/{bench}.{ext}",
    wildcard_constraints:
        bench=one_of(SERVER_BENCHES),
        ext="json|xlsx",
    params:
        score_params=lambda w: score_params(w.bench),  # the VQAv2 file carries the prompt
    log:
        f"{WORK}/logs/submission/{{model}}/{{bench}}.{{ext}}.log",
    script:
        "../scripts/submission.py"


rule score_server_scored:
    input:
        predictions=f"{WORK}/predictions/{{model}}/{{bench}}.jsonl",
        stats=f"{WORK}/predictions/{{model}}/{{bench}}.stats.json",
        data=f"{WORK}/parquet/bench/{{bench}}.parquet",
        ckpt=lambda w: ckpt_hash_file(w.model),
        submission=lambda w: submission_path(w.model, w.bench),
    output:
        "results/{model}/{bench}.json",
    wildcard_constraints:
        bench=one_of(SERVER_BENCHES),
    params:
        score_params=lambda w: score_params(w.bench),
        model_config=lambda w: canonical(MODELS[w.model]),
        repo=workflow.basedir,
    log:
        f"{WORK}/logs/score/{{model}}/{{bench}}.log",
    script:
        "../scripts/score_server_scored.py"


ruleorder: score_server_scored > score
