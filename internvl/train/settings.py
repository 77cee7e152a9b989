"""The SFT's settings and where they come from, without importing torch: a recipe file plus overrides,
the DeepSpeed config by name, the split into what a checkpoint depends on (the optimisation) and what it
does not (bookkeeping), and the gradient accumulation a global batch implies.

Why a module of its own: the Snakefile reads recipes when it builds the DAG (every dry run and every
cluster job's Snakemake process does), and importing the recipe itself (torch, transformers) would add
seconds to each.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from internvl.errors import ConfigError

DEEPSPEED_DIR = Path(__file__).resolve().parents[2] / "config" / "deepspeed"
DEEPSPEED_CONFIGS = {  # the upstream JSONs, shipped in config/deepspeed/ (see its README)
    "zero1": "zero_stage1_config.json", "zero2": "zero_stage2_config.json", "zero3": "zero_stage3_config.json",
    "zero3_34b": "zero_stage3_config_34b.json",
}
LOSS_REDUCTIONS = ("micro_batch_mean", "global_token_mean")


@dataclass
class SFTConfig:
    init: str  # original-format checkpoint to start from
    sft_dir: str  # normalized SFT parquet (internvl.data.sft)
    base_dir: str  # image paths in the parquet are relative to this
    output: str  # final checkpoint, original format
    work_dir: str  # Trainer checkpoints for resume
    # --- what decides the optimisation (the run fingerprint) ---
    learning_rate: float = 1e-5
    weight_decay: float = 0.05
    warmup_ratio: float = 0.03
    lr_scheduler_type: str = "cosine"
    num_train_epochs: float = 1.0
    max_steps: int = -1
    global_batch_size: int | None = None  # per_device x world x accumulation; the accumulation is derived
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1  # used only without global_batch_size
    max_seq_length: int = 2048
    max_grad_norm: float = 1.0
    seed: int = 42
    bf16: bool = False
    # micro_batch_mean: upstream (transformers 4.36) -- each micro-batch's token mean, averaged over
    # micro-batches and ranks; global_token_mean: transformers 5's default, one mean over the global batch
    loss_reduction: str = "micro_batch_mean"
    freeze_backbone: bool = False
    freeze_llm: bool = False
    freeze_mlp: bool = False
    unfreeze_vit_layers: int = 0
    use_backbone_lora: int = 0
    use_llm_lora: int = 0
    drop_path_rate: float = 0.0
    grad_checkpoint: bool = False  # the LLM's; the ViT always checkpoints in training, as upstream
    attn_implementation: str = "sdpa"
    deepspeed: str | dict | None = None  # zero1 | zero2 | zero3 | zero3_34b | a JSON path | the config itself
    group_by_length: bool = False  # opt-in: changes the sample order (added after the V1.2 release)
    packing: bool = False  # opt-in: padding-free rows, per-sample attention (internvl.train.dataset)
    # --- bookkeeping: never changes the result, so never invalidates a checkpoint ---
    on_error: str = "raise"  # raise | skip: a sample that cannot be built
    mismatch_threshold: float | None = 0.01  # stop when more samples than this fail the tokenization check
    mismatch_min_samples: int = 200  # ... once this many samples have been seen (over all ranks)
    save_steps: int = 200
    save_total_limit: int | None = 1
    logging_steps: int = 10
    dataloader_num_workers: int = 0
    max_shard_size: str = "5GB"
    tensorboard_dir: str | None = None  # default: <work_dir>/tensorboard
    # --- recipe-file metadata (config/recipes/): the planner reads them, training does not ---
    gpus: int | None = None
    gpus_per_node: int | None = None
    gpu_memory_gib: float | None = None
    plan_model: str | None = None
    num_samples: int | None = None
    description: str | None = None
    upstream: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SFTConfig:
        return settings_from(cls, d, "SFT")


# Settings a checkpoint does not depend on: changing them resumes instead of restarting. ``on_error``
# is among them: a run that stopped on a bad sample and is resumed with skip trains exactly what a
# skip run would have.
BOOKKEEPING = frozenset({
    "init", "sft_dir", "base_dir", "output", "work_dir", "on_error", "mismatch_threshold", "mismatch_min_samples",
    "save_steps",
    "save_total_limit", "logging_steps", "dataloader_num_workers", "max_shard_size", "tensorboard_dir", "gpus",
    "gpus_per_node", "gpu_memory_gib", "plan_model", "num_samples", "description", "upstream", "extra",
})


def settings_from(cls, d: dict[str, Any], what: str):
    """``cls(**d)`` for a settings dataclass, with a typo in a key an error that lists it."""
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise KeyError(f"unknown {what} settings: {unknown}")
    return cls(**d)


def optimisation_settings(recipe: dict[str, Any]) -> dict[str, Any]:
    """The part of a recipe a checkpoint depends on (what a rerun of the training job must follow)."""
    return {k: v for k, v in recipe.items() if k not in BOOKKEEPING}


REPO_DIR = Path(__file__).resolve().parents[2]


def load_recipe(recipe_file: str | Path | None = None, overrides: dict[str, Any] | None = None,
                repo: str | Path = REPO_DIR) -> dict[str, Any]:
    """A model's recipe: the settings of its recipe file (``config/recipes/*.yaml``; a relative path is
    taken from the repository, recipes being part of it) updated by the config's ``recipe`` mapping.
    Unknown keys are an error naming the file."""
    from internvl.errors import DataError
    from internvl.train.plan import read_recipe

    recipe: dict[str, Any] = {}
    if recipe_file:
        path = Path(recipe_file)
        path = path if path.is_absolute() else Path(repo) / path
        if not path.is_file():
            raise DataError(path, "recipe file not found")
        recipe.update(read_recipe(path))
    recipe.update(overrides or {})
    names = {f.name for f in dataclasses.fields(SFTConfig)}
    unknown = sorted(set(recipe) - names)
    if unknown:
        raise DataError(recipe_file or "recipe", f"unknown SFT settings {unknown}")
    return recipe


def resolve_deepspeed(spec: str | dict | None) -> dict[str, Any] | None:
    """A DeepSpeed config dict from a shipped name, a JSON path, or a dict (None: no DeepSpeed)."""
    if spec is None or isinstance(spec, dict):
        return copy.deepcopy(spec)
    path = DEEPSPEED_DIR / DEEPSPEED_CONFIGS[spec] if spec in DEEPSPEED_CONFIGS else Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"deepspeed config {spec!r}: {path} not found (shipped: {sorted(DEEPSPEED_CONFIGS)})")
    return json.loads(path.read_text())


def zero_stage(ds: dict[str, Any] | None) -> int:
    return int((ds or {}).get("zero_optimization", {}).get("stage", 0))


def accumulation(cfg: SFTConfig, world_size: int) -> int:
    """Gradient accumulation: from ``global_batch_size`` (= per_device x world x accumulation, as the
    upstream scripts compute GRADIENT_ACC), else the configured value. An impossible split is an error."""
    if cfg.global_batch_size is None:
        return cfg.gradient_accumulation_steps
    per_step = cfg.per_device_train_batch_size * world_size
    if cfg.global_batch_size % per_step:
        raise ConfigError(
            f"global_batch_size {cfg.global_batch_size} is not a multiple of per_device_train_batch_size "
            f"{cfg.per_device_train_batch_size} x {world_size} GPUs = {per_step}: choose a GPU count or per-device "
            "batch that divides it")
    return cfg.global_batch_size // per_step
