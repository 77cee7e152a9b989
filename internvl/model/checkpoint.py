"""Read and write checkpoints in the ORIGINAL InternVL-Chat on-disk layout (safetensors only).

Original keys (``vision_model.``, ``mlp1.``, ``language_model.``) map one-to-one onto transformers'
names, except the fused ViT ``attn.qkv`` matrix ([q; k; v] along the output dim), which is split on
load and fused again on save. Loading is strict: any missing or unexpected key is an error.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from internvl.model.config import hf_config, with_vocab_size
from internvl.model.conversation import ADDED_SPECIAL_TOKENS, IMG_CONTEXT_TOKEN
from internvl.model.modeling import InternVLChatModel
from internvl.model.shards import ShardWriter, shard_files

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


def original_to_hf_items(key: str, value: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """One original tensor -> its transformers tensor(s) (the fused ViT qkv becomes q/k/v); KeyError if unknown."""
    if key in _FIXED_RENAMES:
        return [(_FIXED_RENAMES[key], value)]
    if key.startswith("language_model.model."):
        return [("model.language_model." + key[len("language_model.model."):], value)]
    if m := _LAYER_RE.match(key):
        i, rest = m.groups()
        base = f"{_HF_VIT}encoder.layer.{i}."
        if rest in ("attn.qkv.weight", "attn.qkv.bias"):
            kind = rest.rsplit(".", 1)[1]
            q, k, v = value.chunk(3, dim=0)
            return [(f"{base}attention.{name}.{kind}", part) for name, part in (("q_proj", q), ("k_proj", k), ("v_proj", v))]
        for src, dst in _VIT_LAYER_RENAMES:
            if rest == src:
                return [(base + dst, value)]
    raise KeyError(key)


def original_to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        try:
            out.update(original_to_hf_items(key, value))
        except KeyError:
            unknown.append(key)
    if unknown:
        raise KeyError(f"unexpected checkpoint keys (not part of InternVL-Chat V1.2): {unknown[:8]}")
    return out


def hf_to_original_stream(items: Iterable[tuple[str, torch.Tensor]]) -> Iterator[tuple[str, torch.Tensor]]:
    """transformers (name, tensor) pairs -> original ones, as a stream: a ViT layer's q/k/v are held only
    until all three have arrived, then fused into ``attn.qkv``."""
    inverse = {v: k for k, v in _FIXED_RENAMES.items()}
    layer_inverse = {dst: src for src, dst in _VIT_LAYER_RENAMES}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in items:
        if key in inverse:
            yield inverse[key], value
        elif key.startswith("model.language_model."):
            yield "language_model.model." + key[len("model.language_model."):], value
        elif m := _HF_LAYER_RE.match(key):
            i, rest = m.groups()
            if mm := re.match(r"attention\.(q|k|v)_proj\.(weight|bias)$", rest):
                parts = qkv.setdefault((i, mm.group(2)), {})
                parts[mm.group(1)] = value
                if len(parts) == 3:
                    del qkv[(i, mm.group(2))]
                    yield (f"{_VIT}encoder.layers.{i}.attn.qkv.{mm.group(2)}",
                           torch.cat([parts["q"], parts["k"], parts["v"]], dim=0))
            elif rest in layer_inverse:
                yield f"{_VIT}encoder.layers.{i}.{layer_inverse[rest]}", value
            else:
                raise KeyError(f"no original name for {key}")
        else:
            raise KeyError(f"no original name for {key}")
    if qkv:
        raise KeyError(f"incomplete ViT q/k/v projections for layers {sorted(qkv)}")


def hf_to_original(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return dict(hf_to_original_stream(state.items()))


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for f in shard_files(path):
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


def _zero3_enabled() -> bool:
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    return bool(is_deepspeed_zero3_enabled())


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _read_config(path: Path) -> dict[str, Any]:
    cfg_file = path / "config.json"
    if not cfg_file.exists():
        raise FileNotFoundError(f"{cfg_file}: not an InternVL-Chat checkpoint (config.json missing)")
    cfg = json.loads(cfg_file.read_text())
    for key in ("vision_config", "llm_config", "downsample_ratio"):
        if key not in cfg:
            raise KeyError(f"{cfg_file}: field {key!r} missing (expected an InternVLChatConfig)")
    return cfg


def load_pretrained(path: str | Path, dtype: torch.dtype | str | None = None, attn_implementation: str = "sdpa",
                    device: str = "cpu"):
    """Load an original-format checkpoint directory -> (model, tokenizer).

    Under DeepSpeed ZeRO-3 (a ``TrainingArguments(deepspeed=...)`` with stage 3 exists, as in the SFT) the
    model is built partitioned and filled one tensor at a time (:func:`_load_zero3`), so no rank ever holds
    the whole model; otherwise transformers' loader builds it from the state dict.
    """
    path = Path(path)
    cfg = _read_config(path)
    tokenizer = load_tokenizer(path)
    hf = hf_config(cfg, image_token_id=tokenizer.convert_tokens_to_ids(IMG_CONTEXT_TOKEN))
    target = _dtype(dtype) if isinstance(dtype, str) else (dtype or _dtype(cfg.get("torch_dtype")))
    if _zero3_enabled():
        model = _load_zero3(path, hf, target, attn_implementation)
        model.original_config = cfg
        model.eval()
        return model, tokenizer
    state = original_to_hf(_read_safetensors(path))
    with torch.device("meta"):
        expected = set(InternVLChatModel(hf).state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise KeyError(f"{path}: checkpoint does not match its config: missing {missing[:8]}, unexpected {unexpected[:8]}")
    # transformers' loader handles meta init, buffers, dtype and device placement for us.
    model = InternVLChatModel.from_pretrained(
        None, config=hf, state_dict=state, dtype=target, attn_implementation=attn_implementation,
        device_map=None if str(device) == "cpu" else device,
    )
    model.original_config = cfg
    model.eval()
    return model, tokenizer


def _load_zero3(path: Path, hf, dtype: torch.dtype, attn_implementation: str) -> InternVLChatModel:
    """Build the model under ``deepspeed.zero.Init`` (each rank allocates only its partition, no random init)
    and fill it from the original-layout shards one tensor at a time: every rank reads the shard headers,
    rank 0 alone reads each tensor's data and copies it into the gathered parameter, which DeepSpeed then
    re-partitions. Host memory per rank: its partition plus one gathered parameter; on rank 0 also one
    checkpoint tensor. The same construction contexts as transformers' own ZeRO-3 ``from_pretrained``."""
    import deepspeed
    from transformers.utils import ContextManagers

    for c in (hf, hf.text_config, hf.vision_config):
        c._attn_implementation = attn_implementation  # noqa: SLF001
    contexts = InternVLChatModel.get_init_context(dtype, False, False, None)
    with ContextManagers(contexts):
        model = InternVLChatModel(hf)
    params = dict(model.named_parameters())
    rank0 = _rank() == 0
    loaded: set[str] = set()
    for f in shard_files(path):
        with safe_open(str(f), framework="pt") as fh:
            for key in fh.keys():
                shape = fh.get_slice(key).get_shape()
                value = fh.get_tensor(key) if rank0 else torch.empty(shape, device="meta")
                try:
                    items = original_to_hf_items(key, value)
                except KeyError:
                    raise KeyError(f"{f}: unexpected checkpoint key {key!r} (not part of InternVL-Chat V1.2)") from None
                unknown = [n for n, _ in items if n not in params]
                if unknown:
                    raise KeyError(f"{path}: checkpoint does not match its config: unexpected {unknown[:8]}")
                targets = [params[n] for n, _ in items]
                with deepspeed.zero.GatheredParameters(targets, modifier_rank=0):
                    for p, (name, t) in zip(targets, items, strict=True):
                        if tuple(p.shape) != tuple(t.shape):
                            raise ValueError(f"{f}: {key} has shape {tuple(t.shape)}, the config gives "
                                             f"{name} the shape {tuple(p.shape)}")
                        if rank0:
                            p.data.copy_(t)
                loaded.update(n for n, _ in items)
        _return_freed_memory()  # per shard: the freed gathers must not pile up until the end of the load
    missing = sorted(set(params) - loaded)
    if missing:
        raise KeyError(f"{path}: checkpoint does not match its config: missing {missing[:8]}")
    return model


