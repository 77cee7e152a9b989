# Checkpoints: a random initialisation, an SFT run, a hub download or a local path; each ends in a
# content-hash file that downstream jobs depend on.


def _init_models():
    return [m for m, v in MODELS.items() if v["kind"] == "init"]


def _train_models():
    return [m for m, v in MODELS.items() if v["kind"] == "train"]


def _lm_pretrain_models():
    return [m for m, v in MODELS.items() if v["kind"] == "lm_pretrain"]


def _hub_models():
    return [m for m, v in MODELS.items() if v["kind"] == "hub"]


def _path_models():
    return [m for m, v in MODELS.items() if v["kind"] == "path"]


rule init_model:
    input:
        tokenizer=f"{tokenizer_dir()}/tokenizer.json",
    output:
        ckpt=directory(f"{WORK}/models/{{model}}"),
        hash=f"{WORK}/checkpoints/{{model}}.sha256",
    wildcard_constraints:
        model=one_of(_init_models()),
    params:
        preset=lambda w: MODELS[w.model]["preset"],
        seed=lambda w: MODELS[w.model]["seed"],
        tokenizer=tokenizer_dir(),
    log:
        f"{WORK}/logs/init/{{model}}.log",
    script:
        "../scripts/init_model.py"


rule train_model:
    input:
        init=lambda w: ckpt_hash_file(MODELS[w.model]["init"]),
        sft=lambda w: f"{train_data_dir(train_data_of(w.model))}/manifest.json",
    output:
        ckpt=directory(f"{WORK}/models/{{model}}"),
        hash=f"{WORK}/checkpoints/{{model}}.sha256",
    wildcard_constraints:
        model=one_of(_train_models()),
    params:
        init_dir=lambda w: ckpt_dir(MODELS[w.model]["init"]),
        recipe=lambda w: canonical(MODELS[w.model]["recipe"]),
        sft_dir=lambda w: train_data_dir(train_data_of(w.model)),
        base_dir=lambda w: TRAIN_DATA[train_data_of(w.model)]["base_dir"],
        work_dir=lambda w: f"{WORK}/train_state/{w.model}",
    threads: lambda wildcards: workflow.cores  # lazy: a cluster run has no total (profiles set-threads)
    resources:
        gpu=lambda w: MODELS[w.model].get("gpus", 0),
    log:
        f"{WORK}/logs/train/{{model}}.log",
    script:
        "../scripts/train_model.py"


rule lm_pretrain_model:
    # The LLM of an initialised checkpoint trained on a text corpus (loss on every token): the demo's
    # stand-in for the pretrained chat LLM that V1.2's SFT starts from (internvl.train.lm_pretrain).
    input:
        init=lambda w: ckpt_hash_file(MODELS[w.model]["init"]),
        corpus=lambda w: raw_inputs() or [MODELS[w.model]["corpus"]],
    output:
        ckpt=directory(f"{WORK}/models/{{model}}"),
        hash=f"{WORK}/checkpoints/{{model}}.sha256",
    wildcard_constraints:
        model=one_of(_lm_pretrain_models()),
    params:
        init_dir=lambda w: ckpt_dir(MODELS[w.model]["init"]),
        corpus=lambda w: MODELS[w.model]["corpus"],
        recipe=lambda w: canonical(MODELS[w.model]["recipe"]),
        work_dir=lambda w: f"{WORK}/train_state/{w.model}",
    threads: lambda wildcards: workflow.cores
    resources:
        gpu=lambda w: MODELS[w.model].get("gpus", 0),
    log:
        f"{WORK}/logs/train/{{model}}.log",
    script:
        "../scripts/lm_pretrain_model.py"


rule download_model:
    output:
        ckpt=directory(f"{WORK}/models/{{model}}"),
        hash=f"{WORK}/checkpoints/{{model}}.sha256",
    wildcard_constraints:
        model=one_of(_hub_models()),
    params:
        repo_id=lambda w: MODELS[w.model]["repo_id"],
        revision=lambda w: MODELS[w.model]["revision"],
    log:
        f"{WORK}/logs/download/{{model}}.log",
    script:
        "../scripts/download_model.py"


rule hash_local_model:
    input:
        lambda w: f"{ckpt_dir(w.model)}/config.json",
    output:
        hash=f"{WORK}/checkpoints/{{model}}.sha256",
    wildcard_constraints:
        model=one_of(_path_models()),
    params:
        ckpt=lambda w: ckpt_dir(w.model),
        sha256=lambda w: MODELS[w.model].get("sha256"),
    script:
        "../scripts/hash_checkpoint.py"
