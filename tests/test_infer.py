"""Batched inference: same answers as chat() one by one; kill-and-resume reuses finished shards only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from internvl.data.benchmarks import normalize, write_parquet
from internvl.eval import infer as infer_mod
from internvl.eval import registry
from internvl.eval.infer import Generator, load_rows, row_image, run_inference
from internvl.eval.prompts import build_question
from internvl.model.checkpoint import load_pretrained


@pytest.fixture(scope="module")
def setup(tiny_demo):
    root = tiny_demo
    data = root / "pope.parquet"
    write_parquet(normalize("pope", root / "raw" / "data"), data)
    return root, data


def test_batched_generation_equals_chat_one_by_one(setup):
    root, data = setup
    model, tok = load_pretrained(root / "ckpt")
    bench = registry.resolve("pope")
    rows = load_rows(data)[:6]
    questions = [build_question(r, bench) for r in rows]
    gen_cfg = {"max_new_tokens": 6, "do_sample": False, "num_beams": 1}
    batched = Generator(model, tok, root / "raw" / "data").generate(rows, questions, gen_cfg)
    tok.padding_side = "right"  # chat() on a single sample never pads
    size = model.config.force_image_size
    single = [model.chat(tok, row_image(r, root / "raw" / "data", size, False).unsqueeze(0), q, gen_cfg)
              for r, q in zip(rows, questions, strict=True)]
    assert batched == single


def test_kill_and_resume_reuses_finished_shards(setup, monkeypatch):
    root, data = setup
    bench = registry.get("pope", {"pope": {"generation": {"max_new_tokens": 3}}})
    kw = {"batch_size": 4, "shard_size": 8}
    ref = run_inference(root / "ckpt", data, root / "raw" / "data", bench, root / "ref.jsonl", root / "cache_ref", **kw)

    calls = {"n": 0}
    real = Generator.generate

    def dying(self, rows, questions, gen):
        calls["n"] += 1
        if calls["n"] == 5:  # the third shard's first batch: two shards are finished
            raise KeyboardInterrupt("killed")
        return real(self, rows, questions, gen)

    monkeypatch.setattr(Generator, "generate", dying)
    with pytest.raises(KeyboardInterrupt):
        run_inference(root / "ckpt", data, root / "raw" / "data", bench, root / "out.jsonl", root / "cache", **kw)
    assert not (root / "out.jsonl").exists()  # no partial output file
    monkeypatch.setattr(Generator, "generate", real)
    seen = []
    monkeypatch.setattr(Generator, "generate", lambda self, r, q, g: seen.append(len(r)) or real(self, r, q, g))
    stats = run_inference(root / "ckpt", data, root / "raw" / "data", bench, root / "out.jsonl", root / "cache", **kw)
    assert stats["reused_shards"] == 2 and stats["fingerprint"] == ref["fingerprint"]
    assert sum(seen) == stats["n"] - 16  # only the unfinished questions were generated again
    assert (root / "out.jsonl").read_bytes() == (root / "ref.jsonl").read_bytes()

    # a changed generation setting never reuses those answers
    other = registry.get("pope", {"pope": {"generation": {"max_new_tokens": 4}}})
    assert infer_mod.fingerprint("x", "y", other, "float32") != infer_mod.fingerprint("x", "y", bench, "float32")
    lines = [json.loads(x) for x in Path(root / "out.jsonl").read_text().splitlines()]
    assert len(lines) == stats["n"] and all("prediction" in x for x in lines)


def test_data_parallel_workers_write_the_same_file_and_resume(setup):
    """Two worker processes deal the shards between them; the merged file equals the one-process run."""
    root, data = setup
    bench = registry.get("pope", {"pope": {"generation": {"max_new_tokens": 3}}})
    kw = {"batch_size": 4, "shard_size": 8, "threads_per_worker": 1}
    ref = run_inference(root / "ckpt", data, root / "raw" / "data", bench, root / "dp_ref.jsonl", root / "dp_c1", **kw)
    cache = root / "dp_c2"
    shard_dir = cache / ref["fingerprint"]
    shard_dir.mkdir(parents=True)
    (shard_dir / "shard-00001.jsonl").write_bytes((root / "dp_c1" / ref["fingerprint"] / "shard-00001.jsonl").read_bytes())
    stats = run_inference(root / "ckpt", data, root / "raw" / "data", bench, root / "dp.jsonl", cache, workers=2, **kw)
    assert stats["workers"] == 2 and stats["reused_shards"] == 1 and stats["fingerprint"] == ref["fingerprint"]
    assert (root / "dp.jsonl").read_bytes() == (root / "dp_ref.jsonl").read_bytes()


def test_worker_devices():
    assert infer_mod.worker_devices("cuda", 3) == ["cuda:0", "cuda:1", "cuda:2"]
    assert infer_mod.worker_devices("cpu", 2) == ["cpu", "cpu"]
    assert infer_mod.worker_devices("cuda:1", 1) == ["cuda:1"]
    with pytest.raises(ValueError, match="names one GPU"):
        infer_mod.worker_devices("cuda:1", 2)
    with pytest.raises(ValueError):
        infer_mod.worker_devices("cpu", 0)


def test_a_failing_worker_stops_the_run_with_its_error(setup):
    import pandas as pd

    root, data = setup
    df = pd.read_parquet(data)
    df.loc[len(df) - 1, "image_path"] = "pope/val2014/missing.jpg"
    bad = root / "pope_bad.parquet"
    df.to_parquet(bad)
    bench = registry.get("pope", {"pope": {"generation": {"max_new_tokens": 2}}})
    with pytest.raises(Exception, match="missing.jpg"):
        run_inference(root / "ckpt", bad, root / "raw" / "data", bench, root / "bad.jsonl", root / "bad_cache",
                      batch_size=4, shard_size=8, workers=2, threads_per_worker=1)
    assert not (root / "bad.jsonl").exists()


def test_changed_shard_size_never_reuses_shards_with_other_boundaries(setup):
    """Fault 1: the fingerprint left shard_size out, so shards of 8 were merged as if they were shards of 5."""
    root, data = setup
    bench = registry.get("pope", {"pope": {"generation": {"max_new_tokens": 2}}})
    cache, rows = root / "cache_shards", load_rows(data)
    first = run_inference(root / "ckpt", data, root / "raw" / "data", bench, root / "s8.jsonl", cache,
                          batch_size=4, shard_size=8)
    second = run_inference(root / "ckpt", data, root / "raw" / "data", bench, root / "s5.jsonl", cache,
                           batch_size=4, shard_size=5)
    got = [json.loads(x)["id"] for x in (root / "s5.jsonl").read_text().splitlines()]
    assert got == [r["id"] for r in rows]  # every question once, in order
    assert second["fingerprint"] != first["fingerprint"] and second["reused_shards"] == 0


def test_a_reused_shard_must_hold_its_rows(setup, caplog):
    """A shard whose ids are not the rows it stands for (a cache written by other code) is generated again."""
    root, data = setup
    bench = registry.get("pope", {"pope": {"generation": {"max_new_tokens": 2}}})
    cache = root / "cache_bad_shard"
    ref = run_inference(root / "ckpt", data, root / "raw" / "data", bench, root / "ok.jsonl", cache,
                        batch_size=4, shard_size=8)
    shard = cache / ref["fingerprint"] / "shard-00001.jsonl"
    lines = shard.read_text().splitlines(keepends=True)
    shard.write_text("".join(lines[:-1]))  # one answer short
    stats = run_inference(root / "ckpt", data, root / "raw" / "data", bench, root / "ok2.jsonl", cache,
                          batch_size=4, shard_size=8)
    assert stats["reused_shards"] == ref["shards"] - 1
    assert (root / "ok2.jsonl").read_bytes() == (root / "ok.jsonl").read_bytes()


def test_dtype_names_are_checked_and_used(setup, monkeypatch):
    """Fault 4: `--dtype bf16` ran in float32 and recorded "bf16"."""
    import torch

    from internvl.errors import ConfigError
    from internvl.model import checkpoint as ckpt_mod

    root, data = setup
    assert infer_mod.canonical_dtype("bf16") == "bfloat16" and infer_mod.canonical_dtype("fp32") == "float32"
    loaded = []
    real = ckpt_mod.load_pretrained

    def spy(*a, **kw):
        model, tok = real(*a, **kw)
        loaded.append(model.dtype)
        return model, tok

    monkeypatch.setattr(ckpt_mod, "load_pretrained", spy)
    bench = registry.get("pope", {"pope": {"generation": {"max_new_tokens": 1}}})
    from internvl import cli

    out = root / "bf16.jsonl"
    assert cli.main(["infer", "pope", "--checkpoint", str(root / "ckpt"), "--data", str(data), "--data-root",
                     str(root / "raw" / "data"), "--out", str(out), "--cache", str(root / "cache_bf16"),
                     "--dtype", "bf16", "--batch-size", "8", "--shard-size", "32"]) == 0
    assert loaded == [torch.bfloat16]
    stats = run_inference(root / "ckpt", data, root / "raw" / "data", bench, root / "b.jsonl", root / "cache_bf16b",
                          dtype="bf16", shard_size=64)
    assert stats["dtype"] == "bfloat16"
    with pytest.raises(ConfigError, match="bf17"):
        run_inference(root / "ckpt", data, root / "raw" / "data", bench, root / "x.jsonl", root / "c", dtype="bf17")
