"""What makes an 18-hour SFT run watchable: throughput and MFU, a progress line, the loss curve, TensorBoard.

The pieces plug into transformers' Trainer; the recipe's Trainer subclass wires them (or inherits
:class:`MeteredTrainerMixin`, which does exactly this):

- ``training_step``: ``self.meter.add_inputs(inputs)`` for every micro-batch (or ``add_batch(tokens, images)``).
- ``log``: ``if "loss" in logs: logs.update(self.meter.metrics())`` *before* ``super().log(logs, ...)``, so the
  scalars reach ``state.log_history`` and every ``on_log`` callback, TensorBoard's included. ``metrics()`` sums
  over ranks with ``torch.distributed``, so every rank calls it (``Trainer.log`` runs on every rank).
- ``callbacks=[meter, ProgressLogCallback(every), RunArtifactsCallback(final_dir)]``.
- TensorBoard: ``report_to=["tensorboard"]`` and ``os.environ.update(tensorboard_env(dir))`` before the
  ``Trainer`` is built (transformers 5 has no ``logging_dir``; its TensorBoardCallback reads
  ``TENSORBOARD_LOGGING_DIR`` in its constructor).

**Model FLOPs** (the usual MFU convention: recomputation from gradient checkpointing is not counted) per
optimizer step: each part contributes ``2 N`` per token forward, ``2 N`` for the input gradients when anything
in or before it trains, and ``2 N_trainable`` for the weight gradients - ``6 N`` for a part that trains
fully. N counts the matrix-multiplying parameters: the LLM without its input embedding table (a lookup;
lm_head counts), the ViT without its position and class embeddings. Per LLM token of a sample of length s,
attention adds ``4 * layers * hidden * s`` forward (QK^T and AV) and twice that backward, ``12 * layers *
hidden * s`` in all; a ViT image is ``t`` = 1025 tokens with ``12 * layers * hidden * t`` each, and the
projector runs on the ``image_tokens`` (256) merged tokens. Tokens are non-pad tokens; images are real
images (a text-only sample's dummy image is overhead, as padding is).

``MFU = model FLOPs of the window / (window seconds * world size * peak FLOP/s per device)``, the peak from
:data:`PEAK_BF16_FLOPS` by ``torch.cuda.get_device_name()`` for bf16, else a short matmul measurement on this
device (``mfu_basis`` says which).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from internvl.train.plan import tensors

log = logging.getLogger(__name__)
GiB = 2**30

# Dense bf16 Tensor Core peaks per GPU, from NVIDIA's datasheets (they print twice these "with sparsity"):
# A100 (SXM4 and PCIe) 312 TFLOP/s; H100 SXM 989.5, H100 PCIe 756, H100 NVL 835.5; H200 989.5 (the H100 SXM's
# compute). Matched as substrings of torch.cuda.get_device_name(), the longer names first.
PEAK_BF16_FLOPS: tuple[tuple[str, float, str], ...] = (
    ("H100 PCIe", 756e12, "H100 PCIe"),
    ("H100 NVL", 835e12, "H100 NVL"),
    ("H100", 989e12, "H100 SXM"),
    ("H800", 989e12, "H800 SXM"),
    ("GH200", 989e12, "GH200"),
    ("H200", 989e12, "H200"),
    ("A100", 312e12, "A100"),
    ("A800", 312e12, "A800"),
)


# --- FLOPs ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlopsModel:
    """Model FLOPs of a micro-batch from its token, image and squared-length counts (module docstring)."""

    llm_per_token: float
    llm_attention_per_token_position: float  # times the sample's length s, per token
    per_image: float  # ViT (attention included) + projector

    @classmethod
    def from_config(cls, model_cfg: dict[str, Any], recipe: Mapping[str, Any] | None = None) -> FlopsModel:
        """From an original-format config dict and the recipe's freeze / LoRA settings."""
        ts = tensors(model_cfg, dict(recipe or {}))
        lookups = {"model.language_model.embed_tokens.weight", "model.vision_tower.embeddings.position_embeddings",
                   "model.vision_tower.embeddings.cls_token"}
        lc, vc = model_cfg["llm_config"], model_cfg["vision_config"]
        tied = bool(lc.get("tie_word_embeddings", False))
        n, n_tr = {}, {}
        for part in ("vit", "projector", "llm"):
            mm = [t for t in ts if t.part == part and (t.name not in lookups or (tied and "embed_tokens" in t.name))]
            n[part] = sum(t.numel for t in mm)
            n_tr[part] = sum(t.numel for t in mm if t.trainable)
        any_tr = {p: any(t.trainable for t in ts if t.part == p) for p in ("vit", "projector", "llm")}
        grad_in = {"vit": any_tr["vit"], "projector": any_tr["vit"] or any_tr["projector"],
                   "llm": any(any_tr.values())}

        def per_token(part: str) -> float:
            return 2 * n[part] + 2 * n[part] * grad_in[part] + 2 * n_tr[part]

        image = model_cfg.get("force_image_size") or vc["image_size"]
        grid = (image // vc["patch_size"]) ** 2
        t, image_tokens = grid + 1, int(grid * model_cfg["downsample_ratio"] ** 2)
        vit_attn = 4 * vc["num_hidden_layers"] * vc["hidden_size"] * t * (3 if grad_in["vit"] else 1)
        return cls(
            llm_per_token=per_token("llm"),
            llm_attention_per_token_position=4 * lc["num_hidden_layers"] * lc["hidden_size"] * (3 if grad_in["llm"] else 1),
            per_image=t * (per_token("vit") + vit_attn) + image_tokens * per_token("projector"),
        )

    def flops(self, tokens: float, images: float, sum_sq_len: float = 0.0) -> float:
        """``sum_sq_len`` = sum over samples of (non-pad length)^2: the attention term; 0 leaves it out."""
        return self.llm_per_token * tokens + self.llm_attention_per_token_position * sum_sq_len + self.per_image * images


# --- peak FLOP/s and memory -------------------------------------------------------------------------------


def table_peak_flops(device_name: str) -> tuple[float, str] | None:
    for key, flops, label in PEAK_BF16_FLOPS:
        if key.lower() in device_name.lower():
            return flops, f"table: {label} bf16 dense {flops / 1e12:g} TFLOP/s (NVIDIA datasheet)"
    return None


@functools.lru_cache(maxsize=8)
def measured_peak_flops(device: str = "cpu", dtype: torch.dtype = torch.float32, seconds: float = 0.25) -> float:
    """Matmul FLOP/s of this device, measured once per process (n x n products for ``seconds``)."""
    n = 1024 if torch.device(device).type == "cpu" else 8192  # "cpu:0" too: 8192^3 on a CPU takes minutes
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)

    (a @ b).sum()
    sync()
    reps, start = 0, time.perf_counter()
    while True:
        a @ b
        reps += 1
        if reps % 4 == 0:
            sync()
            if time.perf_counter() - start >= seconds:
                break
    return 2 * n**3 * reps / (time.perf_counter() - start)


