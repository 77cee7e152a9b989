"""The HF Trainer, with what the V1.2 SFT needs around it: sample bookkeeping, complete-checkpoint
marking, preemption, length-grouped sampling.

transformers brings the loop, DeepSpeed/DDP, gradient accumulation, checkpoint save/resume and
logging; this module adds only what it lacks:

* :class:`SFTTrainer` pops the per-batch bookkeeping the collators attach (source of each sample,
  tokenization mismatches, skipped samples) before the forward pass, counts it, sums the counts over
  ranks at each log, and stops the run when mismatches exceed ``mismatch_threshold`` (a wrong template
  or tokenizer silently zeroes the loss of most samples otherwise). A micro-batch whose samples were all
  skipped still runs its forward (every rank must, under ZeRO-3) with its loss multiplied by 0.
* :class:`CompleteCheckpoints` marks a step checkpoint complete once every rank has written it, and
  rotates old ones only then (internvl.train.checkpoints).
* :class:`Preemption` turns SIGUSR1/SIGTERM into "save at the end of this step, then stop", agreed on
  by all ranks, so a preempted Slurm job loses at most one step.
* :class:`LengthGroupedEpochSampler`: transformers' length grouping over lengths stored at
  normalization (no sample is built to learn its length), reseeded per epoch so a resume replays the
  same order.

Fault injection for the resume tests: ``INTERNVL_FAULT="save:9"`` SIGKILLs rank 0 while it writes
``checkpoint-9`` (the weights are on disk, the optimizer and trainer state not yet), ``"step:5"`` once
step 5 and any save it made are done, during step 6 (between saves). A kill is a kill: nothing is
cleaned up, which is what the tests check.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

import torch
import torch.distributed as dist
from transformers import Trainer, TrainerCallback
from transformers.trainer_pt_utils import get_length_grouped_indices

from internvl.errors import DataError
from internvl.train.checkpoints import mark_complete, rotate

log = logging.getLogger(__name__)


def _fault(point: str, step: int) -> None:
    spec = os.environ.get("INTERNVL_FAULT", "")
    if f"{point}:{step}" in spec.split(",") and _rank() == 0:
        log.warning("INTERNVL_FAULT %s:%d: killing this process", point, step)
        os.kill(os.getpid(), signal.SIGKILL)


def _dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def _rank() -> int:
    return dist.get_rank() if _dist() else 0


class MismatchError(DataError):
    """Too many samples failed the original's tokenization consistency check (they train with zero loss)."""


