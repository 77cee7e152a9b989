"""internvl.train.monitor: FLOPs / MFU arithmetic, the meter's windows and ranks, the loss curve, TensorBoard."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from internvl.model.config import preset
from internvl.train.monitor import (
    FlopsModel,
    MeteredTrainerMixin,
    ProgressLogCallback,
    RunArtifactsCallback,
    ThroughputMeter,
    batch_counts,
    peak_flops,
    table_peak_flops,
    tensorboard_env,
    write_run_plots,
)
from internvl.train.plan import param_shapes

TINY = preset("tiny")


def _numel(prefix: str, skip: tuple[str, ...] = ()) -> int:
    return sum(int(np.prod(s)) for n, s in param_shapes(TINY).items() if n.startswith(prefix) and n not in skip)


def _hand_flops(tokens: int, images: int, seq_lens: list[int], vit_trains: bool = True) -> float:
    """6N per token / image token, 12 * layers * hidden * s attention, by hand from the tiny shapes."""
    n_llm = _numel("model.language_model.", ("model.language_model.embed_tokens.weight",)) + _numel("lm_head.")
    n_vit = _numel("model.vision_tower.", ("model.vision_tower.embeddings.position_embeddings",
                                            "model.vision_tower.embeddings.cls_token"))
    n_proj = _numel("model.multi_modal_projector.")
    t, image_tokens = (56 // 7) ** 2 + 1, 16  # 65 ViT tokens, 16 after pixel shuffle
    llm = 6 * n_llm * tokens + 12 * 4 * 160 * sum(s * s for s in seq_lens)
    if vit_trains:
        vit = 6 * n_vit * t + 12 * 3 * 96 * t * t
    else:  # forward only: nothing before or in the ViT trains
        vit = 2 * n_vit * t + 4 * 3 * 96 * t * t
    return llm + images * (vit + 6 * n_proj * image_tokens)


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


ARGS = SimpleNamespace(device=torch.device("cpu"), bf16=False)


def _meter(recipe=None, peak=(1e12, "test peak")) -> tuple[ThroughputMeter, FakeClock]:
    clock = FakeClock()
    meter = ThroughputMeter(FlopsModel.from_config(TINY, recipe), peak=peak, clock=clock)
    meter.on_train_begin(ARGS, None, None)
    return meter, clock


def test_flops_match_a_hand_computation():
    fm = FlopsModel.from_config(TINY)
    assert fm.flops(100, 2, 60**2 + 40**2) == pytest.approx(_hand_flops(100, 2, [60, 40]), rel=1e-12)
    frozen = FlopsModel.from_config(TINY, {"freeze_backbone": True})
    assert frozen.flops(100, 2, 60**2 + 40**2) == pytest.approx(_hand_flops(100, 2, [60, 40], vit_trains=False))


def test_meter_arithmetic_over_a_window():
    meter, clock = _meter()
    meter.add_batch(60, 1, seq_lens=[60])  # two micro-batches of one optimizer step
    meter.add_batch(40, 1, seq_lens=[40])
    clock.t += 2.0
    meter.on_step_end(ARGS, None, None)
    meter.add_batch(50, 0, seq_lens=[30, 20])
    clock.t += 3.0
    meter.on_save(ARGS, None, None)  # checkpoint written: 10 s that are not training
    clock.t += 10.0
    meter.on_save(ARGS, None, None)
    clock.t += 3.0
    meter.on_step_end(ARGS, None, None)
    meter.add_batch(999, 9, seq_lens=[999])  # an open step is not reported
    m = meter.metrics()
    seconds = 2.0 + 3.0
    flops = _hand_flops(100, 2, [60, 40]) + _hand_flops(50, 0, [30, 20])
    assert m["tokens_per_s"] == pytest.approx(150 / seconds)
    assert m["samples_per_s"] == pytest.approx(4 / seconds)
    assert m["images_per_s"] == pytest.approx(2 / seconds)
    assert m["step_time_s"] == pytest.approx(seconds / 2)
    assert m["mfu"] == pytest.approx(flops / (seconds * 1 * 1e12))
    assert m["mfu_basis"] == "test peak" and m["peak_memory_gib"] > 0
    assert meter.metrics() == {}  # a new, empty window


def test_meter_sums_over_ranks(monkeypatch):
    meter, clock = _meter()
    meter.add_batch(100, 2, seq_lens=[60, 40])
    clock.t += 2.0
    meter.on_step_end(ARGS, None, None)
    # a second rank with the same counts, 1 s slower: sums for counts, max for time and memory
    monkeypatch.setattr(meter, "_world", lambda: 2)
    monkeypatch.setattr(meter, "_all_reduce", lambda v, op: [2 * x for x in v] if op == "sum"
                        else [v[0] + 1.0, *v[1:]])
    m = meter.metrics()
    assert m["tokens_per_s"] == pytest.approx(200 / 3.0)
    assert m["tokens_per_s_per_gpu"] == pytest.approx(100 / 3.0)
    assert m["mfu"] == pytest.approx(2 * _hand_flops(100, 2, [60, 40]) / (3.0 * 2 * 1e12))


def test_meter_under_a_real_process_group(tmp_path: Path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        meter, clock = _meter()
        meter.add_batch(100, 2, seq_lens=[60, 40])
        clock.t += 2.0
        meter.on_step_end(ARGS, None, None)
        assert meter._all_reduce([1.0, 2.0], "sum") == [1.0, 2.0]
        assert meter.metrics()["tokens_per_s"] == pytest.approx(50.0)
    finally:
        dist.destroy_process_group()


def _rank_worker(rank: int, store: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        meter, clock = _meter()
        meter.add_batch(100 * (rank + 1), rank, seq_lens=[100 * (rank + 1)])
        clock.t += 2.0 + rank  # rank 1 is slower: the window is the slowest rank's
        meter.on_step_end(ARGS, None, None)
        m = meter.metrics()
        if rank == 0:
            Path(out).write_text(json.dumps(m))
    finally:
        dist.destroy_process_group()


def test_meter_across_two_real_ranks(tmp_path: Path):
    """Two gloo processes (forked): counts summed, time maxed, world size in the MFU denominator."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_rank_worker, args=(r, str(tmp_path / "store"), str(tmp_path / "m.json")))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["tokens_per_s"] == pytest.approx(300 / 3.0)
    assert m["images_per_s"] == pytest.approx(1 / 3.0)
    flops = _hand_flops(100, 0, [100]) + _hand_flops(200, 1, [200])
    assert m["mfu"] == pytest.approx(flops / (3.0 * 2 * 1e12))


