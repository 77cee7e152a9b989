"""The SFT recipe, top to bottom: setup -> model -> data -> Trainer loop -> save.

Defaults are the V1.2 script's (lr 1e-5, cosine, warmup 3%, wd 0.05 on *all* parameters as the
DeepSpeed-owned optimizer applied it, clip 1.0, seed 42, 1 epoch, 2048 tokens, the loss averaged per
micro-batch). The HF Trainer brings gradient accumulation, DeepSpeed/DDP, checkpointing and resume;
we do not rewrite those.

Setup comes first because ZeRO-3 needs it before the model exists: the ``TrainingArguments`` (and
with them DeepSpeed's config) are built before the weights are loaded, so the model is created
partitioned (``zero.Init``) and filled one tensor at a time (internvl.model.checkpoint), never whole on
any rank. The final checkpoint is gathered the same way, one weight at a time, by every rank, and
written by rank 0 in the original layout, sharded, in the training precision.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from internvl.errors import ConfigError
from internvl.model.checkpoint import iter_model_state, load_pretrained, save_pretrained
from internvl.train.checkpoints import fingerprint_of, vet_work_dir
from internvl.train.settings import (  # noqa: F401 - re-exported: the recipe's settings live there
    BOOKKEEPING,
    DEEPSPEED_CONFIGS,
    DEEPSPEED_DIR,
    LOSS_REDUCTIONS,
    SFTConfig,
    accumulation,
    load_recipe,
    optimisation_settings,
    resolve_deepspeed,
    settings_from,
    zero_stage,
)

log = logging.getLogger(__name__)

def run_record(cfg: SFTConfig, world_size: int, ds: dict[str, Any] | None) -> dict[str, Any]:
    """Everything a resumable checkpoint belongs to: the optimisation settings, the DeepSpeed config's
    content, the world size (ZeRO partitions the optimizer state by rank), the initial weights' and the
    data's content hashes."""
    from internvl.provenance import checkpoint_hash, file_sha256

    settings = optimisation_settings(dataclasses.asdict(cfg))
    settings.pop("deepspeed", None)
    return {"settings": settings, "deepspeed": ds, "world_size": world_size, "init": checkpoint_hash(cfg.init),
            "sft": file_sha256(Path(cfg.sft_dir) / "manifest.json")}


def run_fingerprint(cfg: SFTConfig, world_size: int = 1, ds: dict[str, Any] | None = None) -> str:
    return fingerprint_of(run_record(cfg, world_size, ds))


def config_fingerprint(cfg, **data_files: Path) -> str:
    """sha256 over ``cfg``'s settings (``output``/``work_dir`` aside), its ``init`` checkpoint's content and
    the content of each named data file (the LM-pretraining recipe's resume key)."""
    from internvl.provenance import checkpoint_hash, file_sha256

    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("output", "work_dir")}
    payload = {"settings": settings, "init": checkpoint_hash(cfg.init),
               **{name: file_sha256(path) for name, path in data_files.items()}}
    return fingerprint_of(payload)


def prepare_work_dir(cfg: SFTConfig, world_size: int = 1, ds: dict[str, Any] | None = None) -> Path | None:
    """Vet the work dir for this run (internvl.train.checkpoints); the checkpoint to resume from, or None."""
    record = run_record(cfg, world_size, ds)
    return vet_work_dir(Path(cfg.work_dir), fingerprint_of(record), record)


def run_summary(trainer, result, resumed: bool, cfg) -> dict[str, Any]:
    """What a finished Trainer run leaves beside its checkpoint: the loss trajectory, resume, settings.

    ``train_loss`` is the mean per-step loss over the whole run, resumed parts included (transformers'
    own covers only the steps of the last ``train()`` call), from the logged history: each logged loss
    averages the steps since the previous log.
    """
    history = [h for h in trainer.state.log_history if "loss" in h]
    weighted, steps, prev = 0.0, 0, 0
    for h in history:
        n = int(h["step"]) - prev
        weighted, steps, prev = weighted + h["loss"] * n, steps + n, int(h["step"])
    return {
        "global_steps": trainer.state.global_step,
        "train_loss": weighted / steps if steps else result.training_loss,
        "train_loss_steps": steps,
        "train_loss_this_call": result.training_loss,
        "first_logged_loss": history[0]["loss"] if history else None,
        "last_logged_loss": history[-1]["loss"] if history else None,
        "resumed": resumed, "config": dataclasses.asdict(cfg),
    }


class Preempted(RuntimeError):
    """Training stopped on a preemption signal after saving a resumable checkpoint."""

    exit_code = 75  # EX_TEMPFAIL: the job failed for now; Snakemake's retry (or Slurm's requeue) resumes it

    def __init__(self, step: int, signal_name: str, checkpoint: str):
        self.step, self.checkpoint = step, checkpoint
        super().__init__(f"{signal_name}: saved {checkpoint} at step {step} and stopped; rerun the job to resume")


