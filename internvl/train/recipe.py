"""The SFT recipe, top to bottom: setup -> data -> Trainer loop -> checkpoint in the original format.

Defaults are the V1.2 script's (lr 1e-5, cosine, warmup 3%, wd 0.05 on *all* parameters as the
DeepSpeed-owned optimizer applied it, clip 1.0, seed 42, 1 epoch, 2048 tokens). The HF Trainer
brings gradient accumulation, DeepSpeed/DDP, checkpointing and resume; we do not rewrite those.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from internvl.model.checkpoint import load_pretrained, save_pretrained

log = logging.getLogger(__name__)


@dataclass
class SFTConfig:
    init: str  # original-format checkpoint to start from
    sft_dir: str  # normalized SFT parquet (internvl.data.sft)
    base_dir: str  # image paths in the parquet are relative to this
    output: str  # final checkpoint, original format
    work_dir: str  # Trainer checkpoints for resume
    learning_rate: float = 1e-5
    weight_decay: float = 0.05
    warmup_ratio: float = 0.03
    lr_scheduler_type: str = "cosine"
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_seq_length: int = 2048
    max_grad_norm: float = 1.0
    seed: int = 42
    bf16: bool = False
    freeze_backbone: bool = False
    freeze_llm: bool = False
    freeze_mlp: bool = False
    drop_path_rate: float = 0.0
    grad_checkpoint: bool = False
    save_steps: int = 200
    logging_steps: int = 10
    dataloader_num_workers: int = 0
    deepspeed: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SFTConfig:
        return settings_from(cls, d, "SFT")


def settings_from(cls, d: dict[str, Any], what: str):
    """``cls(**d)`` for a settings dataclass, with a typo in a key an error that lists it."""
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise KeyError(f"unknown {what} settings: {unknown}")
    return cls(**d)


def _freeze(model, cfg: SFTConfig) -> None:
    parts = {"freeze_backbone": model.model.vision_tower, "freeze_llm": model.model.language_model,
             "freeze_mlp": model.model.multi_modal_projector}
    for flag, module in parts.items():
        if getattr(cfg, flag):
            module.requires_grad_(False)
    if cfg.freeze_llm:
        model.lm_head.requires_grad_(False)


def run_fingerprint(cfg: SFTConfig) -> str:
    """What a resumable Trainer state belongs to: every setting (outputs aside) plus the content of
    the initial checkpoint and of the SFT data. A state with another fingerprint is never resumed."""
    return config_fingerprint(cfg, sft=Path(cfg.sft_dir) / "manifest.json")


def config_fingerprint(cfg, **data_files: Path) -> str:
    """sha256 over ``cfg``'s settings (``output``/``work_dir`` aside), its ``init`` checkpoint's content and
    the content of each named data file."""
    from internvl.provenance import checkpoint_hash, file_sha256

    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("output", "work_dir")}
    payload = {"settings": settings, "init": checkpoint_hash(cfg.init),
               **{name: file_sha256(path) for name, path in data_files.items()}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def prepare_work_dir(cfg: SFTConfig) -> bool:
    """Keep the Trainer checkpoints only if they belong to this exact run; return whether to resume."""
    return vet_work_dir(Path(cfg.work_dir), run_fingerprint(cfg))


def vet_work_dir(work: Path, fp: str) -> bool:
    """Drop step checkpoints stamped with another fingerprint (or none), stamp ``fp``; True iff one to resume."""
    stamp = work / "run_fingerprint.txt"
    checkpoints = sorted(work.glob("checkpoint-*")) if work.is_dir() else []
    if checkpoints and (not stamp.exists() or stamp.read_text().strip() != fp):
        log.warning("discarding %d Trainer checkpoint(s) in %s: they belong to another run (settings, "
                    "initial weights or data changed)", len(checkpoints), work)
        for ckpt in checkpoints:
            shutil.rmtree(ckpt)
        checkpoints = []
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fp + "\n")
    # a checkpoint killed while being written has no trainer_state.json: never resume from it
    return any((c / "trainer_state.json").exists() for c in checkpoints)


def _wait_for_stamp(cfg: SFTConfig, timeout_s: float = 600) -> bool:
    """Other ranks wait until rank 0 has vetted the work dir, then resume iff it kept checkpoints."""
    stamp, fp = Path(cfg.work_dir) / "run_fingerprint.txt", run_fingerprint(cfg)
    deadline = time.monotonic() + timeout_s
    while not (stamp.exists() and stamp.read_text().strip() == fp):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{stamp}: rank 0 did not prepare the work dir in {timeout_s:.0f} s")
        time.sleep(1)
    return any((c / "trainer_state.json").exists() for c in Path(cfg.work_dir).glob("checkpoint-*"))


def run_summary(trainer, result, resumed: bool, cfg) -> dict[str, Any]:
    """What a finished Trainer run leaves beside its checkpoint: the loss trajectory, resume, settings."""
    history = [h for h in trainer.state.log_history if "loss" in h]
    return {
        "global_steps": trainer.state.global_step, "train_loss": result.training_loss,
        "first_logged_loss": history[0]["loss"] if history else None,
        "last_logged_loss": history[-1]["loss"] if history else None,
        "resumed": resumed, "config": dataclasses.asdict(cfg),
    }


def train(cfg: SFTConfig) -> dict[str, Any]:
    from transformers import Trainer, TrainingArguments, set_seed

    from internvl.train.dataset import SFTDataset, pad_collate

    if not 0 <= cfg.warmup_ratio < 1:
        raise ValueError(f"warmup_ratio must be in [0, 1), got {cfg.warmup_ratio}")
    if cfg.drop_path_rate > 0:
        raise NotImplementedError(
            "drop_path_rate > 0 (ViT stochastic depth, 0.4 in the V1.2 script) is not implemented: "
            "transformers' InternVL vision layers have no drop path"
        )
    set_seed(cfg.seed)
    model, tokenizer = load_pretrained(cfg.init, dtype=torch.float32)
    model.config.use_cache = False
    model.train()
    _freeze(model, cfg)
    data = SFTDataset(cfg.sft_dir, cfg.base_dir, tokenizer, model.template, model.num_image_token,
                      image_size=model.config.force_image_size, max_length=cfg.max_seq_length,
                      pad2square=model.config.pad2square)
    args = TrainingArguments(
        output_dir=cfg.work_dir, learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
        # transformers 5 takes a fraction < 1 in warmup_steps: ceil(ratio * total steps), as the original
        warmup_steps=cfg.warmup_ratio, lr_scheduler_type=cfg.lr_scheduler_type,
        num_train_epochs=cfg.num_train_epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed, data_seed=cfg.seed, bf16=cfg.bf16, gradient_checkpointing=cfg.grad_checkpoint,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=1, logging_steps=cfg.logging_steps,
        dataloader_num_workers=cfg.dataloader_num_workers, remove_unused_columns=False, report_to="none",
        use_cpu=not torch.cuda.is_available(), deepspeed=cfg.deepspeed,
    )
    params = [p for p in model.parameters() if p.requires_grad]
    # One parameter group: the V1.2 DeepSpeed optimizer decayed norms and biases too.
    optimizer = None if cfg.deepspeed else torch.optim.AdamW(
        params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, betas=(0.9, 0.999), eps=1e-8)
    trainer = Trainer(model=model, args=args, train_dataset=data,
                      data_collator=lambda b: pad_collate(b, tokenizer.pad_token_id),
                      optimizers=(optimizer, None))
    has_ckpt = prepare_work_dir(cfg) if int(os.environ.get("RANK", "0")) == 0 else _wait_for_stamp(cfg)
    result = trainer.train(resume_from_checkpoint=True if has_ckpt else None)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    if rank0:
        save_pretrained(model, cfg.output, tokenizer=tokenizer)
    summary = {**run_summary(trainer, result, has_ckpt, cfg), "samples": len(data),
               "tokenization_mismatches": data.mismatches}
    if rank0:  # other ranks would race rank 0 creating the output directory
        (Path(cfg.output) / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
