"""The command line reports a known error as one ``error:`` line (exit 2) and accepts benchmark aliases
everywhere (fault 8 of issue 13: KeyError / PredictionMismatchError / FileNotFoundError tracebacks,
``normalize`` rejecting the aliases ``score`` takes, ``infer`` without ``--shard-size``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_benchmarks_normalize import build_mmbench_root

from internvl import cli

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "internvl.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_normalize_takes_the_aliases_score_takes(tmp_path):
    root, _ = build_mmbench_root(tmp_path / "data")
    assert cli.main(["normalize", "mmbench_dev", "--data-root", str(root), "--out", str(tmp_path / "a.parquet")]) == 0
    assert cli.main(["normalize", "mmbench-dev-en", "--data-root", str(root), "--out", str(tmp_path / "b.parquet")]) == 0
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_unknown_benchmark_is_one_line(tmp_path):
    line = _one_error_line(_run("normalize", "mmbench-dev-xx", "--data-root", "data", "--out", "x.parquet",
                                cwd=tmp_path))
    assert "unknown benchmark 'mmbench-dev-xx'" in line and "mmbench-dev-en" in line


def test_missing_raw_file_names_the_source_and_the_command(tmp_path):
    line = _one_error_line(_run("normalize", "mmbench_dev", "--data-root", "data", "--out", "x.parquet", cwd=tmp_path))
    assert "data/mmbench/mmbench_dev_20230712.tsv: file not found" in line
    assert "source 'mmbench_dev_20230712'" in line and "snakemake --cores 1 data/.sources/mmbench_dev_20230712.json" in line


def test_prediction_mismatch_is_one_line(tmp_path):
    root, _ = build_mmbench_root(tmp_path / "data")
    data = tmp_path / "mmb.parquet"
    assert cli.main(["normalize", "mmbench-dev-en", "--data-root", str(root), "--out", str(data)]) == 0
    pred = tmp_path / "pred.jsonl"
    pred.write_text(json.dumps({"id": "241", "prediction": "B"}) + "\n")  # three questions without an answer
    line = _one_error_line(_run("score", "mmbench_dev", "--data", str(data), "--predictions", str(pred), "--out",
                                str(tmp_path / "s.json"), cwd=tmp_path))
    assert str(pred) in line and "without a prediction" in line and "internvl infer" in line


def test_missing_checkpoint_is_one_line(tmp_path):
    root, _ = build_mmbench_root(tmp_path / "data")
    data = tmp_path / "mmb.parquet"
    assert cli.main(["normalize", "mmbench-dev-en", "--data-root", str(root), "--out", str(data)]) == 0
    line = _one_error_line(_run("infer", "mmbench_dev", "--checkpoint", str(tmp_path / "nockpt"), "--data", str(data),
                                "--data-root", str(root), "--out", str(tmp_path / "p.jsonl"), "--shard-size", "8",
                                cwd=tmp_path))
    assert str(tmp_path / "nockpt") in line


def test_bad_dtype_is_one_line(tmp_path):
    line = _one_error_line(_run("infer", "pope", "--checkpoint", "c", "--data", "d.parquet", "--data-root", "data",
                                "--out", "p.jsonl", "--dtype", "bf17", cwd=tmp_path))
    assert "bf17" in line


def test_a_bug_keeps_its_traceback(monkeypatch):
    def broken(_):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "_demo", broken)
    with pytest.raises(ZeroDivisionError):
        cli.main(["demo", "somewhere"])