def _launcher_env(ds: dict[str, Any] | None) -> None:
    """A lone process (no torchrun) needs the launcher variables for DeepSpeed, else it looks for MPI."""
    if ds is None or "RANK" in os.environ:
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))


def _broadcast(obj: Any) -> Any:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def prepare_model(model, cfg: SFTConfig) -> dict[str, int]:
    """Upstream's model set-up after loading: no KV cache, the ViT's stochastic depth, gradient
    checkpointing (ViT always, LLM by flag), freezing / LoRA / ViT-layer unfreezing in upstream's order,
    and the loss reduction. Returns the parameter counts (total / trainable / LoRA)."""
    from internvl.model.modeling import enable_gradient_checkpointing, set_vit_drop_path
    from internvl.train.lora import apply_trainable

    if cfg.loss_reduction not in LOSS_REDUCTIONS:
        raise ConfigError(f"loss_reduction {cfg.loss_reduction!r}; known: {LOSS_REDUCTIONS}")
    # the LLM reads use_cache from its own config: with a cache it would also build one per forward and
    # ignore packed rows' position_ids (transformers detects packed sequences only without a cache)
    model.config.text_config.use_cache = False
    set_vit_drop_path(model, cfg.drop_path_rate)
    enable_gradient_checkpointing(model, llm=cfg.grad_checkpoint)
    counts = apply_trainable(model, freeze_backbone=cfg.freeze_backbone, freeze_llm=cfg.freeze_llm,
                             freeze_mlp=cfg.freeze_mlp, unfreeze_vit_layers=cfg.unfreeze_vit_layers,
                             use_backbone_lora=cfg.use_backbone_lora, use_llm_lora=cfg.use_llm_lora)
    # transformers passes num_items_in_batch (one token mean over the global batch) to a model that
    # accepts loss kwargs; without it the Trainer divides each micro-batch mean by the accumulation.
    model.accepts_loss_kwargs = cfg.loss_reduction == "global_token_mean"
    return counts


def _training_arguments(cfg: SFTConfig, ga: int, ds: dict[str, Any] | None):
    from transformers import TrainingArguments

    tb = cfg.tensorboard_dir or str(Path(cfg.work_dir) / "tensorboard")
    from internvl.train.monitor import tensorboard_env

    os.environ.update(tensorboard_env(tb))  # transformers 5 took logging_dir out of TrainingArguments
    return TrainingArguments(
        output_dir=cfg.work_dir, learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
        # transformers 5 takes a fraction < 1 in warmup_steps: ceil(ratio * total steps), as the original
        warmup_steps=cfg.warmup_ratio, lr_scheduler_type=cfg.lr_scheduler_type,
        num_train_epochs=cfg.num_train_epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size, gradient_accumulation_steps=ga,
        max_grad_norm=cfg.max_grad_norm, seed=cfg.seed, data_seed=cfg.seed, bf16=cfg.bf16,  # checkpointing: per tower
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=None,  # rotation: CompleteCheckpoints
        logging_steps=cfg.logging_steps, dataloader_num_workers=cfg.dataloader_num_workers,
        dataloader_persistent_workers=cfg.dataloader_num_workers > 0, remove_unused_columns=False,
        report_to=["tensorboard"], use_cpu=not torch.cuda.is_available(), deepspeed=ds,
    )


@dataclass
class Run:
    """Everything :func:`setup` builds: what :func:`train` loops over and :func:`save` writes."""

    cfg: SFTConfig
    trainer: Any
    model: Any
    tokenizer: Any
    data: Any
    deepspeed: dict[str, Any] | None
    world_size: int
    accumulation: int
    fingerprint: str
    resume: str | None
    preemption: Any
    parameters: dict[str, int]
    rank0: bool
    t0: float = field(default_factory=time.monotonic)


