"""Freezing and LoRA as the V1.2 finetune script sets them up, and merging LoRA back into a plain checkpoint.

:func:`apply_trainable` follows ``internvl_chat_finetune.py``'s order: backbone freeze -> LLM freeze -> LoRA
wrap -> MLP freeze -> ViT-layer unfreeze. LoRA is the original's: rank r, alpha 2r, dropout 0.05, peft's
default init (B = 0), on the LLM's ``q,k,v,o,gate,up,down_proj`` and the ViT's ``attn.qkv, attn.proj,
mlp.fc1, mlp.fc2``; ``enable_input_require_grads`` on the LLM as the original.

Where the adapters go. The original wraps ``vision_model`` / ``language_model`` in a ``PeftModel``; here
peft's ``inject_adapter_in_model`` puts the LoRA layers into ``model.model.vision_tower`` and
``model.model.language_model`` in place, so ``InternVLChatModel`` and its ``forward``/``chat`` keep working
and no attribute path changes. Like the original's wrapper, injection freezes every non-LoRA parameter of
the wrapped tower; the LLM's ``lm_head`` (inside the original's wrapped ``LlamaForCausalLM``, top level
here) is frozen with it. State-dict keys gain peft's segments:
``model.language_model.layers.0.self_attn.q_proj.base_layer.weight`` and ``...q_proj.lora_A.default.weight``.

The fused ViT ``qkv``. Upstream's adapter sits on the fused (3d x d) ``qkv`` matrix: one A (r x d) shared
by q, k and v, and one B (3d x r). Three adapters on our split ``q_proj/k_proj/v_proj`` would have three
A matrices, a rank-3r update and other training dynamics, so ViT LoRA first fuses the three projections
into one ``attention.qkv`` Linear (weights concatenated [q; k; v], exact) and puts the adapter there, the
original parameterization. :func:`merge_lora` and :func:`merged_state_dict` split it back into
transformers' names; an upstream checkpoint's ``attn.qkv`` LoRA (original names) merges on the fused
matrix directly.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn
from transformers.models.internvl.modeling_internvl import (
    ALL_ATTENTION_FUNCTIONS,
    InternVLVisionAttention,
    eager_attention_forward,
)

log = logging.getLogger(__name__)

LORA_DROPOUT = 0.05
LLM_TARGETS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.down_proj", "mlp.up_proj")
# upstream attn.qkv, attn.proj, mlp.fc1, mlp.fc2 under transformers' names (qkv fused for the adapter)
VIT_TARGETS = ("attention.qkv", "attention.projection_layer", "mlp.fc1", "mlp.fc2")
UPSTREAM_SCALING = 2.0  # lora_alpha / r with alpha = 2r


class FusedQKVAttention(InternVLVisionAttention):
    """The InternViT attention with one fused ``qkv`` projection, as the original; used while ViT LoRA is on."""

    qkv: nn.Linear

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs):
        batch, seq, _ = hidden_states.shape
        query, key, value = self.qkv(hidden_states).chunk(3, dim=-1)
        query, key = self.q_norm(query), self.k_norm(key)
        query, key, value = (t.reshape(batch, seq, self.num_heads, self.head_dim).transpose(1, 2)
                             for t in (query, key, value))
        attend: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation,  # noqa: SLF001
                                                                 eager_attention_forward)
        out, weights = attend(self, query, key, value, attention_mask, scaling=self.scale, is_causal=False,
                              dropout=self.attention_dropout if self.training else 0.0, **kwargs)
        out = self.projection_layer(out.reshape(batch, seq, self.embed_dim))
        return self.projection_dropout(out), weights


def _attentions(vision_tower: nn.Module) -> list[InternVLVisionAttention]:
    return [layer.attention for layer in vision_tower.encoder.layer]


def fuse_vit_qkv(vision_tower: nn.Module) -> None:
    """Replace each ViT layer's q/k/v_proj by one ``qkv`` Linear holding [q; k; v] (bit-exact weights)."""
    for attn in _attentions(vision_tower):
        if isinstance(attn, FusedQKVAttention):
            continue
        parts = (attn.q_proj, attn.k_proj, attn.v_proj)
        if any(hasattr(p.weight, "ds_id") for p in parts):
            raise RuntimeError("ViT LoRA fuses q/k/v before DeepSpeed partitions the weights: call apply_trainable "
                               "before deepspeed.initialize / outside zero.Init")
        w = parts[0].weight
        qkv = nn.Linear(attn.embed_dim, 3 * attn.embed_dim, bias=parts[0].bias is not None, device=w.device,
                        dtype=w.dtype)
        with torch.no_grad():
            qkv.weight.copy_(torch.cat([p.weight for p in parts], dim=0))
            if qkv.bias is not None:
                qkv.bias.copy_(torch.cat([p.bias for p in parts], dim=0))
        qkv.weight.requires_grad_(w.requires_grad)
        if qkv.bias is not None:
            qkv.bias.requires_grad_(parts[0].bias.requires_grad)
        del attn.q_proj, attn.k_proj, attn.v_proj
        attn.qkv = qkv
        attn.__class__ = FusedQKVAttention


