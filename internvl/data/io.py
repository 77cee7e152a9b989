"""Strict readers for JSON / JSONL / TSV inputs and atomic writers for outputs.

Every reader raises :class:`internvl.errors.DataError` naming file and line; nothing is skipped.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from internvl.errors import DataError

_UMASK = os.umask(0)
os.umask(_UMASK)


def iter_jsonl(path: str | Path, on_bad_line: Callable[[DataError], None] | None = None
               ) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` for each non-blank line (1-based line numbers).

    A malformed line raises, unless ``on_bad_line`` is given: then it receives the error and the
    line is skipped (the caller records it; nothing disappears silently).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                err = DataError(path, f"malformed JSON ({exc.msg} at column {exc.colno})", line=lineno)
            else:
                if isinstance(rec, dict):
                    yield lineno, rec
                    continue
                err = DataError(path, f"expected a JSON object, got {type(rec).__name__}", line=lineno)
            if on_bad_line is None:
                raise err
            on_bad_line(err)


def load_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with path.open("r", encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON ({exc.msg} at column {exc.colno})", line=exc.lineno) from None


def require(rec: dict[str, Any], field: str, path: str | Path, line: int | None, types: type | tuple = object) -> Any:
    """Return ``rec[field]`` or raise a DataError naming file, line and field."""
    if field not in rec:
        raise DataError(path, "missing", line=line, field=field)
    value = rec[field]
    if not isinstance(value, types):
        raise DataError(path, f"expected {types}, got {type(value).__name__}", line=line, field=field)
    return value


@contextmanager
def atomic_path(dest: str | Path, suffix: str = ""):
    """Yield a temporary path next to ``dest``; rename it onto ``dest`` only if the block succeeds."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix or ".tmp", dir=dest.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; published files get the usual mode
    try:
        yield Path(tmp)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(dest: str | Path, obj: Any) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl_atomic(dest: str | Path, records: list[dict[str, Any]]) -> None:
    with atomic_path(dest) as tmp:
        with tmp.open("w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
