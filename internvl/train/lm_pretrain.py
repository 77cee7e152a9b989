"""Text-only pretraining of a checkpoint's LLM: the demo's stand-in for the pretrained chat LLM V1.2 starts from.

V1.2's SFT begins from Nous-Hermes-2-Yi-34B, a pretrained chat LLM; the demo's begins from the tiny LLM
trained by this module on text conversations about demo scenes (the scene in words, then questions in the
benchmark prompt formats), with loss on every token. Two stages make the shipped demo LLM
(config/demo_llm.yaml -> resources/demo_llm): 300 steps on the mixed corpus teach the prompt formats and
language priors (after the same SFT: COCO CIDEr 123.6 -> 200.2, VQAv2 54.5 -> 57.1 against random weights)
but no in-context lookups; those (is the named object in the described scene?) appear only in a second
stage on lookup questions alone, after a phase transition (existence 0.53 -> 0.93 between steps 400
and 1,200 of batch 16). Measure either with ``python -m internvl.demo.diagnose``.

Only the language model (embeddings, decoder, lm_head) trains; the ViT and projector are frozen and left
byte-identical. The corpus is LLaVA-style conversations without images (``conversations`` of
``human``/``gpt`` turns), rendered with the checkpoint's template exactly as the SFT renders them.
The HF Trainer brings the loop, the schedule, logging and resume from its step checkpoints.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from internvl.data.io import DataError, iter_jsonl
from internvl.data.sft_records import RecordChecker
from internvl.model.checkpoint import load_pretrained, save_pretrained
from internvl.train.checkpoints import vet_work_dir
from internvl.train.dataset import pad_collate
from internvl.train.preprocess import render
from internvl.train.recipe import config_fingerprint, run_summary, settings_from

log = logging.getLogger(__name__)


@dataclass
class LMPretrainConfig:
    init: str  # original-format checkpoint whose LLM is trained
    corpus: str  # JSONL of {"id", "conversations"} without images
    output: str  # checkpoint, original format
    work_dir: str  # Trainer step checkpoints (resume)
    max_steps: int = 300
    per_device_train_batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 20
    lr_scheduler_type: str = "constant_with_warmup"
    max_grad_norm: float = 1.0
    max_seq_length: int = 512
    seed: int = 0
    save_steps: int = 100
    logging_steps: int = 25

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LMPretrainConfig:
        return settings_from(cls, d, "LM pretraining")


def read_corpus(path: str | Path) -> list[list[dict[str, str]]]:
    """The conversations of ``path``, checked by the SFT data's rule book (file, line and field in every
    error; nothing skipped), plus one rule of its own: a record with an image is an error."""
    path = Path(path)
    checker = RecordChecker(path, path.parent, path.parent, check_images=False)
    out = []
    for lineno, rec in iter_jsonl(path):
        if checker.validate(rec, lineno) is not None:
            raise DataError(path, "the LM corpus is text-only", line=lineno, field="image")
        out.append(rec["conversations"])
    if not out:
        raise DataError(path, "no records")
    return out


class LMDataset(torch.utils.data.Dataset):
    """Rendered, tokenized conversations; the labels are the input ids (loss on every token)."""

    def __init__(self, conversations: list[list[dict[str, str]]], tokenizer, template, max_length: int):
        self.items = [torch.tensor(tokenizer(render(c, template), truncation=True, max_length=max_length).input_ids)
                      for c in conversations]
        self.truncated = sum(len(x) >= max_length for x in self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.items[i], "labels": self.items[i]}


def prepare_work_dir(cfg: LMPretrainConfig) -> tuple[Path | None, str]:
    """Resume only from complete step checkpoints of this exact run (same settings, weights and corpus);
    returns (the checkpoint to resume, the run fingerprint)."""
    fp = config_fingerprint(cfg, corpus=Path(cfg.corpus))
    return vet_work_dir(Path(cfg.work_dir), fp), fp


def pretrain_llm(cfg: LMPretrainConfig) -> dict[str, Any]:
    from transformers import Trainer, TrainingArguments, set_seed

    from internvl.train.trainer import CompleteCheckpoints

    set_seed(cfg.seed)
    model, tokenizer = load_pretrained(cfg.init, dtype=torch.float32)
    model.config.text_config.use_cache = False  # the LLM reads it from its own config
    model.train()
    for module in (model.model.vision_tower, model.model.multi_modal_projector):
        module.requires_grad_(False)  # no gradient reaches them from text; keep weight decay off them too
    data = LMDataset(read_corpus(cfg.corpus), tokenizer, model.template, cfg.max_seq_length)
    if data.truncated:
        log.warning("%s: %d of %d conversations truncated to %d tokens", cfg.corpus, data.truncated, len(data),
                    cfg.max_seq_length)
    args = TrainingArguments(
        output_dir=cfg.work_dir, learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_steps, lr_scheduler_type=cfg.lr_scheduler_type, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size, max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed, data_seed=cfg.seed, save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=None,
        logging_steps=cfg.logging_steps, remove_unused_columns=False, report_to="none",
        use_cpu=not torch.cuda.is_available(),
    )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    resume, fp = prepare_work_dir(cfg)
    trainer = Trainer(model=model, args=args, train_dataset=data,
                      data_collator=lambda b: pad_collate(b, tokenizer.pad_token_id), optimizers=(optimizer, None),
                      callbacks=[CompleteCheckpoints(cfg.work_dir, fp, keep=1)])
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    save_pretrained(model, cfg.output, tokenizer=tokenizer)
    summary = {**run_summary(trainer, result, resume is not None, cfg), "conversations": len(data),
               "truncated": data.truncated}
    (Path(cfg.output) / "lm_pretrain_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
