"""Read and write checkpoints in the ORIGINAL InternVL-Chat on-disk layout (safetensors only).

Original keys (``vision_model.``, ``mlp1.``, ``language_model.``) map one-to-one onto transformers'
names, except the fused ViT ``attn.qkv`` matrix ([q; k; v] along the output dim), which is split on
load and fused again on save. Loading is strict: any missing or unexpected key is an error.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from internvl.model.config import hf_config, with_vocab_size
from internvl.model.conversation import ADDED_SPECIAL_TOKENS, IMG_CONTEXT_TOKEN
from internvl.model.modeling import InternVLChatModel

log = logging.getLogger(__name__)

_VIT = "vision_model."
_HF_VIT = "model.vision_tower."
# (original suffix regex, transformers suffix) inside a ViT encoder layer
_VIT_LAYER_RENAMES = [
    ("attn.q_norm.weight", "attention.q_norm.weight"),
    ("attn.k_norm.weight", "attention.k_norm.weight"),
    ("attn.proj.weight", "attention.projection_layer.weight"),
    ("attn.proj.bias", "attention.projection_layer.bias"),
    ("mlp.fc1.weight", "mlp.fc1.weight"),
    ("mlp.fc1.bias", "mlp.fc1.bias"),
    ("mlp.fc2.weight", "mlp.fc2.weight"),
    ("mlp.fc2.bias", "mlp.fc2.bias"),
    ("norm1.weight", "layernorm_before.weight"),
    ("norm2.weight", "layernorm_after.weight"),
    ("ls1", "lambda_1"),
    ("ls2", "lambda_2"),
]
_FIXED_RENAMES = {
    "vision_model.embeddings.class_embedding": "model.vision_tower.embeddings.cls_token",
    "vision_model.embeddings.position_embedding": "model.vision_tower.embeddings.position_embeddings",
    "vision_model.embeddings.patch_embedding.weight": "model.vision_tower.embeddings.patch_embeddings.projection.weight",
    "vision_model.embeddings.patch_embedding.bias": "model.vision_tower.embeddings.patch_embeddings.projection.bias",
    "mlp1.0.weight": "model.multi_modal_projector.layer_norm.weight",
    "mlp1.0.bias": "model.multi_modal_projector.layer_norm.bias",
    "mlp1.1.weight": "model.multi_modal_projector.linear_1.weight",
    "mlp1.1.bias": "model.multi_modal_projector.linear_1.bias",
    "mlp1.3.weight": "model.multi_modal_projector.linear_2.weight",
    "mlp1.3.bias": "model.multi_modal_projector.linear_2.bias",
    "language_model.lm_head.weight": "lm_head.weight",
}
_LAYER_RE = re.compile(r"^vision_model\.encoder\.layers\.(\d+)\.(.+)$")
_HF_LAYER_RE = re.compile(r"^model\.vision_tower\.encoder\.layer\.(\d+)\.(.+)$")


def original_to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        if key in _FIXED_RENAMES:
            out[_FIXED_RENAMES[key]] = value
        elif key.startswith("language_model.model."):
            out["model.language_model." + key[len("language_model.model."):]] = value
        elif m := _LAYER_RE.match(key):
            i, rest = m.groups()
            base = f"{_HF_VIT}encoder.layer.{i}."
            if rest in ("attn.qkv.weight", "attn.qkv.bias"):
                kind = rest.rsplit(".", 1)[1]
                q, k, v = value.chunk(3, dim=0)
                for name, part in (("q_proj", q), ("k_proj", k), ("v_proj", v)):
                    out[f"{base}attention.{name}.{kind}"] = part
                continue
            for src, dst in _VIT_LAYER_RENAMES:
                if rest == src:
                    out[base + dst] = value
                    break
            else:
                unknown.append(key)
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(f"unexpected checkpoint keys (not part of InternVL-Chat V1.2): {unknown[:8]}")
    return out


def hf_to_original(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    inverse = {v: k for k, v in _FIXED_RENAMES.items()}
    layer_inverse = {dst: src for src, dst in _VIT_LAYER_RENAMES}
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key in inverse:
            out[inverse[key]] = value
        elif key.startswith("model.language_model."):
            out["language_model.model." + key[len("model.language_model."):]] = value
        elif m := _HF_LAYER_RE.match(key):
            i, rest = m.groups()
            if mm := re.match(r"attention\.(q|k|v)_proj\.(weight|bias)$", rest):
                qkv.setdefault((i, mm.group(2)), {})[mm.group(1)] = value
            elif rest in layer_inverse:
                out[f"{_VIT}encoder.layers.{i}.{layer_inverse[rest]}"] = value
            else:
                raise KeyError(f"no original name for {key}")
        else:
            raise KeyError(f"no original name for {key}")
    for (i, kind), parts in qkv.items():
        out[f"{_VIT}encoder.layers.{i}.attn.qkv.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    index = path / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else ["model.safetensors"]
    state: dict[str, torch.Tensor] = {}
    for name in files:
        f = path / name
        if not f.exists():
            raise FileNotFoundError(f"{f}: checkpoint shard missing (only safetensors checkpoints are loaded)")
        with safe_open(str(f), framework="pt") as fh:
            for k in fh.keys():
                state[k] = fh.get_tensor(k)
    return state


def _dtype(name: str | None) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(name or "", torch.float32)


def build_model(cfg: dict[str, Any], image_token_id: int, attn_implementation: str = "sdpa",
                device: str | torch.device = "cpu") -> InternVLChatModel:
    """Construct a randomly initialised model from an original-format config dict."""
    hf = hf_config(cfg, image_token_id=image_token_id)
    hf._attn_implementation = attn_implementation  # noqa: SLF001 - the documented way to pick it before init
    hf.text_config._attn_implementation = attn_implementation  # noqa: SLF001
    hf.vision_config._attn_implementation = attn_implementation  # noqa: SLF001
    with torch.device(device):
        model = InternVLChatModel(hf)
    model.original_config = cfg
    return model


def sentencepiece_tokenizer_kwargs(path: str | Path) -> dict[str, Any]:
    """Keyword arguments that keep a sentencepiece-only Llama tokenizer encoding as sentencepiece does.

    A repo with ``tokenizer.model`` and no ``tokenizer.json`` (Yi / Nous-Hermes-2-Yi-34B, the released
    InternVL-Chat-V1-2) is converted by transformers 5 into a tokenizers pipeline whose Metaspace
    pre-tokenizer prepends "▁" unless ``add_prefix_space`` is false. The slow 4.36 ``LlamaTokenizer``
    that V1.2 trained with leaves that to the model's own ``normalizer_spec.add_dummy_prefix`` (false for
    Yi), so without this every text chunk would start with an extra "▁" token.
    """
    path = Path(path)
    if (path / "tokenizer.json").exists() or not (path / "tokenizer.model").exists():
        return {}
    tok_cfg = path / "tokenizer_config.json"
    if tok_cfg.exists() and "add_prefix_space" in json.loads(tok_cfg.read_text()):
        return {}  # the repo says it itself
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString((path / "tokenizer.model").read_bytes())
    return {"add_prefix_space": bool(proto.normalizer_spec.add_dummy_prefix)}


def load_base_tokenizer(path: str | Path):
    """The tokenizer class named in ``tokenizer_config.json``, without the InternVL-token check.

    We pick the class ourselves: AutoTokenizer would follow the checkpoint's ``auto_map`` towards remote
    code, which we never run.
    """
    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    tok_cfg = Path(path) / "tokenizer_config.json"
    name = json.loads(tok_cfg.read_text()).get("tokenizer_class") if tok_cfg.exists() else None
    cls = tokenizer_class_from_name(name or "PreTrainedTokenizerFast")
    if cls is None:
        raise ValueError(f"{tok_cfg}: unknown tokenizer_class {name!r}")
    return cls.from_pretrained(str(path), **sentencepiece_tokenizer_kwargs(path))


def load_tokenizer(path: str | Path):
    tok = load_base_tokenizer(path)
    missing = [t for t in ADDED_SPECIAL_TOKENS[:3] if tok.convert_tokens_to_ids(t) in (None, tok.unk_token_id)]
    if missing:
        raise ValueError(f"{path}: tokenizer lacks InternVL special tokens {missing}")
    return tok


def load_pretrained(path: str | Path, dtype: torch.dtype | str | None = None, attn_implementation: str = "sdpa",
                    device: str = "cpu"):
    """Load an original-format checkpoint directory -> (model, tokenizer)."""
    path = Path(path)
    cfg_file = path / "config.json"
    if not cfg_file.exists():
        raise FileNotFoundError(f"{cfg_file}: not an InternVL-Chat checkpoint (config.json missing)")
    cfg = json.loads(cfg_file.read_text())
    for key in ("vision_config", "llm_config", "downsample_ratio"):
        if key not in cfg:
            raise KeyError(f"{cfg_file}: field {key!r} missing (expected an InternVLChatConfig)")
    tokenizer = load_tokenizer(path)
    hf = hf_config(cfg, image_token_id=tokenizer.convert_tokens_to_ids(IMG_CONTEXT_TOKEN))
    state = original_to_hf(_read_safetensors(path))
    with torch.device("meta"):
        expected = set(InternVLChatModel(hf).state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise KeyError(f"{path}: checkpoint does not match its config: missing {missing[:8]}, unexpected {unexpected[:8]}")
    target = _dtype(dtype) if isinstance(dtype, str) else (dtype or _dtype(cfg.get("torch_dtype")))
    # transformers' loader handles meta init, buffers, dtype and device placement for us.
    model = InternVLChatModel.from_pretrained(
        None, config=hf, state_dict=state, dtype=target, attn_implementation=attn_implementation,
        device_map=None if str(device) == "cpu" else device,
    )
    model.original_config = cfg
    model.eval()
    return model, tokenizer


def save_pretrained(model: InternVLChatModel, path: str | Path, tokenizer=None) -> None:
    """Write ``config.json`` + ``model.safetensors`` (+ tokenizer) in the original layout."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    cfg = with_vocab_size(model.original_config, model.lm_head.weight.shape[0])
    cfg["torch_dtype"] = str(model.lm_head.weight.dtype).removeprefix("torch.")
    state = {k: v.detach().contiguous().cpu() for k, v in hf_to_original(model.state_dict()).items()}
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    (path / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    lc = cfg["llm_config"]
    gen = {"_from_model_config": True, "bos_token_id": lc.get("bos_token_id"), "eos_token_id": lc.get("eos_token_id")}
    (path / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    if tokenizer is not None:
        tokenizer.save_pretrained(str(path))