class LengthGroupedEpochSampler(torch.utils.data.Sampler):
    """``get_length_grouped_indices`` (transformers' ``group_by_length``) with a generator seeded by
    ``seed + epoch``: deterministic, and the same order again when a resumed run replays an epoch."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed, self.epoch = lengths, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=g))


class SFTTrainer(Trainer):
    def __init__(self, *args: Any, sources: list[str] | None = None, lengths: list[int] | None = None,
                 mismatch_threshold: float | None = None, mismatch_min_samples: int = 200, meter=None,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sources = list(sources or [])
        self.lengths = lengths
        self.mismatch_threshold, self.mismatch_min_samples = mismatch_threshold, mismatch_min_samples
        self.meter = meter
        # per source (+1 slot for samples of unknown source): samples seen, mismatches, skipped
        self._counts = torch.zeros(3, len(self.sources) + 1, dtype=torch.long)
        self.skipped: list[dict[str, Any]] = []
        self.empty_batches = 0

    def _get_learning_rate(self):
        """The learning rate the step just taken used. Under DeepSpeed the engine has already stepped the
        scheduler when transformers asks, so it would log the next step's rate (one step ahead of a DDP run's
        log); read the schedule at the step taken instead."""
        sched = self.lr_scheduler
        while not hasattr(sched, "lr_lambdas") and hasattr(sched, "scheduler"):  # accelerate's DeepSpeed wrapper
            sched = sched.scheduler
        if self.is_deepspeed_enabled and hasattr(sched, "lr_lambdas") and sched.last_epoch > 0:
            return sched.base_lrs[0] * sched.lr_lambdas[0](sched.last_epoch - 1)
        return super()._get_learning_rate()

    # --- data -------------------------------------------------------------------------------------
    def _get_train_sampler(self, train_dataset=None):
        if self.lengths is None:
            return super()._get_train_sampler(train_dataset)
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        # batch size as upstream's patched sampler: per device x accumulation
        return LengthGroupedEpochSampler(self.lengths, self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                         seed)

    def _init_training_state(self, max_steps, *args, **kwargs):
        out = super()._init_training_state(max_steps, *args, **kwargs)
        # A resumed state carries the logging/save intervals of the run that wrote it; this run's apply.
        self.state.compute_steps(self.args, max_steps)
        return out

    def _save_optimizer_and_scheduler(self, output_dir):
        _fault("save", self.state.global_step)
        super()._save_optimizer_and_scheduler(output_dir)

    # --- loss -------------------------------------------------------------------------------------
    def _count(self, inputs: dict[str, Any]) -> bool:
        src = inputs.pop("source_index", None)
        mismatch = inputs.pop("mismatch", None)
        skipped = inputs.pop("skipped", None) or []
        empty = bool(inputs.pop("empty_batch", False))
        slot = len(self.sources)
        if src is not None:
            idx = src.detach().cpu().clone()
            idx[(idx < 0) | (idx >= slot)] = slot
            self._counts[0].index_add_(0, idx, torch.ones_like(idx))
            if mismatch is not None and bool(mismatch.any()):
                m = idx[mismatch.detach().cpu()]
                self._counts[1].index_add_(0, m, torch.ones_like(m))
        for rec in skipped:
            i = self.sources.index(rec["source"]) if rec.get("source") in self.sources else slot
            self._counts[2, i] += 1
            log.warning("skipped sample %s:%s (%s)", rec.get("file"), rec.get("line"), rec.get("reason"))
        self.skipped.extend(skipped)
        if self.meter is not None and not empty:
            self.meter.add_inputs(inputs)  # non-pad tokens, real images, per-sample lengths
        return empty

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self._count(inputs):
            self.empty_batches += 1
            inputs = {k: v for k, v in inputs.items() if k != "labels"}
            outputs = model(**inputs)
            loss = outputs.logits.float().sum() * 0.0
            return (loss, outputs) if return_outputs else loss
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

    # --- counts over ranks ---------------------------------------------------------------------------
    def counts(self) -> dict[str, Any]:
        """Samples / mismatches / skips per source, summed over ranks (collective when distributed)."""
        total = self._counts.clone()
        if _dist():
            t = total.to(self.args.device)
            dist.all_reduce(t)
            total = t.cpu()
        names = [*self.sources, "(unknown)"]

        def per(row: int) -> dict[str, int]:
            return {n: int(v) for n, v in zip(names, total[row].tolist(), strict=True) if v}

        return {"samples": int(total[0].sum()), "mismatches": int(total[1].sum()), "skipped": int(total[2].sum()),
                "samples_by_source": per(0), "mismatches_by_source": per(1), "skipped_by_source": per(2)}

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs or "train_loss" in logs:  # every rank logs at the same steps
            c = self.counts()
            logs["tokenization_mismatches"] = c["mismatches"]
            if c["skipped"]:
                logs["skipped_samples"] = c["skipped"]
            if self.meter is not None:  # before super().log: TensorBoard and log_history see them
                metrics = self.meter.metrics()
                self.mfu_basis = metrics.pop("mfu_basis", getattr(self, "mfu_basis", None))
                logs.update(metrics)
            self._check_mismatches(c)
        super().log(logs, start_time)

    def _check_mismatches(self, c: dict[str, Any]) -> None:
        if self.mismatch_threshold is None or c["samples"] < self.mismatch_min_samples:
            return
        rate = c["mismatches"] / max(1, c["samples"])
        if rate > self.mismatch_threshold:
            worst = sorted(c["mismatches_by_source"].items(), key=lambda kv: -kv[1])[:5]
            raise MismatchError(
                self.args.output_dir,
                f"{c['mismatches']} of {c['samples']} samples ({rate:.1%}) failed the tokenization consistency check "
                f"and would train with zero loss (threshold {self.mismatch_threshold:.1%}); by source: {worst}. "
                "The usual cause is a tokenizer or template that does not match the data (V1.2: Hermes-2 on the "
                "Yi tokenizer); raise recipe.mismatch_threshold only if this is expected",
            )

    def gather_skipped(self) -> list[dict[str, Any]]:
        if not _dist():
            return list(self.skipped)
        parts: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(parts, self.skipped)
        return [rec for part in parts for rec in part]


class CompleteCheckpoints(TrainerCallback):
    """After each save: wait for every rank, mark the checkpoint complete (rank 0), rotate old ones."""

    def __init__(self, work_dir: str, fingerprint: str, keep: int | None):
        self.work_dir, self.fingerprint, self.keep = work_dir, fingerprint, keep

    def on_save(self, args, state, control, **kwargs):
        from pathlib import Path

        if _dist():
            dist.barrier()
        if _rank() == 0:
            ckpt = Path(self.work_dir) / f"checkpoint-{state.global_step}"
            if ckpt.is_dir():
                mark_complete(ckpt, self.fingerprint, state.global_step, args.world_size)
                for old in rotate(Path(self.work_dir), self.keep):
                    log.info("removed %s (superseded by checkpoint-%d)", old.name, state.global_step)
        if _dist():
            dist.barrier()
        return control


class Preemption(TrainerCallback):
    """SIGUSR1 / SIGTERM -> save a checkpoint at the end of the current step on every rank, then stop.

    The handler only sets a flag; at each step end the ranks agree on it (max over ranks), so all of
    them save the same step even if only one was signalled. ``preempted_at`` is the saved step.
    """

    def __init__(self, signals: tuple[str, ...] = ("SIGUSR1", "SIGTERM")):
        self.signals = signals
        self.requested: str | None = None
        self.preempted_at: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for name in self.signals:
            sig = getattr(signal, name)
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, prev in self._previous.items():
            signal.signal(sig, prev)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        self.requested = signal.Signals(signum).name
        log.warning("%s received: saving a checkpoint at the end of this step, then stopping", self.requested)

    def on_step_end(self, args, state, control, **kwargs):
        _fault("step", state.global_step - 1)  # the previous step, with any save it made, is done
        flag = torch.tensor([1 if self.requested else 0], device=args.device)
        if _dist():
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if int(flag.item()) and self.preempted_at is None:
            self.preempted_at = state.global_step
            control.should_save = True
            control.should_training_stop = True
        elif state.global_step >= state.max_steps and args.save_steps and state.global_step % args.save_steps:
            # transformers also saves the last step; the final model is written anyway, and under ZeRO-3 at 40B
            # that extra Trainer checkpoint is ~640 GB of optimizer state. Upstream (4.36) did not write it.
            control.should_save = False
        return control
