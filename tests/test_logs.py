"""internvl.logs.setup(log_file): a rule log holds the job's output and its end (one error: line for a known
error, the traceback for a bug), so the log Snakemake points to is never empty."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

JOB = """
import logging, sys
from internvl.logs import setup
setup(sys.argv[1])
print("printed")
logging.getLogger("x").info("a record")
for i in range(3):
    sys.stderr.write(f"\\rprogress {i}/3")
sys.stderr.write("\\rprogress 3/3\\n")
what = sys.argv[2]
if what == "known":
    from internvl.errors import DataError
    raise DataError("a/file.jsonl", "broken\\nacross lines", line=3)
if what == "mismatch":
    from internvl.eval.metrics import PredictionMismatchError
    raise PredictionMismatchError("pope: 2 ids without a prediction")
if what == "bug":
    {}["missing"]
"""


def _job(tmp_path: Path, what: str) -> tuple[subprocess.CompletedProcess, str]:
    log = tmp_path / "logs" / f"{what}.log"
    proc = subprocess.run([sys.executable, "-c", JOB, str(log), what], capture_output=True, text=True, timeout=60)
    return proc, log.read_text()


def test_a_passing_job_logs_its_output(tmp_path):
    proc, log = _job(tmp_path, "ok")
    assert proc.returncode == 0
    assert "job started" in log and "printed" in log and "a record" in log
    assert "progress 3/3" in log and log.count("progress") <= 2  # redraws thinned, final state kept
    assert "printed" in proc.stdout and "a record" in proc.stderr  # and the console still gets everything


@pytest.mark.parametrize("what, text", [("known", "error: a/file.jsonl:3: broken across lines"),
                                        ("mismatch", "error: pope: 2 ids without a prediction")])
def test_a_known_error_is_one_line_in_the_log_and_on_stderr(tmp_path, what, text):
    proc, log = _job(tmp_path, what)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + log
    assert [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")] == [text]
    assert log.rstrip().endswith(text)


def test_a_bug_keeps_its_traceback_in_the_log(tmp_path):
    proc, log = _job(tmp_path, "bug")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "Traceback" in log and "KeyError: 'missing'" in log