def _return_freed_memory() -> None:
    """Give the freed gather buffers back to the OS. Each gathered parameter is allocated and freed on every
    rank; after large frees glibc raises its mmap threshold, so later buffers come from the heap and stay in
    the resident set: on CPU ranks (bench/zero3_memory.py) a rank then holds about a whole model's worth of
    freed memory instead of its partition. ``malloc_trim`` returns it (a no-op where glibc is absent)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _full_shape(p: torch.Tensor) -> tuple[int, ...]:
    return tuple(getattr(p, "ds_shape", None) or p.shape)


def iter_model_state(model: torch.nn.Module, dtype: torch.dtype | None = None) -> Iterator[tuple[str, torch.Tensor | None]]:
    """(name, CPU tensor) for every weight, gathered one parameter at a time under ZeRO-3.

    Collective under ZeRO-3: every rank must iterate it to the end; ranks other than 0 get ``None``
    values. Without ZeRO-3 it is the plain state dict (cast to ``dtype`` if given)."""
    params = dict(model.named_parameters())
    if not any(hasattr(p, "ds_id") for p in params.values()):
        for name, t in model.state_dict().items():
            yield name, t.detach().to("cpu", dtype or t.dtype)
        return
    import deepspeed

    rank0 = _rank() == 0
    for name, p in params.items():
        with deepspeed.zero.GatheredParameters([p], modifier_rank=None):
            t = p.data.detach().to("cpu", dtype or p.dtype).clone() if rank0 else None
        yield name, t


def save_pretrained(model: InternVLChatModel, path: str | Path, tokenizer=None, *, dtype: torch.dtype | None = None,
                    max_shard_size: int | str = "5GB",
                    state: Iterable[tuple[str, torch.Tensor | None]] | None = None) -> None:
    """Write the checkpoint in the original layout: ``config.json``, safetensors sharded at ``max_shard_size``
    (with ``model.safetensors.index.json`` when more than one), ``generation_config.json``, the tokenizer.

    ``dtype`` casts every weight (default: as they are). ``state`` replaces the model's own (name, tensor)
    stream, e.g. a LoRA-merged one. Under ZeRO-3 this is collective (call it on every rank): weights are
    gathered one at a time and rank 0 writes them as they come, one shard in memory at most. The folder
    is built beside ``path`` and renamed into place, so a killed save never leaves a half checkpoint there.
    """
    path = Path(path)
    items = iter_model_state(model, dtype) if state is None else state
    if _rank() != 0:
        for _ in items:  # take part in the gathers
            pass
        return
    tmp = path.with_name(f".{path.name}.saving-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    writer = ShardWriter(tmp, max_shard_size)
    first_dtype = None
    for name, t in hf_to_original_stream((n, t.to(dtype) if dtype is not None else t) for n, t in items):
        first_dtype = first_dtype or (t.dtype if t.is_floating_point() else None)
        writer.add(name, t)
    writer.close()
    cfg = with_vocab_size(model.original_config, _full_shape(model.lm_head.weight)[0])
    cfg["torch_dtype"] = str(first_dtype or torch.float32).removeprefix("torch.")
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    lc = cfg["llm_config"]
    gen = {"_from_model_config": True, "bos_token_id": lc.get("bos_token_id"), "eos_token_id": lc.get("eos_token_id")}
    (tmp / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    if tokenizer is not None:
        tokenizer.save_pretrained(str(tmp))
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
