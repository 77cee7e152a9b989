"""Convert checkpoints between the original InternVL-Chat format and transformers' native format.

* original: ``config.json`` = InternVLChatConfig (``vision_config`` + ``llm_config``), safetensors with
  the original names (``vision_model.``, ``mlp1.``, ``language_model.``); what the released
  InternVL-Chat-V1-2, the original code, VLMEvalKit and lmdeploy read, and what our SFT writes.
* native: ``InternVLForConditionalGeneration`` (``model_type: internvl``), written and read with
  transformers' own ``save_pretrained``/``from_pretrained``.

Exactness. The names map one to one (the fused ViT ``qkv`` is split into q/k/v and fused back), so
original -> native -> original gives back every tensor bit for bit. The computation is another matter:
transformers' native model always applies the later pixel shuffle ("ps_version v2"), which emits the
2x2-merged tokens row-major, while V1.2 ("v1") emits them column-major (the merged grid transposed,
channel layout identical). The projector works per token, but the LLM sees the tokens in sequence
order with positions, so the order changes the logits (12.6 max abs on the parity fixture) and no
change of the LLM or projector weights can undo it. Two layouts keep a converted V1.2 exact:

``v1`` (default): weights renamed only; ``config.json`` carries ``ps_version: "v1"`` and the full
  original config under ``internvl_v1_2``. Exact when loaded with :func:`load_native` (our subclass reads
  ``ps_version``). Stock ``InternVLForConditionalGeneration`` ignores the key and is NOT exact.
``transposed-input``: transposing the image commutes the two orders. With the patch-embedding kernel
  transposed, the patch part of the position embedding transposed on its grid, and the 2nd and 3rd
  channel blocks of the projector input swapped (LayerNorm weight/bias, ``linear_1`` columns), the
  stock native model fed ``pixel_values.transpose(-1, -2)`` computes V1.2's tokens in V1.2's order: exact
  up to float summation order. Fed untransposed pixels (any stock processor) it is NOT exact. The
  permutations are involutions, so converting back restores the original tensors bit for bit.

Foreign native checkpoints (no ``internvl_v1_2`` key) are read with ``ps_version`` "v2", their own
semantics; exporting them to the original format writes ``ps_version: "v2"`` so the original (HEAD)
code and our loader agree with transformers.

Tools that load the original format with ``trust_remote_code`` (VLMEvalKit, lmdeploy's HF path) also need
the released ``configuration_*.py``/``modeling_*.py`` beside the weights: pass ``remote_code_from`` = a
downloaded InternVL-Chat-V1-2 snapshot (sources.yaml ``internvl_chat_v1_2`` fetches its ``*.py``); the
files are copied, never imported here.

Weights are read from safetensors only, on both sides: a native directory with only pickle weights
(``pytorch_model.bin``, ``*.pt``) is refused with :class:`PickleCheckpointError` before anything is
loaded, as unpickling runs code from the file.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from internvl.errors import DataError
from internvl.model import config as mcfg
from internvl.model.checkpoint import _read_safetensors, hf_to_original, load_tokenizer, original_to_hf
from internvl.model.conversation import IMG_CONTEXT_TOKEN

log = logging.getLogger(__name__)

NATIVE_ARCH = "InternVLForConditionalGeneration"
LAYOUTS = ("v1", "transposed-input")
META_KEY = "internvl_v1_2"  # extra key in a native config.json written by to_native
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "added_tokens.json", "chat_template.jinja", "chat_template.json")

_PATCH_W = "model.vision_tower.embeddings.patch_embeddings.projection.weight"
_POS = "model.vision_tower.embeddings.position_embeddings"
_PROJ_IN = ("model.multi_modal_projector.layer_norm.weight", "model.multi_modal_projector.layer_norm.bias")
_PROJ_LIN = "model.multi_modal_projector.linear_1.weight"


class PickleCheckpointError(DataError):
    """A checkpoint directory holds pickle weights only; they are never unpickled here."""


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def require_safetensors(path: str | Path) -> None:
    """Refuse a checkpoint directory without ``*.safetensors`` weights (before transformers could fall
    back to unpickling ``pytorch_model.bin``)."""
    path = Path(path)
    if any(path.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES) if path.is_dir() else []
    what = f"only pickle weights ({', '.join(pickles)})" if pickles else "no *.safetensors weights"
    raise PickleCheckpointError(path, f"{what}: only safetensors checkpoints are read (a pickle runs code when "
                                      "loaded); convert them with a tool you trust, e.g. transformers' "
                                      "save_pretrained(..., safe_serialization=True), then run again")


def detect_format(path: str | Path) -> str:
    cfg_file = Path(path) / "config.json"
    if not cfg_file.exists():
        raise FileNotFoundError(f"{cfg_file}: no config.json, not a checkpoint directory")
    cfg = json.loads(cfg_file.read_text())
    if cfg.get("model_type") == "internvl_chat" or "llm_config" in cfg:
        return "original"
    if cfg.get("model_type") == "internvl":
        return "native"
    raise DataError(cfg_file, f"model_type {cfg.get('model_type')!r} is neither internvl_chat nor internvl",
                    field="model_type")


def transposed_input_weights(state: dict[str, torch.Tensor], downsample_ratio: float = 0.5) -> dict[str, torch.Tensor]:
    """The ``transposed-input`` permutation (native names). It is its own inverse."""
    if downsample_ratio != 0.5:
        raise NotImplementedError(f"transposed-input layout derived for 2x2 merging only, not {downsample_ratio}")
    out = dict(state)
    out[_PATCH_W] = state[_PATCH_W].transpose(-1, -2).contiguous()
    pos = state[_POS]
    grid = int(round((pos.shape[1] - 1) ** 0.5))
    if grid * grid != pos.shape[1] - 1:
        raise ValueError(f"position embedding of {pos.shape[1] - 1} patches is not a square grid")
    patches = pos[:, 1:].reshape(pos.shape[0], grid, grid, -1).transpose(1, 2).reshape(pos.shape[0], grid * grid, -1)
    out[_POS] = torch.cat([pos[:, :1], patches], dim=1).contiguous()
    width = state[_PROJ_IN[0]].shape[0] // 4

    def swap(t: torch.Tensor, dim: int) -> torch.Tensor:
        b = t.split(width, dim=dim)
        return torch.cat([b[0], b[2], b[1], b[3]], dim=dim).contiguous()

    for k in _PROJ_IN:
        out[k] = swap(state[k], 0)
    out[_PROJ_LIN] = swap(state[_PROJ_LIN], 1)
    return out


def _copy_files(src: Path, dst: Path, names: tuple[str, ...]) -> list[str]:
    done = []
    for name in names:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
            done.append(name)
    return done


def _state_dtype(state: dict[str, torch.Tensor]) -> torch.dtype:
    return next(v.dtype for v in state.values() if v.is_floating_point())


def native_config(cfg: dict[str, Any], image_token_id: int, layout: str = "v1"):
    """An ``InternVLConfig`` for an original config dict, with the layout metadata."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}; known: {LAYOUTS}")
    hf = mcfg.hf_config(cfg, image_token_id=image_token_id)
    hf.architectures = [NATIVE_ARCH]
    hf.ps_version = "v1" if layout == "v1" else "v2"
    setattr(hf, META_KEY, {
        "layout": layout,
        "original_ps_version": mcfg.ps_version(cfg),
        "exact_with": ("internvl.convert.load_native (reads ps_version)" if layout == "v1" else
                       "InternVLForConditionalGeneration fed pixel_values.transpose(-1, -2)"),
        # a JSON string: transformers rewrites nested dicts on save (drops ``_commit_hash``, ...)
        "original_config": json.dumps(cfg, sort_keys=True),
    })
    return hf


