"""``internvl convert``: original <-> transformers-native InternVL, on the official V1.2 parity fixture.

Measured on the fixture (fp32, CPU), max |logits - official logits| over [2, 38, 1209]:
  our model, original checkpoint ...................................... 1.3e-05
  native layout v1, read with internvl.convert.load_native ............ identical to the line above (0.0)
  native layout v1, stock InternVLForConditionalGeneration ............ 12.62 (v2 pixel-shuffle order)
  native layout transposed-input, stock class, transposed pixel_values  1.9e-05
  native layout transposed-input, stock class, plain pixel_values ..... 15.8
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from internvl import convert as cv
from internvl.cli import main as cli_main
from internvl.model.checkpoint import build_model, load_pretrained, load_tokenizer, save_pretrained
from internvl.model.config import preset

CKPT_FILES = ["model.safetensors", "config.json", "generation_config.json", "tokenizer.json",
              "tokenizer_config.json", "special_tokens_map.json"]


@pytest.fixture(scope="module")
def conv(fixture_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("convert")
    src = fixture_dir / "checkpoint"
    assert cli_main(["convert", str(src), str(root / "native_v1")]) == 0  # default: -> native, layout v1
    cv.to_native(src, root / "native_tr", layout="transposed-input")
    assert cli_main(["convert", str(root / "native_v1"), str(root / "back_v1")]) == 0
    cv.to_original(root / "native_tr", root / "back_tr")
    return root


@pytest.fixture(scope="module")
def batch(fixture_dir):
    inp, exp = load_file(fixture_dir / "inputs.safetensors"), load_file(fixture_dir / "expected.safetensors")
    return {"pixel_values": inp["pixel_values"], "input_ids": inp["input_ids"].expand(2, -1),
            "attention_mask": inp["attention_mask"].expand(2, -1), "expected": exp["logits"]}


@torch.no_grad()
def _logits(model, batch, pixel_values=None):
    pv = batch["pixel_values"] if pixel_values is None else pixel_values
    return model(pixel_values=pv, input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def _stock(path):
    from transformers import InternVLForConditionalGeneration

    return InternVLForConditionalGeneration.from_pretrained(str(path), attn_implementation="eager").eval()


@pytest.mark.parametrize("back", ["back_v1", "back_tr"])
def test_round_trip_is_byte_exact(conv, fixture_dir, back):
    a = load_file(fixture_dir / "checkpoint/model.safetensors")
    b = load_file(conv / back / "model.safetensors")
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]), k
    for name in CKPT_FILES:  # the files themselves, config.json included
        assert (conv / back / name).read_bytes() == (fixture_dir / "checkpoint" / name).read_bytes(), name


def test_native_directory_is_transformers_native(conv):
    cfg = json.loads((conv / "native_v1/config.json").read_text())
    assert cfg["model_type"] == "internvl" and cfg["architectures"] == [cv.NATIVE_ARCH]
    assert cfg["ps_version"] == "v1" and cfg[cv.META_KEY]["layout"] == "v1"
    keys = load_file(conv / "native_v1/model.safetensors").keys()
    assert all(k.startswith(("model.vision_tower.", "model.multi_modal_projector.", "model.language_model.",
                             "lm_head.")) for k in keys)
    assert cv.detect_format(conv / "native_v1") == "native" and cv.detect_format(conv / "back_v1") == "original"
    tr = json.loads((conv / "native_tr/config.json").read_text())
    assert tr["ps_version"] == "v2" and tr[cv.META_KEY]["layout"] == "transposed-input"


def test_logit_parity_of_each_route(conv, fixture_dir, batch):
    exp = batch["expected"]
    ours, _ = load_pretrained(fixture_dir / "checkpoint", attn_implementation="eager")
    with torch.no_grad():
        ref = ours(pixel_values=batch["pixel_values"], input_ids=batch["input_ids"],
                   attention_mask=batch["attention_mask"], image_flags=torch.ones(2, 1, dtype=torch.long)).logits
    assert (ref - exp).abs().max().item() < 1e-4

    # layout v1 + our loader: the same weights and code as the original checkpoint -> identical
    m, tok = cv.load_native(conv / "native_v1")
    assert torch.equal(_logits(m, batch), ref) and tok.convert_tokens_to_ids("<IMG_CONTEXT>") == 1202
    # transposed-input read back by our loader: the permutation is undone -> identical as well
    m, _ = cv.load_native(conv / "native_tr")
    assert torch.equal(_logits(m, batch), ref)

    # stock transformers applies the v2 order: a naive conversion is not exact
    stock_v1 = (_logits(_stock(conv / "native_v1"), batch) - exp).abs().max().item()
    assert 12.0 < stock_v1 < 13.5  # 12.62 on this fixture, as the fixture README predicts

    stock_tr = _stock(conv / "native_tr")
    transposed = (_logits(stock_tr, batch, batch["pixel_values"].transpose(-1, -2)) - exp).abs().max().item()
    assert transposed < 1e-4  # 1.9e-05: exact up to float summation order
    plain = (_logits(stock_tr, batch) - exp).abs().max().item()
    assert plain > 1.0  # 15.8: the layout is only exact with transposed pixels


def test_foreign_native_keeps_its_own_semantics(conv, tmp_path, batch):
    """A native checkpoint without our metadata is ps_version v2; its export says so."""
    foreign = tmp_path / "foreign"
    shutil.copytree(conv / "native_v1", foreign)
    cfg = json.loads((foreign / "config.json").read_text())
    del cfg[cv.META_KEY], cfg["ps_version"]
    (foreign / "config.json").write_text(json.dumps(cfg))
    stock = _logits(_stock(foreign), batch)
    m, _ = cv.load_native(foreign)
    assert (_logits(m, batch) - stock).abs().max().item() < 1e-5
    cv.to_original(foreign, tmp_path / "orig")
    ocfg = json.loads((tmp_path / "orig/config.json").read_text())
    assert ocfg["ps_version"] == "v2" and ocfg["template"] == "Hermes-2" and ocfg["select_layer"] == -1
    m, _ = load_pretrained(tmp_path / "orig", attn_implementation="eager")
    assert (_logits(m, batch) - stock).abs().max().item() < 1e-5


def test_remote_code_copied_for_trust_remote_code_tools(conv, tmp_path):
    release = tmp_path / "release"
    release.mkdir()
    for name in ("configuration_internvl_chat.py", "modeling_internvl_chat.py", "conversation.py"):
        (release / name).write_text(f"# stand-in for the released {name}\n")
    out = cv.to_original(conv / "native_v1", tmp_path / "export", remote_code_from=release)
    assert out["remote_code"] == sorted(p.name for p in release.iterdir())
    assert (tmp_path / "export/modeling_internvl_chat.py").exists()
    (release / "modeling_internvl_chat.py").unlink()
    with pytest.raises(FileNotFoundError, match="modeling_internvl_chat.py"):
        cv.copy_remote_code(release, tmp_path / "export")


def test_our_sft_checkpoints_are_original_format_and_convert(fixture_dir, tmp_path):
    """What the SFT recipe writes (checkpoint.save_pretrained) is the original layout and converts exactly."""
    tok = load_tokenizer(fixture_dir / "checkpoint")
    torch.manual_seed(0)
    model = build_model(preset("tiny", vocab_size=len(tok)), image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"))
    save_pretrained(model, tmp_path / "sft", tokenizer=tok)
    cfg = json.loads((tmp_path / "sft/config.json").read_text())
    assert cv.detect_format(tmp_path / "sft") == "original"
    assert cfg["architectures"] == ["InternVLChatModel"] and "AutoModel" in cfg["auto_map"]
    keys = load_file(tmp_path / "sft/model.safetensors").keys()
    assert all(k.startswith(("vision_model.", "mlp1.", "language_model.")) for k in keys)
    cv.convert(tmp_path / "sft", tmp_path / "nat")
    cv.convert(tmp_path / "nat", tmp_path / "back")
    assert (tmp_path / "back/model.safetensors").read_bytes() == (tmp_path / "sft/model.safetensors").read_bytes()
    assert json.loads((tmp_path / "back/config.json").read_text()) == cfg


def test_a_native_pickle_checkpoint_is_refused_without_unpickling(conv, tmp_path, monkeypatch):
    """Fault 5: a native directory holding pytorch_model.bin was unpickled (the README promises no pickle)."""
    src = tmp_path / "native_bin"
    shutil.copytree(conv / "native_v1", src)
    state = load_file(src / "model.safetensors")
    for f in src.glob("*.safetensors*"):
        f.unlink()
    torch.save(state, src / "pytorch_model.bin")
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a) or real(*a, **k))
    for fn in (lambda: cv.convert(src, tmp_path / "out"), lambda: cv.load_native(src)):
        with pytest.raises(cv.PickleCheckpointError, match="pytorch_model.bin") as err:
            fn()
        assert "safetensors" in str(err.value)
    assert calls == [] and not (tmp_path / "out").exists()
    assert cli_main(["convert", str(src), str(tmp_path / "out2")]) == 2  # one error: line, no traceback