def peak_flops(device: torch.device | str | None = None, bf16: bool = True) -> tuple[float, str]:
    """(peak FLOP/s per device, where the number comes from): the datasheet table for a known GPU in bf16,
    else a measured matmul peak."""
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = torch.bfloat16 if bf16 else torch.float32
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        if bf16 and (hit := table_peak_flops(name)):
            return hit
        where = name
    else:
        # CPUs without bf16 matrix units emulate it at a fraction of fp32 speed (minutes for this measurement),
        # and CPU runs here are fp32 or autocast: the fp32 peak is the honest basis
        where, dtype = "cpu", torch.float32
    flops = measured_peak_flops(str(device), dtype)
    return flops, f"measured: {where} {str(dtype).removeprefix('torch.')} matmul {flops / 1e12:.3g} TFLOP/s"


def peak_memory_bytes() -> int:
    """Peak memory of this process: ``torch.cuda.max_memory_allocated`` on a GPU, else the peak RSS."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return int(torch.cuda.max_memory_allocated())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB


# --- the meter --------------------------------------------------------------------------------------------


def batch_counts(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Non-pad tokens, real images, samples and per-sample lengths of one collated micro-batch."""
    ids, mask = inputs["input_ids"], inputs.get("attention_mask")
    if mask is not None and mask.dim() == 2:
        lens = mask.sum(dim=1).tolist()
    elif inputs.get("position_ids") is not None:  # packed rows: a sample starts where position_ids is 0
        lens = []
        for row in inputs["position_ids"].view(-1, inputs["position_ids"].shape[-1]):
            starts = (row == 0).nonzero().view(-1).tolist() + [row.numel()]
            lens += [b - a for a, b in zip(starts, starts[1:], strict=False) if b > a]
    else:
        lens = [ids.shape[-1]] * ids.shape[0]
    flags, pixels = inputs.get("image_flags"), inputs.get("pixel_values")
    images = int(flags.sum()) if flags is not None else (int(pixels.shape[0]) if pixels is not None else 0)
    return {"tokens": int(sum(lens)), "images": images, "samples": len(lens), "seq_lens": [int(n) for n in lens]}


