"""The SFT under DeepSpeed ZeRO-1/2/3 on 2 CPU processes (gloo), as a 64-GPU job runs it, at the smallest
honest scale: the upstream JSONs unchanged, the model loaded partitioned, the checkpoint gathered by all
ranks and written by rank 0 (original layout, sharded, in the training precision), the global batch kept
whatever the world size.

The first DeepSpeed run JIT-builds its CPU ops (shm comm, fused Adam: ~2 min once, cached under
~/.cache/torch_extensions)."""

from __future__ import annotations

import json

import pytest
import torch
from trainrun import build_tiny, history, max_diff, run, settings, weights

from internvl.model.checkpoint import load_pretrained

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny(tmp_path_factory.mktemp("tiny_sft"))


def partitioned_zero3() -> dict:
    """Upstream's ZeRO-3 JSON with stage3_param_persistence_threshold 0: upstream's 1e7 keeps every tensor of
    the tiny model whole on every rank, so only this makes the tiny model's weights really partitioned
    during training and its save really a gather (as the 40B model's large matrices are)."""
    from internvl.train.recipe import resolve_deepspeed

    ds = resolve_deepspeed("zero3")
    ds["zero_optimization"]["stage3_param_persistence_threshold"] = 0
    return ds


@pytest.fixture(scope="module")
def stages(tiny, tmp_path_factory):
    """DDP and ZeRO-1/2/3 runs of the same 3 steps (fp32, lr 1e-4), 2 processes each."""
    root = tmp_path_factory.mktemp("stages")
    runs = {}
    for name, ds in (("ddp", None), ("zero1", "zero1"), ("zero2", "zero2"), ("zero3", partitioned_zero3())):
        cfg = settings(tiny, root / name, deepspeed=ds, max_steps=3, save_steps=10, learning_rate=1e-4)
        run(cfg, world=2)
        runs[name] = root / name
    return runs


def test_every_zero_stage_trains_and_saves_a_loadable_checkpoint(stages):
    for name, d in stages.items():
        summary = json.loads((d / "model" / "train_summary.json").read_text())
        assert summary["global_steps"] == 3 and summary["world_size"] == 2, name
        stage = (summary["deepspeed"] or {}).get("zero_optimization", {}).get("stage", 0)
        assert stage == {"ddp": 0, "zero1": 1, "zero2": 2, "zero3": 3}[name]
        model, _ = load_pretrained(d / "model")
        assert all(p.numel() > 0 for p in model.parameters()), f"{name}: empty tensors in the checkpoint"


def test_zero3_weights_equal_zero2_and_ddp(stages, tiny):
    z3, z2, ddp = (weights(stages[n] / "model") for n in ("zero3", "zero2", "ddp"))
    assert max_diff(z3, z2) <= 1e-6
    assert max_diff(z3, ddp) <= 1e-6
    from internvl.model.checkpoint import _read_safetensors

    assert max_diff(z3, _read_safetensors(tiny["init"])) > 1e-4  # training moved them
    h3, h2, hd = history(stages["zero3"]), history(stages["zero2"]), history(stages["ddp"])
    assert [r["step"] for r in h3] == [1, 2, 3]
    for a, b, c in zip(h3, h2, hd, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6) == pytest.approx(c["loss"], rel=1e-6)
        assert a["learning_rate"] == b["learning_rate"] == pytest.approx(c["learning_rate"])  # the lr each step used


def test_bf16_zero3_checkpoint_is_sharded_with_an_index(tiny, tmp_path):
    cfg = settings(tiny, tmp_path / "bf16", deepspeed=partitioned_zero3(), bf16=True, max_steps=2, save_steps=10,
                   max_shard_size="1MB")
    run(cfg, world=2)
    out = tmp_path / "bf16" / "model"
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and all((out / s).exists() for s in shards)
    assert not (out / "model.safetensors").exists()
    assert {t.dtype for t in weights(out).values()} == {torch.bfloat16}
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"
    model, _ = load_pretrained(out)
    assert next(model.parameters()).dtype == torch.bfloat16


def test_global_batch_gives_the_same_steps_on_one_and_two_processes(tiny, tmp_path):
    """global_batch_size 8, per device 4: accumulation 2 on one process, 1 on two; the same samples make each
    step, so the per-step losses agree."""
    runs = {}
    for world in (1, 2):
        cfg = settings(tiny, tmp_path / f"w{world}", global_batch_size=8, per_device_train_batch_size=4,
                       max_steps=3, save_steps=10)
        run(cfg, world=world)
        summary = json.loads((tmp_path / f"w{world}" / "model" / "train_summary.json").read_text())
        assert (summary["gradient_accumulation_steps"], summary["global_batch_size"]) == (3 - world, 8)
        runs[world] = history(tmp_path / f"w{world}")
    for a, b in zip(runs[1], runs[2], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["learning_rate"] == pytest.approx(b["learning_rate"])


def test_an_impossible_global_batch_stops_before_training(tiny, tmp_path):
    cfg = settings(tiny, tmp_path / "bad", global_batch_size=10, per_device_train_batch_size=4)
    proc = run(cfg, world=1, check=False)
    assert proc.returncode != 0
    assert "global_batch_size 10 is not a multiple of per_device_train_batch_size 4 x 1 GPUs" in proc.stderr
    assert not (tmp_path / "bad" / "state").exists()


def test_lora_under_zero3_merges_into_the_same_plain_checkpoint_as_ddp(tiny, tmp_path):
    """The LoRA recipe's shape (LLM LoRA, everything else frozen, ZeRO-3): the adapters gathered and folded in
    one module at a time on rank 0 give the DDP run's merged weights; only the LoRA targets moved."""
    from internvl.model.checkpoint import _read_safetensors

    lora = {"use_llm_lora": 4, "freeze_llm": True, "freeze_backbone": True, "freeze_mlp": True, "max_steps": 3,
            "save_steps": 10, "learning_rate": 1e-3}
    for name, ds in (("ddp", None), ("zero3", "zero3")):
        run(settings(tiny, tmp_path / name, deepspeed=ds, **lora), world=2)
    z3, ddp = weights(tmp_path / "zero3" / "model"), weights(tmp_path / "ddp" / "model")
    init = _read_safetensors(tiny["init"])
    assert not any("lora" in k for k in z3)  # a plain checkpoint in the original layout
    assert max_diff(z3, ddp) <= 1e-6
    targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    moved = {k for k in z3 if float((z3[k] - init[k]).abs().max()) > 0}
    assert moved and all(k.startswith("language_model.model.layers.") and any(t in k for t in targets) for k in moved)
    load_pretrained(tmp_path / "zero3" / "model")
