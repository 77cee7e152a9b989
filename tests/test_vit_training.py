"""Training behaviour of the original InternViT: drop path on both branches, and gradient checkpointing."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file
from transformers.models.internvl.modeling_internvl import InternVLForConditionalGeneration, InternVLVisionLayer

from internvl.model.checkpoint import build_model, hf_to_original, load_pretrained
from internvl.model.config import hf_config, preset
from internvl.model.modeling import (
    DropPath,
    InternVLV12VisionLayer,
    enable_gradient_checkpointing,
    set_vit_drop_path,
    vit_layers,
)


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    return build_model(preset("tiny", vocab_size=1300), image_token_id=1202, attn_implementation="eager")


@pytest.fixture()
def fixture_model(fixture_dir):
    model, _ = load_pretrained(fixture_dir / "checkpoint", attn_implementation="eager")
    inp = load_file(fixture_dir / "inputs.safetensors")
    batch = {"pixel_values": inp["pixel_values"], "input_ids": inp["input_ids"].expand(2, -1),
             "attention_mask": inp["attention_mask"].expand(2, -1), "image_flags": torch.ones(2, 1, dtype=torch.long),
             "labels": inp["input_ids"].expand(2, -1)}
    return model, batch


def test_rates_rise_linearly_and_are_recorded(tiny):
    rates = set_vit_drop_path(tiny, 0.4)
    assert rates == [x.item() for x in torch.linspace(0, 0.4, 3)] and rates[0] == 0.0
    assert [(layer.drop_path1.drop_prob, layer.drop_path2.drop_prob) for layer in vit_layers(tiny)] == \
        [(r, r) for r in rates]
    assert tiny.original_config["vision_config"]["drop_path_rate"] == 0.4
    with pytest.raises(ValueError):
        set_vit_drop_path(tiny, 1.0)


def test_state_dict_keys_are_transformers_and_original(tiny):
    set_vit_drop_path(tiny, 0.4)
    cfg = preset("tiny", vocab_size=1300)
    with torch.device("meta"):
        stock = InternVLForConditionalGeneration(hf_config(cfg, image_token_id=1202))
    assert set(tiny.state_dict()) == set(stock.state_dict())
    assert all(isinstance(layer, InternVLV12VisionLayer) for layer in tiny.model.vision_tower.encoder.layer)
    hf_to_original(tiny.state_dict())  # still maps one to one onto the original names


def test_config_rate_is_applied_on_load(tiny):
    cfg = preset("tiny", vocab_size=1300)
    cfg["vision_config"]["drop_path_rate"] = 0.3
    model = build_model(cfg, image_token_id=1202)
    assert [layer.drop_path2.drop_prob for layer in vit_layers(model)] == \
        [x.item() for x in torch.linspace(0, 0.3, 3)]


@torch.no_grad()
def test_identity_in_eval_and_rate_zero_is_the_old_forward(tiny):
    pv = torch.randn(4, 3, 56, 56)
    tiny.eval()
    ref = tiny.model.vision_tower(pixel_values=pv).last_hidden_state
    set_vit_drop_path(tiny, 0.4)
    assert torch.equal(tiny.model.vision_tower(pixel_values=pv).last_hidden_state, ref)
    tiny.train()
    assert not torch.equal(tiny.model.vision_tower(pixel_values=pv).last_hidden_state, ref)
    set_vit_drop_path(tiny, 0.0)
    x = torch.randn(4, 65, 96)
    for layer in vit_layers(tiny):
        # the parent class's forward, as transformers runs it
        assert torch.equal(layer(x), InternVLVisionLayer.forward(layer, x))


@torch.no_grad()
def test_drop_frequency_per_layer_matches_its_rate(tiny):
    set_vit_drop_path(tiny, 0.4)
    tiny.train()
    seen: dict[str, list[torch.Tensor]] = {}

    def record(name):
        def hook(module: DropPath, args, out):
            x = args[0]
            flat_in, flat_out = x.flatten(1), out.flatten(1)
            dropped = (flat_out == 0).all(1)
            kept = ~dropped
            keep = 1.0 - module.drop_prob
            if kept.any() and module.drop_prob > 0:  # kept samples are scaled by 1/keep
                torch.testing.assert_close(flat_out[kept], flat_in[kept] / keep)
            seen.setdefault(name, []).append(dropped)
        return hook

    for i, layer in enumerate(vit_layers(tiny)):
        layer.drop_path1.register_forward_hook(record(f"{i}.1"))
        layer.drop_path2.register_forward_hook(record(f"{i}.2"))
    torch.manual_seed(1)
    n = 3000
    for _ in range(3):
        tiny.model.vision_tower(pixel_values=torch.randn(n // 3, 3, 56, 56))
    for i, rate in enumerate(torch.linspace(0, 0.4, 3).tolist()):
        for branch in ("1", "2"):
            freq = torch.cat(seen[f"{i}.{branch}"]).float().mean().item()
            tol = 4 * math.sqrt(rate * (1 - rate) / n)  # 4 binomial standard deviations
            assert abs(freq - rate) <= tol, (i, branch, freq, rate)


def _grads(model, batch, seed: int) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad()
    torch.manual_seed(seed)
    loss = model(**batch).loss
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_checkpointed_gradients_equal_plain_ones_under_drop_path(fixture_model):
    model, batch = fixture_model
    model.train()
    set_vit_drop_path(model, 0.0)
    loss0, _ = _grads(model, batch, seed=3)
    set_vit_drop_path(model, 0.9)  # 2 layers: rates 0, 0.9; 2 images x 2 branches -> masks almost surely bite
    loss_plain, plain = _grads(model, batch, seed=3)
    assert loss_plain != loss0  # drop path acted
    enable_gradient_checkpointing(model, llm=True)
    loss_ckpt, ckpt = _grads(model, batch, seed=3)
    assert loss_ckpt == loss_plain and plain.keys() == ckpt.keys()
    for name in plain:
        torch.testing.assert_close(ckpt[name], plain[name], rtol=0, atol=1e-7, msg=name)


def _count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]
    # a pre-hook: a non-reentrant recompute stops as soon as the last saved tensor is back, maybe before a
    # submodule's forward returns
    module.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize("llm", [False, True])
def test_vit_always_checkpoints_and_llm_only_by_flag(fixture_model, llm):
    model, batch = fixture_model
    model.train()
    # a submodule's hook runs inside the checkpointed forward, so a recompute shows as a second call
    vit_calls = _count_calls(model.model.vision_tower.encoder.layer[0].mlp)
    llm_calls = _count_calls(model.model.language_model.layers[0].mlp)
    model(**batch).loss.backward()
    assert (vit_calls[0], llm_calls[0]) == (1, 1)
    enable_gradient_checkpointing(model, llm=llm)
    vit_calls[0] = llm_calls[0] = 0
    model(**batch).loss.backward()
    assert vit_calls[0] == 2 and llm_calls[0] == (2 if llm else 1)
    model.eval()
    vit_calls[0] = 0
    with torch.no_grad():
        model(**batch)
    assert vit_calls[0] == 1  # checkpointing is a training-only thing
