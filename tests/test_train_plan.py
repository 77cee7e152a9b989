"""internvl.train.plan: exact parameter counts, DeepSpeed's estimators, batch / step arithmetic, refusals."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import yaml
from conftest import FIXTURE

from internvl.cli import main
from internvl.errors import DataError
from internvl.model.config import preset
from internvl.train.plan import (
    RECIPE_DEFAULTS,
    GiB,
    PlanError,
    count_params,
    deepspeed_settings,
    model_config,
    param_shapes,
    plan,
    plan_recipe,
)

# The V1.2 finetune script's settings (internvl_reference.md §5.2) as a flat recipe.
V1_2_FINETUNE = {
    "deepspeed": "zero3", "global_batch_size": 512, "per_device_train_batch_size": 8, "max_seq_length": 2048,
    "bf16": True, "grad_checkpoint": True, "drop_path_rate": 0.4, "freeze_backbone": False, "freeze_llm": False,
    "freeze_mlp": False, "num_train_epochs": 1, "warmup_ratio": 0.03, "learning_rate": 1e-5,
    "plan_model": "v1_2", "num_samples": 1267819,
}


@pytest.fixture
def v12_recipe(tmp_path: Path) -> Path:
    path = tmp_path / "v1_2_finetune.yaml"
    path.write_text(yaml.safe_dump(V1_2_FINETUNE))
    return path


@pytest.fixture(scope="module")
def tiny_model():
    from internvl.model.checkpoint import build_model

    return build_model(preset("tiny"), image_token_id=5)


def test_v1_2_counts_match_the_reference():
    c = count_params(preset("v1_2"))
    # internvl_reference.md §1.1: ViT 45 x 122.92M + 5.2M, mlp1 0.143B, Yi-34B (64009-token vocab) 34.39B
    assert c.total["vit"] == pytest.approx(5.54e9, rel=2e-3)
    assert c.total["projector"] == pytest.approx(0.143e9, rel=2e-3)
    assert c.total["llm"] == pytest.approx(34.39e9, rel=1e-3)
    assert c.n_total == pytest.approx(40.07e9, rel=1e-3)
    assert c.total["projector"] == 12800 * 2 + 12800 * 7168 + 7168 + 7168 * 7168 + 7168
    assert c.largest_module == 64009 * 7168  # lm_head (and embed_tokens)


def test_tiny_shapes_equal_a_built_model(tiny_model):
    from deepspeed.runtime.zero.stage3 import model_to_params

    real = {n: tuple(p.shape) for n, p in tiny_model.named_parameters()}
    assert param_shapes(preset("tiny")) == real
    c = count_params(preset("tiny"))
    assert c.n_total == sum(p.numel() for p in tiny_model.parameters())
    assert c.n_trainable == c.n_total
    assert (c.n_total, c.largest_module) == model_to_params(tiny_model)  # DeepSpeed's own count


def test_counts_equal_the_upstream_checkpoint_tensors():
    """Counted from the config of a checkpoint the upstream code wrote, against its own tensors (fused qkv)."""
    from safetensors import safe_open

    ckpt = FIXTURE / "checkpoint"
    if not ckpt.is_dir():
        pytest.skip(f"parity fixture not found at {FIXTURE}")
    cfg, _ = model_config(ckpt)
    got = count_params(cfg).total
    want = {"vit": 0, "projector": 0, "llm": 0}
    with safe_open(ckpt / "model.safetensors", "pt") as f:
        for key in f.keys():
            part = {"vision_model": "vit", "mlp1": "projector", "language_model": "llm"}[key.split(".", 1)[0]]
            want[part] += math.prod(f.get_slice(key).get_shape())
    assert got == want


@pytest.mark.parametrize("recipe", [
    {"freeze_backbone": True},
    {"freeze_llm": True},
    {"freeze_mlp": True, "freeze_llm": True},
    {"freeze_backbone": True, "unfreeze_vit_layers": -1},
    {"freeze_backbone": True, "unfreeze_vit_layers": 1},
])
def test_trainable_counts_follow_the_freeze_flags(tiny_model, recipe):
    vit, proj = tiny_model.model.vision_tower, tiny_model.model.multi_modal_projector
    tiny_model.requires_grad_(True)
    try:
        if recipe.get("freeze_backbone"):
            vit.requires_grad_(False)
        if recipe.get("freeze_llm"):
            tiny_model.model.language_model.requires_grad_(False)
            tiny_model.lm_head.requires_grad_(False)
        if recipe.get("freeze_mlp"):
            proj.requires_grad_(False)
        if recipe.get("unfreeze_vit_layers"):
            for layer in vit.encoder.layer[recipe["unfreeze_vit_layers"]:]:
                layer.requires_grad_(True)
        want = sum(p.numel() for p in tiny_model.parameters() if p.requires_grad)
    finally:
        tiny_model.requires_grad_(True)
    assert count_params(preset("tiny"), recipe).n_trainable == want


@pytest.mark.parametrize("key", ["use_llm_lora", "use_backbone_lora"])
def test_lora_counts_equal_the_trained_model(tiny_model, key):
    """Against internvl.train.lora.apply_trainable, what the recipe runs (the ViT adapter on the fused qkv)."""
    import copy

    from internvl.train.lora import apply_trainable

    model = copy.deepcopy(tiny_model)
    apply_trainable(model, **{key: 4})
    c = count_params(preset("tiny"), {key: 4})
    assert c.n_trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert c.n_total == sum(p.numel() for p in model.parameters())


def test_v1_2_finetune_on_64_and_32_gpus(v12_recipe):
    p64 = plan_recipe(v12_recipe, gpus=64)
    p32 = plan_recipe(v12_recipe, gpus=32)
    assert (p64.grad_accum, p32.grad_accum) == (1, 2)
    assert p64.global_batch == p32.global_batch == 512
    # 1,267,819 samples at 512: ceil(ceil(1267819 / 8) / 64) = 2477 micro-batches per rank, accumulation 1
    assert p64.total_steps == p32.total_steps == 2477
    assert p64.warmup_steps == math.ceil(0.03 * 2477) == 75
    assert p64.nodes == 8 and p32.nodes == 4
    assert p64.fits and p32.fits
    assert p32.memory["optimizer"] == pytest.approx(2 * p64.memory["optimizer"])
    # ZeRO-3 on 64: 12 B of fp32 master + Adam per parameter, partitioned
    assert p64.memory["optimizer"] == pytest.approx(12 * p64.params.n_total / 64)
    text = p64.format()
    assert "global 512 = 8 per GPU x 64 GPUs x 1 accumulation" in text and "2,477 optimizer steps" in text
    assert "x 2 accumulation" in p32.format()
    json.dumps(p64.to_dict())


def test_refuses_40b_on_8x40gb_under_zero2():
    recipe = {**V1_2_FINETUNE, "deepspeed": "zero2"}
    with pytest.raises(PlanError, match="ZeRO-2 keeps the full 16-bit weights on every GPU") as exc:
        plan(preset("v1_2"), recipe, gpus=8, gpu_memory_gib=40)
    assert "80.1 GB" in str(exc.value) and "more than the 40 GiB" in str(exc.value)
    assert exc.value.plan is not None and not exc.value.plan.fits


def test_refuses_a_global_batch_that_does_not_divide():
    with pytest.raises(PlanError, match=r"not a multiple of .* 8 x 48 = 384") as exc:
        plan(preset("v1_2"), V1_2_FINETUNE, gpus=48)
    assert "64" in str(exc.value)  # the GPU counts that would work


def test_accumulation_from_the_recipe_without_a_global_batch():
    recipe = {**V1_2_FINETUNE, "global_batch_size": None, "gradient_accumulation_steps": 3}
    p = plan(preset("v1_2"), recipe, gpus=32)
    assert (p.grad_accum, p.global_batch) == (3, 8 * 32 * 3)


def test_plain_ddp_keeps_16_bytes_per_parameter_replicated():
    tiny = count_params(preset("tiny")).n_total
    one = plan(preset("tiny"), {"per_device_train_batch_size": 2, "max_seq_length": 64}, gpus=1)
    assert one.memory["weights"] + one.memory["gradients"] + one.memory["optimizer"] == 16 * tiny
    two = plan(preset("tiny"), {"per_device_train_batch_size": 2, "max_seq_length": 64}, gpus=2)
    assert two.memory["gradients"] == 8 * tiny  # DDP's reducer buckets copy the fp32 gradients
    with pytest.raises(PlanError, match="fp32 weights on every GPU"):
        plan(preset("v1_2"), {**V1_2_FINETUNE, "deepspeed": None}, gpus=64)


CPU = {"device": "cpu"}


@pytest.mark.parametrize("stage,offload", [(2, {}), (2, {"offload_optimizer": CPU}), (3, {}),
                                           (3, {"offload_optimizer": CPU}),
                                           (3, {"offload_optimizer": CPU, "offload_param": CPU})])
def test_model_states_reproduce_deepspeeds_estimators(stage, offload):
    """All parameters trainable, nothing persistent: weights + gradients + optimizer == DeepSpeed's number."""
    zero = {"stage": stage, "stage3_param_persistence_threshold": 0, **offload}
    p = plan(preset("v1_2"), {**V1_2_FINETUNE, "deepspeed": {"zero_optimization": zero}}, gpus=64,
             gpu_memory_gib=1e4)
    states = p.memory["weights"] + p.memory["gradients"] + p.memory["optimizer"]
    assert p.deepspeed_estimate["gpu_bytes"] == pytest.approx(states, rel=1e-9)
    assert not p.notes


