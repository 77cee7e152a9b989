"""One error type for bad input, so every message names file, line and field the same way."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Raised for malformed or missing input; the message always says where."""

    def __init__(self, path: str | Path, message: str, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        where = self.path if line is None else f"{self.path}:{line}"
        what = f" field {field!r}:" if field else ""
        super().__init__(f"{where}:{what} {message}")
