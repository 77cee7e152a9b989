"""What a training batch means: the loss reduction (upstream's per-micro-batch mean by default),
padding-free packing (the padded loss, without the pad compute) and length grouping (lengths stored at
normalization, no sample built to learn its length)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from internvl.data.sft import normalize_sft
from internvl.model.checkpoint import load_pretrained
from internvl.train.dataset import SFTDataset, packed_collate, pad_collate
from internvl.train.preprocess import IGNORE_INDEX
from internvl.train.recipe import SFTConfig, setup
from internvl.train.trainer import LengthGroupedEpochSampler

ANSWERS = ["red", "a small red circle in the top left and a blue square below it, nothing else",
           "two", "the chart shows three bars of rising height, the last one labelled 2024 in bold"]


@pytest.fixture()
def data(tmp_path):
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (20, 20), (200, 10, 10)).save(tmp_path / "imgs" / "a.png")
    recs = []
    for i, answer in enumerate(ANSWERS * 2):
        rec = {"id": f"r{i}", "conversations": [{"from": "human", "value": "<image>\nDescribe it." if i % 3 else
                                                 "What is shown?"}, {"from": "gpt", "value": answer}]}
        if i % 3:
            rec["image"] = "imgs/a.png"
        recs.append(rec)
    (tmp_path / "ann.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (tmp_path / "meta.json").write_text(json.dumps({"mix": {"root": ".", "annotation": "ann.jsonl"}}))
    normalize_sft(tmp_path / "meta.json", tmp_path, tmp_path / "sft")
    return tmp_path


def _cfg(root: Path, fixture_dir: Path, **over) -> SFTConfig:
    return SFTConfig(init=str(fixture_dir / "checkpoint"), sft_dir=str(root / "sft"), base_dir=str(root),
                     output=str(root / "out"), work_dir=str(root / "state"), max_steps=1, logging_steps=1,
                     save_steps=10, per_device_train_batch_size=1, gradient_accumulation_steps=2,
                     learning_rate=1e-4, **over)


def _model_inputs(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k not in ("source_index", "mismatch", "skipped", "empty_batch")}


def _first_micro_batches(run, n: int) -> list[dict]:
    it = iter(run.trainer.get_train_dataloader())
    return [_model_inputs(next(it)) for _ in range(n)]


@pytest.mark.parametrize("reduction", ["micro_batch_mean", "global_token_mean"])
def test_loss_reduction(data, fixture_dir, reduction):
    """Accumulation 2 over micro-batches with different supervised-token counts n1 != n2: upstream averages
    the two micro-batch means (m1 + m2) / 2; transformers 5's default is (m1 n1 + m2 n2) / (n1 + n2)."""
    run = setup(_cfg(data, fixture_dir, loss_reduction=reduction))
    model = run.model
    means, counts = [], []
    with torch.no_grad():
        for batch in _first_micro_batches(run, 2):
            means.append(float(model(**batch).loss))
            counts.append(int((batch["labels"][:, 1:] != IGNORE_INDEX).sum()))
    assert counts[0] != counts[1]
    upstream = sum(means) / 2
    token_mean = sum(m * n for m, n in zip(means, counts, strict=True)) / sum(counts)
    assert abs(upstream - token_mean) > 1e-3  # the two reductions differ on this batch
    run.trainer.train()
    logged = next(h["loss"] for h in run.trainer.state.log_history if "loss" in h)
    assert logged == pytest.approx(upstream if reduction == "micro_batch_mean" else token_mean, rel=1e-5)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_rows_give_the_padded_loss_and_gradients(data, fixture_dir, attn):
    model, tok = load_pretrained(fixture_dir / "checkpoint", attn_implementation=attn)
    model.config.text_config.use_cache = False  # as prepare_model sets it for training
    ds = SFTDataset(data / "sft", data, tok, model.template, model.num_image_token, image_size=56, max_length=512)
    samples = [ds[i] for i in range(6)]
    assert len({len(s["input_ids"]) for s in samples}) > 2  # unequal lengths: padding would matter
    results = []
    for collate in (pad_collate, packed_collate):
        batch = collate(samples, tok.pad_token_id)
        assert ("attention_mask" in batch) == (collate is pad_collate)
        model.zero_grad()
        loss = model(**_model_inputs(batch)).loss
        loss.backward()
        results.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (padded, g_pad), (packed, g_pack) = results
    assert packed == pytest.approx(padded, rel=1e-5, abs=1e-6)
    assert g_pad.keys() == g_pack.keys()
    assert max(float((g_pad[n] - g_pack[n]).abs().max()) for n in g_pad) < 1e-5
    packed_batch = packed_collate(samples, tok.pad_token_id)
    assert packed_batch["input_ids"].shape == (1, sum(len(s["input_ids"]) for s in samples))  # no pad tokens
    assert int((packed_batch["position_ids"] == 0).sum()) == len(samples)


