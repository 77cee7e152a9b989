"""Build the V1.2 SFT's starting checkpoint from its three downloads, as the original finetune script does.

V1.2 was not fine-tuned from a finished checkpoint: ``internvl_chat_finetune.py`` (``--vision_path
--llm_path --mlp_path``) joins InternViT-6B-448px-V1-2, Nous-Hermes-2-Yi-34B and the pre-trained projector
``mlp_projector/hermes_2_yi_34b.pth``, adds the nine InternVL tokens to the Yi tokenizer and resizes the
LLM embeddings. :func:`build_from_parts` writes that model once, in the original on-disk layout every
other step of this project reads (``config.json`` = InternVLChatConfig, ``vision_model.*``,
``mlp1.{0,1,3}.*``, ``language_model.*``), so the SFT starts from it like from any checkpoint.

Inputs are read in their real layouts and without pickle execution: safetensors (one file or shards +
``model.safetensors.index.json``), ``config.json`` of each repo, the tokenizer by the class its
``tokenizer_config.json`` names, the ``.pth`` projector with ``torch.load(weights_only=True)``.
Memory stays bounded by one output shard plus one tensor: tensors are read one at a time and shards are
written as they fill (the real model is 80 GB).

New-token rows follow the original (transformers 4.36 ``resize_token_embeddings`` + the script's fix-up):
* lm_head: the mean of the old lm_head rows (computed in float32, cast to the weight's dtype; the
  original averaged the bf16 matrix on the GPU, which also accumulates in float32);
* input embeddings: ``normal(0, initializer_range)``, the draw 4.36's ``_init_weights`` makes. The original
  drew from the process' global RNG (its values are not recoverable); here a ``torch.Generator`` seeded
  with ``seed`` draws the (num_new, hidden) block in float32, cast to the weight's dtype.
Every other tensor keeps its source dtype and bytes.

:func:`split_into_parts` is the inverse: it cuts an original-layout checkpoint into the three downloads'
layouts (an InternViT repo, a Llama repo without the nine tokens, a ``.pth`` projector). Tests build
their inputs with it from the shared parity fixture; the demo can use it to run the same from-parts path.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from internvl.errors import DataError
from internvl.model.config import hf_config
from internvl.model.conversation import ADDED_SPECIAL_TOKENS, IMG_CONTEXT_TOKEN
from internvl.model.shards import INDEX_NAME as INDEX
from internvl.model.shards import ShardWriter, parse_size

log = logging.getLogger(__name__)

PROJECTOR_KEYS = ("0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias")
DEFAULT_PROJECTOR = Path("mlp_projector") / "hermes_2_yi_34b.pth"
_EMBED, _LM_HEAD = "model.embed_tokens.weight", "lm_head.weight"
_DTYPES = {"F64": torch.float64, "F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}
# Non-persistent buffers some older Llama checkpoints still carry; transformers recomputes them.
_IGNORED_LLM_KEYS = re.compile(r"\.rotary_emb\.inv_freq$")


# --------------------------------------------------------------------------- reading the parts ------


class _Tensors:
    """Names, shapes and dtypes of a safetensors repo (one file or an index + shards), read lazily."""

    def __init__(self, repo: Path, what: str):
        self.repo, self.what = repo, what
        self.where: dict[str, Path] = {}  # key -> file
        self.meta: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
        index = repo / INDEX
        if index.exists():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError) as exc:
                raise DataError(index, f"not a safetensors index ({exc})", field="weight_map") from None
            files = sorted(set(weight_map.values()))
            for name in files:
                if not (repo / name).is_file():
                    raise DataError(repo / name, f"{what} shard named in {index.name} is missing (download incomplete?)")
        elif (repo / "model.safetensors").is_file():
            weight_map, files = None, ["model.safetensors"]
        else:
            pickles = sorted(p.name for p in repo.glob("*.bin")) + sorted(p.name for p in repo.glob("*.pt"))
            if pickles:
                raise DataError(repo / pickles[0], f"{what} weights are a pickle ({', '.join(pickles[:3])}); they are "
                                "never unpickled here: fetch the repo's *.safetensors files instead")
            raise DataError(repo, f"{what}: no model.safetensors or {INDEX}")
        for name in files:
            with safe_open(str(repo / name), framework="pt") as fh:
                for key in fh.keys():
                    if weight_map is not None and weight_map.get(key) != name:
                        raise DataError(repo / INDEX, f"{key} is stored in {name} but the index says "
                                        f"{weight_map.get(key)!r}", field="weight_map")
                    sl = fh.get_slice(key)
                    self.where[key] = repo / name
                    self.meta[key] = (tuple(sl.get_shape()), _DTYPES[sl.get_dtype()])
        if weight_map is not None:
            lost = sorted(set(weight_map) - set(self.where))
            if lost:
                raise DataError(repo / INDEX, f"{len(lost)} tensors named in the index are in no shard: {lost[:5]}",
                                field="weight_map")

    def by_file(self, keys: list[str]) -> Iterator[tuple[Path, list[str]]]:
        """Keys grouped by file, each file's keys in the given order (one open per file)."""
        groups: dict[Path, list[str]] = {}
        for k in keys:
            groups.setdefault(self.where[k], []).append(k)
        yield from groups.items()


