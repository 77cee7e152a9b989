"""Freezing, unfreeze_vit_layers and LoRA (internvl.train.lora), merged back into a plain original checkpoint."""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import load_file

from internvl.model.checkpoint import build_model, hf_to_original, load_pretrained, original_to_hf, save_pretrained
from internvl.model.config import preset
from internvl.model.modeling import InternVLChatModel
from internvl.train.lora import (
    FusedQKVAttention,
    apply_trainable,
    fuse_vit_qkv,
    merge_lora,
    merged_state_dict,
    unfuse_vit_qkv,
)


@pytest.fixture()
def fixture_model(fixture_dir):
    model, tok = load_pretrained(fixture_dir / "checkpoint", attn_implementation="eager")
    inp = load_file(fixture_dir / "inputs.safetensors")
    ids = inp["input_ids"].expand(2, -1)
    batch = {"pixel_values": inp["pixel_values"], "input_ids": ids, "attention_mask": inp["attention_mask"].expand(2, -1),
             "image_flags": torch.ones(2, 1, dtype=torch.long), "labels": ids}
    return model, tok, batch


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    return build_model(preset("tiny", vocab_size=1300), image_token_id=1202, attn_implementation="eager")


def _trainable(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def _logits(model, batch):
    model.eval()
    return model(**{k: v for k, v in batch.items() if k != "labels"}).logits


def test_fused_qkv_is_exact_and_reversible(fixture_model, fixture_dir):
    model, _, batch = fixture_model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ref = _logits(model, batch)
    fuse_vit_qkv(model.model.vision_tower)
    assert all(isinstance(layer.attention, FusedQKVAttention) for layer in model.model.vision_tower.encoder.layer)
    torch.testing.assert_close(_logits(model, batch), ref, rtol=0, atol=1e-5)
    unfuse_vit_qkv(model.model.vision_tower)
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


def test_lora_trains_merges_and_reloads_strictly(fixture_model, tmp_path):
    model, tok, batch = fixture_model
    base = _logits(model, batch)
    counts = apply_trainable(model, freeze_mlp=True, use_backbone_lora=4, use_llm_lora=4)
    assert counts["trainable"] == counts["lora"] > 0
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    torch.manual_seed(0)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(2):
        opt.zero_grad()
        model(**batch).loss.backward()
        opt.step()
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)  # base untouched
    bs = [p for n, p in model.named_parameters() if ".lora_B." in n]
    assert bs and all(b.abs().max() > 0 for b in bs)
    unmerged = _logits(model, batch)
    assert (unmerged - base).abs().max() > 1e-2  # the adapters changed the model

    # rtol 1e-5: |logits| reach ~14 here and fp32 summation order (W x + s B A x vs (W + s B A) x) moves them
    # by about 1e-5
    # (a) the state-dict merge, as on rank 0's gathered ZeRO-3 copy (peft names, a 'module.' prefix)
    gathered = {"module." + k: v.detach().clone() for k, v in model.state_dict().items()}
    plain = merged_state_dict(gathered)
    fresh = build_model(model.original_config, image_token_id=model.config.image_token_id, attn_implementation="eager")
    fresh.load_state_dict(plain, strict=True)
    torch.testing.assert_close(_logits(fresh, batch), unmerged, rtol=1e-5, atol=1e-5)

    # (b) peft's own merge on the live model
    merged = merge_lora(copy.deepcopy(model))
    assert set(merged.state_dict()) == set(fresh.state_dict())
    torch.testing.assert_close(_logits(merged, batch), unmerged, rtol=1e-5, atol=1e-5)
    for k, v in merged.state_dict().items():
        torch.testing.assert_close(v, plain[k], rtol=0, atol=1e-6, msg=k)

    save_pretrained(merged, tmp_path / "merged", tokenizer=tok)
    keys = load_file(tmp_path / "merged" / "model.safetensors").keys()
    assert any(k.endswith("attn.qkv.weight") for k in keys) and not any("lora" in k or "base_layer" in k for k in keys)
    reloaded, _ = load_pretrained(tmp_path / "merged", attn_implementation="eager")  # strict loader
    torch.testing.assert_close(_logits(reloaded, batch), unmerged, rtol=1e-5, atol=1e-5)


def test_vit_lora_is_one_adapter_on_the_fused_qkv(tiny):
    apply_trainable(tiny, use_backbone_lora=8)
    attn = tiny.model.vision_tower.encoder.layer[0].attention
    assert not hasattr(attn, "q_proj")
    d = tiny.config.vision_config.hidden_size
    a, b = attn.qkv.lora_A["default"].weight, attn.qkv.lora_B["default"].weight
    assert a.shape == (8, d) and b.shape == (3 * d, 8)  # one A shared by q, k, v as upstream's fused adapter
    assert attn.qkv.scaling["default"] == 2.0 and attn.qkv.lora_dropout["default"].p == 0.05
    targets = {n.split(".lora_")[0].split("attention.")[-1].split("mlp.")[-1]
               for n in _trainable(tiny) if ".vision_tower." in n}
    assert targets == {"qkv", "projection_layer", "fc1", "fc2"}


