"""Building the V1.2 SFT model from its three downloads (internvl.model.parts), on the shared parity fixture.

The fixture checkpoint is cut into the parts' real layouts (InternViT repo, Llama repo without the nine
tokens, ``.pth`` projector), then rebuilt; everything but the nine new embedding rows must come back
bit for bit, and the ViT + projector must still reproduce the upstream ``vit_embeds``.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import weakref

import pytest
import torch
from safetensors.torch import load_file, save_file

from internvl.cli import main as cli_main
from internvl.errors import DataError
from internvl.model import parts
from internvl.model.checkpoint import _read_safetensors, load_pretrained
from internvl.model.conversation import ADDED_SPECIAL_TOKENS
from internvl.provenance import checkpoint_hash

BASE = 1200  # the fixture's vocabulary without the nine InternVL tokens
EMBED, LM_HEAD = "language_model.model.embed_tokens.weight", "language_model.lm_head.weight"


@pytest.fixture(scope="module")
def built(fixture_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("parts")
    # small shards so both inputs arrive as index + shards, the layout of the real repos
    split = parts.split_into_parts(fixture_dir / "checkpoint", root / "parts", max_shard_size="300KB")
    summary = parts.build_from_parts(split["vision_dir"], split["llm_dir"], split["mlp_path"], root / "built",
                                     seed=0, max_shard_size="200KB")
    return {"root": root, "split": split, "summary": summary, "out": root / "built",
            "state": _read_safetensors(root / "built"),
            "fixture": load_file(fixture_dir / "checkpoint" / "model.safetensors")}


def test_split_writes_the_real_part_layouts(built):
    split = built["split"]
    vision, llm = built["root"] / "parts" / "vision", built["root"] / "parts" / "llm"
    assert (vision / parts.INDEX).exists() and (llm / parts.INDEX).exists()
    assert json.loads((vision / "config.json").read_text())["model_type"] == "intern_vit_6b"
    vit_keys = set(_read_safetensors(vision))
    assert "embeddings.class_embedding" in vit_keys and "encoder.layers.0.attn.qkv.weight" in vit_keys
    llm_state = _read_safetensors(llm)
    assert llm_state["model.embed_tokens.weight"].shape[0] == BASE and llm_state["lm_head.weight"].shape[0] == BASE
    assert json.loads((llm / "config.json").read_text())["vocab_size"] == BASE
    tok_json = json.loads((llm / "tokenizer.json").read_text())
    assert not {a["content"] for a in tok_json["added_tokens"]} & set(ADDED_SPECIAL_TOKENS)
    mlp = torch.load(split["mlp_path"], weights_only=True)
    assert sorted(mlp) == sorted(parts.PROJECTOR_KEYS) and split["mlp_path"].endswith("mlp_projector/hermes_2_yi_34b.pth")


@torch.no_grad()
def test_vision_features_and_projector_reproduce_upstream(built, fixture_dir):
    model, tok = load_pretrained(built["out"], attn_implementation="eager")
    inp, exp = load_file(fixture_dir / "inputs.safetensors"), load_file(fixture_dir / "expected.safetensors")
    assert (model.extract_feature(inp["pixel_values"]) - exp["vit_embeds"]).abs().max().item() < 1e-5
    assert tok.convert_tokens_to_ids("<IMG_CONTEXT>") == model.config.image_token_id == 1202
    assert checkpoint_hash(built["out"])  # the provenance hash reads the sharded layout


def test_every_source_tensor_is_bit_identical(built):
    state, fixture = built["state"], built["fixture"]
    assert set(state) == set(fixture)
    for key, want in fixture.items():
        got = state[key]
        assert got.dtype == want.dtype and got.shape == want.shape, key
        if key in (EMBED, LM_HEAD):
            got, want = got[:BASE], want[:BASE]
        assert torch.equal(got, want), key
    assert built["summary"]["shards"] > 1 and (built["out"] / parts.INDEX).exists()


def test_new_rows_follow_the_upstream_init(built, fixture_dir, tmp_path):
    state, summary = built["state"], built["summary"]
    lm_head, embed = state[LM_HEAD], state[EMBED]
    mean = lm_head[:BASE].double().mean(0)
    for row in lm_head[BASE:]:
        assert torch.equal(row, lm_head[BASE]) and (row.double() - mean).abs().max().item() < 1e-6
    draw = torch.normal(0.0, 0.02, (9, 64), generator=torch.Generator().manual_seed(0))
    assert torch.equal(embed[BASE:], draw)
    std = embed[BASE:].std().item()
    assert 0.02 * 0.85 < std < 0.02 * 1.15 and abs(embed[BASE:].mean().item()) < 0.004  # 576 draws: ~5 sigma
    assert summary["vocab_before"] == BASE and summary["vocab_after"] == BASE + 9
    assert summary["new_token_ids"] == {t: BASE + i for i, t in enumerate(ADDED_SPECIAL_TOKENS)}
    # the added tokens carry the flags upstream's add_tokens(special_tokens=True) gave the fixture's
    flags = ("id", "content", "special", "normalized", "lstrip", "rstrip", "single_word")
    ours = json.loads((built["out"] / "tokenizer.json").read_text())["added_tokens"][-9:]
    ref = json.loads((fixture_dir / "checkpoint" / "tokenizer.json").read_text())["added_tokens"][-9:]
    assert [{f: a[f] for f in flags} for a in ours] == [{f: a[f] for f in flags} for a in ref]
    # another seed changes only the nine input rows
    split = built["split"]
    parts.build_from_parts(split["vision_dir"], split["llm_dir"], split["mlp_path"], tmp_path / "s1", seed=1)
    other = _read_safetensors(tmp_path / "s1")
    assert not torch.equal(other[EMBED][BASE:], embed[BASE:])
    assert all(torch.equal(other[k], state[k]) for k in state if k != EMBED)


def test_config_is_the_original_layout(built, fixture_dir):
    cfg = json.loads((built["out"] / "config.json").read_text())
    fixture = json.loads((fixture_dir / "checkpoint" / "config.json").read_text())
    vit_repo = json.loads((built["root"] / "parts" / "vision" / "config.json").read_text())
    assert cfg["vision_config"] == vit_repo
    assert cfg["llm_config"]["vocab_size"] == BASE + 9 and cfg["llm_config"]["rope_theta"] == 5e6
    assert {k: v for k, v in cfg["llm_config"].items() if k != "torch_dtype"} == \
        {k: v for k, v in fixture["llm_config"].items() if k != "torch_dtype"}
    for key in ("architectures", "model_type", "auto_map", "select_layer", "force_image_size", "downsample_ratio",
                "template", "pad2square", "use_backbone_lora", "use_llm_lora", "torch_dtype"):
        assert cfg[key] == fixture[key], key


def test_tokens_already_present_rebuild_the_checkpoint_exactly(fixture_dir, tmp_path):
    split = parts.split_into_parts(fixture_dir / "checkpoint", tmp_path / "parts", drop_added_tokens=False)
    out = parts.build_from_parts(split["vision_dir"], split["llm_dir"], split["mlp_path"], tmp_path / "built")
    assert out["vocab_before"] == out["vocab_after"] == BASE + 9 and out["files"].count("model.safetensors") == 1
    got, want = load_file(tmp_path / "built" / "model.safetensors"), load_file(fixture_dir / "checkpoint/model.safetensors")
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)


def test_memory_is_bounded_by_one_shard(built, tmp_path, monkeypatch):
    """Count the bytes of source tensors still alive at every read: streaming keeps that to about one shard."""
    live: dict[int, int] = {}
    peak = [0]
    real_open = parts.safe_open

    class Tracked:
        def __init__(self, *a, **kw):
            self._fh = real_open(*a, **kw)

        def __enter__(self):
            self._fh.__enter__()
            return self

        def __exit__(self, *exc):
            return self._fh.__exit__(*exc)

        def keys(self):
            return self._fh.keys()

        def get_slice(self, key):
            return self._fh.get_slice(key)

        def get_tensor(self, key):
            t = self._fh.get_tensor(key)
            live[id(t)] = t.numel() * t.element_size()
            weakref.finalize(t, live.pop, id(t), None)
            peak[0] = max(peak[0], sum(live.values()))
            return t

    monkeypatch.setattr(parts, "safe_open", Tracked)
    split, limit = built["split"], 100_000
    out = parts.build_from_parts(split["vision_dir"], split["llm_dir"], split["mlp_path"], tmp_path / "b",
                                 max_shard_size=limit)
    largest = max(t.numel() * t.element_size() for t in built["state"].values())
    assert out["shards"] >= 10 and out["total_bytes"] > 10 * limit
    assert peak[0] <= limit + largest, (peak[0], limit, largest)
    assert out["peak_buffered_bytes"] <= limit + largest
    for name in out["files"]:
        if name.endswith(".safetensors"):
            size = sum(t.numel() * t.element_size() for t in load_file(tmp_path / "b" / name).values())
            assert size <= limit or len(load_file(tmp_path / "b" / name)) == 1, name


def test_bad_inputs_name_the_file(built, tmp_path):
    split = built["split"]
    # (a) a pickle-only ViT repo is refused, never unpickled
    vit = tmp_path / "vit_bin"
    vit.mkdir()
    shutil.copyfile(built["root"] / "parts/vision/config.json", vit / "config.json")
    (vit / "pytorch_model.bin").write_bytes(b"not opened")
    with pytest.raises(DataError, match=r"pytorch_model\.bin.*safetensors"):
        parts.build_from_parts(vit, split["llm_dir"], split["mlp_path"], tmp_path / "o1")
    # (b) a projector of the wrong shape names the file and the key
    mlp = torch.load(split["mlp_path"], weights_only=True)
    mlp["1.weight"] = mlp["1.weight"][:, :128].clone()
    torch.save(mlp, tmp_path / "bad.pth")
    with pytest.raises(DataError, match=r"bad\.pth.*'1\.weight'.*\(64, 256\)"):
        parts.build_from_parts(split["vision_dir"], split["llm_dir"], tmp_path / "bad.pth", tmp_path / "o2")
    # a pickle with code in it is refused by weights_only
    torch.save({"0.weight": io.BytesIO()}, tmp_path / "code.pth")
    with pytest.raises(DataError, match=r"code\.pth.*weights_only"):
        parts.build_from_parts(split["vision_dir"], split["llm_dir"], tmp_path / "code.pth", tmp_path / "o3")
    # (c) a shard named by the index but not downloaded
    llm = tmp_path / "llm"
    shutil.copytree(split["llm_dir"], llm)
    shard = sorted(p for p in llm.glob("model-*.safetensors"))[-1]
    shard.unlink()
    with pytest.raises(DataError, match=shard.name):
        parts.build_from_parts(split["vision_dir"], llm, split["mlp_path"], tmp_path / "o4")
    # (d) weights that do not fit their config name the repo
    vit = tmp_path / "vit_cfg"
    shutil.copytree(split["vision_dir"], vit)
    cfg = json.loads((vit / "config.json").read_text())
    (vit / "config.json").write_text(json.dumps({**cfg, "intermediate_size": 128}))
    with pytest.raises(DataError, match=r"vit_cfg.*shape"):
        parts.build_from_parts(vit, split["llm_dir"], split["mlp_path"], tmp_path / "o5")
    assert not any(p.name.startswith((".o", "o")) for p in tmp_path.iterdir() if p.name != "llm"), \
        "a failed build leaves no output or staging folder"


def test_cli_prints_the_summary(built, tmp_path, capsys):
    split = built["split"]
    rc = cli_main(["build-parts", split["vision_dir"], split["llm_dir"], split["mlp_path"], "--out",
                   str(tmp_path / "c"), "--seed", "3"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["init"]["seed"] == 3 and summary["vocab_after"] == BASE + 9
    rc = cli_main(["build-parts", split["vision_dir"], split["llm_dir"], str(tmp_path / "none.pth"), "--out",
                   str(tmp_path / "d")])
    assert rc == 2 and "none.pth" in capsys.readouterr().err


# --------------------------------------------------------------------------- the Yi tokenizer path ----


def _yi_like_sentencepiece() -> bytes:
    """A tiny BPE sentencepiece model laid out like Yi's: ids 0-8 as in Yi, byte fallback, no dummy prefix."""
    import sentencepiece as spm

    rng = random.Random(0)
    words = "red blue green circle square chart shows the of counts document image left right 12 345 naïve café 中文"
    corpus = [" ".join(rng.choice(words.split()) for _ in range(8)) + rng.choice(["\n", "  ", ". "]) for _ in range(400)]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=buf, vocab_size=360, model_type="bpe", byte_fallback=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, unk_piece="<unk>", bos_piece="<|startoftext|>",
        eos_piece="<|endoftext|>", control_symbols=["<|reserved_3|>", "<|reserved_4|>", "<|reserved_5|>"],
        user_defined_symbols=["<|im_start|>", "<|im_end|>", "<|im_sep|>"], hard_vocab_limit=False, minloglevel=2,
        add_dummy_prefix=False, normalization_rule_name="identity", remove_extra_whitespaces=False,
        split_digits=True, allow_whitespace_only_pieces=True)
    return buf.getvalue()