def to_native(src: str | Path, dst: str | Path, layout: str = "v1") -> dict[str, Any]:
    """Original-format checkpoint -> native directory (transformers' save_pretrained)."""
    from transformers import InternVLForConditionalGeneration

    src, dst = Path(src), Path(dst)
    if detect_format(src) != "original":
        raise DataError(src, "not an original-format checkpoint")
    cfg = json.loads((src / "config.json").read_text())
    if mcfg.ps_version(cfg) != "v1" and layout == "transposed-input":
        raise DataError(src, f"ps_version {mcfg.ps_version(cfg)!r}: nothing to transpose, use layout v1")
    tok = load_tokenizer(src)
    hf = native_config(cfg, tok.convert_tokens_to_ids(IMG_CONTEXT_TOKEN), layout)
    hf.ps_version = mcfg.ps_version(cfg) if layout == "v1" else "v2"
    state = original_to_hf(_read_safetensors(src))
    if layout == "transposed-input":
        state = transposed_input_weights(state, cfg["downsample_ratio"])
    model = InternVLForConditionalGeneration.from_pretrained(None, config=hf, state_dict=state,
                                                             dtype=_state_dtype(state))
    _check_loaded(model, state, src)
    dst.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(dst))
    copied = _copy_files(src, dst, TOKENIZER_FILES + ("generation_config.json",))
    log.info("%s -> %s (native, layout %s; copied %s)", src, dst, layout, copied)
    return {"src": str(src), "dst": str(dst), "to": "native", "layout": layout, "tensors": len(state)}