def test_merged_state_dict_reads_upstream_lora_names(fixture_dir, tmp_path):
    """An upstream LoRA checkpoint keeps the peft wrappers inside vision_model / language_model."""
    state = load_file(fixture_dir / "checkpoint" / "model.safetensors")
    gen = torch.Generator().manual_seed(0)
    upstream, expected = {}, dict(state)
    wrapped = {"vision_model.encoder.layers.1.attn.qkv.weight": "vision_model.base_model.model.encoder.layers.1.attn.qkv",
               "language_model.model.layers.0.self_attn.v_proj.weight":
                   "language_model.base_model.model.model.layers.0.self_attn.v_proj"}
    for key, value in state.items():
        if key in wrapped:
            a, b = torch.randn(4, value.shape[1], generator=gen), torch.randn(value.shape[0], 4, generator=gen)
            upstream[wrapped[key] + ".base_layer.weight"] = value
            upstream[wrapped[key] + ".lora_A.default.weight"] = a
            upstream[wrapped[key] + ".lora_B.default.weight"] = b
            expected[key] = value + 2.0 * b @ a
        elif key.startswith("vision_model."):
            upstream[key.replace("vision_model.", "vision_model.base_model.model.", 1)] = value
        elif key.startswith("language_model."):
            upstream[key.replace("language_model.", "language_model.base_model.model.", 1)] = value
        else:
            upstream[key] = value
    merged = merged_state_dict(upstream)
    assert merged.keys() == expected.keys()
    for k in expected:
        torch.testing.assert_close(merged[k], expected[k], rtol=1e-6, atol=1e-6, msg=k)
    original_to_hf(merged)  # plain original names again: what load_pretrained reads
    with pytest.raises(KeyError, match="incomplete LoRA"):
        merged_state_dict({k: v for k, v in upstream.items() if "lora_B" not in k})


def test_each_freeze_flag_changes_what_trains(tiny):
    groups = {
        "vit": {n for n, _ in tiny.named_parameters() if ".vision_tower." in n},
        "llm": {n for n, _ in tiny.named_parameters() if ".language_model." in n or n.startswith("lm_head.")},
        "mlp": {n for n, _ in tiny.named_parameters() if ".multi_modal_projector." in n},
    }
    everything = set().union(*groups.values())
    assert everything == {n for n, _ in tiny.named_parameters()}
    for flag, frozen in (("freeze_backbone", "vit"), ("freeze_llm", "llm"), ("freeze_mlp", "mlp")):
        model = copy.deepcopy(tiny)
        apply_trainable(model, **{flag: True})
        assert _trainable(model) == everything - groups[frozen], flag
    model = copy.deepcopy(tiny)
    apply_trainable(model)
    assert _trainable(model) == everything


@pytest.mark.parametrize(("k", "layers"), [(1, {1, 2}), (-1, {2}), (-2, {1, 2}), (2, {2})])
def test_unfreeze_vit_layers_has_slice_semantics(tiny, k, layers):
    apply_trainable(tiny, freeze_backbone=True, unfreeze_vit_layers=k)
    vit = {n for n in _trainable(tiny) if ".vision_tower." in n}
    assert {int(n.split("encoder.layer.")[1].split(".")[0]) for n in vit} == layers
    per_layer = {n for n, _ in tiny.named_parameters() if ".vision_tower.encoder.layer.2." in n}
    assert per_layer <= vit  # whole layers, every parameter


def test_llm_lora_freezes_the_llm_and_keeps_the_rest(tiny):
    apply_trainable(tiny, use_llm_lora=4)
    llm = {n for n in _trainable(tiny) if ".language_model." in n or n.startswith("lm_head.")}
    assert llm and all(".lora_" in n for n in llm)  # embeddings, norms and lm_head frozen as upstream's wrapper
    assert {n for n in _trainable(tiny) if ".vision_tower." in n}  # the ViT still trains
    emb = tiny.model.language_model.get_input_embeddings()(torch.tensor([[1, 2]]))
    assert emb.requires_grad  # enable_input_require_grads


def test_order_lora_then_mlp_freeze_then_vit_unfreeze(tiny):
    apply_trainable(tiny, freeze_mlp=True, use_backbone_lora=4, unfreeze_vit_layers=-1)
    trainable = _trainable(tiny)
    assert not any(".multi_modal_projector." in n for n in trainable)
    last = "model.vision_tower.encoder.layer.2.attention.qkv.base_layer.weight"
    first = "model.vision_tower.encoder.layer.0.attention.qkv.base_layer.weight"
    assert last in trainable and first not in trainable  # the unfreeze comes after LoRA froze the base


def test_merge_keeps_dtype_and_plain_names(tiny):
    model = tiny.to(torch.bfloat16)
    apply_trainable(model, use_llm_lora=2)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ".lora_B." in n:
                p.normal_()
    plain = merged_state_dict(model.state_dict())
    assert {k: v.dtype for k, v in plain.items()} == {k: torch.bfloat16 for k in plain}
    with torch.device("meta"):
        expected = set(InternVLChatModel(model.config).state_dict())
    assert set(plain) == expected
    hf_to_original(plain)