def setup(cfg: SFTConfig) -> Run:
    """Distributed set-up, DeepSpeed, batch geometry and resume decision first; then the model
    (partitioned under ZeRO-3), the data and the Trainer."""
    from transformers import set_seed

    from internvl.train.dataset import SFTDataset, packed_collate, pad_collate
    from internvl.train.monitor import FlopsModel, ProgressLogCallback, RunArtifactsCallback, ThroughputMeter
    from internvl.train.trainer import CompleteCheckpoints, Preemption, SFTTrainer

    if not 0 <= cfg.warmup_ratio < 1:
        raise ConfigError(f"warmup_ratio must be in [0, 1), got {cfg.warmup_ratio}")
    t0 = time.monotonic()
    ds = resolve_deepspeed(cfg.deepspeed)
    _launcher_env(ds)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    ga = accumulation(cfg, world)
    args = _training_arguments(cfg, ga, copy.deepcopy(ds))
    if ds is not None:
        import deepspeed

        deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
    if args.world_size != world:
        raise RuntimeError(f"WORLD_SIZE says {world} processes, torch.distributed has {args.world_size}")
    rank0 = args.process_index == 0
    resume, fp = None, None
    if rank0:
        record = run_record(cfg, world, ds)
        fp = fingerprint_of(record)
        resume = vet_work_dir(Path(cfg.work_dir), fp, record)
    resume, fp = _broadcast([str(resume) if resume else None, fp])
    log.info("world size %d, per device %d, accumulation %d -> global batch %d; DeepSpeed %s; %s", world,
             cfg.per_device_train_batch_size, ga, cfg.per_device_train_batch_size * world * ga,
             f"ZeRO-{zero_stage(ds)}" if ds else "off", f"resuming {resume}" if resume else "starting fresh")
    set_seed(cfg.seed)
    load_dtype = torch.bfloat16 if (ds is not None and cfg.bf16) else torch.float32
    model, tokenizer = load_pretrained(cfg.init, dtype=load_dtype, attn_implementation=cfg.attn_implementation)
    counts = prepare_model(model, cfg)
    model.train()
    data = SFTDataset(cfg.sft_dir, cfg.base_dir, tokenizer, model.template, model.num_image_token,
                      image_size=model.config.force_image_size, max_length=cfg.max_seq_length,
                      pad2square=model.config.pad2square, on_error=cfg.on_error)
    collate = packed_collate if cfg.packing else pad_collate
    pad_id, image_size = tokenizer.pad_token_id, model.config.force_image_size
    params = [p for p in model.parameters() if p.requires_grad]
    own_optimizer = ds is None or "optimizer" not in ds  # upstream's JSONs define AdamW; DeepSpeed builds it
    # One parameter group: the V1.2 DeepSpeed optimizer decayed norms and biases too.
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, betas=(0.9, 0.999),
                                  eps=1e-8) if own_optimizer else None
    preemption = Preemption()
    meter = ThroughputMeter(FlopsModel.from_config(model.original_config, dataclasses.asdict(cfg)))
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=data, data_collator=lambda b: collate(b, pad_id, image_size),
        optimizers=(optimizer, None), sources=data.sources, lengths=data.lengths if cfg.group_by_length else None,
        mismatch_threshold=cfg.mismatch_threshold, mismatch_min_samples=cfg.mismatch_min_samples, meter=meter,
        callbacks=[CompleteCheckpoints(cfg.work_dir, fp, cfg.save_total_limit), preemption, meter,
                   ProgressLogCallback(every=max(1, cfg.logging_steps)), RunArtifactsCallback()],
    )
    return Run(cfg, trainer, model, tokenizer, data, ds, world, ga, fp, resume, preemption, counts, rank0, t0)


def save(run: Run, result) -> dict[str, Any]:
    """The final checkpoint (collective under ZeRO-3; LoRA folded in) and, beside it, the run's summary,
    log history and loss curve."""
    from internvl.train.lora import merged_stream
    from internvl.train.monitor import write_run_plots

    cfg, trainer, model = run.cfg, run.trainer, run.model
    counts = trainer.counts()
    skipped = trainer.gather_skipped()
    state = iter_model_state(model)
    if (cfg.use_llm_lora or cfg.use_backbone_lora) and run.rank0:  # adapters folded in: a plain checkpoint
        state = merged_stream(state)
    save_pretrained(model, cfg.output, tokenizer=run.tokenizer, dtype=torch.bfloat16 if cfg.bf16 else None,
                    max_shard_size=cfg.max_shard_size, state=state)
    summary = {**run_summary(trainer, result, run.resume is not None, cfg), "resumed_from": run.resume,
               "samples": len(run.data), "world_size": run.world_size, "gradient_accumulation_steps": run.accumulation,
               "global_batch_size": cfg.per_device_train_batch_size * run.world_size * run.accumulation,
               "deepspeed": run.deepspeed, "run_fingerprint": run.fingerprint,
               "tokenization_mismatches": counts["mismatches"],
               "tokenization_mismatches_by_source": counts["mismatches_by_source"],
               "samples_seen_by_source": counts["samples_by_source"], "skipped_samples": counts["skipped"],
               "skipped_by_source": counts["skipped_by_source"], "empty_micro_batches": trainer.empty_batches,
               "parameters": run.parameters, "mfu_basis": getattr(trainer, "mfu_basis", None),
               "wall_s": round(time.monotonic() - run.t0, 1)}
    if run.rank0:  # other ranks would race rank 0 writing the output directory
        out = Path(cfg.output)
        (out / "train_summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        write_run_plots(trainer.state.log_history, out)  # log_history.json + loss_curve.png
        if skipped:
            (out / "skipped_samples.json").write_text(json.dumps(skipped, indent=1) + "\n")
    return summary


def train(cfg: SFTConfig) -> dict[str, Any]:
    """setup -> the Trainer loop (resumed when a checkpoint of this run exists) -> save."""
    run = setup(cfg)
    run.preemption.install()
    try:
        result = run.trainer.train(resume_from_checkpoint=run.resume)
    finally:
        run.preemption.uninstall()
    if run.preemption.preempted_at is not None:
        step = run.preemption.preempted_at
        raise Preempted(step, run.preemption.requested or "signal", str(Path(cfg.work_dir) / f"checkpoint-{step}"))
    return save(run, result)
