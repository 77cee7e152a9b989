"""A small client for OpenAI-compatible chat-completions judges, with an append-only response cache.

Why this exists: LLaVA-Bench, MM-Vet and the MathVista answer extractor are scored by an LLM. Judge
calls cost money and are not reproducible across days, so every call is cached (keyed by the exact
request) and a rerun of the scoring makes no request at all. The client is standard library only
(``urllib``) so that any OpenAI-compatible server works, a local one included (vLLM, llama.cpp, ...).

Failures are loud: after the retries an unreachable or failing judge raises :class:`JudgeError`
naming the URL and the last error. Nothing ever falls back to a default score.

Cache format: one JSON object per line, ``{"key": sha256, "request": {...}, "response": {"content":
..., "model": ...}, "time": ...}``, appended with a single ``write`` under an exclusive ``flock`` so
parallel scoring jobs can share the file. A truncated last line (a crash mid-write) is dropped with a
warning; any other malformed line is an error naming file and line. If two processes race on the same
request, both lines are kept and the first one wins on the next load.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import json
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

CONFIG_KEYS = ("base_url", "model", "api_key_env", "timeout_s", "max_retries", "backoff_s")


class JudgeError(RuntimeError):
    """The judge could not be used (unreachable, failing, misconfigured, or a broken cache)."""


class JudgeConfigError(JudgeError):
    """The ``judge:`` configuration is missing, malformed, or names an unset API-key variable."""


class JudgeCacheError(JudgeError):
    """A line of the judge cache is malformed (other than a truncated last line)."""


@dataclass(frozen=True)
class JudgeConfig:
    """The workflow config's ``judge:`` block.

    ``api_key_env`` is the *name* of the environment variable holding the key (never the key itself,
    so configs and provenance stay secret-free); ``None`` for local servers without authentication.
    ``max_retries`` counts the retries after the first attempt; the wait before retry k is
    ``backoff_s * 2**k`` seconds (or the server's ``Retry-After``, capped at 60 s).
    """

    base_url: str
    model: str
    api_key_env: str | None = None
    timeout_s: float = 120.0
    max_retries: int = 5
    backoff_s: float = 1.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise JudgeConfigError(f"judge.base_url must be an http(s) URL, got {self.base_url!r}")
        if not isinstance(self.model, str) or not self.model.strip():
            raise JudgeConfigError(f"judge.model must be a non-empty string, got {self.model!r}")
        if self.api_key_env is not None and (not isinstance(self.api_key_env, str) or not self.api_key_env):
            raise JudgeConfigError(f"judge.api_key_env must be an environment variable name or null, got "
                                   f"{self.api_key_env!r}")
        if not self.timeout_s > 0:
            raise JudgeConfigError(f"judge.timeout_s must be > 0, got {self.timeout_s!r}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise JudgeConfigError(f"judge.max_retries must be an integer >= 0, got {self.max_retries!r}")
        if not self.backoff_s >= 0:
            raise JudgeConfigError(f"judge.backoff_s must be >= 0, got {self.backoff_s!r}")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> JudgeConfig:
        """Build from the ``judge:`` mapping; unknown keys are an error (a typo must not go unnoticed)."""
        if block is None:
            raise JudgeConfigError("no 'judge:' block in the config; judge-scored benchmarks need one "
                                   "(base_url, model, api_key_env, timeout_s, max_retries; see README)")
        if not isinstance(block, Mapping):
            raise JudgeConfigError(f"'judge:' must be a mapping, got {type(block).__name__}")
        unknown = sorted(set(block) - set(CONFIG_KEYS))
        if unknown:
            raise JudgeConfigError(f"judge: unknown keys {unknown}; allowed: {list(CONFIG_KEYS)}")
        missing = [k for k in ("base_url", "model") if k not in block]
        if missing:
            raise JudgeConfigError(f"judge: missing required keys {missing}")
        return cls(**{k: block[k] for k in CONFIG_KEYS if k in block})

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc

    @property
    def identity(self) -> str:
        """``model@host``: who judged, for provenance (the path and scheme do not change the judge)."""
        return f"{self.model}@{self.host}"

    @property
    def slug(self) -> str:
        """A filesystem-safe name of the identity, for result and cache file names (no ``@`` or ``/``)."""
        raw = f"{self.model}_{self.host}"
        return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-.") or "judge"

    def score_params(self) -> dict[str, str]:
        """The settings that can change a judged score (the operational knobs cannot)."""
        return {"base_url": self.base_url, "model": self.model}

    def api_key(self) -> str | None:
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise JudgeConfigError(f"judge.api_key_env names the environment variable {self.api_key_env!r}, which "
                                   "is not set (or empty); export it, or set api_key_env: null for a server "
                                   "without authentication")
        return key


@dataclass(frozen=True)
class JudgeReply:
    content: str
    model: str | None  # the ``model`` field the server returned (may differ from the requested one)
    cached: bool
    key: str


def canonical_request(base_url: str, model: str, messages: Sequence[Mapping[str, str]], temperature: float,
                      max_tokens: int) -> dict[str, Any]:
    """The request as it is hashed and stored: numbers normalized so 0 and 0.0 are the same request."""
    return {
        "base_url": base_url.rstrip("/"),
        "model": model,
        "messages": [{"role": str(m["role"]), "content": str(m["content"])} for m in messages],
        "temperature": float(temperature),
        "max_tokens": int(max_tokens),
    }


def request_key(request: Mapping[str, Any]) -> str:
    text = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class JudgeCache:
    """Append-only JSONL store of judge responses keyed by :func:`request_key`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.entries: dict[str, dict[str, Any]] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                raw = fh.read()
                lines = raw.split(b"\n")
                complete = raw.endswith(b"\n")
                offset = 0
                for i, line in enumerate(lines):
                    lineno = i + 1
                    is_tail = i == len(lines) - 1
                    if is_tail and not line:
                        break
                    try:
                        rec = json.loads(line.decode("utf-8"))
                        if not isinstance(rec, dict):
                            raise ValueError(f"expected an object, got {type(rec).__name__}")
                    except (UnicodeDecodeError, ValueError) as e:
                        if is_tail and not complete:  # crash mid-write: drop the fragment
                            log.warning("%s:%d: truncated last line (%d bytes) ignored and removed: %s",
                                        self.path, lineno, len(line), e)
                            fh.truncate(offset)
                            return
                        raise JudgeCacheError(f"{self.path}:{lineno}: malformed cache line: {e}") from None
                    self._check(rec, lineno)
                    self.entries.setdefault(rec["key"], rec)
                    offset += len(line) + 1
                if not complete:  # a whole record without its newline: finish the line
                    fh.seek(0, os.SEEK_END)
                    fh.write(b"\n")
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _check(self, rec: dict[str, Any], lineno: int) -> None:
        resp = rec.get("response")
        if not isinstance(rec.get("key"), str) or not isinstance(resp, dict) or not isinstance(resp.get("content"), str):
            raise JudgeCacheError(f"{self.path}:{lineno}: cache line needs 'key' (string) and 'response' with a "
                                  "string 'content'")

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def append(self, key: str, request: dict[str, Any], response: dict[str, Any]) -> None:
        rec = {"key": key, "request": request, "response": response, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        data = (json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self.entries.setdefault(key, rec)


_RETRY_STATUS = {408, 429}
_NETWORK_ERRORS = (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout, http.client.HTTPException)


class JudgeClient:
    """Chat completions against ``{base_url}/chat/completions``, every call through the cache.

    ``sleep`` is injectable so tests do not wait. Counters (``n_cached``, ``n_new``, ``returned_models``)
    let the scorer report how many calls a result cost.
    """

    def __init__(self, config: JudgeConfig, cache_path: str | Path | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self._api_key = config.api_key()  # fail before the first item, naming the variable
        self.cache = JudgeCache(cache_path) if cache_path is not None else None
        self._sleep = sleep
        self.n_cached = 0
        self.n_new = 0
        self.returned_models: Counter[str] = Counter()

    @property
    def identity(self) -> str:
        return self.config.identity

    @property
    def slug(self) -> str:
        return self.config.slug

    def stats(self) -> dict[str, Any]:
        return {"cached": self.n_cached, "new": self.n_new, "returned_models": dict(self.returned_models)}

    def chat(self, messages: Sequence[Mapping[str, str]], *, temperature: float, max_tokens: int) -> JudgeReply:
        request = canonical_request(self.config.base_url, self.config.model, messages, temperature, max_tokens)
        key = request_key(request)
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None:
            self.n_cached += 1
            resp = hit["response"]
            self.returned_models[str(resp.get("model"))] += 1
            return JudgeReply(resp["content"], resp.get("model"), True, key)
        body = {k: request[k] for k in ("model", "messages", "temperature", "max_tokens")}
        response = self._post(body)
        if self.cache is not None:
            self.cache.append(key, request, response)
        self.n_new += 1
        self.returned_models[str(response.get("model"))] += 1
        return JudgeReply(response["content"], response.get("model"), False, key)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        url = self.config.url
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        attempts = self.config.max_retries + 1
        last = "no attempt made"
        for attempt in range(attempts):
            wait = self.config.backoff_s * 2 ** attempt
            try:
                req = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:
                    raw = resp.read()
                return _parse_completion(url, raw)
            except urllib.error.HTTPError as e:
                detail = _snippet(e.read() if e.fp is not None else b"")
                last = f"HTTP {e.code} {e.reason}: {detail}"
                if e.code not in _RETRY_STATUS and e.code < 500:
                    raise JudgeError(f"judge at {url} refused the request ({last}); not retried") from None
                retry_after = e.headers.get("Retry-After") if e.headers else None
                if retry_after and retry_after.strip().replace(".", "", 1).isdigit():
                    wait = min(float(retry_after), 60.0)
            except _NETWORK_ERRORS as e:
                last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            if attempt + 1 < attempts:
                log.warning("judge at %s: attempt %d/%d failed (%s); retrying in %.1f s", url, attempt + 1, attempts,
                            last, wait)
                self._sleep(wait)
        raise JudgeError(f"judge at {url} failed after {attempts} attempts; last error: {last}")


def _snippet(raw: bytes, limit: int = 300) -> str:
    text = raw.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _parse_completion(url: str, raw: bytes) -> dict[str, Any]:
    """``choices[0].message.content`` and the returned ``model``; anything else is a clear error."""
    try:
        doc = json.loads(raw.decode("utf-8"))
        content = doc["choices"][0]["message"]["content"]
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError) as e:
        raise JudgeError(f"judge at {url} returned no choices[0].message.content ({type(e).__name__}: {e}): "
                         f"{_snippet(raw)}") from None
    if not isinstance(content, str):
        raise JudgeError(f"judge at {url} returned a non-string content {content!r}: {_snippet(raw)}")
    model = doc.get("model")
    return {"content": content, "model": model if isinstance(model, str) else None}