def _read_config(repo: Path, what: str) -> dict[str, Any]:
    f = repo / "config.json"
    if not f.is_file():
        raise DataError(f, f"{what}: config.json missing (not a Hugging Face model repo?)")
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f, f"not valid JSON ({exc})", line=exc.lineno) from None


def _vision_config(repo: Path) -> dict[str, Any]:
    cfg = _read_config(repo, "vision part")
    if cfg.get("model_type") != "intern_vit_6b":
        raise DataError(repo / "config.json", f"model_type {cfg.get('model_type')!r}: expected an InternViT repo "
                        "('intern_vit_6b', e.g. OpenGVLab/InternViT-6B-448px-V1-2)", field="model_type")
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "image_size",
                "patch_size"):
        if key not in cfg:
            raise DataError(repo / "config.json", "missing", field=key)
    out = copy.deepcopy(cfg)
    out.pop("auto_map", None)  # names the ViT repo's remote-code files, which the chat checkpoint does not carry
    return out


def _llm_config(repo: Path) -> dict[str, Any]:
    cfg = _read_config(repo, "LLM part")
    arch = (cfg.get("architectures") or ["LlamaForCausalLM"])[0]
    if arch != "LlamaForCausalLM" or cfg.get("model_type", "llama") != "llama":
        raise DataError(repo / "config.json", f"{arch} / {cfg.get('model_type')!r}: V1.2's LLM is a Llama "
                        "(Nous-Hermes-2-Yi-34B)", field="architectures")
    if cfg.get("tie_word_embeddings"):
        raise DataError(repo / "config.json", "tied embeddings: V1.2's LLM has a separate lm_head",
                        field="tie_word_embeddings")
    out = copy.deepcopy(cfg)
    # A config written by transformers 5 carries rope_parameters and dtype; write the 4.36 keys V1.2 uses.
    rope = out.pop("rope_parameters", None)
    if rope and "rope_theta" not in out:
        if rope.get("rope_type", "default") != "default":
            raise DataError(repo / "config.json", f"rope_type {rope.get('rope_type')!r} is not supported",
                            field="rope_parameters")
        out["rope_theta"] = rope["rope_theta"]
    if "dtype" in out and "torch_dtype" not in out:
        out["torch_dtype"] = out.pop("dtype")
    return out