class ThroughputMeter(TrainerCallback):
    """Tokens/s, samples/s, images/s, MFU and peak memory over the optimizer steps since the last report.

    The Trainer subclass feeds every micro-batch (:meth:`add_inputs` / :meth:`add_batch`); ``on_step_end``
    closes a step (its time runs from the previous step's end, a checkpoint save excluded); :meth:`metrics`
    reports the window and starts a new one. With ``torch.distributed`` initialised the counts are summed
    and the times and peak memory maxed over ranks, so every rank must call :meth:`metrics`.
    """

    def __init__(self, flops: FlopsModel, peak: tuple[float, str] | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.flops_model, self.peak, self.clock = flops, peak, clock
        self._pending = [0.0, 0.0, 0.0, 0.0]  # tokens, images, samples, flops of the open step
        self._window = [0.0, 0.0, 0.0, 0.0, 0.0]  # the same for closed steps, plus seconds
        self._steps = 0
        self._ref: float | None = None
        self._samples_known = True

    # feeding
    def add_batch(self, tokens: int, images: int, *, samples: int | None = None,
                  seq_lens: Sequence[int] | None = None) -> None:
        """One micro-batch: non-pad tokens, real images, samples (default: len(seq_lens)) and the samples'
        non-pad lengths (for the attention FLOPs; without them that term is left out)."""
        if samples is None:
            samples = len(seq_lens) if seq_lens is not None else None
        if samples is None:
            self._samples_known = False
        sum_sq = float(sum(n * n for n in seq_lens)) if seq_lens is not None else 0.0
        flops = self.flops_model.flops(tokens, images, sum_sq)
        for i, v in enumerate((tokens, images, samples or 0, flops)):
            self._pending[i] += v

    def add_inputs(self, inputs: Mapping[str, Any]) -> None:
        self.add_batch(**batch_counts(inputs))

    # Trainer events
    def on_train_begin(self, args, state, control, **kwargs):
        if self.peak is None:
            self.peak = peak_flops(args.device, bf16=bool(args.bf16))
        self._ref = self.clock()

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()  # the step's kernels are done before its time is read
        now = self.clock()
        if self._ref is not None:
            for i, v in enumerate(self._pending):
                self._window[i] += v
            self._window[4] += now - self._ref
            self._steps += 1
        self._pending = [0.0, 0.0, 0.0, 0.0]
        self._ref = now

    def on_save(self, args, state, control, **kwargs):
        self._ref = self.clock()  # the next step's time starts after the checkpoint is written

    # reporting
    def _world(self) -> int:
        dist = torch.distributed
        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1

    def _all_reduce(self, values: list[float], op: str) -> list[float]:
        dist = torch.distributed
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return values
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
        return t.tolist()

    def metrics(self) -> dict[str, float | str]:
        """The window's scalars (empty when no step closed since the last call); collective under DDP/ZeRO."""
        tokens, images, samples, flops = self._all_reduce(self._window[:4], "sum")
        seconds, peak_mem, steps = self._all_reduce([self._window[4], float(peak_memory_bytes()),
                                                     float(self._steps)], "max")
        self._window, self._steps = [0.0, 0.0, 0.0, 0.0, 0.0], 0
        if not steps or seconds <= 0:
            return {}
        if self.peak is None:
            self.peak = peak_flops()
        world = self._world()
        out: dict[str, float | str] = {
            "tokens_per_s": tokens / seconds, "tokens_per_s_per_gpu": tokens / seconds / world,
            "images_per_s": images / seconds, "step_time_s": seconds / steps,
            "mfu": flops / (seconds * world * self.peak[0]), "peak_tflops": self.peak[0] / 1e12,
            "mfu_basis": self.peak[1], "peak_memory_gib": peak_mem / GiB,
        }
        if self._samples_known:
            out["samples_per_s"] = samples / seconds
        return out


class MeteredTrainerMixin:
    """``class SFTTrainer(MeteredTrainerMixin, Trainer)``: set ``self.meter`` (a :class:`ThroughputMeter`, also
    passed in ``callbacks``) and every micro-batch is counted and every training log carries the meter's
    scalars before the callbacks (TensorBoard) see it."""

    meter: ThroughputMeter

    def training_step(self, model, inputs, *args, **kwargs):
        self.meter.add_inputs(inputs)
        return super().training_step(model, inputs, *args, **kwargs)

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs:
            logs.update(self.meter.metrics())
        super().log(logs, *args, **kwargs)


# --- progress line ----------------------------------------------------------------------------------------


def _hms(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds)))


