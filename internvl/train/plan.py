"""Will an SFT recipe fit, and how long is it? Per-GPU memory and the step count before a job is submitted.

A 40B run that does not fit fails minutes into a Slurm allocation, after the queue wait; a global batch that
does not divide fails later still, or trains another recipe. :func:`plan` answers both from the model's
original-format config dict and the recipe's settings, without building the model, and raises
:class:`PlanError` (saying why) for a combination that cannot run.

**Parameters** are counted exactly from the config dict, tensor by tensor, in transformers' layout of the
model this project trains (``internvl.model.modeling.InternVLChatModel``): the same names and shapes as its
``named_parameters()``. Trainable parameters follow the V1.2 freeze order (backbone freeze, LLM freeze, LoRA
wrap, MLP freeze, ViT-layer unfreeze); LoRA adds ``r * (in + out)`` per targeted linear layer.

**Model states per GPU** (P parameters, T of them trainable, N GPUs, L the largest module's parameters,
bf16 mixed precision: 2 B 16-bit weights, 2 B 16-bit and 4 B fp32 gradients, 4 B fp32 master weights,
8 B Adam moments):

- no DeepSpeed (DDP): fp32 weights, gradients and Adam states, all replicated: 4P + 4T + 8T = 16 B per
  trainable parameter; with N > 1, DDP's reducer buckets hold another fp32 copy of the gradients
  (``gradient_as_bucket_view`` is off in the Trainer), +4T.
- ZeRO-1: 2P + 2T (full 16-bit gradients) + 4T/N + 12T/N. DeepSpeed has no stage-1 estimator.
- ZeRO-2: 2P + 18T/N (``estimate_zero2_model_states_mem_needs``: 2 + 4 gradients, 4 + 8 optimizer).
- ZeRO-3: 2P/N + 4L + 18T/N (``estimate_zero3_model_states_mem_needs``: the gathered largest module's 16-bit
  weights and gradients, then 4 B gradient partition + 12 B optimizer partition per trainable parameter).
  DeepSpeed keeps parameters with at most ``stage3_param_persistence_threshold`` elements whole on every GPU:
  +2 B x those x (1 - 1/N) (with V1.2's 1e7, the LLM's k/v projections, 0.88B parameters, are such).
- Frozen parameters keep only their 16-bit weights (partitioned under ZeRO-3); the DeepSpeed estimators
  assume every parameter trains, so they are called with T and the frozen weights added.
- Offload (``offload_optimizer`` / ``offload_param`` in a DeepSpeed JSON) moves the optimizer partition and
  gradients (and under ZeRO-3 the weight partition) to host memory, as the DeepSpeed estimators assume.
- Without bf16 every 16-bit tensor above is fp32 and no separate master copy exists (4 B weights, 4 B
  gradients, 8 B Adam).

The breakdown reproduces the DeepSpeed estimators' totals for stage 2 and 3 when all parameters train (a
unit test pins that); :attr:`Plan.deepspeed_estimate` keeps DeepSpeed's own number beside it.

**Buffers**: DeepSpeed's gradient-reduction bucket (``reduce_bucket_size`` 16-bit elements, doubled with
``overlap_comm`` under ZeRO-1/2) and, under ZeRO-3, the parameter prefetch bucket
(``stage3_prefetch_bucket_size``).

**Activations** (an estimate; b = per-device micro-batch, s = ``max_seq_length``, a = 2 B in bf16 else 4 B;
flash/SDPA attention, so no s^2 score matrices):

- LLM with gradient checkpointing: every layer's input kept, ``layers * b*s*h * a``, plus one layer's
  recompute peak during backward, ``b*s*a * (8h + 2h_kv + 4i)`` (norm inputs and their fp32 copies, q/k/v,
  the attention output, the SwiGLU's gate, up, activation and product) plus ``2 * b*s*h * a`` for the
  gradients flowing in and out. Without checkpointing every layer keeps ``b*s*a*(8h + 2h_kv + 4i)``.
- The loss: ``b*s*V * (a + 4 + 4)``: the logits, their fp32 copy in the cross entropy and its fp32
  log-softmax kept for backward.
- ViT (always checkpointed, as upstream): ``b`` images (text-only samples carry a dummy image) of
  ``(image/patch)^2 + 1`` = 1025 tokens t: ``layers * b*t*h_v * a`` plus one layer's recompute peak
  ``b*t*a * (12h_v + 2i_v)``; plus the projector's ``b * image_tokens * a * (2*4h_v + 3h)``. A ViT with
  nothing trainable in or before it keeps no activations (one layer's forward is transient).

The sum of these terms is compared with the GPU's memory; allocator fragmentation and the CUDA context are
not counted, so a plan within a few GiB of the limit is reported as tight.

**Steps** as transformers 5.24 + accelerate count them: ``ceil(ceil(samples / per_device) / gpus)``
micro-batches per rank, ``ceil(that / accumulation)`` optimizer steps per epoch, ``ceil(epochs * steps)``
in total (``max_steps`` > 0 overrides), warmup ``ceil(warmup_ratio * steps)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from internvl.errors import ConfigError, DataError

GiB = 2**30
REPO = Path(__file__).resolve().parents[2]

# Upstream's DeepSpeed JSONs (zero_stage{1,2,3}_config.json at 0bfa5e7, HEAD's zero_stage3_config_34b.json),
# the settings the planner reads; a shipped file of the same name in config/deepspeed/ takes precedence.
_STAGE12 = {"reduce_bucket_size": 1e9, "overlap_comm": True, "contiguous_gradients": True}
_STAGE3 = {"reduce_bucket_size": 1e9, "stage3_prefetch_bucket_size": 1e9, "stage3_param_persistence_threshold": 1e7,
           "overlap_comm": True, "contiguous_gradients": True}
NAMED_DEEPSPEED: dict[str, tuple[str, dict[str, Any]]] = {
    "zero1": ("zero_stage1_config.json", {"stage": 1, **_STAGE12}),
    "zero2": ("zero_stage2_config.json", {"stage": 2, **_STAGE12}),
    "zero3": ("zero_stage3_config.json", {"stage": 3, **_STAGE3}),
    "zero3_34b": ("zero_stage3_config_34b.json", {"stage": 3, **_STAGE3, "stage3_param_persistence_threshold": 1e5}),
}
# DeepSpeed's own defaults for keys a JSON leaves out (deepspeed.runtime.zero.config)
_DS_DEFAULTS = {"reduce_bucket_size": 5e8, "stage3_prefetch_bucket_size": 5e7,
                "stage3_param_persistence_threshold": 1e5, "contiguous_gradients": True}

# LoRA targets in transformers' module names (upstream's fused ViT attn.qkv is q/k/v_proj here, so a ViT
# LoRA of rank r gets three r-rank adapters where upstream had one over the fused matrix).
# internvl.train.lora: the ViT's adapter sits on upstream's fused qkv (one A for q, k and v), so the three
# projections count as one target of 3x the output width
VIT_LORA_TARGETS = ("attention.q_proj", "attention.projection_layer", "mlp.fc1", "mlp.fc2")
LLM_LORA_TARGETS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
PARTS = ("vit", "projector", "llm")
PART_LABELS = {"vit": "ViT", "projector": "projector", "llm": "LLM"}


class PlanError(ConfigError):
    """A recipe / cluster combination that cannot run; the message says why and what would."""

    def __init__(self, message: str, plan: Plan | None = None):
        super().__init__(message)
        self.plan = plan


# --- parameters -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str  # transformers' parameter name in InternVLChatModel
    numel: int
    part: str  # "vit" | "projector" | "llm"
    trainable: bool


def _linear(prefix: str, d_in: int, d_out: int, bias: bool) -> list[tuple[str, int]]:
    return [(f"{prefix}.weight", d_in * d_out)] + ([(f"{prefix}.bias", d_out)] if bias else [])


def param_shapes(model_cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every parameter of the model built from an original-format config dict.

    Mirrors ``internvl.model.config.hf_config`` + transformers' InternVL modules (RMSNorm ViT without a
    final norm, split q/k/v, LayerNorm + two Linear projector, Llama LLM); a test holds it against a real
    ``named_parameters()``.
    """
    vc, lc = model_cfg["vision_config"], model_cfg["llm_config"]
    hv, iv, nv, patch = vc["hidden_size"], vc["intermediate_size"], vc["num_hidden_layers"], vc["patch_size"]
    image = model_cfg.get("force_image_size") or vc["image_size"]
    qkv_bias, qk_norm = bool(vc.get("qkv_bias", False)), bool(vc.get("qk_normalization", False))
    s: dict[str, tuple[int, ...]] = {}
    vt = "model.vision_tower"
    s[f"{vt}.embeddings.cls_token"] = (1, 1, hv)
    s[f"{vt}.embeddings.position_embeddings"] = (1, (image // patch) ** 2 + 1, hv)
    s[f"{vt}.embeddings.patch_embeddings.projection.weight"] = (hv, vc.get("num_channels", 3), patch, patch)
    s[f"{vt}.embeddings.patch_embeddings.projection.bias"] = (hv,)
    for i in range(nv):
        p = f"{vt}.encoder.layer.{i}"
        s[f"{p}.lambda_1"] = s[f"{p}.lambda_2"] = (hv,)
        for proj in ("q_proj", "k_proj", "v_proj"):
            s[f"{p}.attention.{proj}.weight"] = (hv, hv)
            if qkv_bias:
                s[f"{p}.attention.{proj}.bias"] = (hv,)
        s[f"{p}.attention.projection_layer.weight"], s[f"{p}.attention.projection_layer.bias"] = (hv, hv), (hv,)
        if qk_norm:
            s[f"{p}.attention.q_norm.weight"] = s[f"{p}.attention.k_norm.weight"] = (hv,)
        s[f"{p}.mlp.fc1.weight"], s[f"{p}.mlp.fc1.bias"] = (iv, hv), (iv,)
        s[f"{p}.mlp.fc2.weight"], s[f"{p}.mlp.fc2.bias"] = (hv, iv), (hv,)
        s[f"{p}.layernorm_before.weight"] = s[f"{p}.layernorm_after.weight"] = (hv,)
    h, inter, vocab = lc["hidden_size"], lc["intermediate_size"], lc["vocab_size"]
    heads, kv = lc["num_attention_heads"], lc.get("num_key_value_heads") or lc["num_attention_heads"]
    hkv, att_bias = kv * (h // heads), bool(lc.get("attention_bias", False))
    d_in = hv * int(1 / model_cfg["downsample_ratio"]) ** 2
    mp = "model.multi_modal_projector"
    s[f"{mp}.layer_norm.weight"] = s[f"{mp}.layer_norm.bias"] = (d_in,)
    s[f"{mp}.linear_1.weight"], s[f"{mp}.linear_1.bias"] = (h, d_in), (h,)
    s[f"{mp}.linear_2.weight"], s[f"{mp}.linear_2.bias"] = (h, h), (h,)
    lm = "model.language_model"
    s[f"{lm}.embed_tokens.weight"] = (vocab, h)
    for i in range(lc["num_hidden_layers"]):
        p = f"{lm}.layers.{i}"
        for proj, d_out in (("q_proj", h), ("k_proj", hkv), ("v_proj", hkv), ("o_proj", h)):
            s[f"{p}.self_attn.{proj}.weight"] = (d_out, h)
            if att_bias:
                s[f"{p}.self_attn.{proj}.bias"] = (d_out,)
        s[f"{p}.mlp.gate_proj.weight"] = s[f"{p}.mlp.up_proj.weight"] = (inter, h)
        s[f"{p}.mlp.down_proj.weight"] = (h, inter)
        s[f"{p}.input_layernorm.weight"] = s[f"{p}.post_attention_layernorm.weight"] = (h,)
    s[f"{lm}.norm.weight"] = (h,)
    if not lc.get("tie_word_embeddings", False):
        s["lm_head.weight"] = (vocab, h)
    return s


def _part(name: str) -> str:
    if name.startswith("model.vision_tower."):
        return "vit"
    if name.startswith("model.multi_modal_projector."):
        return "projector"
    return "llm"


def _vit_layer(name: str) -> int | None:
    pre = "model.vision_tower.encoder.layer."
    return int(name[len(pre):].split(".", 1)[0]) if name.startswith(pre) else None


def _lora_tensors(shapes: dict[str, tuple[int, ...]], part: str, rank: int, targets: tuple[str, ...]) -> list[Param]:
    out = []
    for name, shape in shapes.items():
        module = name.removesuffix(".weight")
        if _part(name) == part and name.endswith(".weight") and module.endswith(targets):
            d_out, d_in = shape
            if module.endswith("attention.q_proj"):  # the fused qkv: [q; k; v] out
                module, d_out = module.removesuffix("q_proj") + "qkv", 3 * d_out
            out += [Param(f"{module}.lora_A.weight", rank * d_in, part, True),
                    Param(f"{module}.lora_B.weight", d_out * rank, part, True)]
    return out


def tensors(model_cfg: dict[str, Any], recipe: dict[str, Any]) -> list[Param]:
    """Every parameter (LoRA adapters included) with its part and whether the recipe trains it.

    The V1.2 order: ``freeze_backbone``, ``freeze_llm`` (lm_head included), LoRA wrap (peft freezes the
    wrapped tower's base weights; ``use_llm_lora`` also freezes lm_head and the embeddings), ``freeze_mlp``,
    then ``unfreeze_vit_layers`` k trains ``encoder.layer[k:]`` (a negative k: the last |k| layers).
    """
    shapes = param_shapes(model_cfg)
    n_vit = model_cfg["vision_config"]["num_hidden_layers"]
    vit_lora, llm_lora = int(recipe.get("use_backbone_lora") or 0), int(recipe.get("use_llm_lora") or 0)
    k = int(recipe.get("unfreeze_vit_layers") or 0)
    unfrozen = set(range(n_vit)[k:]) if k else set()
    frozen = {"vit": bool(recipe.get("freeze_backbone")) or vit_lora > 0,
              "llm": bool(recipe.get("freeze_llm")) or llm_lora > 0, "projector": bool(recipe.get("freeze_mlp"))}
    out = []
    for name, shape in shapes.items():
        part = _part(name)
        trainable = not frozen[part] or (part == "vit" and _vit_layer(name) in unfrozen)
        out.append(Param(name, math.prod(shape), part, trainable))
    if vit_lora:
        out += _lora_tensors(shapes, "vit", vit_lora, VIT_LORA_TARGETS)
    if llm_lora:
        out += _lora_tensors(shapes, "llm", llm_lora, LLM_LORA_TARGETS)
    return out


@dataclass(frozen=True)
class ParamCounts:
    total: dict[str, int]  # part -> parameters
    trainable: dict[str, int]
    largest_module: int  # parameters of the largest module (its own, as DeepSpeed's model_to_params counts)
    embedding: int  # the LLM's input embedding table (a lookup, no matmul FLOPs)
    tied: bool

    @property
    def n_total(self) -> int:
        return sum(self.total.values())

    @property
    def n_trainable(self) -> int:
        return sum(self.trainable.values())


def count_params(model_cfg: dict[str, Any], recipe: dict[str, Any] | None = None) -> ParamCounts:
    ts = tensors(model_cfg, recipe or {})
    total = {p: sum(t.numel for t in ts if t.part == p) for p in PARTS}
    trainable = {p: sum(t.numel for t in ts if t.part == p and t.trainable) for p in PARTS}
    modules: dict[str, int] = {}
    for t in ts:
        mod = t.name.rsplit(".", 1)[0]
        modules[mod] = modules.get(mod, 0) + t.numel
    lc = model_cfg["llm_config"]
    return ParamCounts(total, trainable, max(modules.values()), lc["vocab_size"] * lc["hidden_size"],
                       bool(lc.get("tie_word_embeddings", False)))


# --- DeepSpeed settings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZeroSettings:
    stage: int | None  # None: no DeepSpeed (DDP / one process); 0-3: the ZeRO stage
    source: str  # "none", a name (zero3) or the JSON's path
    reduce_bucket_size: float = 0.0
    prefetch_bucket_size: float = 0.0
    persistence_threshold: float = 0.0
    overlap_comm: bool = False
    contiguous_gradients: bool = True
    offload_optimizer: bool = False
    offload_param: bool = False

    @property
    def label(self) -> str:
        if self.stage is None:
            return "no DeepSpeed (DDP)"
        off = [w for w, on in (("optimizer", self.offload_optimizer), ("params", self.offload_param)) if on]
        return f"DeepSpeed ZeRO-{self.stage} ({self.source})" + (f", offload {'+'.join(off)} to CPU" if off else "")


def _auto(value: Any, auto: float) -> float:
    return auto if value == "auto" else float(value)


def zero_settings(zero: dict[str, Any], source: str, llm_hidden: int) -> ZeroSettings:
    """``zero_optimization`` of a DeepSpeed config -> the settings the plan needs; "auto" as transformers fills
    it (``reduce_bucket_size`` h^2, ``stage3_prefetch_bucket_size`` 0.9 h^2, persistence 10 h, h the LLM's
    hidden size)."""
    stage = int(zero.get("stage", 0))
    g = {**_DS_DEFAULTS, **zero}
    overlap = zero.get("overlap_comm", stage == 3)  # DeepSpeed's default: on for stage 3 only

    def device(key: str) -> bool:
        return str((zero.get(key) or {}).get("device", "none")).lower() in ("cpu", "nvme")

    return ZeroSettings(
        stage=stage, source=source, reduce_bucket_size=_auto(g["reduce_bucket_size"], llm_hidden**2),
        prefetch_bucket_size=_auto(g["stage3_prefetch_bucket_size"], 0.9 * llm_hidden**2) if stage == 3 else 0.0,
        persistence_threshold=_auto(g["stage3_param_persistence_threshold"], 10 * llm_hidden) if stage == 3 else 0.0,
        overlap_comm=bool(overlap), contiguous_gradients=bool(g["contiguous_gradients"]),
        offload_optimizer=device("offload_optimizer"), offload_param=stage == 3 and device("offload_param"),
    )


def deepspeed_settings(value: str | dict | None, llm_hidden: int, base_dir: str | Path | None = None) -> ZeroSettings:
    """The recipe's ``deepspeed``: None (no DeepSpeed), a name of :data:`NAMED_DEEPSPEED`, a path to a JSON
    (as given, else relative to ``base_dir``) or an already-parsed config dict."""
    if value is None:
        return ZeroSettings(stage=None, source="none")
    if isinstance(value, dict):
        return zero_settings(value.get("zero_optimization") or {}, "inline config", llm_hidden)
    if value in NAMED_DEEPSPEED:
        fname, settings = NAMED_DEEPSPEED[value]
        shipped = REPO / "config" / "deepspeed" / fname
        if shipped.is_file():
            return _read_ds_json(shipped, llm_hidden, source=value)
        return zero_settings(settings, value, llm_hidden)
    path = Path(value)
    if not path.is_file() and base_dir is not None and (Path(base_dir) / path).is_file():
        path = Path(base_dir) / path
    if not path.is_file():
        raise PlanError(f"deepspeed: {value!r} is neither one of {sorted(NAMED_DEEPSPEED)} nor an existing "
                        "DeepSpeed JSON file")
    return _read_ds_json(path, llm_hidden, source=str(value))


def _read_ds_json(path: Path, llm_hidden: int, source: str) -> ZeroSettings:
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    zero = cfg.get("zero_optimization") if isinstance(cfg, dict) else None
    if zero is not None and not isinstance(zero, dict):
        raise DataError(path, "must be a mapping", field="zero_optimization")
    try:
        return zero_settings(zero or {}, source, llm_hidden)
    except (TypeError, ValueError) as exc:
        raise DataError(path, f"unreadable setting: {exc}", field="zero_optimization") from None


def _deepspeed_estimators():
    """DeepSpeed's estimators; importing DeepSpeed prints an accelerator notice on stdout, kept off it."""
    with contextlib.redirect_stdout(sys.stderr):
        from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
        from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs
    return estimate_zero2_model_states_mem_needs, estimate_zero3_model_states_mem_needs


# --- the plan ---------------------------------------------------------------------------------------------


@dataclass
class Plan:
    model: str
    gpus: int
    gpus_per_node: int
    nodes: int
    gpu_memory_gib: float
    zero: ZeroSettings
    bf16: bool
    params: ParamCounts
    per_device_batch: int
    grad_accum: int
    global_batch: int
    max_seq_length: int
    grad_checkpoint: bool
    memory: dict[str, float]  # bytes per GPU: weights, gradients, optimizer, buffers, activations, total
    activations: dict[str, float]  # bytes per GPU, by term
    deepspeed_estimate: dict[str, Any] | None  # DeepSpeed's own function, its GPU and host numbers
    num_samples: int | None = None
    num_train_epochs: float = 1.0
    steps_per_epoch: int | None = None
    total_steps: int | None = None
    warmup_steps: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.memory["total"] <= self.gpu_memory_gib * GiB

    @property
    def verdict(self) -> str:
        total, limit = self.memory["total"] / GiB, self.gpu_memory_gib
        if total > limit:
            return f"does not fit: {total:.1f} GiB > {limit:g} GiB per GPU"
        tight = " (tight: fragmentation and the CUDA context are not counted)" if total > 0.9 * limit else ""
        return f"fits: {total:.1f} of {limit:g} GiB per GPU{tight}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "gpus": self.gpus, "gpus_per_node": self.gpus_per_node, "nodes": self.nodes,
            "gpu_memory_gib": self.gpu_memory_gib, "deepspeed": dataclasses.asdict(self.zero),
            "bf16": self.bf16,
            "params": {"total": self.params.total, "trainable": self.params.trainable,
                       "n_total": self.params.n_total, "n_trainable": self.params.n_trainable,
                       "largest_module": self.params.largest_module},
            "per_device_train_batch_size": self.per_device_batch, "gradient_accumulation_steps": self.grad_accum,
            "global_batch_size": self.global_batch, "max_seq_length": self.max_seq_length,
            "grad_checkpoint": self.grad_checkpoint,
            "memory_gib": {k: v / GiB for k, v in self.memory.items()},
            "activations_gib": {k: v / GiB for k, v in self.activations.items()},
            "deepspeed_estimate": self.deepspeed_estimate,
            "num_samples": self.num_samples, "num_train_epochs": self.num_train_epochs,
            "steps_per_epoch": self.steps_per_epoch, "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps, "fits": self.fits, "verdict": self.verdict, "notes": self.notes,
        }

    def format(self) -> str:
        p, gib = self.params, (lambda b: f"{b / GiB:8.2f}")
        lines = [f"train plan: {self.model} on {self.gpus} GPU(s) = {self.nodes} node(s) x "
                 f"{min(self.gpus, self.gpus_per_node)}, {self.gpu_memory_gib:g} GiB each",
                 f"  {self.zero.label}; {'bf16 mixed precision' if self.bf16 else 'fp32'}",
                 f"  batch: global {self.global_batch} = {self.per_device_batch} per GPU x {self.gpus} GPUs x "
                 f"{self.grad_accum} accumulation; max_seq_length {self.max_seq_length}"]
        if self.total_steps is not None:
            src = (f"{self.num_samples:,} samples -> {self.steps_per_epoch:,} steps/epoch x "
                   f"{self.num_train_epochs:g} epoch(s)") if self.num_samples is not None else "max_steps"
            lines.append(f"  schedule: {src} = {self.total_steps:,} optimizer steps, warmup {self.warmup_steps:,}")
        else:
            lines.append("  schedule: unknown (no sample count: give --samples or num_samples)")
        lines += ["", f"  {'parameters':<28}{'total':>12}{'trainable':>12}"]
        for label, total, trainable in [*((PART_LABELS[q], p.total[q], p.trainable[q]) for q in PARTS),
                                        ("all", p.n_total, p.n_trainable)]:
            lines.append(f"  {label:<28}{_count(total):>12}{_count(trainable):>12}")
        lines += ["", f"  {'memory per GPU (estimate)':<34}{'GiB':>8}"]
        rows = [("weights", "weights"), ("gradients", "gradients"), ("optimizer states", "optimizer"),
                ("DeepSpeed buffers", "buffers"), ("activations", "activations")]
        for label, key in rows:
            lines.append(f"  {label:<34}{gib(self.memory[key])}")
            if key == "activations":
                for term, v in self.activations.items():
                    lines.append(f"    {term:<32}{gib(v)}")
        lines.append(f"  {'total':<34}{gib(self.memory['total'])}")
        if self.deepspeed_estimate:
            d = self.deepspeed_estimate
            lines.append(f"  DeepSpeed {d['function']}: {d['gpu_bytes'] / GiB:.2f} GiB per GPU for the trainable "
                         f"parameters' model states, {d['cpu_bytes'] / GiB:.1f} GiB host memory per node")
        lines += ["", f"  verdict: {self.verdict}"]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _count(n: int) -> str:
    return f"{n / 1e9:.3f}B" if n >= 1e8 else f"{n / 1e6:.3f}M" if n >= 1e5 else f"{n:,}"


def _activation_bytes(model_cfg: dict[str, Any], recipe: dict[str, Any], params: ParamCounts, act: int) -> dict[str, float]:
    vc, lc = model_cfg["vision_config"], model_cfg["llm_config"]
    b, s = int(recipe.get("per_device_train_batch_size", 8)), int(recipe.get("max_seq_length", 2048))
    h, i, layers, vocab = lc["hidden_size"], lc["intermediate_size"], lc["num_hidden_layers"], lc["vocab_size"]
    hkv = (lc.get("num_key_value_heads") or lc["num_attention_heads"]) * (h // lc["num_attention_heads"])
    llm_layer = b * s * act * (8 * h + 2 * hkv + 4 * i)
    out: dict[str, float] = {}
    if recipe.get("grad_checkpoint", False):
        out["LLM checkpointed layer inputs"] = layers * b * s * h * act
        out["LLM one layer's recompute"] = llm_layer + 2 * b * s * h * act
    else:
        out["LLM all layers (no checkpointing)"] = layers * llm_layer
    out["logits + fp32 cross entropy"] = b * s * vocab * (act + 4 + 4)
    image = model_cfg.get("force_image_size") or vc["image_size"]
    t = (image // vc["patch_size"]) ** 2 + 1
    hv, iv = vc["hidden_size"], vc["intermediate_size"]
    vit_layer = b * t * act * (12 * hv + 2 * iv)
    image_tokens = int((image // vc["patch_size"]) ** 2 * model_cfg["downsample_ratio"] ** 2)
    if params.trainable["vit"]:
        out["ViT checkpointed layer inputs"] = vc["num_hidden_layers"] * b * t * hv * act
        out["ViT one layer's recompute"] = vit_layer + 2 * b * t * hv * act
    else:
        out["ViT forward (frozen, not kept)"] = vit_layer
    if params.trainable["vit"] or params.trainable["projector"]:
        out["projector"] = b * image_tokens * act * (2 * 4 * hv + 3 * h)
    return out


def _model_states(pc: ParamCounts, z: ZeroSettings, n: int, bf16: bool, persistent: int) -> dict[str, float]:
    """Bytes per GPU of weights, gradients, optimizer states and DeepSpeed buffers (module docstring)."""
    P, T, L = pc.n_total, pc.n_trainable, pc.largest_module
    if z.stage is None:  # plain PyTorch: fp32 everything, replicated; DDP's buckets copy the gradients
        return {"weights": 4 * P, "gradients": 4 * T + (4 * T if n > 1 else 0), "optimizer": 8 * T, "buffers": 0}
    # bytes per parameter: 16-bit weight, gradient held whole, gradient partition, master + Adam
    w, g_full, g_part, opt = (2, 2, 4, 12) if bf16 else (4, 4, 0, 8)
    if z.stage <= 2:
        parts = n if z.stage >= 1 else 1
        weights = w * P
        if z.stage == 2:
            grads = 0 if z.offload_optimizer else (g_full + g_part) * T / parts
        else:
            grads = g_full * T + (0 if z.offload_optimizer else g_part * T / parts)
        optim = 0 if z.offload_optimizer else opt * T / parts
        buffers = w * z.reduce_bucket_size * (2 if z.overlap_comm else 1) if z.stage and z.contiguous_gradients else 0
    else:
        weights = w * L + (0 if z.offload_param else w * P / n + w * persistent * (1 - 1 / n))
        grads = (g_full if bf16 else g_part or g_full) * L + (0 if z.offload_optimizer else (g_part or g_full) * T / n)
        optim = 0 if z.offload_optimizer else opt * T / n
        buffers = w * (z.reduce_bucket_size + z.prefetch_bucket_size)
    return {"weights": weights, "gradients": grads, "optimizer": optim, "buffers": buffers}


def _deepspeed_estimate(pc: ParamCounts, z: ZeroSettings, gpus: int, gpus_per_node: int, bf16: bool) -> dict | None:
    """DeepSpeed's own estimator for the trainable parameters' model states (stage 2 and 3, mixed precision:
    the cases it models), with zero_init as the memory-safe load uses it."""
    if z.stage not in (2, 3) or not bf16:
        return None
    z2, z3 = _deepspeed_estimators()
    nodes, per_node = (math.ceil(gpus / gpus_per_node), gpus_per_node) if gpus > gpus_per_node else (1, gpus)
    if z.stage == 2:
        kw = {"total_params": pc.n_trainable, "num_gpus_per_node": per_node, "num_nodes": nodes,
              "cpu_offload": z.offload_optimizer}
        cpu, gpu = z2(**kw)
        name = "estimate_zero2_model_states_mem_needs"
    else:
        kw = {"total_params": pc.n_trainable, "largest_layer_params": pc.largest_module,
              "num_gpus_per_node": per_node, "num_nodes": nodes, "cpu_offload": z.offload_optimizer,
              "cpu_offload_params": z.offload_param, "zero_init": True}
        cpu, gpu, _ = z3(**kw)
        name = "estimate_zero3_model_states_mem_needs"
    return {"function": name, "kwargs": kw, "gpu_bytes": int(gpu), "cpu_bytes": int(cpu)}


# SFTConfig's defaults for the keys the planner reads (a test holds them to internvl.train.recipe.SFTConfig)
RECIPE_DEFAULTS: dict[str, Any] = {
    "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1, "max_seq_length": 2048, "bf16": False,
    "grad_checkpoint": False, "num_train_epochs": 1.0, "max_steps": -1, "warmup_ratio": 0.03, "deepspeed": None,
    "freeze_backbone": False, "freeze_llm": False, "freeze_mlp": False,
}


def _valid_gpu_counts(global_batch: int, per_device: int, limit: int = 1024) -> list[int]:
    return [g for g in range(1, limit + 1) if global_batch % (per_device * g) == 0]


def plan(model_cfg: dict[str, Any], recipe: dict[str, Any], *, gpus: int, gpus_per_node: int = 8,
         gpu_memory_gib: float = 80.0, num_samples: int | None = None, model_name: str = "the model",
         base_dir: str | Path | None = None) -> Plan:
    """The per-GPU memory, batch and schedule of ``recipe`` (a flat SFT settings dict) on ``gpus`` GPUs.

    Raises :class:`PlanError` when the global batch does not divide into ``per_device * gpus``, when nothing
    trains, when the GPUs do not split into equal nodes, or when the memory estimate exceeds
    ``gpu_memory_gib`` (then ``exc.plan`` holds the plan). ``base_dir`` resolves a relative DeepSpeed JSON
    path (the recipe file's folder).
    """
    r = {**RECIPE_DEFAULTS, **{k: v for k, v in recipe.items() if v is not None or k == "deepspeed"}}
    if gpus < 1 or gpus_per_node < 1:
        raise PlanError(f"--gpus ({gpus}) and --gpus-per-node ({gpus_per_node}) must be >= 1")
    if gpus > gpus_per_node and gpus % gpus_per_node:
        raise PlanError(f"{gpus} GPUs do not fill nodes of {gpus_per_node}: the launcher starts the same number of "
                        f"processes on every node (use a multiple of {gpus_per_node})")
    nodes = math.ceil(gpus / gpus_per_node)
    per_device = int(r["per_device_train_batch_size"])
    if per_device < 1:
        raise PlanError(f"per_device_train_batch_size must be >= 1, got {per_device}")
    if r.get("global_batch_size") is not None:
        global_batch = int(r["global_batch_size"])
        if global_batch % (per_device * gpus):
            ok = _valid_gpu_counts(global_batch, per_device)
            raise PlanError(
                f"global_batch_size {global_batch} is not a multiple of per_device_train_batch_size x GPUs = "
                f"{per_device} x {gpus} = {per_device * gpus}, so no whole gradient accumulation keeps the "
                f"global batch; GPU counts that do at {per_device} per GPU: {ok or 'none'}")
        grad_accum = global_batch // (per_device * gpus)
    else:
        grad_accum = int(r["gradient_accumulation_steps"])
        global_batch = per_device * gpus * grad_accum
    bf16 = bool(r["bf16"])
    lc = model_cfg["llm_config"]
    zero = deepspeed_settings(r["deepspeed"], lc["hidden_size"], base_dir)
    ts = tensors(model_cfg, r)
    pc = count_params(model_cfg, r)
    if pc.n_trainable == 0:
        raise PlanError("nothing trains: every part is frozen (freeze_backbone, freeze_llm, freeze_mlp) and no LoRA "
                        "rank or unfreeze_vit_layers is set")
    persistent = sum(t.numel for t in ts if t.numel <= zero.persistence_threshold) if zero.stage == 3 else 0
    states = _model_states(pc, zero, gpus, bf16, persistent)
    acts = _activation_bytes(model_cfg, r, pc, 2 if bf16 else 4)
    memory = {**states, "activations": sum(acts.values())}
    memory["total"] = sum(memory.values())
    notes = []
    estimate = _deepspeed_estimate(pc, zero, gpus, gpus_per_node, bf16)
    if estimate is not None:
        # the same accounting for DeepSpeed's assumption (every parameter trains, none persistent)
        same = _model_states(dataclasses.replace(pc, total=pc.trainable), zero, gpus, bf16, 0)
        ours = same["weights"] + same["gradients"] + same["optimizer"]
        if abs(ours - estimate["gpu_bytes"]) > 0.01 * estimate["gpu_bytes"] + 1024:
            notes.append(f"DeepSpeed's estimator ({estimate['gpu_bytes'] / GiB:.2f} GiB) differs from this plan's "
                         f"model-state accounting ({ours / GiB:.2f} GiB): its formula changed, check the breakdown")
    if zero.stage == 3 and persistent:
        notes.append(f"{persistent / 1e9:.3f}B parameters are at or under stage3_param_persistence_threshold "
                     f"{zero.persistence_threshold:g} and stay whole on every GPU")
    if r.get("packing"):
        notes.append("packing: activations are estimated for per_device_train_batch_size x max_seq_length tokens")
    if gpus > 1 and pc.n_total > 1e9 and zero.stage is None:
        notes.append("a model of over 1B parameters without DeepSpeed: every GPU holds fp32 weights, gradients and "
                     "Adam states (16 B per parameter); set deepspeed: zero3")
    p = Plan(model=model_name, gpus=gpus, gpus_per_node=gpus_per_node, nodes=nodes, gpu_memory_gib=gpu_memory_gib,
             zero=zero, bf16=bf16, params=pc, per_device_batch=per_device, grad_accum=grad_accum,
             global_batch=global_batch, max_seq_length=int(r["max_seq_length"]),
             grad_checkpoint=bool(r["grad_checkpoint"]), memory=memory, activations=acts,
             deepspeed_estimate=estimate, num_train_epochs=float(r["num_train_epochs"]), notes=notes)
    _schedule(p, r, num_samples if num_samples is not None else r.get("num_samples"))
    if not p.fits:
        raise PlanError(_why_not(p), plan=p)
    return p


def _schedule(p: Plan, r: dict[str, Any], num_samples: int | None) -> None:
    max_steps = int(r["max_steps"])
    if num_samples is not None:
        p.num_samples = int(num_samples)
        micro = math.ceil(math.ceil(p.num_samples / p.per_device_batch) / p.gpus)  # accelerate's even_batches
        p.steps_per_epoch = max(math.ceil(micro / p.grad_accum), 1)
    if max_steps > 0:
        p.total_steps = max_steps
    elif p.steps_per_epoch is not None:
        p.total_steps = math.ceil(p.num_train_epochs * p.steps_per_epoch)
    if p.total_steps is not None:
        ratio = float(r["warmup_ratio"])
        p.warmup_steps = math.ceil(ratio * p.total_steps) if ratio < 1 else int(ratio)


def _why_not(p: Plan) -> str:
    m, limit = p.memory, p.gpu_memory_gib
    parts = ", ".join(f"{k} {m[k] / GiB:.1f}" for k in ("weights", "gradients", "optimizer", "buffers", "activations"))
    msg = (f"{p.model} under {p.zero.label} on {p.gpus} x {limit:g} GiB does not fit: an estimated "
           f"{m['total'] / GiB:.1f} GiB per GPU ({parts} GiB) > {limit:g} GiB.")
    n = p.params.n_total
    if p.zero.stage is None or p.zero.stage < 3:
        bytes_per = 4 if p.zero.stage is None or not p.bf16 else 2
        what = "fp32" if bytes_per == 4 else "16-bit"
        who = "without DeepSpeed, DDP" if p.zero.stage is None else f"ZeRO-{p.zero.stage}"
        if m["weights"] > 0.5 * limit * GiB or m["weights"] >= max(m[k] for k in ("gradients", "optimizer", "activations")):
            msg += (f" {who} keeps the full {what} weights on every GPU: {n / 1e9:.2f}B parameters x {bytes_per} B = "
                    f"{n * bytes_per / 1e9:.1f} GB ({n * bytes_per / GiB:.1f} GiB), "
                    f"{'more than' if n * bytes_per > limit * GiB else 'most of'} the {limit:g} GiB of one GPU; "
                    "ZeRO-3 (deepspeed: zero3) partitions them over the GPUs.")
        else:
            msg += " More GPUs or ZeRO-3 (deepspeed: zero3) partition the gradients and optimizer states further."
    elif m["activations"] >= max(m[k] for k in ("weights", "gradients", "optimizer")):
        msg += (" Activations dominate: lower per_device_train_batch_size (with global_batch_size set, the "
                "accumulation rises to keep it)" + ("." if p.grad_checkpoint else " or set grad_checkpoint: true."))
    else:
        msg += " More GPUs partition the model states further, or offload the optimizer to CPU."
    return msg


# --- inputs -----------------------------------------------------------------------------------------------


def model_config(spec: str | Path) -> tuple[dict[str, Any], str]:
    """A preset name (``v1_2``, ``tiny``) or a checkpoint folder whose config.json is an original-format
    InternVLChatConfig -> (config dict, a label)."""
    from internvl.model.config import preset

    path = Path(spec)
    if path.is_dir() or path.suffix == ".json":
        cfg_path = path / "config.json" if path.is_dir() else path
        if not cfg_path.is_file():
            raise DataError(cfg_path, "no config.json: not an original-format checkpoint")
        try:
            cfg = json.loads(cfg_path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(cfg_path, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
        for key in ("vision_config", "llm_config", "downsample_ratio"):
            if not isinstance(cfg, dict) or key not in cfg:
                raise DataError(cfg_path, "missing: not an original-format InternVLChatConfig", field=key)
        return cfg, str(path)
    try:
        return preset(str(spec)), str(spec)
    except KeyError:
        raise PlanError(f"model {str(spec)!r} is neither a preset (v1_2, tiny) nor a checkpoint folder") from None


def read_recipe(path: str | Path) -> dict[str, Any]:
    """A recipe YAML: a flat mapping of training settings."""
    try:
        recipe = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(path, f"not valid YAML: {getattr(exc, 'problem', exc)}",
                        line=mark.line + 1 if mark else None) from None
    if not isinstance(recipe, dict):
        raise DataError(path, "a recipe is a mapping of training settings")
    return recipe


def sample_count(recipe: dict[str, Any]) -> int | None:
    """``num_samples`` of the recipe, else the normalized SFT data's manifest (``sft_dir``) when it is at hand."""
    if recipe.get("num_samples") is not None:
        return int(recipe["num_samples"])
    manifest = Path(recipe["sft_dir"]) / "manifest.json" if recipe.get("sft_dir") else None
    if manifest is not None and manifest.is_file():
        return int(json.loads(manifest.read_text())["total_samples"])
    return None


def plan_recipe(recipe_path: str | Path, *, gpus: int, gpus_per_node: int = 8, gpu_memory_gib: float = 80.0,
                model: str | None = None, num_samples: int | None = None,
                overrides: dict[str, Any] | None = None) -> Plan:
    """:func:`plan` for a recipe file: the model from ``model``, else the recipe's ``plan_model``, else its
    ``init`` checkpoint; the sample count from ``num_samples``, else :func:`sample_count`; ``overrides``
    replace recipe settings (what-if: another ZeRO stage, per-device batch)."""
    recipe = {**read_recipe(recipe_path), **(overrides or {})}
    spec = model or recipe.get("plan_model") or recipe.get("init")
    if not spec:
        raise PlanError(f"{recipe_path}: no model to plan for: give --model (a preset or a checkpoint folder) or "
                        "set plan_model in the recipe")
    cfg, label = model_config(spec)
    n = num_samples if num_samples is not None else sample_count(recipe)
    return plan(cfg, recipe, gpus=gpus, gpus_per_node=gpus_per_node, gpu_memory_gib=gpu_memory_gib,
                num_samples=n, model_name=label, base_dir=Path(recipe_path).parent)