def unfuse_vit_qkv(vision_tower: nn.Module) -> None:
    """Inverse of :func:`fuse_vit_qkv` (the ``qkv`` must be a plain Linear again, i.e. LoRA merged)."""
    for attn in _attentions(vision_tower):
        if not isinstance(attn, FusedQKVAttention):
            continue
        if type(attn.qkv) is not nn.Linear:
            raise TypeError(f"attention.qkv is a {type(attn.qkv).__name__}: merge the LoRA adapter first")
        ws = attn.qkv.weight.detach().chunk(3, dim=0)
        bs = attn.qkv.bias.detach().chunk(3, dim=0) if attn.qkv.bias is not None else (None,) * 3
        for name, w, b in zip(("q_proj", "k_proj", "v_proj"), ws, bs, strict=True):
            lin = nn.Linear(attn.embed_dim, attn.embed_dim, bias=b is not None, device=w.device, dtype=w.dtype)
            with torch.no_grad():
                lin.weight.copy_(w)
                if b is not None:
                    lin.bias.copy_(b)
            lin.requires_grad_(attn.qkv.weight.requires_grad)
            setattr(attn, name, lin)
        del attn.qkv
        attn.__class__ = InternVLVisionAttention


def _lora_config(r: int, targets: tuple[str, ...]):
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=LORA_DROPOUT, target_modules=list(targets))


def apply_trainable(model: nn.Module, *, freeze_backbone: bool = False, freeze_llm: bool = False,
                    freeze_mlp: bool = False, unfreeze_vit_layers: int = 0, use_backbone_lora: int = 0,
                    use_llm_lora: int = 0) -> dict[str, int]:
    """Set what trains, in the original's order; ``unfreeze_vit_layers`` slices the encoder layers
    (k > 0: ``layers[k:]``, k < 0: the last |k|). Returns parameter counts (all / trainable / LoRA)."""
    from peft import inject_adapter_in_model

    vit, llm, mlp = model.model.vision_tower, model.model.language_model, model.model.multi_modal_projector
    if freeze_backbone:
        vit.requires_grad_(False)
    if freeze_llm:
        llm.requires_grad_(False)
        model.lm_head.requires_grad_(False)
    if use_backbone_lora:
        fuse_vit_qkv(vit)
        inject_adapter_in_model(_lora_config(use_backbone_lora, VIT_TARGETS), vit)
    if use_llm_lora:
        inject_adapter_in_model(_lora_config(use_llm_lora, LLM_TARGETS), llm)
        model.lm_head.requires_grad_(False)
        llm.enable_input_require_grads()
    if freeze_mlp:
        mlp.requires_grad_(False)
    if unfreeze_vit_layers:
        for layer in vit.encoder.layer[unfreeze_vit_layers:]:
            layer.requires_grad_(True)
    params = [(n, p, getattr(p, "ds_numel", None) or p.numel()) for n, p in model.named_parameters()]  # ZeRO-3: full size
    counts = {"total": sum(k for _, _, k in params),
              "trainable": sum(k for _, p, k in params if p.requires_grad),
              "lora": sum(k for n, _, k in params if ".lora_" in n)}
    log.info("trainable parameters: %(trainable)d of %(total)d (LoRA %(lora)d)", counts)
    return counts


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA adapter into its base weight (peft's merge), drop the LoRA layers and split the fused
    ViT ``qkv`` back: in place, giving a plain model that ``save_pretrained`` writes in the original layout.
    For a live, unpartitioned model; a gathered ZeRO-3 state dict goes through :func:`merged_state_dict`."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge(safe_merge=True)
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, module.get_base_layer())
    for sub in model.modules():
        if hasattr(sub, "peft_config"):
            del sub.peft_config
    unfuse_vit_qkv(model.model.vision_tower)
    llm = model.model.language_model
    if getattr(llm, "_require_grads_hook", None) is not None:
        llm.disable_input_require_grads()
    return model