def test_batch_counts():
    inputs = {"input_ids": torch.zeros(2, 5, dtype=torch.long),
              "attention_mask": torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]),
              "image_flags": torch.tensor([[1], [0]]), "pixel_values": torch.zeros(2, 3, 4, 4)}
    assert batch_counts(inputs) == {"tokens": 8, "images": 1, "samples": 2, "seq_lens": [3, 5]}
    packed = {"input_ids": torch.zeros(1, 6, dtype=torch.long), "position_ids": torch.tensor([[0, 1, 2, 0, 1, 0]])}
    assert batch_counts(packed) == {"tokens": 6, "images": 0, "samples": 3, "seq_lens": [3, 2, 1]}


def test_peak_flops_table_and_measurement():
    assert table_peak_flops("NVIDIA A100-SXM4-80GB")[0] == 312e12
    assert table_peak_flops("NVIDIA H100 80GB HBM3")[0] == 989e12
    assert table_peak_flops("NVIDIA H100 PCIe")[0] == 756e12
    assert table_peak_flops("NVIDIA H200")[0] == 989e12
    assert table_peak_flops("Tesla V100-SXM2-32GB") is None
    flops, basis = peak_flops("cpu", bf16=False)
    assert flops > 1e8 and basis.startswith("measured: cpu float32 matmul")
    assert peak_flops("cpu", bf16=False) == (flops, basis)  # measured once per process


def _history(n: int = 30) -> list[dict]:
    rows = [{"loss": 3.0 * 0.93**i + 0.05 * (i % 3), "grad_norm": 1.0, "learning_rate": 1e-5 * min(1, (i + 1) / 3),
             "epoch": i / n, "step": i + 1} for i in range(n)]
    return rows + [{"train_runtime": 12.5, "train_loss": 1.0, "step": n}]


def test_loss_curve_is_a_real_plot(tmp_path: Path):
    png, hist = write_run_plots(_history(), tmp_path / "ckpt")
    assert json.loads(hist.read_text()) == _history()
    img = Image.open(png)
    assert img.format == "PNG" and img.size == (800, 450)
    px = np.asarray(img.convert("RGB")).astype(int)
    assert px.std() > 10  # not blank
    blue = ((px[..., 2] > 150) & (px[..., 0] < 80)).sum()  # the tab:blue loss line
    orange = ((px[..., 0] > 200) & (px[..., 1] > 100) & (px[..., 1] < 160) & (px[..., 2] < 60)).sum()  # lr line
    assert blue > 300 and orange > 100
    assert not list((tmp_path / "ckpt").glob(".*.tmp"))