def _sentencepiece_llm(src, dst, model: bytes) -> int:
    """The split Llama repo with its tokenizer replaced by a sentencepiece-only one (Yi's file set)."""
    import sentencepiece as spm

    size = spm.SentencePieceProcessor(model_proto=model).get_piece_size()
    dst.mkdir()
    state = _read_safetensors(src)
    gen = torch.Generator().manual_seed(5)
    for key in ("model.embed_tokens.weight", "lm_head.weight"):
        state[key] = torch.randn(size, state[key].shape[1], generator=gen)
    save_file(state, str(dst / "model.safetensors"), metadata={"format": "pt"})
    cfg = json.loads((src / "config.json").read_text())
    (dst / "config.json").write_text(json.dumps({**cfg, "vocab_size": size}))
    (dst / "tokenizer.model").write_bytes(model)
    (dst / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "add_bos_token": False, "add_eos_token": False, "legacy": True,
        "bos_token": "<|startoftext|>", "eos_token": "<|im_end|>", "unk_token": "<unk>", "pad_token": "<unk>",
        "model_max_length": 4096, "sp_model_kwargs": {}, "clean_up_tokenization_spaces": False}))
    return size


def test_sentencepiece_llm_repo_builds_and_encodes_as_sentencepiece(built, tmp_path):
    import sentencepiece as spm

    model = _yi_like_sentencepiece()
    size = _sentencepiece_llm(built["root"] / "parts" / "llm", tmp_path / "yi", model)
    split = built["split"]
    out = parts.build_from_parts(split["vision_dir"], tmp_path / "yi", split["mlp_path"], tmp_path / "built")
    assert out["vocab_before"] == size and out["new_token_ids"]["<IMG_CONTEXT>"] == size + 2
    m, tok = load_pretrained(tmp_path / "built", attn_implementation="eager")
    assert len(tok) == size + 9 and m.lm_head.weight.shape[0] == size + 9
    sp = spm.SentencePieceProcessor(model_proto=model)
    text = "<|im_start|>user\n<img><IMG_CONTEXT><IMG_CONTEXT></img>\nWhat is the red circle?<|im_end|>"
    # the slow 4.36 LlamaTokenizer: added tokens split off, sp.encode on each remaining chunk
    want = (sp.encode("<|im_start|>user\n") + [size, size + 2, size + 2, size + 1]
            + sp.encode("\nWhat is the red circle?<|im_end|>"))
    assert tok(text, add_special_tokens=False).input_ids == want
    ids = tok(m.build_prompt("What is this?"), return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        logits = m(pixel_values=torch.zeros(1, 3, 56, 56), input_ids=ids, image_flags=torch.ones(1, 1)).logits
    assert logits.shape == (1, ids.shape[1], size + 9)


def test_sentencepiece_mismatch_is_refused(built, tmp_path, monkeypatch):
    """Without add_prefix_space from the model's add_dummy_prefix, transformers 5 prepends '▁': caught."""
    from internvl.model import checkpoint

    _sentencepiece_llm(built["root"] / "parts" / "llm", tmp_path / "yi", _yi_like_sentencepiece())
    monkeypatch.setattr(checkpoint, "sentencepiece_tokenizer_kwargs", lambda path: {})
    split = built["split"]
    with pytest.raises(DataError, match=r"tokenizer\.model.*sentencepiece"):
        parts.build_from_parts(split["vision_dir"], tmp_path / "yi", split["mlp_path"], tmp_path / "built")