def load_projector(path: Path, vit_hidden: int, llm_hidden: int, downsample_ratio: float) -> dict[str, torch.Tensor]:
    """The ``mlp1`` state dict of a ``.pth`` file, unpickled with ``weights_only=True``, shapes checked."""
    if not path.is_file():
        raise DataError(path, "projector file missing (the ViT repo's mlp_projector/*.pth)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling refusal or corruption is reported the same way
        raise DataError(path, f"not a plain tensor state dict readable with torch.load(weights_only=True): {exc}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(path, "expected a dict of tensors (mlp1's state dict)")
    if set(state) != set(PROJECTOR_KEYS):
        raise DataError(path, f"keys {sorted(state)}; mlp1 has {list(PROJECTOR_KEYS)} (LayerNorm, Linear, GELU, Linear)")
    width = int(vit_hidden * round(1 / downsample_ratio) ** 2)
    expected = {"0.weight": (width,), "0.bias": (width,), "1.weight": (llm_hidden, width), "1.bias": (llm_hidden,),
                "3.weight": (llm_hidden, llm_hidden), "3.bias": (llm_hidden,)}
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise DataError(path, f"shape {tuple(state[key].shape)}, expected {shape} (ViT hidden {vit_hidden} x "
                            f"(1/downsample_ratio {downsample_ratio})^2 = {width} in, LLM hidden {llm_hidden} out)",
                            field=key)
    return state


# --------------------------------------------------------------------------- writing shards ---------


def _staging(out_dir: Path) -> Path:
    tmp = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _publish(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by the finished ``tmp`` (a reader never sees a half-written checkpoint)."""
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old is not None:
        shutil.rmtree(old)


def _generation_config(llm_config: dict[str, Any]) -> dict[str, Any]:
    return {"_from_model_config": True, "bos_token_id": llm_config.get("bos_token_id"),
            "eos_token_id": llm_config.get("eos_token_id")}


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# --------------------------------------------------------------------------- build ------------------


def _add_internvl_tokens(tok, llm_dir: Path) -> tuple[int, int, dict[str, int]]:
    """Add the nine tokens as the original (``add_tokens(..., special_tokens=True)``, upstream order)."""
    before = len(tok)
    tok.add_tokens(list(ADDED_SPECIAL_TOKENS), special_tokens=True)
    ids = {t: tok.convert_tokens_to_ids(t) for t in ADDED_SPECIAL_TOKENS}
    n_new = len(tok) - before
    new_ids = sorted(i for i in ids.values() if i >= before)
    if new_ids != list(range(before, before + n_new)):
        raise DataError(llm_dir, f"the added InternVL tokens got ids {ids}, not the {n_new} ids after the base "
                        f"vocabulary of {before}")
    return before, n_new, ids


def _check_sentencepiece(tok, llm_dir: Path) -> None:
    """A sentencepiece-only tokenizer, as transformers 5 converts it, must encode as sentencepiece does.

    V1.2's slow 4.36 ``LlamaTokenizer`` (legacy mode) splits off added tokens and runs ``sp.encode`` on
    each remaining chunk; the probes compare exactly that.
    """
    model_file = llm_dir / "tokenizer.model"
    if (llm_dir / "tokenizer.json").exists() or not model_file.exists():
        return
    tok_cfg = llm_dir / "tokenizer_config.json"
    if tok_cfg.exists() and json.loads(tok_cfg.read_text()).get("legacy") is False:
        log.warning("%s: legacy=false; the slow tokenizer's non-legacy prefix handling is not re-checked", tok_cfg)
        return
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
    probes = ["Describe the image in detail.", "  two leading spaces\nand a newline", "3.14 x 42 = 131.88",
              "<|im_start|>user\nWhat is this?<|im_end|><|im_start|>assistant\n", "naïve café, 中文, emoji 🙂"]
    for text in probes:
        got = tok(text, add_special_tokens=False).input_ids
        want = sp.encode(text)
        if got != want:
            raise DataError(model_file, f"transformers' conversion of this sentencepiece model encodes {text!r} as "
                            f"{got[:16]}, sentencepiece as {want[:16]}: the SFT would not see V1.2's token ids")


def build_from_parts(vision_dir: str | Path, llm_dir: str | Path, mlp_path: str | Path, out_dir: str | Path, *,
                     template: str = "Hermes-2", select_layer: int = -1, force_image_size: int | None = None,
                     downsample_ratio: float = 0.5, seed: int = 0, max_shard_size: int | str = "5GB") -> dict[str, Any]:
    """Join an InternViT repo, a Llama repo and an ``mlp1`` ``.pth`` into an original-layout checkpoint.

    Returns a summary: part shapes and dtypes, the vocabulary before and after, the new tokens' ids, the
    files written and the peak tensor bytes buffered. The result loads with
    :func:`internvl.model.checkpoint.load_pretrained`.
    """
    from internvl.model.checkpoint import load_base_tokenizer

    vision_dir, llm_dir, mlp_path, out_dir = Path(vision_dir), Path(llm_dir), Path(mlp_path), Path(out_dir)
    vc, lc = _vision_config(vision_dir), _llm_config(llm_dir)
    vit, llm = _Tensors(vision_dir, "vision part"), _Tensors(llm_dir, "LLM part")
    projector = load_projector(mlp_path, vc["hidden_size"], lc["hidden_size"], downsample_ratio)

    tok = load_base_tokenizer(llm_dir)
    _check_sentencepiece(tok, llm_dir)
    for key in (_EMBED, _LM_HEAD):
        if key not in llm.meta:
            raise DataError(llm_dir, f"LLM weights lack {key}")
        if llm.meta[key][0][0] != len(tok):
            raise DataError(llm.where[key], f"{llm.meta[key][0][0]} rows but the tokenizer has {len(tok)} tokens: "
                            "the original's resize would cut or misplace rows", field=key)
    vocab_before, n_new, token_ids = _add_internvl_tokens(tok, llm_dir)
    vocab_after = vocab_before + n_new
    hidden = lc["hidden_size"]

    lc["vocab_size"] = vocab_after
    dtypes = {"vision": vit.meta[next(iter(vit.meta))][1], "llm": llm.meta[_EMBED][1],
              "projector": projector["1.weight"].dtype}
    if len(set(dtypes.values())) > 1:
        log.warning("parts differ in dtype %s; each tensor keeps its own, config torch_dtype follows the LLM", dtypes)
    cfg = {
        "architectures": ["InternVLChatModel"], "model_type": "internvl_chat",
        "auto_map": {"AutoConfig": "configuration_internvl_chat.InternVLChatConfig",
                     "AutoModel": "modeling_internvl_chat.InternVLChatModel"},
        "vision_config": vc, "llm_config": lc, "select_layer": select_layer,
        "force_image_size": force_image_size or vc["image_size"], "downsample_ratio": downsample_ratio,
        "template": template, "pad2square": False, "use_backbone_lora": 0, "use_llm_lora": 0,
        "torch_dtype": _dtype_name(dtypes["llm"]),
    }

    # Output names and shapes, checked against what load_pretrained will expect before writing anything.
    plan: list[tuple[str, str, str, tuple[int, ...], torch.dtype]] = []  # (out name, part, src key, shape, dtype)
    for key, (shape, dtype) in vit.meta.items():
        plan.append(("vision_model." + key, "vision", key, shape, dtype))
    for key in PROJECTOR_KEYS:
        plan.append(("mlp1." + key, "projector", key, tuple(projector[key].shape), projector[key].dtype))
    for key, (shape, dtype) in llm.meta.items():
        if _IGNORED_LLM_KEYS.search(key):
            continue
        if key in (_EMBED, _LM_HEAD):
            shape = (vocab_after, *shape[1:])
        plan.append(("language_model." + key, "llm", key, shape, dtype))
    _check_plan(plan, cfg, token_ids[IMG_CONTEXT_TOKEN], vision_dir, llm_dir, mlp_path)

    tmp = _staging(out_dir)
    try:
        writer = ShardWriter(tmp, max_shard_size)
        gen = torch.Generator().manual_seed(seed)
        init_range = float(lc.get("initializer_range", 0.02))
        _stream(writer, vit, [p[2] for p in plan if p[1] == "vision"], "vision_model.")
        for key in PROJECTOR_KEYS:
            writer.add("mlp1." + key, projector[key])

        def resize(key: str, t: torch.Tensor) -> torch.Tensor:
            if n_new == 0 or key not in (_EMBED, _LM_HEAD):
                return t
            new = torch.empty((vocab_after, hidden), dtype=t.dtype)
            new[:vocab_before] = t
            if key == _EMBED:
                new[vocab_before:] = torch.normal(0.0, init_range, (n_new, hidden), generator=gen).to(t.dtype)
            else:
                new[vocab_before:] = _row_mean(t).to(t.dtype)
            return new

        _stream(writer, llm, [p[2] for p in plan if p[1] == "llm"], "language_model.", resize)
        files = writer.close()
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        (tmp / "generation_config.json").write_text(json.dumps(_generation_config(lc), indent=2) + "\n")
        tok.save_pretrained(str(tmp))
        files = sorted({*files, *(p.name for p in tmp.iterdir())})
        _publish(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary = {
        "out_dir": str(out_dir), "files": files, "shards": writer.count, "tensors": len(plan),
        "total_bytes": writer.total_bytes, "peak_buffered_bytes": writer.peak_bytes,
        "vision": {"dir": str(vision_dir), "hidden_size": vc["hidden_size"], "layers": vc["num_hidden_layers"],
                   "image_size": vc["image_size"], "dtype": _dtype_name(dtypes["vision"])},
        "llm": {"dir": str(llm_dir), "hidden_size": hidden, "layers": lc["num_hidden_layers"],
                "dtype": _dtype_name(dtypes["llm"])},
        "projector": {"path": str(mlp_path), "shapes": {k: list(v.shape) for k, v in projector.items()},
                      "dtype": _dtype_name(dtypes["projector"])},
        "vocab_before": vocab_before, "vocab_after": vocab_after, "new_token_ids": token_ids,
        "init": {"seed": seed, "initializer_range": float(lc.get("initializer_range", 0.02)),
                 "lm_head_new_rows": "mean of the old lm_head rows",
                 "embed_new_rows": "normal(0, initializer_range), torch.Generator(seed)"},
    }
    log.info("built %s from parts: %d tensors in %d shard(s), vocab %d -> %d", out_dir, len(plan), writer.count,
             vocab_before, vocab_after)
    return summary


def _row_mean(t: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Mean over rows in float32, a few thousand rows at a time (no float32 copy of a 64k x 7168 matrix)."""
    acc = torch.zeros(t.shape[1], dtype=torch.float32)
    for part in t.split(chunk):
        acc += part.float().sum(0)
    return acc / t.shape[0]


def _stream(writer: ShardWriter, src: _Tensors, keys: list[str], prefix: str, transform=None) -> None:
    for path, group in src.by_file(keys):
        with safe_open(str(path), framework="pt") as fh:
            for key in group:
                t = fh.get_tensor(key)
                writer.add(prefix + key, transform(key, t) if transform else t)
                del t


def _check_plan(plan, cfg: dict[str, Any], image_token_id: int, vision_dir: Path, llm_dir: Path, mlp_path: Path) -> None:
    from internvl.model.checkpoint import hf_to_original
    from internvl.model.modeling import InternVLChatModel

    try:
        hf = hf_config(cfg, image_token_id=image_token_id)
    except (NotImplementedError, KeyError) as exc:
        raise DataError(vision_dir / "config.json", f"unsupported combination: {exc}") from None
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in hf_to_original(InternVLChatModel(hf).state_dict()).items()}
    got = {p[0]: p for p in plan}
    source = {"vision": vision_dir, "llm": llm_dir, "projector": mlp_path}
    unexpected = sorted(set(got) - set(expected))
    if unexpected:
        part = got[unexpected[0]][1]
        raise DataError(source[part], f"unexpected weights for V1.2's {part} part: {unexpected[:5]}")
    missing = sorted(set(expected) - set(got))
    if missing:
        part = "vision" if missing[0].startswith("vision_model.") else "llm"
        raise DataError(source[part], f"weights missing for V1.2's {part} part: {missing[:5]}")
    for name, (_, part, key, shape, _) in got.items():
        if shape != expected[name]:
            raise DataError(source[part], f"shape {shape} does not match its config.json ({expected[name]})", field=key)


# --------------------------------------------------------------------------- split ------------------


def _strip_tokens(dst: Path, removed: set[str]) -> None:
    """Remove added tokens from the tokenizer files in ``dst`` (tokenizer.json, tokenizer_config.json, ...)."""
    f = dst / "tokenizer.json"
    if f.exists():
        data = json.loads(f.read_text())
        vocab = data.get("model", {}).get("vocab") or {}
        inside = sorted(t for t in removed if t in vocab)
        if inside:
            raise DataError(f, f"{inside} are part of the model vocabulary, not added tokens: cannot be removed")
        data["added_tokens"] = [a for a in data.get("added_tokens", []) if a["content"] not in removed]
        f.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    f = dst / "tokenizer_config.json"
    if f.exists():
        data = json.loads(f.read_text())
        if "added_tokens_decoder" in data:
            data["added_tokens_decoder"] = {k: v for k, v in data["added_tokens_decoder"].items()
                                            if v.get("content") not in removed}
        for key in ("additional_special_tokens", "extra_special_tokens"):
            if isinstance(data.get(key), list):
                data[key] = [t for t in data[key] if (t.get("content") if isinstance(t, dict) else t) not in removed]
        f.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    f = dst / "special_tokens_map.json"
    if f.exists():
        data = json.loads(f.read_text())
        if isinstance(data.get("additional_special_tokens"), list):
            data["additional_special_tokens"] = [t for t in data["additional_special_tokens"]
                                                 if (t.get("content") if isinstance(t, dict) else t) not in removed]
        f.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    f = dst / "added_tokens.json"
    if f.exists():
        data = {k: v for k, v in json.loads(f.read_text()).items() if k not in removed}
        f.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def split_into_parts(checkpoint_dir: str | Path, out_root: str | Path, *, drop_added_tokens: bool = True,
                     max_shard_size: int | str = "5GB") -> dict[str, Any]:
    """Cut an original-layout checkpoint into the three downloads of the V1.2 SFT, in their real layouts.

    ``out_root/vision``: an InternViT repo (``config.json`` = the checkpoint's ``vision_config``,
    safetensors keyed without ``vision_model.``) holding ``mlp_projector/hermes_2_yi_34b.pth`` (``mlp1`` as a
    plain tensor dict, written with ``torch.save``), as the ViT repo ships it. ``out_root/llm``: a Llama
    repo (``config.json`` = ``llm_config``, keys ``model.*`` and ``lm_head.weight``, the tokenizer files).
    With ``drop_added_tokens`` the nine InternVL tokens are removed from the tokenizer and the embedding
    and lm_head rows cut to the base vocabulary, as in Nous-Hermes-2-Yi-34B. Returns the three paths.
    """
    from internvl.convert import TOKENIZER_FILES
    from internvl.model.checkpoint import load_base_tokenizer

    src, out_root = Path(checkpoint_dir), Path(out_root)
    cfg = _read_config(src, "checkpoint")
    if "vision_config" not in cfg or "llm_config" not in cfg:
        raise DataError(src / "config.json", "not an InternVLChatConfig (vision_config / llm_config missing)")
    tensors = _Tensors(src, "checkpoint")
    dtype = cfg.get("torch_dtype") or "float32"
    vision_dir, llm_dir = out_root / "vision", out_root / "llm"
    mlp_path = vision_dir / DEFAULT_PROJECTOR
    for d in (vision_dir, llm_dir, mlp_path.parent):
        d.mkdir(parents=True, exist_ok=True)

    llm_cfg = copy.deepcopy(cfg["llm_config"])
    llm_cfg.setdefault("architectures", ["LlamaForCausalLM"])
    llm_cfg.setdefault("model_type", "llama")
    llm_cfg["torch_dtype"] = dtype
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, llm_dir / name)
    full = load_base_tokenizer(src)
    ids = [full.convert_tokens_to_ids(t) for t in ADDED_SPECIAL_TOKENS]
    base = len(full)
    if drop_added_tokens:
        base = len(full) - len(ADDED_SPECIAL_TOKENS)
        if ids != list(range(base, len(full))):
            raise DataError(src, f"the InternVL tokens have ids {ids}, not the last {len(ids)} of {len(full)}: "
                            "no base vocabulary to cut back to")
        _strip_tokens(llm_dir, set(ADDED_SPECIAL_TOKENS))
        stripped = load_base_tokenizer(llm_dir)
        if len(stripped) != base or any(stripped.convert_tokens_to_ids(t) not in (None, stripped.unk_token_id)
                                        for t in ADDED_SPECIAL_TOKENS):
            raise DataError(llm_dir, f"removing the InternVL tokens left {len(stripped)} tokens, expected {base}")
        llm_cfg["vocab_size"] = base

    vit_keys = [k for k in tensors.meta if k.startswith("vision_model.")]
    mlp_keys = [k for k in tensors.meta if k.startswith("mlp1.")]
    llm_keys = [k for k in tensors.meta if k.startswith("language_model.")]
    other = sorted(set(tensors.meta) - set(vit_keys) - set(mlp_keys) - set(llm_keys))
    if other:
        raise DataError(src, f"keys outside vision_model./mlp1./language_model.: {other[:5]}")
    limit = parse_size(max_shard_size)

    def write(dst: Path, keys: list[str], prefix: str, cut: int | None = None) -> list[str]:
        writer = ShardWriter(dst, limit)
        for path, group in tensors.by_file(keys):
            with safe_open(str(path), framework="pt") as fh:
                for key in group:
                    t = fh.get_tensor(key)
                    name = key[len(prefix):]
                    if cut is not None and name in (_EMBED, _LM_HEAD):
                        t = t[:cut].clone()
                    writer.add(name, t)
        return writer.close()

    vit_cfg = copy.deepcopy(cfg["vision_config"])
    vit_cfg.setdefault("architectures", ["InternVisionModel"])
    vit_cfg["torch_dtype"] = dtype
    (vision_dir / "config.json").write_text(json.dumps(vit_cfg, indent=2, sort_keys=True) + "\n")
    vit_files = write(vision_dir, vit_keys, "vision_model.")
    mlp = {}
    for path, group in tensors.by_file(mlp_keys):
        with safe_open(str(path), framework="pt") as fh:
            mlp.update({k[len("mlp1."):]: fh.get_tensor(k) for k in group})
    torch.save(mlp, mlp_path)
    (llm_dir / "config.json").write_text(json.dumps(llm_cfg, indent=2, sort_keys=True) + "\n")
    (llm_dir / "generation_config.json").write_text(json.dumps(_generation_config(llm_cfg), indent=2) + "\n")
    llm_files = write(llm_dir, llm_keys, "language_model.", cut=base if drop_added_tokens else None)
    return {"vision_dir": str(vision_dir), "llm_dir": str(llm_dir), "mlp_path": str(mlp_path),
            "vision_files": vit_files, "llm_files": llm_files, "base_vocab": base,
            "removed_tokens": list(ADDED_SPECIAL_TOKENS) if drop_added_tokens else []}
