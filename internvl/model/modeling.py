"""InternVL-Chat V1.2 = transformers' InternVL with the V1.2 pixel-shuffle order and the original API.

transformers' ``InternVLForConditionalGeneration`` matches the original bit-for-bit except for the
pixel-shuffle orientation: it always swaps height/width back ("ps_version v2"), V1.2 does not
("v1", 12.6 max logit difference on the parity fixture otherwise). We subclass rather than fork, and
add the original call shapes: ``forward(pixel_values, input_ids, attention_mask, image_flags, labels)``
and ``chat(tokenizer, pixel_values, question, generation_config)``.

Training behaviour of the original InternViT that transformers' vision layer lacks is added here too:
stochastic depth on both residual branches (:func:`set_vit_drop_path`) and gradient checkpointing of
the ViT whenever it trains (:func:`enable_gradient_checkpointing`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import InternVLConfig
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.internvl.modeling_internvl import (
    InternVLForConditionalGeneration,
    InternVLModel,
    InternVLPreTrainedModel,
    InternVLVisionLayer,
)

from internvl.model.conversation import IMG_CONTEXT_TOKEN, get_template, image_span


def pixel_shuffle(x: torch.Tensor, scale_factor: float = 0.5, version: str = "v1") -> torch.Tensor:
    """Space-to-depth over (B, rows, cols, C); "v1" leaves the merged grid transposed (column-major)."""
    n, w, h, c = x.size()
    x = x.view(n, w, int(h * scale_factor), int(c / scale_factor))
    x = x.permute(0, 2, 1, 3).contiguous()
    x = x.view(n, int(h * scale_factor), int(w * scale_factor), int(c / (scale_factor * scale_factor)))
    if version != "v1":
        x = x.permute(0, 2, 1, 3).contiguous()
    return x


class DropPath(nn.Module):
    """Stochastic depth per sample (timm ``DropPath`` semantics): zero whole samples of a residual branch
    with probability ``drop_prob`` and scale the kept ones by 1/keep, in training only. No parameters, so
    state-dict keys do not change."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * (mask.div_(keep) if keep > 0.0 else mask)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class InternVLV12VisionLayer(InternVLVisionLayer):
    """transformers' InternViT block with the original's drop path on both residual branches:
    x = x + dp1(ls1 * attn(norm1(x))); x = x + dp2(ls2 * mlp(norm2(x))).

    Instances are transformers' layers re-classed in place (:func:`_add_drop_path`), so construction,
    weight names and loading stay transformers' own. With both rates 0 this is the parent's forward.
    """

    drop_path1: DropPath
    drop_path2: DropPath

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        attention_output, _ = self.attention(self.layernorm_before(hidden_states))
        hidden_states = hidden_states + self.drop_path1(self.lambda_1 * attention_output)
        mlp_output = self.dropout(self.mlp(self.layernorm_after(hidden_states)))
        if self.lambda_2 is not None:
            mlp_output = self.lambda_2 * mlp_output
        return hidden_states + self.drop_path2(mlp_output)


def _add_drop_path(encoder_layers: nn.ModuleList) -> None:
    for layer in encoder_layers:
        if not isinstance(layer, InternVLV12VisionLayer):
            layer.__class__ = InternVLV12VisionLayer
            layer.drop_path1 = DropPath(0.0)
            layer.drop_path2 = DropPath(0.0)


def vit_layers(model: nn.Module) -> list[InternVLV12VisionLayer]:
    """The InternViT blocks in order, found through any wrapper (PeftModel, DDP, a DeepSpeed engine)."""
    return [m for m in model.modules() if isinstance(m, InternVLV12VisionLayer)]