_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<ab>[AB])\.(?P<adapter>[^.]+)\.weight$")
_FUSED_QKV = re.compile(r"^(?P<pre>model\.vision_tower\.encoder\.layer\.\d+\.attention\.)qkv\.(?P<kind>weight|bias)$")


def merged_state_dict(state: dict[str, torch.Tensor], *, scaling: float = UPSTREAM_SCALING) -> dict[str, torch.Tensor]:
    """Merge LoRA in a state dict with peft key names, without the peft model (a ZeRO-3 consolidated copy).

    ``W' = W + scaling * B @ A`` in float32, cast back to W's dtype; ``scaling`` = lora_alpha / r (2 for the
    original's alpha = 2r). Accepts our keys (``...q_proj.base_layer.weight``, ``...lora_A.default.weight``,
    a leading ``module.``) and the original's (``language_model.base_model.model.model...``,
    ``vision_model.base_model.model.encoder.layers.N.attn.qkv...``): peft's ``base_model.model.`` segments
    are dropped, so the result has the plain names of whichever layout came in. Our fused ViT ``qkv`` is
    split back into ``q_proj/k_proj/v_proj``.
    """
    plain: dict[str, torch.Tensor] = {}
    lora: dict[str, dict[str, torch.Tensor]] = {}
    adapters = set()
    for key, value in state.items():
        key = key.removeprefix("module.").replace("base_model.model.", "")
        if m := _LORA_KEY.match(key):
            lora.setdefault(m["module"], {})[m["ab"]] = value
            adapters.add(m["adapter"])
        elif ".lora_" in key:
            raise ValueError(f"{key}: only plain LoRA (lora_A/lora_B) merges here")
        else:
            plain[key.replace(".base_layer.", ".")] = value
    if len(adapters) > 1:
        raise ValueError(f"several LoRA adapters {sorted(adapters)}: merge one at a time")
    for module, ab in lora.items():
        if set(ab) != {"A", "B"} or f"{module}.weight" not in plain:
            raise KeyError(f"{module}: incomplete LoRA (have {sorted(ab)}, base weight "
                           f"{'present' if f'{module}.weight' in plain else 'missing'})")
        w = plain[f"{module}.weight"]
        delta = ab["B"].float() @ ab["A"].float()
        if delta.shape != w.shape:
            raise ValueError(f"{module}: LoRA update {tuple(delta.shape)} does not fit the weight {tuple(w.shape)}")
        plain[f"{module}.weight"] = (w.float() + scaling * delta).to(w.dtype)
    for key in [k for k in plain if _FUSED_QKV.match(k)]:
        m = _FUSED_QKV.match(key)
        for name, part in zip(("q_proj", "k_proj", "v_proj"), plain.pop(key).chunk(3, dim=0), strict=True):
            plain[f"{m['pre']}{name}.{m['kind']}"] = part.contiguous()
    return plain


_GROUP = re.compile(r"\.(?:base_layer\.|lora_[AB]\.[^.]+\.)?(?:weight|bias)$")


def merged_stream(items: Iterable[tuple[str, torch.Tensor]], *, scaling: float = UPSTREAM_SCALING
                  ) -> Iterator[tuple[str, torch.Tensor]]:
    """:func:`merged_state_dict` over a (name, tensor) stream, one module at a time: a LoRA layer's base
    weight and adapters are adjacent in parameter order, so only one module's tensors are held (the save
    of a ZeRO-3 run gathers them one by one)."""
    group: dict[str, torch.Tensor] = {}
    current = None
    for name, tensor in items:
        module = _GROUP.sub("", name)
        if group and module != current:
            yield from merged_state_dict(group, scaling=scaling).items()
            group = {}
        current = module
        group[name] = tensor
    if group:
        yield from merged_state_dict(group, scaling=scaling).items()
