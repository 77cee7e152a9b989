# Checkpoints: a random initialisation, an SFT run, a hub download or a local path; each ends in a
# content-hash file that downstream jobs depend on.


from internvl.train.settings import load_recipe, optimisation_settings, resolve_deepspeed


def model_recipe(model):
    """A train model's settings: its recipe_file (config/recipes/*.yaml) updated by its recipe mapping."""
    m = MODELS[model]
    return load_recipe(m.get("recipe_file"), m.get("recipe"), repo=REPO_DIR)


def train_geometry(model):
    """Slurm geometry of a train model from its recipe's ``gpus`` / ``gpus_per_node`` (default 8 a node).

    Several nodes: one launcher task per node, each starting torchrun with that node's GPUs. One node with
    several GPUs: one launcher task per GPU, as upstream's srun launch (the executor plugin wants more than
    one task for a rule that starts its own srun step); internvl.train.launch gives each task its GPU. One
    GPU or none: a plain one-task job, trained in the job's process.
    """
    r = model_recipe(model)
    gpus = int(r.get("gpus") or 0)
    per_node = min(gpus, int(r.get("gpus_per_node") or 8)) if gpus else 0
    nodes = -(-gpus // per_node) if per_node else 1
    if gpus <= 1:
        return {"gpus": gpus, "nodes": 1, "tasks": 1, "nproc_per_node": 0, "gres": "", "mpi": "", "cpus": 8}
    tasks = nodes if nodes > 1 else gpus
    return {"gpus": gpus, "nodes": nodes, "tasks": tasks, "nproc_per_node": per_node * nodes // tasks,
            "gres": f"gpu:{per_node}", "mpi": "srun", "cpus": 8 * per_node * nodes // tasks}


def _init_models():
    return [m for m, v in MODELS.items() if v["kind"] == "init"]


def _train_models():
    return [m for m, v in MODELS.items() if v["kind"] == "train"]


def _lm_pretrain_models():
    return [m for m, v in MODELS.items() if v["kind"] == "lm_pretrain"]


def _parts_models():
    return [m for m, v in MODELS.items() if v["kind"] == "parts"]


def _planned_train_models():
    """Train models whose recipe names a GPU count: each is checked against its GPUs before it is submitted."""
    return [m for m in _train_models() if model_recipe(m).get("gpus")]


def train_inputs(w):
    inputs = {"init": ckpt_hash_file(MODELS[w.model]["init"]),
              "sft": f"{train_data_dir(train_data_of(w.model))}/manifest.json"}
    if w.model in _planned_train_models():
        inputs["plan"] = f"{WORK}/train_plan/{w.model}.json"
    return inputs


def part_dir(model, key):
    """A parts model's ``vision``/``llm`` folder: a config/sources.yaml source (where its download lands), or
    a local folder (a leading {repo} is this repository)."""
    name = MODELS[model][key]
    if name in SOURCES:
        return str(Path(SOURCE_ROOTS[SOURCES[name]["root"]]) / SOURCES[name]["dest"])
    return name.replace("{repo}", REPO_DIR)


def part_input(model, key):
    """The download stamp of a source part (ancient: a download never reruns anything), else the folder's config."""
    name = MODELS[model][key]
    return source_inputs(name) if name in SOURCES else [f"{part_dir(model, key)}/config.json"]


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


rule build_parts_model:
    # V1.2's starting point: the InternViT repo, its pretrained projector (.pth) and the LLM repo, joined into
    # one original-layout checkpoint with the nine InternVL tokens added (internvl.model.parts)
    input:
        vision=lambda w: part_input(w.model, "vision"),
        llm=lambda w: part_input(w.model, "llm"),
    output:
        ckpt=directory(f"{WORK}/models/{{model}}"),
        hash=f"{WORK}/checkpoints/{{model}}.sha256",
    wildcard_constraints:
        model=one_of(_parts_models()),
    params:
        vision_dir=lambda w: part_dir(w.model, "vision"),
        llm_dir=lambda w: part_dir(w.model, "llm"),
        mlp_path=lambda w: f"{part_dir(w.model, 'vision')}/{MODELS[w.model]['projector']}",
        build=lambda w: canonical({k: MODELS[w.model][k] for k in ("template", "select_layer", "force_image_size",
                                                                    "downsample_ratio", "seed") if k in MODELS[w.model]}),
    log:
        f"{WORK}/logs/build/{{model}}.log",
    script:
        "../scripts/build_parts_model.py"


rule train_plan:
    # per-GPU memory, accumulation and steps of a GPU recipe (internvl.train.plan); a plan that cannot fit
    # fails here, on the submitting host, before the training job is ever submitted
    output:
        f"{WORK}/train_plan/{{model}}.json",
    wildcard_constraints:
        model=one_of(_planned_train_models()),
    params:
        recipe=lambda w: canonical(model_recipe(w.model)),
        samples=lambda w: model_recipe(w.model).get("num_samples"),
    localrule: True
    log:
        f"{WORK}/logs/train_plan/{{model}}.log",
    script:
        "../scripts/train_plan.py"


rule train_model:
    input:
        unpack(train_inputs),
    output:
        ckpt=directory(f"{WORK}/models/{{model}}"),
        hash=f"{WORK}/checkpoints/{{model}}.sha256",
    wildcard_constraints:
        model=one_of(_train_models()),
    params:
        init_dir=lambda w: ckpt_dir(MODELS[w.model]["init"]),
        # what the checkpoint depends on: a change reruns training (bookkeeping keys are read at run time)
        recipe=lambda w: canonical(optimisation_settings(model_recipe(w.model))),
        deepspeed_config=lambda w: canonical(resolve_deepspeed(model_recipe(w.model).get("deepspeed"))),
        sft_dir=lambda w: train_data_dir(train_data_of(w.model)),
        base_dir=lambda w: TRAIN_DATA[train_data_of(w.model)]["base_dir"],
        work_dir=lambda w: f"{WORK}/train_state/{w.model}",
        repo=REPO_DIR,
    threads: lambda wildcards: workflow.cores  # lazy: a cluster run has no total (profiles set-threads)
    resources:
        # from the recipe's gpus (train_geometry); a rule with an mpi resource starts its own srun step, so the
        # Slurm job step the training runs in is not Snakemake's own (a preemption signal reaches only it)
        gpu=lambda w: train_geometry(w.model)["gpus"] if train_geometry(w.model)["tasks"] == 1 else 0,
        nodes=lambda w: train_geometry(w.model)["nodes"],
        tasks=lambda w: train_geometry(w.model)["tasks"],
        nproc_per_node=lambda w: train_geometry(w.model)["nproc_per_node"],
        cpus_per_task=lambda w: train_geometry(w.model)["cpus"],
        gres=lambda w: train_geometry(w.model)["gres"],
        mpi=lambda w: train_geometry(w.model)["mpi"],
        tasks_per_gpu=0,
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