def test_progress_line(caplog):
    cb, clock = ProgressLogCallback(every=2), FakeClock()
    cb.clock = clock
    state = SimpleNamespace(global_step=0, max_steps=10, is_world_process_zero=True)
    cb.on_train_begin(ARGS, state, None)
    with caplog.at_level(logging.INFO, logger="internvl.train.monitor"):
        for step in range(1, 5):
            clock.t += 30
            state.global_step = step
            cb.on_log(ARGS, state, None, logs={"loss": 1.0 / step, "learning_rate": 1e-5, "grad_norm": 0.5,
                                               "tokens_per_s": 12345.6, "mfu": 0.25})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2  # the first logged step, then every 2: steps 1 and 3
    assert lines[0] == ("step 1/10 (10.0%) | elapsed 0:00:30 | ETA 0:04:30 | loss 1.0000 | lr 1e-05 | "
                        "grad_norm 0.5 | 12,346 tokens/s | MFU 25.0%")
    assert lines[1].startswith("step 3/10 (30.0%) | elapsed 0:01:30 | ETA 0:03:30")


# --- a real Trainer: TensorBoard scalars, the curve beside checkpoints -------------------------------------


class _Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.out = torch.nn.Embedding(50, 16), torch.nn.Linear(16, 50)

    def forward(self, input_ids, attention_mask=None, labels=None, **kwargs):
        logits = self.out(self.emb(input_ids))
        return {"loss": torch.nn.functional.cross_entropy(logits.view(-1, 50), labels.view(-1)), "logits": logits}


def test_trainer_writes_tensorboard_scalars_and_curves(tmp_path: Path, monkeypatch, caplog):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from transformers import Trainer, TrainingArguments

    class SFTTrainer(MeteredTrainerMixin, Trainer):
        pass

    g = torch.Generator().manual_seed(0)
    data = [{"input_ids": (ids := torch.randint(0, 50, (8,), generator=g)), "labels": ids,
             "attention_mask": torch.tensor([1] * (8 - i % 3) + [0] * (i % 3)), "image_flags": torch.tensor([1])}
            for i in range(6)]
    tb = tmp_path / "tb"
    monkeypatch.setenv(*next(iter(tensorboard_env(tb).items())))
    args = TrainingArguments(output_dir=str(tmp_path / "work"), max_steps=3, per_device_train_batch_size=2,
                             learning_rate=1e-2, logging_steps=1, save_strategy="steps", save_steps=2,
                             report_to=["tensorboard"], use_cpu=True, disable_tqdm=True, remove_unused_columns=False)
    meter = ThroughputMeter(FlopsModel.from_config(TINY))
    trainer = SFTTrainer(model=_Toy(), args=args, train_dataset=data,
                         callbacks=[meter, ProgressLogCallback(every=1), RunArtifactsCallback(tmp_path / "final")])
    trainer.meter = meter
    with caplog.at_level(logging.INFO, logger="internvl.train.monitor"):
        trainer.train()
    acc = EventAccumulator(str(tb))
    acc.Reload()
    scalars = acc.Tags()["scalars"]
    for tag in ("loss", "learning_rate", "grad_norm", "tokens_per_s", "samples_per_s", "images_per_s", "mfu",
                "peak_memory_gib"):
        assert [e.step for e in acc.Scalars(f"train/{tag}")] == [1, 2, 3], tag
    # on a CPU the basis is a short matmul measurement, noisy on a busy machine: the MFU is only known positive
    assert acc.Scalars("train/tokens_per_s")[0].value > 0 and acc.Scalars("train/mfu")[0].value > 0
    assert set(scalars) >= {"train/loss", "train/mfu"}
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert logged[0]["mfu_basis"].startswith("measured: cpu float32 matmul")
    # 2 samples of 6 to 8 non-pad tokens per step
    assert 2 / 16 <= logged[0]["samples_per_s"] / logged[0]["tokens_per_s"] <= 2 / 12
    for folder in (tmp_path / "work" / "checkpoint-2", tmp_path / "final"):
        history = json.loads((folder / "log_history.json").read_text())
        assert Image.open(folder / "loss_curve.png").size == (800, 450)
        assert [h["step"] for h in history if "loss" in h] == ([1, 2] if folder.name == "checkpoint-2" else [1, 2, 3])
    assert sum("step 3/3 (100.0%)" in r.getMessage() for r in caplog.records) == 1
