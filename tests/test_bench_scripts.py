"""The training bench scripts (bench/train_throughput.py, bench/zero3_memory.py) in their smallest runs.

They keep working as the code under them changes; what is checked is their structure and the arithmetic
that does not depend on timing (pad tokens per real token, ZeRO-3 partition bytes), never a speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}

RECORDS = [  # LLaVA format, as the real SFT annotations: with an image (tag first or last) and text-only
    {"id": "1", "image": "a.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWhat is shown here?"},
        {"from": "gpt", "value": "A red square on a white ground."}]},
    {"id": "2", "conversations": [
        {"from": "human", "value": "Name three colours."}, {"from": "gpt", "value": "Red, green and blue."},
        {"from": "human", "value": "And one more?"}, {"from": "gpt", "value": "Yellow."}]},
    {"id": "3", "image": "b.jpg", "conversations": [
        {"from": "human", "value": "Describe the picture in detail.\n<image>"},
        {"from": "gpt", "value": "There is a large blue circle at the top left and a small green triangle below it, "
                                 "both on a grey background with a thin black frame around the whole picture."}]},
]


def _run(args: list[str], out: Path) -> dict:
    proc = subprocess.run([sys.executable, *args, "--json-out", str(out)], capture_output=True, text=True, env=ENV,
                          cwd=str(REPO), timeout=300)
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return json.loads(out.read_text())


def test_train_throughput_prints_the_four_modes(tmp_path):
    src = tmp_path / "records.json"
    src.write_text(json.dumps(RECORDS))
    max_len, batch = 256, 2
    rep = _run(["bench/train_throughput.py", "--steps", "1", "--warmup", "0", "--max-seq-length", str(max_len),
                "--batch-size", str(batch), "--sources", str(src), "--workdir", str(tmp_path)], tmp_path / "out.json")
    modes = {m["mode"]: m for m in rep["modes"]}
    assert list(modes) == ["a", "b", "c", "d"]
    for m in modes.values():
        assert m["tokens_per_s"] > 0 and m["samples_per_s"] > 0 and 0 < m["mfu"] < 1
        assert m["mfu_basis"].startswith("measured: cpu")
    assert modes["a"]["ratio_vs_a"] == 1.0
    # (a) computes every row at max_seq_length; (b) and (c) the longest of the batch; (d) no pad at all
    mix = rep["mix"]
    assert modes["d"]["computed_per_real_token"] == 1.0
    assert modes["a"]["computed_per_real_token"] > modes["b"]["computed_per_real_token"] >= 1.0
    assert modes["a"]["computed_per_real_token"] >= max_len / mix["built_length"]["max"]
    assert mix["records"] == 3 and mix["with_image"] == 2 and mix["samples"] == batch
    assert mix["scale"] == max_len / 2048 and mix["built_length"]["max"] <= max_len


def test_train_throughput_mid_shape_counts_without_building_weights(tmp_path):
    rep = _run(["bench/train_throughput.py", "--model", "mid", "--count-only", "--workdir", str(tmp_path)],
               tmp_path / "mid.json")
    assert rep["vision"]["hidden_size"] == 1024 and rep["vision"]["num_hidden_layers"] == 24
    assert 1.5e9 < rep["parameters"]["llm"] < 1.8e9 and 2.5e8 < rep["parameters"]["vit"] < 3.5e8
    assert rep["image_tokens"] == 256


def test_zero3_memory_partitions_the_weights_over_the_ranks(tmp_path):
    rep = _run(["bench/zero3_memory.py", "--llm-layers", "1", "--llm-hidden", "256", "--vocab", "2048",
                "--vit-layers", "1", "--ways", "zero3", "--worlds", "1", "2", "--max-shard-size", "4MB",
                "--workdir", str(tmp_path)], tmp_path / "z3.json")
    assert rep["shards"] > 1
    one = [r for r in rep["ranks"] if r["world"] == 1]
    two = [r for r in rep["ranks"] if r["world"] == 2]
    assert len(one) == 1 and sorted(r["rank"] for r in two) == [0, 1]
    assert all(r["zero3_partitioned"] for r in rep["ranks"])
    assert one[0]["param_bytes_held"] == one[0]["param_bytes_full"] > 0
    for r in two:  # each rank holds its half (partitions are padded to a multiple of the world size)
        assert r["param_bytes_full"] == one[0]["param_bytes_full"]
        assert abs(r["param_bytes_held"] / r["param_bytes_full"] - 0.5) < 0.01
    assert set(rep["ratios"]) == {"zero3_world2_vs_1"}