class ProgressLogCallback(TrainerCallback):
    """One line every ``every`` optimizer steps to ``logging`` (a log file reads it, unlike tqdm):
    ``step i/N (p%) | elapsed | ETA | loss | lr | grad_norm | tokens/s``, on the main process only. The ETA
    extrapolates this session's steps (a resumed run does not count its predecessor's)."""

    def __init__(self, every: int = 10, logger: logging.Logger | None = None, clock: Callable[[], float] = time.time):
        self.every, self.logger, self.clock = max(1, int(every)), logger or log, clock
        self._t0 = self._step0 = None
        self._last = -1

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0, self._step0 = self.clock(), state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs or self._t0 is None:
            return
        step, total = state.global_step, state.max_steps
        if step - self._last < self.every and step != total and self._last >= 0:
            return
        self._last = step
        elapsed = self.clock() - self._t0
        done = step - self._step0
        eta = _hms(elapsed / done * (total - step)) if done > 0 and total else "?"
        parts = [f"step {step}/{total} ({100 * step / total:.1f}%)" if total else f"step {step}",
                 f"elapsed {_hms(elapsed)}", f"ETA {eta}", f"loss {logs['loss']:.4f}"]
        if "learning_rate" in logs:
            parts.append(f"lr {logs['learning_rate']:.3g}")
        if logs.get("grad_norm") is not None:
            parts.append(f"grad_norm {logs['grad_norm']:.3g}")
        if "tokens_per_s" in logs:
            parts.append(f"{logs['tokens_per_s']:,.0f} tokens/s")
        if "mfu" in logs:
            parts.append(f"MFU {100 * logs['mfu']:.1f}%")
        self.logger.info(" | ".join(parts))


# --- loss curve and log history ---------------------------------------------------------------------------


def _atomic_write(path: Path, write: Callable[[Any], None], mode: str = "w") -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_run_plots(log_history: Sequence[Mapping[str, Any]], folder: str | Path) -> tuple[Path, Path]:
    """``loss_curve.png`` (training loss per step - with 100 or more points also a trailing mean over 2% of
    them - and the learning rate on a second axis) and the full
    ``log_history.json`` in ``folder``, each written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    history = [dict(h) for h in log_history]
    hist_path, png_path = folder / "log_history.json", folder / "loss_curve.png"
    _atomic_write(hist_path, lambda fh: fh.write(json.dumps(history, indent=1) + "\n"))
    rows = [h for h in history if "loss" in h and "step" in h and math.isfinite(float(h["loss"]))]
    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if rows:
        steps, loss = [h["step"] for h in rows], [float(h["loss"]) for h in rows]
        if len(rows) >= 100:  # per-step losses are noisy: the raw curve faint, a trailing mean over it
            ax.plot(steps, loss, color="tab:blue", lw=0.6, alpha=0.35)
            w = len(rows) // 50
            run = [sum(loss[max(0, i - w + 1):i + 1]) / (i + 1 - max(0, i - w + 1)) for i in range(len(loss))]
            ax.plot(steps, run, color="tab:blue", lw=1.4)
        else:
            ax.plot(steps, loss, color="tab:blue", lw=1.2)
        lr = [h for h in rows if "learning_rate" in h]
        if lr:
            ax2 = ax.twinx()
            ax2.plot([h["step"] for h in lr], [h["learning_rate"] for h in lr], color="tab:orange", lw=1.0,
                     ls="--", label="learning rate")
            ax2.set_ylabel("learning rate", color="tab:orange")
            ax2.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        ax.set_title(f"training loss, step {rows[-1]['step']}")
    else:
        ax.set_title("training loss: no logged step yet")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss", color="tab:blue")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _atomic_write(png_path, lambda fh: fig.savefig(fh, format="png"), mode="wb")
    return png_path, hist_path


class RunArtifactsCallback(TrainerCallback):
    """The loss curve and full log history beside every saved checkpoint (``checkpoint-N/``) and, at the
    end of training, in ``final_dir`` (when given); main process only."""

    def __init__(self, final_dir: str | Path | None = None):
        self.final_dir = final_dir

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            write_run_plots(state.log_history, folder)
        else:
            log.warning("no %s after a save: loss curve not written there", folder)

    def on_train_end(self, args, state, control, **kwargs):
        if self.final_dir is not None and state.is_world_process_zero:
            write_run_plots(state.log_history, self.final_dir)


# --- TensorBoard ------------------------------------------------------------------------------------------


def tensorboard_env(log_dir: str | Path) -> dict[str, str]:
    """The environment that points transformers' TensorBoardCallback at ``log_dir`` (with
    ``report_to=["tensorboard"]``): set it before the Trainer is built, in the launcher's environment or
    ``os.environ``; only the main process writes events."""
    return {"TENSORBOARD_LOGGING_DIR": str(Path(log_dir).resolve())}