def test_frozen_and_persistent_parameters_beyond_deepspeeds_estimator():
    recipe = {**V1_2_FINETUNE, "freeze_llm": True}
    p = plan(preset("v1_2"), recipe, gpus=64)
    c = p.params
    assert c.n_trainable == c.total["vit"] + c.total["projector"]
    # the frozen LLM keeps its 16-bit weight partition (DeepSpeed's estimator would not count it)
    assert p.memory["weights"] > p.deepspeed_estimate["gpu_bytes"] / 2
    assert p.memory["optimizer"] == pytest.approx(12 * c.n_trainable / 64)
    full = plan(preset("v1_2"), V1_2_FINETUNE, gpus=64)
    lean = plan(preset("v1_2"), {**V1_2_FINETUNE, "deepspeed": "zero3_34b"}, gpus=64)
    # threshold 1e7 keeps the LLM's k/v projections (1024 x 7168 = 7.3M each) whole on every GPU; 1e5 does not
    kv = 2 * 60 * 1024 * 7168
    assert full.memory["weights"] - lean.memory["weights"] == pytest.approx(2 * kv * 63 / 64, rel=0.02)


def test_zero1_keeps_whole_16bit_gradients():
    p = plan(preset("v1_2"), {**V1_2_FINETUNE, "deepspeed": "zero1"}, gpus=64, gpu_memory_gib=1e4)
    t = p.params.n_trainable
    assert p.memory["gradients"] == pytest.approx(2 * t + 4 * t / 64)
    assert p.memory["optimizer"] == pytest.approx(12 * t / 64)
    assert p.memory["buffers"] == 2 * 2 * 1e9  # two 16-bit reduce buckets of 1e9 (overlap_comm)
    assert p.deepspeed_estimate is None  # DeepSpeed has no stage-1 estimator