def set_vit_drop_path(model: nn.Module, rate: float) -> list[float]:
    """Set ViT stochastic depth as the original: rates ``torch.linspace(0, rate, num_layers)`` over the blocks.

    Works on a built or loaded model (the V1.2 script overrides the checkpoint's ``drop_path_rate`` the
    same way) and under ZeRO-3, since no parameter is touched. The model's ``original_config`` records the
    rate, as the original saves ``vision_config.drop_path_rate`` with the trained checkpoint. Returns the
    per-layer rates.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"drop_path_rate {rate} outside [0, 1)")
    layers = vit_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no InternViT layers to set drop path on")
    rates = [x.item() for x in torch.linspace(0, rate, len(layers))]
    for layer, r in zip(layers, rates, strict=True):
        layer.drop_path1.drop_prob = r
        layer.drop_path2.drop_prob = r
    cfg = getattr(model, "original_config", None)
    if isinstance(cfg, dict) and "vision_config" in cfg:
        cfg["vision_config"]["drop_path_rate"] = float(rate)
    return rates


def enable_gradient_checkpointing(model: InternVLChatModel, llm: bool) -> None:
    """Checkpoint as the original: every ViT block whenever the model trains, the LLM layers only if ``llm``.

    Non-reentrant ``torch.utils.checkpoint`` (the original's ViT used the reentrant default of torch 2.0):
    the gradients are the same, it needs no input that requires grad (frozen towers, LoRA) and it restores
    the RNG state for the recompute, so drop-path masks match. Use this instead of
    ``TrainingArguments(gradient_checkpointing=True)``, which would switch on both towers together.
    """
    kwargs = {"use_reentrant": False}
    model.model.vision_tower.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    if llm:
        model.model.language_model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)


class InternVLV12Model(InternVLModel):
    """InternVLModel whose feature extraction follows the original ``extract_feature``."""

    def __init__(self, config: InternVLConfig):
        super().__init__(config)
        _add_drop_path(self.vision_tower.encoder.layer)
        rate = float(getattr(config.vision_config, "drop_path_rate", 0.0) or 0.0)
        if rate:
            set_vit_drop_path(self.vision_tower, rate)

    def pixel_shuffle(self, vision_features: torch.Tensor, scale_factor: float = 0.5) -> torch.Tensor:
        return pixel_shuffle(vision_features, scale_factor, getattr(self.config, "ps_version", "v1"))

    def get_image_features(self, pixel_values: torch.Tensor, vision_feature_layer=None,
                           vision_feature_select_strategy=None, **kwargs: Any) -> BaseModelOutputWithPooling:
        select_layer = self.config.vision_feature_layer if vision_feature_layer is None else vision_feature_layer
        pixel_values = pixel_values.to(dtype=self.dtype)
        out = self.vision_tower(pixel_values=pixel_values, output_hidden_states=select_layer != -1, return_dict=True)
        hidden = out.last_hidden_state if select_layer == -1 else out.hidden_states[select_layer]
        hidden = hidden[:, 1:, :]  # drop CLS
        side = int(hidden.shape[1] ** 0.5)
        hidden = hidden.reshape(hidden.shape[0], side, side, -1)
        hidden = self.pixel_shuffle(hidden, scale_factor=self.config.downsample_ratio)
        hidden = hidden.reshape(hidden.shape[0], -1, hidden.shape[-1])
        out.pooler_output = self.multi_modal_projector(hidden)
        return out


class InternVLChatModel(InternVLForConditionalGeneration):
    """The V1.2 chat model; state lives under transformers' names, checkpoints use the original ones."""

    def __init__(self, config: InternVLConfig):
        InternVLPreTrainedModel.__init__(self, config)
        self.model = InternVLV12Model(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    @property
    def num_image_token(self) -> int:
        return int(self.config.image_seq_length)

    @property
    def template(self):
        return get_template(getattr(self.config, "template", "Hermes-2"))

    def extract_feature(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, num_image_token, llm_hidden): the original ``extract_feature``."""
        return self.model.get_image_features(pixel_values).pooler_output

    def forward(self, pixel_values: torch.Tensor | None = None, input_ids: torch.LongTensor | None = None,
                attention_mask: torch.Tensor | None = None, position_ids: torch.LongTensor | None = None,
                image_flags: torch.Tensor | None = None, labels: torch.LongTensor | None = None, **kwargs: Any):
        """Original call shape. ``image_flags`` (B, 1) marks real images; text-only rows carry a dummy image.

        As in the original, the ViT runs on every image (so every rank's graph has the same parameters);
        features of flag-0 rows are dropped and kept in the graph with weight 0. A count mismatch between
        ``<IMG_CONTEXT>`` positions and image features is an error (the original silently skipped it).
        """
        if pixel_values is None or image_flags is None or kwargs.get("mm_encoder_outputs") is not None:
            return super().forward(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask,
                                   position_ids=position_ids, labels=labels, **kwargs)
        feats = self.extract_feature(pixel_values)
        keep = image_flags.view(-1).to(torch.bool)
        mm = {"image": BaseModelOutputWithPooling(pooler_output=feats[keep])}
        out = super().forward(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                              labels=labels, mm_encoder_outputs=mm, **kwargs)
        if out.loss is not None and not bool(keep.all()):
            out.loss = out.loss + 0.0 * feats[~keep].sum()
        return out

    def build_prompt(self, question: str, num_images: int = 1) -> str:
        """Hermes-2 prompt as V1.2's ``chat()``: image span + newline + question, assistant slot open."""
        prefix = (image_span(self.num_image_token) + "\n") if num_images else ""
        return self.template.prompt(prefix + question)

    def generation_kwargs(self, tokenizer, generation_config: dict[str, Any]) -> dict[str, Any]:
        """Stop at the template separator (``<|im_end|>``), as V1.2's LLM config and later ``chat()`` do."""
        kw = dict(generation_config)
        kw.setdefault("eos_token_id", tokenizer.convert_tokens_to_ids(self.template.sep))
        kw.setdefault("pad_token_id", tokenizer.pad_token_id)
        return kw

    @torch.no_grad()
    def chat(self, tokenizer, pixel_values: torch.Tensor | None, question: str,
             generation_config: dict[str, Any]) -> str:
        """Single-sample chat, same signature and output as the V1.2 original."""
        if tokenizer.convert_tokens_to_ids(IMG_CONTEXT_TOKEN) != self.config.image_token_id:
            raise ValueError("tokenizer's <IMG_CONTEXT> id differs from the model's image_token_id")
        prompt = self.build_prompt(question, num_images=0 if pixel_values is None else 1)
        enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        device = self.lm_head.weight.device
        out = self.generate(
            input_ids=enc.input_ids.to(device),
            attention_mask=enc.attention_mask.to(device),
            pixel_values=None if pixel_values is None else pixel_values.to(device),
            **self.generation_kwargs(tokenizer, generation_config),
        )
        new_tokens = out[0, enc.input_ids.shape[1]:]
        return tokenizer.decode(new_tokens, skip_special_tokens=True)
