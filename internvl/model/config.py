"""The original InternVLChatConfig dict <-> transformers' InternVLConfig, plus the named presets.

The original on-disk ``config.json`` stays the source of truth: we read it into an ``InternVLConfig``
for computation and write the original layout back (with a transformers-4.36-style ``llm_config``
carrying ``rope_theta``), so the original code and tools keep loading our checkpoints.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from transformers import InternVLConfig, InternVLVisionConfig, LlamaConfig

log = logging.getLogger(__name__)

# Keys of the 4.36-era LlamaConfig dict that change the computation; everything else is bookkeeping.
_LLAMA_KEYS = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta",
    "attention_bias", "bos_token_id", "eos_token_id", "pad_token_id", "initializer_range", "attention_dropout",
)


def num_image_token(cfg: dict[str, Any]) -> int:
    """(image_size // patch_size)^2 * downsample_ratio^2, with force_image_size as the image size."""
    vc = cfg["vision_config"]
    image_size = cfg.get("force_image_size") or vc["image_size"]
    return int((image_size // vc["patch_size"]) ** 2 * cfg["downsample_ratio"] ** 2)


def ps_version(cfg: dict[str, Any]) -> str:
    """V1.2 checkpoints carry no ``ps_version``; the original code then uses "v1" (no final swap)."""
    return cfg.get("ps_version") or "v1"


def hf_config(cfg: dict[str, Any], image_token_id: int) -> InternVLConfig:
    """Translate an original-format config dict into an ``InternVLConfig``."""
    vc, lc = cfg["vision_config"], cfg["llm_config"]
    arch = (lc.get("architectures") or ["LlamaForCausalLM"])[0]
    if arch != "LlamaForCausalLM":
        raise NotImplementedError(f"llm_config.architectures = {arch!r}: only the Llama LLM of V1.2 is supported")
    force = cfg.get("force_image_size") or vc["image_size"]
    if force != vc["image_size"]:
        raise NotImplementedError(
            f"force_image_size {force} != vision_config.image_size {vc['image_size']}: position-embedding "
            "interpolation is not implemented (V1.2 uses 448 for both)"
        )
    if vc.get("norm_type", "rms_norm") != "rms_norm":
        # At 0bfa5e7 InternViT always builds RMSNorm; the key is informational there.
        log.warning("vision_config.norm_type=%r ignored: the V1.2 code always uses RMSNorm", vc.get("norm_type"))
    vision = InternVLVisionConfig(
        hidden_size=vc["hidden_size"],
        num_hidden_layers=vc["num_hidden_layers"],
        num_attention_heads=vc["num_attention_heads"],
        intermediate_size=vc["intermediate_size"],
        hidden_act=vc.get("hidden_act", "gelu"),
        norm_type="rms_norm",
        use_qk_norm=bool(vc.get("qk_normalization", False)),
        attention_bias=bool(vc.get("qkv_bias", False)),
        layer_norm_eps=vc.get("layer_norm_eps", 1e-6),
        image_size=vc["image_size"],
        patch_size=vc["patch_size"],
        num_channels=vc.get("num_channels", 3),
        layer_scale_init_value=vc.get("initializer_factor", 0.1),
        attention_dropout=vc.get("attention_dropout", 0.0),
        drop_path_rate=float(vc.get("drop_path_rate") or 0.0),  # read by InternVLV12Model (stochastic depth)
        use_mean_pooling=True,  # InternViT has no final norm
        use_absolute_position_embeddings=True,
    )
    llm_kwargs = {k: lc[k] for k in _LLAMA_KEYS if k in lc and lc[k] is not None}
    if lc.get("rope_scaling"):
        raise NotImplementedError(f"llm_config.rope_scaling={lc['rope_scaling']!r} is not supported")
    text = LlamaConfig(**llm_kwargs, tie_word_embeddings=bool(lc.get("tie_word_embeddings", False)))
    return InternVLConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=image_token_id,
        image_seq_length=num_image_token(cfg),
        downsample_ratio=cfg["downsample_ratio"],
        projector_hidden_act="gelu",
        vision_feature_layer=cfg.get("select_layer", -1),
        vision_feature_select_strategy="default",
        tie_word_embeddings=bool(lc.get("tie_word_embeddings", False)),
        ps_version=ps_version(cfg),
        template=cfg.get("template", "Hermes-2"),
        force_image_size=force,
        pad2square=bool(cfg.get("pad2square", False)),
    )


def _vision_dict(hidden: int, layers: int, heads: int, mlp: int, image: int, patch: int) -> dict[str, Any]:
    return {
        "architectures": ["InternVisionModel"], "model_type": "intern_vit_6b",
        "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
        "intermediate_size": mlp, "image_size": image, "patch_size": patch, "num_channels": 3,
        "qkv_bias": False, "qk_normalization": True, "hidden_act": "gelu", "norm_type": "rms_norm",
        "layer_norm_eps": 1e-6, "initializer_factor": 0.1, "initializer_range": 1e-10,
        "dropout": 0.0, "attention_dropout": 0.0, "drop_path_rate": 0.0, "use_flash_attn": False,
    }


def _llm_dict(vocab: int, hidden: int, mlp: int, layers: int, heads: int, kv: int) -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": vocab, "hidden_size": hidden, "intermediate_size": mlp, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": kv, "hidden_act": "silu",
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 5000000.0, "rope_scaling": None,
        "attention_bias": False, "bos_token_id": 1, "eos_token_id": 7, "pad_token_id": 0,
        "tie_word_embeddings": False, "initializer_range": 0.02, "attn_implementation": "eager",
    }


def _chat_dict(vision: dict, llm: dict, image: int) -> dict[str, Any]:
    return {
        "architectures": ["InternVLChatModel"], "model_type": "internvl_chat",
        "auto_map": {
            "AutoConfig": "configuration_internvl_chat.InternVLChatConfig",
            "AutoModel": "modeling_internvl_chat.InternVLChatModel",
        },
        "vision_config": vision, "llm_config": llm, "downsample_ratio": 0.5, "force_image_size": image,
        "select_layer": -1, "template": "Hermes-2", "pad2square": False,
        "use_backbone_lora": 0, "use_llm_lora": 0, "torch_dtype": "bfloat16",
    }


def preset(name: str, vocab_size: int | None = None) -> dict[str, Any]:
    """Original-format config dicts: ``v1_2`` (the released shapes) and ``tiny`` (demo/tests)."""
    if name == "v1_2":
        # InternViT-6B-448px-V1-2 (45 blocks) + Nous-Hermes-2-Yi-34B; 64000 + 9 added tokens.
        vision = _vision_dict(3200, 45, 25, 12800, 448, 14)
        llm = _llm_dict(vocab_size or 64009, 7168, 20480, 60, 56, 8)
        llm["attn_implementation"] = "flash_attention_2"
        return _chat_dict(vision, llm, 448)
    if name == "tiny":
        vision = _vision_dict(96, 3, 4, 384, 56, 7)  # 8x8 patches -> 16 image tokens
        llm = _llm_dict(vocab_size or 1300, 160, 432, 4, 4, 2)
        cfg = _chat_dict(vision, llm, 56)
        cfg["torch_dtype"] = "float32"
        return cfg
    raise KeyError(f"unknown preset {name!r}; known: ['v1_2', 'tiny']")


def with_vocab_size(cfg: dict[str, Any], vocab_size: int) -> dict[str, Any]:
    out = copy.deepcopy(cfg)
    out["llm_config"]["vocab_size"] = vocab_size
    return out