def _check_loaded(model, state: dict[str, torch.Tensor], where: Path) -> None:
    got = model.state_dict()
    missing, extra = sorted(set(state) - set(got)), sorted(set(got) - set(state))
    if missing or extra:
        raise KeyError(f"{where}: weights do not match the native model: missing {missing[:5]}, extra {extra[:5]}")


def _image_size(v: Any) -> int:
    if isinstance(v, (list, tuple)):
        if len(set(v)) != 1:
            raise NotImplementedError(f"non-square image_size {v}")
        return int(v[0])
    return int(v)


def original_config_from_native(hf) -> dict[str, Any]:
    """Build an InternVLChatConfig dict for a native config written by someone else."""
    vc, tc = hf.vision_config, hf.text_config
    if tc.model_type != "llama":
        raise NotImplementedError(f"text_config.model_type {tc.model_type!r}: the original V1.2 format has a Llama LLM")
    if vc.norm_type != "rms_norm" or not vc.use_mean_pooling:
        raise NotImplementedError("the original InternViT-6B layout needs norm_type rms_norm and no final norm")
    if getattr(hf, "vision_feature_select_strategy", "default") != "default":
        raise NotImplementedError("the original code always drops the CLS token (select strategy 'default')")
    image, patch = _image_size(vc.image_size), _image_size(vc.patch_size)
    vision = mcfg._vision_dict(vc.hidden_size, vc.num_hidden_layers, vc.num_attention_heads,  # noqa: SLF001
                               vc.intermediate_size, image, patch)
    vision.update(qkv_bias=bool(vc.attention_bias), qk_normalization=bool(vc.use_qk_norm),
                  layer_norm_eps=vc.layer_norm_eps, initializer_factor=vc.layer_scale_init_value)
    llm = mcfg._llm_dict(tc.vocab_size, tc.hidden_size, tc.intermediate_size, tc.num_hidden_layers,  # noqa: SLF001
                         tc.num_attention_heads, tc.num_key_value_heads)
    rope = getattr(tc, "rope_parameters", None) or {}
    llm.update(rms_norm_eps=tc.rms_norm_eps, max_position_embeddings=tc.max_position_embeddings,
               rope_theta=rope.get("rope_theta", getattr(tc, "rope_theta", None)), bos_token_id=tc.bos_token_id,
               eos_token_id=tc.eos_token_id, pad_token_id=tc.pad_token_id,
               tie_word_embeddings=bool(getattr(hf, "tie_word_embeddings", False)))
    cfg = mcfg._chat_dict(vision, llm, image)  # noqa: SLF001
    cfg.update(downsample_ratio=hf.downsample_ratio, select_layer=hf.vision_feature_layer,
               template=getattr(hf, "template", "Hermes-2"), ps_version=getattr(hf, "ps_version", None) or "v2")
    cfg["torch_dtype"] = str(getattr(hf, "dtype", None) or "bfloat16").removeprefix("torch.")
    return cfg


def _native_meta(path: Path) -> dict[str, Any]:
    return json.loads((path / "config.json").read_text()).get(META_KEY) or {}


