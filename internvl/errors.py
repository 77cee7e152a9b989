"""The errors a user can act on, and how they reach the user: one ``error:`` line, no traceback.

:class:`DataError` is bad input (its message names file, line and field), :class:`ConfigError` a wrong
or missing setting (it names the file and key). With the download errors (``internvl.download``:
network, checksum, unsafe archive, a source to place by hand), the scoring errors that mean the
inputs do not fit together (predictions that do not cover the data, a judge that is needed or
failing) and ``FileNotFoundError`` of an input, they are the *known* errors: their message says what
is wrong and what to do, so a traceback would only bury it. Anything else is a bug and keeps its
traceback (see :func:`internvl.logs.setup` and ``internvl.cli.main``).
"""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Raised for malformed or missing input; the message always says where."""

    def __init__(self, path: str | Path, message: str, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        what = f" field {field!r}:" if field else ""
        super().__init__(f"{where}:{what} {message}")

    def with_hint(self, hint: str | None) -> DataError:
        """The same error with ``; <hint>`` appended (e.g. the command that fetches a missing file)."""
        if not hint:
            return self
        new = DataError(self.path, f"{self.message}; {hint}", self.line, self.field)
        new.__dict__.update({k: v for k, v in self.__dict__.items() if k not in ("message",)})
        new.message = f"{self.message}; {hint}"
        return new


class ConfigError(ValueError):
    """A configuration setting is wrong or missing; the message names the file, the key and the fix."""


def known_errors() -> tuple[type[BaseException], ...]:
    """The exception types reported as one ``error:`` line (imported here lazily: no import cycles)."""
    from internvl.download import DownloadError
    from internvl.eval.judge import JudgeError
    from internvl.eval.metrics import PredictionMismatchError, ServerScoredError
    from internvl.eval.metrics_family_b import ExtractorRequiredError, JudgeRequiredError

    return (DataError, ConfigError, DownloadError, PredictionMismatchError, ServerScoredError, JudgeError,
            JudgeRequiredError, ExtractorRequiredError, FileNotFoundError)


def is_known(exc: BaseException) -> bool:
    try:
        return isinstance(exc, known_errors())
    except ImportError:  # a broken install: never hide the traceback then
        return False


def error_line(exc: BaseException) -> str:
    """``error: <message>`` on one line (whitespace, newlines included, collapsed to single spaces)."""
    text = str(exc)
    if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return "error: " + " ".join(text.split())
