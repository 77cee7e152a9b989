from __future__ import annotations

import pytest
import torch

from internvl.model.checkpoint import build_model, hf_to_original, original_to_hf
from internvl.model.config import num_image_token, preset


def test_v1_2_preset_on_meta_has_40b_parameters():
    model = build_model(preset("v1_2"), image_token_id=64002, device="meta")
    n = sum(p.numel() for p in model.parameters())
    assert 40.0e9 < n < 40.15e9, n
    assert model.num_image_token == 256
    assert num_image_token(preset("v1_2")) == 256


def test_tiny_preset_key_mapping_roundtrip():
    model = build_model(preset("tiny", vocab_size=300), image_token_id=290)
    orig = hf_to_original(model.state_dict())
    assert all(k.split(".")[0] in {"vision_model", "mlp1", "language_model"} for k in orig)
    assert any(k.endswith("attn.qkv.weight") for k in orig)
    back = original_to_hf(orig)
    assert set(back) == set(model.state_dict())


def test_image_flags_drop_text_only_rows():
    model = build_model(preset("tiny", vocab_size=300), image_token_id=290)
    n = model.num_image_token
    ids_img = torch.tensor([[5] + [290] * n + [6, 7]])
    ids_txt = torch.tensor([[5] + [11] * n + [6, 7]])
    pv = torch.randn(2, 3, 56, 56)
    out = model(pixel_values=pv, input_ids=torch.cat([ids_img, ids_txt]), attention_mask=torch.ones(2, n + 3),
                image_flags=torch.tensor([[1], [0]]), labels=torch.cat([ids_img, ids_txt]))
    out.loss.backward()
    # the ViT stays in the graph even for the text-only row, as in the original
    assert model.model.vision_tower.embeddings.cls_token.grad is not None


def test_image_token_count_mismatch_is_an_error():
    model = build_model(preset("tiny", vocab_size=300), image_token_id=290)
    ids = torch.tensor([[5, 290, 6]])
    with pytest.raises(Exception, match="do not match"):
        model(pixel_values=torch.randn(1, 3, 56, 56), input_ids=ids, attention_mask=torch.ones(1, 3),
              image_flags=torch.tensor([[1]]))