def to_original(src: str | Path, dst: str | Path, remote_code_from: str | Path | None = None,
                max_shard_size: str = "5GB") -> dict[str, Any]:
    """Native directory -> original-format checkpoint (safetensors, original names and config)."""
    from huggingface_hub import save_torch_state_dict
    from transformers import InternVLForConditionalGeneration

    src, dst = Path(src), Path(dst)
    if detect_format(src) != "native":
        raise DataError(src, "not a native InternVLForConditionalGeneration checkpoint")
    require_safetensors(src)
    meta = _native_meta(src)
    model = InternVLForConditionalGeneration.from_pretrained(str(src), dtype="auto", use_safetensors=True)
    state = {k: v.detach() for k, v in model.state_dict().items()}
    if meta.get("layout") == "transposed-input":
        state = transposed_input_weights(state, model.config.downsample_ratio)
    if meta.get("original_config"):
        cfg = json.loads(meta["original_config"])
    else:
        cfg = original_config_from_native(model.config)
    dst.mkdir(parents=True, exist_ok=True)
    save_torch_state_dict(hf_to_original(state), str(dst), max_shard_size=max_shard_size, metadata={"format": "pt"})
    (dst / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    copied = _copy_files(src, dst, TOKENIZER_FILES + ("generation_config.json",))
    code = copy_remote_code(remote_code_from, dst) if remote_code_from else []
    log.info("%s -> %s (original; copied %s, remote code %s)", src, dst, copied, code)
    return {"src": str(src), "dst": str(dst), "to": "original", "layout": meta.get("layout", "foreign"),
            "tensors": len(state), "remote_code": code}


def copy_remote_code(release_dir: str | Path, dst: str | Path) -> list[str]:
    """Copy the released ``*.py`` that ``config.json``'s ``auto_map`` names, for trust_remote_code loaders."""
    release_dir, dst = Path(release_dir), Path(dst)
    cfg = json.loads((dst / "config.json").read_text())
    modules = sorted({ref.split(".")[0] for ref in (cfg.get("auto_map") or {}).values()})
    if not modules:
        raise ValueError(f"{dst}/config.json has no auto_map: nothing to copy")
    files = sorted(p.name for p in release_dir.glob("*.py"))
    missing = [m for m in modules if f"{m}.py" not in files]
    if missing:
        raise FileNotFoundError(f"{release_dir}: lacks {[m + '.py' for m in missing]} named in {dst}/config.json auto_map")
    for name in files:  # the modeling file imports its siblings (vision model, conversation, ...)
        shutil.copyfile(release_dir / name, dst / name)
    return files


def load_native(path: str | Path, dtype: torch.dtype | str | None = None, attn_implementation: str = "eager"):
    """A native directory as our V1.2 model (exact for both layouts) -> (model, tokenizer).

    A native checkpoint without ``internvl_v1_2`` metadata keeps transformers' semantics (ps_version v2).
    """
    from transformers import InternVLConfig

    from internvl.model.modeling import InternVLChatModel

    path = Path(path)
    require_safetensors(path)
    meta = _native_meta(path)
    hf = InternVLConfig.from_pretrained(str(path))
    hf.ps_version = getattr(hf, "ps_version", None) or "v2"
    layout = meta.get("layout")
    if layout == "transposed-input":
        hf.ps_version = meta.get("original_ps_version", "v1")
    model = InternVLChatModel.from_pretrained(str(path), config=hf, dtype=dtype or "auto",
                                              attn_implementation=attn_implementation, use_safetensors=True)
    if layout == "transposed-input":
        with torch.no_grad():
            fixed = transposed_input_weights(model.state_dict(), hf.downsample_ratio)
            model.load_state_dict(fixed)
    model.original_config = (json.loads(meta["original_config"]) if meta.get("original_config")
                             else original_config_from_native(hf))
    model.eval()
    return model, load_tokenizer(path)


def convert(src: str | Path, dst: str | Path, to: str | None = None, layout: str = "v1",
            remote_code_from: str | Path | None = None) -> dict[str, Any]:
    """Direction from the source's format unless ``to`` is given."""
    fmt = detect_format(src)
    to = to or ("native" if fmt == "original" else "original")
    if to == fmt:
        raise DataError(src, f"already in the {fmt} format")
    if to == "native":
        if remote_code_from:
            raise DataError(src, "--remote-code-from applies to --to original only")
        return to_native(src, dst, layout=layout)
    return to_original(src, dst, remote_code_from=remote_code_from)
