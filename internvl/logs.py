"""Logging set-up shared by the CLI and the Snakemake scripts: console plus an optional log file.

With a log file (a Snakemake rule's ``log:``), the file holds what the job printed and how it ended:
everything written to ``sys.stdout``/``sys.stderr`` (log records, progress bars, prints) goes to the
console and to the file, and an uncaught exception ends the job with one ``error:`` line for a known
error (:func:`internvl.errors.is_known`: the message says what to do) or with the traceback for
anything else (a bug), in both places. So the log Snakemake points to after a failure says why, and
after a success what was done. Progress bars redrawn with ``\\r`` reach the file as one line at most
every :data:`PROGRESS_EVERY_S` seconds (and their final state), not one per redraw.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import traceback
from pathlib import Path
from typing import IO, Any

from internvl.errors import error_line, is_known

PROGRESS_EVERY_S = 30.0
log = logging.getLogger("internvl.job")


class _Tee:
    """A text stream writing to ``stream`` and to the log file ``fh`` (opened for appending, so
    subprocesses that append to the same file are never overwritten)."""

    def __init__(self, stream: IO[str], fh: IO[str]):
        self.stream, self.fh = stream, fh
        self.partial = ""
        self.last_progress = 0.0

    def write(self, text: str) -> int:
        self.stream.write(text)
        *lines, rest = text.replace("\r\n", "\n").split("\n")
        for line in lines:
            self.fh.write(_newest(self.partial + line) + "\n")
            self.partial = ""
        if rest:
            self.partial = _newest(self.partial + rest) if "\r" in rest else self.partial + rest
            now = time.monotonic()
            if "\r" in rest and self.partial.strip() and now - self.last_progress >= PROGRESS_EVERY_S:
                self.fh.write(self.partial + "\n")  # a redrawn progress bar, now and then
                self.last_progress = now
        self.fh.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        self.fh.flush()

    def close_partial(self) -> None:
        if self.partial.strip():
            self.fh.write(self.partial + "\n")
        self.partial = ""
        self.fh.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _newest(text: str) -> str:
    """What a terminal shows of ``text`` after its carriage returns: the last non-empty redraw."""
    return next((seg for seg in reversed(text.split("\r")) if seg.strip()), "")


def _report(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    """sys.excepthook of a job: one ``error:`` line for a known error, the traceback for a bug."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, _Tee):
            stream.close_partial()
    if issubclass(exc_type, KeyboardInterrupt) or not is_known(exc):
        traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
    else:
        print(error_line(exc), file=sys.stderr)
    sys.stderr.flush()


def setup(log_file: str | Path | None = None, level: int = logging.INFO) -> None:
    """Log records to stderr; with ``log_file``, also the job's output and its end (see the module doc)."""
    if log_file:
        path = Path(log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")  # a new job starts a new log
        fh = path.open("a", encoding="utf-8")
        base_out = sys.stdout.stream if isinstance(sys.stdout, _Tee) else sys.stdout
        base_err = sys.stderr.stream if isinstance(sys.stderr, _Tee) else sys.stderr
        sys.stdout, sys.stderr = _Tee(base_out, fh), _Tee(base_err, fh)
        sys.excepthook = _report
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=[logging.StreamHandler(sys.stderr)], force=True)
    if log_file:
        script = re.sub(r"^tmp\w+\.", "", Path(sys.argv[0]).name)  # Snakemake runs a copy named tmpXXXX.<script>
        log.info("job started: %s (log %s)", script, log_file)