def test_deepspeed_json_path(tmp_path: Path):
    cfg = {"zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": "auto",
                                 "offload_optimizer": {"device": "cpu"}, "reduce_bucket_size": "auto"}}
    (tmp_path / "ds.json").write_text(json.dumps(cfg))
    z = deepspeed_settings("ds.json", llm_hidden=7168, base_dir=tmp_path)
    assert (z.stage, z.offload_optimizer, z.offload_param) == (3, True, False)
    assert z.persistence_threshold == 10 * 7168 and z.reduce_bucket_size == 7168**2
    (tmp_path / "bad.json").write_text('{"zero_optimization": {"stage": 3,}\n}')
    with pytest.raises(DataError, match=r"bad\.json:1: not valid JSON"):
        deepspeed_settings(str(tmp_path / "bad.json"), llm_hidden=64)
    with pytest.raises(PlanError, match="neither one of"):
        deepspeed_settings("zero4", llm_hidden=64)


def test_too_large_activations_say_so():
    recipe = {**V1_2_FINETUNE, "per_device_train_batch_size": 32, "global_batch_size": 2048}
    with pytest.raises(PlanError, match="Activations dominate"):
        plan(preset("v1_2"), recipe, gpus=64)


def test_nothing_trainable_is_refused():
    with pytest.raises(PlanError, match="nothing trains"):
        plan(preset("tiny"), {"freeze_backbone": True, "freeze_llm": True, "freeze_mlp": True}, gpus=1)