def test_packing_without_per_sample_boundaries_would_differ(data, fixture_dir):
    """The same packed row with one running position range (samples attending to each other): a different
    loss, so the equality above is the block-diagonal attention at work, not a coincidence."""
    model, tok = load_pretrained(fixture_dir / "checkpoint")
    model.config.text_config.use_cache = False
    ds = SFTDataset(data / "sft", data, tok, model.template, model.num_image_token, image_size=56, max_length=512)
    samples = [ds[i] for i in range(4)]
    batch = _model_inputs(packed_collate(samples, tok.pad_token_id))
    with torch.no_grad():
        separate = float(model(**batch).loss)
        batch["position_ids"] = torch.arange(batch["input_ids"].shape[1]).unsqueeze(0)
        joined = float(model(**batch).loss)
    assert abs(separate - joined) > 1e-3


def test_lengths_come_from_the_parquet_without_building_samples(data, fixture_dir, monkeypatch):
    model, tok = load_pretrained(fixture_dir / "checkpoint")
    ds = SFTDataset(data / "sft", data, tok, model.template, model.num_image_token, image_size=56, max_length=512)
    monkeypatch.setattr(SFTDataset, "build", lambda self, i: pytest.fail("a sample was built to learn its length"))
    monkeypatch.setattr(SFTDataset, "__getitem__", lambda self, i: pytest.fail("a sample was built"))
    lengths = ds.lengths
    monkeypatch.undo()
    true = [len(ds[i]["input_ids"]) for i in range(len(ds))]
    # the estimate orders the samples as their real lengths do (ties aside)
    pairs = [(a, b) for a in range(len(ds)) for b in range(len(ds)) if true[a] < true[b] - 8]
    assert pairs and all(lengths[a] < lengths[b] for a, b in pairs)


def test_length_grouped_sampler_groups_and_is_reproducible(data, fixture_dir):
    lengths = [5, 90, 7, 60, 8, 85, 6, 70, 9, 95, 4, 65] * 4
    sampler = LengthGroupedEpochSampler(lengths, batch_size=4, seed=42)
    order = list(sampler)
    assert sorted(order) == list(range(len(lengths))) and order == list(sampler)  # a permutation, repeatable
    sampler.set_epoch(1)
    assert list(sampler) != order  # a new order per epoch, the same one again on a resume

    def padding(idx: list[int]) -> int:
        return sum(max(lengths[i] for i in b) * 4 - sum(lengths[i] for i in b) for b in
                   (idx[k:k + 4] for k in range(0, len(idx), 4)))

    shuffled = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(0)).tolist()
    assert padding(order) < padding(shuffled) / 2
    assert lengths[order[0]] == max(lengths)  # transformers' sampler puts the longest batch first (OOM early)
    run = setup(_cfg(data, fixture_dir, group_by_length=True))
    assert isinstance(run.trainer._get_train_sampler(), LengthGroupedEpochSampler)
    assert isinstance(setup(_cfg(data, fixture_dir)).trainer._get_train_sampler(), torch.utils.data.Sampler)