def test_recipe_defaults_are_sftconfigs():
    from internvl.train.recipe import SFTConfig

    defaults = {f.name: f.default for f in dataclasses.fields(SFTConfig)}
    for key, value in RECIPE_DEFAULTS.items():
        if key in defaults:
            assert defaults[key] == value, key


def test_cli(v12_recipe: Path, tmp_path: Path, capsys):
    assert main(["train-plan", str(v12_recipe), "--gpus", "64"]) == 0
    out = capsys.readouterr().out
    assert "x 1 accumulation" in out and "verdict: fits" in out
    assert main(["train-plan", str(v12_recipe), "--gpus", "32", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["gradient_accumulation_steps"], d["total_steps"], d["fits"]) == (2, 2477, True)
    zero2 = tmp_path / "zero2.yaml"
    zero2.write_text(yaml.safe_dump({**V1_2_FINETUNE, "deepspeed": "zero2"}))
    with pytest.raises(SystemExit) as exc:
        main(["train-plan", str(zero2), "--gpus", "8", "--gpu-memory-gib", "40"])
    assert exc.value.code == 2
    assert "keeps the full 16-bit weights on every GPU" in capsys.readouterr().err
    # --model / --samples override the recipe; a checkpoint folder's original-format config.json is read
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps(preset("tiny")))
    assert main(["train-plan", str(v12_recipe), "--gpus", "2", "--model", str(ckpt), "--samples", "100",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["params"]["n_total"] == count_params(preset("tiny")).n_total
    assert d["global_batch_size"] == 512 and d["gradient_accumulation_steps"] == 32 and d["total_steps"] == 1


def test_memory_total_is_the_sum_of_its_rows():
    p = plan(preset("v1_2"), V1_2_FINETUNE, gpus=64)
    rows = ("weights", "gradients", "optimizer", "buffers", "activations")
    assert p.memory["total"] == pytest.approx(sum(p.memory[k] for k in rows))
    assert p.memory["activations"] == pytest.approx(sum(p.activations.values()))
    b, s, h = 8, 2048, 7168
    assert p.activations["LLM checkpointed layer inputs"] == 60 * b * s * h * 2
    assert p.activations["logits + fp32 cross entropy"] == b * s * 64009 * 10
    assert p.activations["ViT checkpointed layer inputs"] == 45 * b * 1025 * 3200 * 2
    assert p.memory["total"] / GiB < 80


def test_cli_on_the_shipped_v1_2_recipe(capsys):
    """`internvl train-plan config/recipes/v1_2_finetune.yaml`: a plan for 64 and 32 GPUs (global 512 both),
    and a refusal of 40B on 8 x 40 GB under ZeRO-2 that says why (exit 2, one line)."""
    from internvl.cli import main

    recipe = str(Path(__file__).resolve().parents[1] / "config" / "recipes" / "v1_2_finetune.yaml")
    for gpus, acc in ((64, 1), (32, 2)):
        assert main(["train-plan", recipe, "--gpus", str(gpus), "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert (out["global_batch_size"], out["gradient_accumulation_steps"], out["deepspeed"]["stage"]) == (512, acc, 3)
        assert out["fits"]
    with pytest.raises(SystemExit) as stop:
        main(["train-plan", recipe, "--gpus", "8", "--gpu-memory-gib", "40", "--deepspeed", "zero2"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: v1_2 under DeepSpeed ZeRO-2") and "keeps the full 16-bit weights on every GPU" in err
