"""Fetch the weights and data sources listed in ``config/sources.yaml``: HTTP(S) URLs with resume and
checksums, Hugging Face repos and files at pinned revisions, safe archive extraction, symlinks, and
clear errors for sources that need a person (Google Drive, licence forms).

Integrity: every downloaded file gets a record ``<dest>.sha256.json`` (size, sha256, url, time). The
first download writes it; every later run verifies the file against it, and a re-download must
reproduce it (a changed upstream file is an error, not a silent replacement). A ``sha256``/``size``
given in the config is checked on the first download too. Delete the record to accept new content.

HTTP: stdlib ``urllib`` only. A download goes to ``<dest>.part`` and is renamed onto ``dest`` only
after it is complete and verified. The validator of the version being fetched (its strong ``ETag``,
else its ``Last-Modified``) is kept beside the part, in ``<dest>.part.validator.json``. An interrupted
transfer resumes with a ``Range`` request carrying that validator in ``If-Range``, within the same call
(retries with back-off) or on the next run: a server whose file changed since answers 200 with the
whole new file, and the download restarts from zero; so does a part with no validator (nothing proves
its bytes belong to the current file), a server that ignores ``Range``, and a 206 whose validator or
total size differs from the recorded one. A host name that does not resolve fails at once (no network:
retrying does not help). Proxies come from the usual ``http(s)_proxy`` variables.

Hugging Face: through ``huggingface_hub``, so its own settings apply. ``HF_ENDPOINT`` points at a
mirror, ``HF_TOKEN`` authenticates (gated repos), ``HF_HOME``/``HF_HUB_CACHE`` move the cache, and
``HF_HUB_OFFLINE=1`` forbids network access: then only files already in the cache (or already in the
target folder) are used, and anything missing fails with :class:`DownloadError` naming the repo and the
revision. A revision that is a branch name (``main``) is resolved to its commit on the first download
and that commit is written to the record; later runs use the recorded commit, so a moving branch
never changes the files under an existing record. A 40-hex revision in the config pins it outright.

Archives (zip, tar, tar.gz/bz2/xz) are extracted only after every member has been checked: absolute
paths, drive letters, ``..`` components, links whose target leaves the extraction folder, members
under a link (or a file) of the same archive, and device files or FIFOs are refused with
:class:`UnsafeArchiveError` before anything is written; symlinks are created last and re-checked
against the real file system. A zip member's Unix mode counts only where the zip records one (see
:func:`_zip_mode`); otherwise it is a plain file or folder.
"""

from __future__ import annotations

import datetime as _dt
import http.client
import json
import logging
import os
import posixpath
import re
import shutil
import socket
import stat
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from internvl.errors import DataError
from internvl.provenance import file_sha256

log = logging.getLogger(__name__)

RECORD_SUFFIX = ".sha256.json"
USER_AGENT = "internvl-repro-download/1 (+urllib)"
KINDS = ("url", "hf", "hf_file", "manual", "link")
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A source could not be fetched (network, HTTP status, offline mode, bad config)."""


class NetworkError(DownloadError):
    """The server could not be reached or gave up (no network, DNS, refused, repeated cuts, offline hub)."""


class ChecksumError(DownloadError):
    """Size or sha256 of a file differs from the config or from its record."""


class UnsafeArchiveError(DownloadError):
    """An archive member would escape the extraction folder, or is a device/FIFO."""


class ManualSourceError(DownloadError):
    """A source that cannot be fetched automatically is not in place yet. The message is one line:
    "source 'x' is placed by hand: place <file> from <where> at <path> (access: ...); <instructions>"."""

    def __init__(self, name: str, dest: Path, where: str, instructions: str, access: str | None = None):
        self.name, self.dest = name, Path(dest)
        how = f" (access: {access})" if access else ""
        what = Path(dest).name + ("/" if not Path(dest).suffix else "")
        super().__init__(
            f"source {name!r} is placed by hand: place {what} from {where} at {Path(dest).resolve()}{how}; "
            + " ".join(instructions.split())
        )


# --- records and hashing ---------------------------------------------------------------------------


def record_path(dest: str | Path) -> Path:
    dest = Path(dest)
    return dest.with_name(dest.name + RECORD_SUFFIX)


def read_record(dest: str | Path) -> dict[str, Any] | None:
    p = record_path(dest)
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise DownloadError(f"{p}: unreadable record ({exc}); delete it to re-record") from exc


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def write_record(dest: str | Path, data: Mapping[str, Any]) -> Path:
    p = record_path(dest)
    _write_json_atomic(p, data)
    return p


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check(path: Path, size: int | None, sha256: str | None, origin: str,
           dest: Path | None = None) -> tuple[int, str]:
    """Size + sha256 of ``path``; ChecksumError if either differs from the expected values.

    ``path`` may be a download in progress (``.part``, a staging copy) of ``dest``; the hint names the
    file that holds the expectation: the pin in config/sources.yaml, or ``dest``'s record."""
    dest = dest or path
    got_size = path.stat().st_size
    if "config/sources.yaml" in origin:
        fix = ("The upstream file changed or the transfer is corrupt: run again to re-download; if upstream "
               "really changed, check the new file and update its sha256/size in config/sources.yaml.")
    elif record_path(dest).exists() and dest.exists() and path == dest:
        fix = (f"The upstream file changed or the copy is corrupt: delete {dest} to download it again, or "
               f"delete {record_path(dest)} to accept the new content on purpose.")
    elif record_path(dest).exists():
        fix = (f"The upstream file is not the one recorded: delete {record_path(dest)} to accept the new "
               "content on purpose.")
    else:
        fix = f"Delete {dest} and run again."
    what = dest if path == dest else f"the download of {dest}"
    if size is not None and got_size != int(size):
        raise ChecksumError(f"checksum mismatch: {what} has {got_size} bytes, expected {size} ({origin}). {fix}")
    got = file_sha256(path)
    if sha256 is not None and got != sha256.lower():
        raise ChecksumError(f"checksum mismatch: {what} has sha256 {got}, expected {sha256} ({origin}). {fix}")
    return got_size, got


def verify_file(dest: str | Path) -> dict[str, Any]:
    """Check ``dest`` against its record; returns the record. Raises ChecksumError/DownloadError."""
    dest = Path(dest)
    rec = read_record(dest)
    if rec is None:
        raise DownloadError(f"{dest}: no record {record_path(dest).name} to verify against")
    if not dest.exists():
        raise DownloadError(f"{dest}: missing (recorded {rec.get('recorded')})")
    _check(dest, rec.get("size"), rec.get("sha256"), f"recorded in {record_path(dest)}", dest)
    return rec


def _expected(dest: Path, sha256: str | None, size: int | None) -> tuple[dict | None, str | None, int | None, str]:
    rec = read_record(dest)
    if rec and sha256 and rec.get("sha256") != sha256.lower():
        raise ChecksumError(
            f"{dest}: config pins sha256 {sha256} but {record_path(dest)} recorded {rec.get('sha256')}; "
            "one of them is stale: delete the record or fix the config"
        )
    origin = "pinned in config/sources.yaml" if sha256 else (f"recorded in {record_path(dest)}" if rec else "")
    return rec, (sha256 or (rec or {}).get("sha256")), (size if size is not None else (rec or {}).get("size")), origin


def _adopt_or_verify(dest: Path, sha256: str | None, size: int | None, meta: Mapping[str, Any]) -> dict[str, Any]:
    """``dest`` exists: verify it against config/record, or record it when nothing is known yet."""
    rec, exp_sha, exp_size, origin = _expected(dest, sha256, size)
    got_size, got_sha = _check(dest, exp_size, exp_sha, origin or "nothing recorded", dest)
    if rec is None:
        rec = {**meta, "size": got_size, "sha256": got_sha, "recorded": _now()}
        write_record(dest, rec)
        log.info("recorded %s (%d bytes, sha256 %s)", dest, got_size, got_sha)
    else:
        log.info("verified %s against %s", dest, record_path(dest).name)
    return rec


# --- HTTP with resume -------------------------------------------------------------------------------

_RETRYABLE = (http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionError, TimeoutError,
              socket.timeout)
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
VALIDATOR_SUFFIX = ".validator.json"


def validator_path(part: str | Path) -> Path:
    """Where the validator of a download in progress lives: ``<dest>.part.validator.json``."""
    part = Path(part)
    return part.with_name(part.name + VALIDATOR_SUFFIX)


def _validator(headers: Any) -> dict[str, Any]:
    """The response's validator for If-Range: a strong ETag, else Last-Modified (RFC 9110 13.1.5)."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return {"etag": etag}
    modified = headers.get("Last-Modified")
    return {"last_modified": modified} if modified else {}


def _read_validator(part: Path) -> dict[str, Any]:
    try:
        return json.loads(validator_path(part).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _restart(part: Path, url: str, why: str) -> None:
    log.warning("%s: %s; restarting from byte 0", url, why)
    part.unlink(missing_ok=True)
    validator_path(part).unlink(missing_ok=True)


def _open(url: str, offset: int, timeout: float, if_range: str | None = None):
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if if_range:
            headers["If-Range"] = if_range
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _transfer(url: str, part: Path, timeout: float) -> int | None:
    """One request, appending to ``part`` from its current size. Returns the total size if known.

    A part is only continued under the validator recorded when it began: the request carries it in
    ``If-Range``, and a 206 that names another version (or another total size) is not appended to."""
    offset = part.stat().st_size if part.exists() else 0
    kept = _read_validator(part) if offset else {}
    if offset and not (kept.get("etag") or kept.get("last_modified")):
        _restart(part, url, f"{offset} bytes kept in {part} but no validator recorded for them")
        offset, kept = 0, {}
    try:
        resp = _open(url, offset, timeout, kept.get("etag") or kept.get("last_modified"))
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: either complete or garbage beyond the end
            m = re.search(r"/(\d+)\s*$", exc.headers.get("Content-Range", ""))
            total = int(m.group(1)) if m else None
            if total == offset and total == kept.get("total", total):
                return total
            _restart(part, url, f"range not satisfiable at {offset} (server size {total})")
            raise ConnectionError(f"range not satisfiable at {offset} (server size {total})") from exc
        raise
    with resp:
        total: int | None = None
        now = _validator(resp.headers)
        if resp.status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != offset:
                raise DownloadError(f"{url}: bad Content-Range {resp.headers.get('Content-Range')!r} for offset {offset}")
            total = None if m.group(3) == "*" else int(m.group(3))
            changed = [k for k in ("etag", "last_modified") if k in kept and now.get(k) not in (None, kept[k])]
            if changed or (kept.get("total") is not None and total is not None and total != kept["total"]):
                _restart(part, url, f"the server sent a range of another version ({changed or 'size'} changed)")
                raise ConnectionError("range of another version")  # retried at once from byte 0
            mode = "ab"
        else:
            if offset:
                log.warning("%s: the server sent the whole file (it changed upstream since %s, or the server "
                            "ignores Range); restarting from byte 0", url, kept)
            length = resp.headers.get("Content-Length")
            total = int(length) if length is not None else None
            mode = "wb"
            _write_json_atomic(validator_path(part), {**now, "url": url, "total": total})
        with open(part, mode) as fh:
            while chunk := resp.read(_CHUNK):
                fh.write(chunk)
    have = part.stat().st_size
    if total is not None and have < total:
        raise http.client.IncompleteRead(b"", total - have)
    if total is not None and have > total:
        _restart(part, url, f"received {have} bytes but the server announced {total}")
        raise DownloadError(f"{url}: received {have} bytes but the server announced {total}")
    return total


def _unresolvable(exc: BaseException) -> bool:
    return isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, socket.gaierror)


def http_download(url: str, part: Path, retries: int = 5, timeout: float = 60.0, backoff: float = 1.0) -> int:
    """Download ``url`` into ``part`` (resuming what is there). Returns the final size."""
    part.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        try:
            _transfer(url, part, timeout)
            return part.stat().st_size
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt >= retries:
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            why = f"HTTP {exc.code}"
        except (*_RETRYABLE, urllib.error.URLError) as exc:
            if _unresolvable(exc):
                host = urllib.parse.urlsplit(url).hostname
                raise NetworkError(f"{url}: cannot resolve host {host} ({exc.reason}): no network access "
                                   "from this machine?") from None
            if isinstance(exc, urllib.error.URLError) and not isinstance(exc.reason, (OSError, TimeoutError)):
                raise NetworkError(f"{url}: {exc.reason}") from exc
            if attempt >= retries:
                have = part.stat().st_size if part.exists() else 0
                raise NetworkError(
                    f"{url}: gave up after {retries + 1} attempts ({exc!r}); {have} bytes kept in {part}, "
                    "the next run resumes from there"
                ) from exc
            why = repr(exc)
        attempt += 1
        have = part.stat().st_size if part.exists() else 0
        log.warning("%s: interrupted at %d bytes (%s); resuming (attempt %d/%d)", url, have, why, attempt, retries)
        time.sleep(backoff * (2 ** (attempt - 1)))


def fetch_url(url: str, dest: str | Path, sha256: str | None = None, size: int | None = None, *,
              retries: int = 5, timeout: float = 60.0, backoff: float = 1.0, name: str | None = None) -> dict[str, Any]:
    """Download ``url`` to ``dest`` once; verify on every later call. Returns the record."""
    dest = Path(dest)
    meta = {"source": name, "url": url}
    if dest.exists():
        return _adopt_or_verify(dest, sha256, size, meta)
    rec, exp_sha, exp_size, origin = _expected(dest, sha256, size)
    part = dest.with_name(dest.name + ".part")
    log.info("downloading %s -> %s", url, dest)
    http_download(url, part, retries=retries, timeout=timeout, backoff=backoff)
    try:
        got_size, got_sha = _check(part, exp_size, exp_sha, origin or "nothing recorded", dest)
    except ChecksumError:
        part.unlink(missing_ok=True)  # a resumed copy of the wrong file is worthless
        validator_path(part).unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    validator_path(part).unlink(missing_ok=True)
    if rec is None:
        rec = {**meta, "size": got_size, "sha256": got_sha, "recorded": _now()}
        write_record(dest, rec)
    return rec


# --- archives ---------------------------------------------------------------------------------------


def _clean_name(name: str, archive: Path) -> str:
    """Archive member name -> safe relative POSIX path, or UnsafeArchiveError."""
    raw = name.replace("\\", "/")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} contains '..' (path traversal)")
    return "/".join(parts)


def _link_inside(member: str, target: str, archive: Path, kind: str) -> str:
    """Lexical check of a link target; returns it normalised relative to the extraction root."""
    t = target.replace("\\", "/")
    if t.startswith("/") or re.match(r"^[A-Za-z]:", t):
        raise UnsafeArchiveError(f"{archive}: {kind} {member!r} -> {target!r} points to an absolute path")
    base = posixpath.dirname(member) if kind == "symlink" else ""
    resolved = posixpath.normpath(posixpath.join(base, t))
    if resolved == ".." or resolved.startswith("../") or resolved.startswith("/"):
        raise UnsafeArchiveError(f"{archive}: {kind} {member!r} -> {target!r} points outside the target folder")
    return resolved


def _inside(root: Path, path: Path) -> bool:
    root_r = os.path.realpath(root)
    p = os.path.realpath(path)
    return p == root_r or p.startswith(root_r + os.sep)


@dataclass
class _Member:
    name: str  # cleaned relative path
    kind: str  # file | dir | symlink | hardlink
    link: str | None
    ref: Any  # ZipInfo or TarInfo


def _zip_mode(info: zipfile.ZipInfo) -> int:
    """The Unix file type and mode of a zip member, or 0 where the zip does not carry one.

    Only a zip made on Unix (``create_system`` 3) stores ``st_mode`` in the high bits of
    ``external_attr``, and even then the type bits may be missing: Python's ``writestr`` stores 0o600
    (or 0) without ``S_IFREG``. Such members are plain files or folders (by the trailing slash)."""
    mode = info.external_attr >> 16
    return mode if info.create_system == 3 and stat.S_IFMT(mode) else 0


def _scan_zip(zf: zipfile.ZipFile, archive: Path) -> list[_Member]:
    out = []
    for info in zf.infolist():
        name = _clean_name(info.filename, archive)
        mode = _zip_mode(info)
        if stat.S_ISLNK(mode):
            target = zf.read(info).decode("utf-8", "surrogateescape")
            _link_inside(name, target, archive, "symlink")
            out.append(_Member(name, "symlink", target, info))
        elif mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a device file or FIFO")
        elif info.is_dir() or stat.S_ISDIR(mode):
            out.append(_Member(name, "dir", None, info))
        else:
            out.append(_Member(name, "file", None, info))
    return out


def _check_layout(members: list[_Member], archive: Path) -> None:
    """Refuse a member that lies under another member that is a link or a file (``d`` -> ``sub``, then
    ``d/x``), before anything is written: through the link it would land elsewhere, and creating the
    link after the folder fails half-way."""
    links = {m.name for m in members if m.kind == "symlink"}
    files = {m.name for m in members if m.kind in ("file", "hardlink")}
    for m in members:
        parts = m.name.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in links:
                raise UnsafeArchiveError(f"{archive}: member {m.name!r} lies under the link {prefix!r} of the same archive")
            if prefix in files:
                raise UnsafeArchiveError(f"{archive}: member {m.name!r} lies under {prefix!r}, which is a file")
    dirs = {m.name for m in members if m.kind == "dir"}
    clash = sorted(links & (dirs | files))
    if clash:
        raise UnsafeArchiveError(f"{archive}: {clash[0]!r} is both a link and a folder or file")


def _scan_tar(tf: tarfile.TarFile, archive: Path) -> list[_Member]:
    out = []
    for info in tf.getmembers():
        name = _clean_name(info.name, archive)
        if info.issym():
            _link_inside(name, info.linkname, archive, "symlink")
            out.append(_Member(name, "symlink", info.linkname, info))
        elif info.islnk():
            target = _link_inside(name, _clean_name(info.linkname, archive), archive, "hardlink")
            out.append(_Member(name, "hardlink", target, info))
        elif info.isdir():
            out.append(_Member(name, "dir", None, info))
        elif info.isreg():
            out.append(_Member(name, "file", None, info))
        else:
            raise UnsafeArchiveError(f"{archive}: member {info.name!r} is a device file or FIFO")
    return out


def archive_format(path: str | Path) -> str:
    p = str(path).lower()
    if p.endswith(".zip"):
        return "zip"
    if p.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")):
        return "tar"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise DownloadError(f"{path}: not a zip or tar archive")


def safe_extract(archive: str | Path, into: str | Path, fmt: str | None = None) -> list[str]:
    """Extract ``archive`` into ``into`` after checking every member; returns the member paths."""
    archive, into = Path(archive), Path(into)
    fmt = fmt or archive_format(archive)
    into.mkdir(parents=True, exist_ok=True)
    opener: Callable[[], Any] = (lambda: zipfile.ZipFile(archive)) if fmt == "zip" else (lambda: tarfile.open(archive))
    with opener() as ar:
        members = _scan_zip(ar, archive) if fmt == "zip" else _scan_tar(ar, archive)
        _check_layout(members, archive)
        links = []
        for m in members:
            dest = into / m.name if m.name else into
            if not _inside(into, dest.parent if m.kind == "symlink" else dest):
                raise UnsafeArchiveError(f"{archive}: member {m.name!r} resolves outside {into} (through an existing link)")
            if m.kind == "dir":
                dest.mkdir(parents=True, exist_ok=True)
            elif m.kind == "symlink":
                links.append(m)  # created last, so no member is written through a link from this archive
            elif m.kind == "hardlink":
                src = into / m.link
                if not src.is_file() or not _inside(into, src):
                    raise UnsafeArchiveError(
                        f"{archive}: hardlink {m.name!r} -> {m.link!r} has no regular file inside {into}")
                dest.parent.mkdir(parents=True, exist_ok=True)
                if dest.exists() or dest.is_symlink():
                    dest.unlink()
                shutil.copyfile(src, dest)  # a copy: no inode shared with anything
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                if dest.is_symlink():
                    dest.unlink()
                src_fh = ar.open(m.ref) if fmt == "zip" else ar.extractfile(m.ref)
                tmp = dest.with_name(dest.name + ".extracting")
                with src_fh, open(tmp, "wb") as out:
                    shutil.copyfileobj(src_fh, out, _CHUNK)
                os.replace(tmp, dest)
                mode = _zip_mode(m.ref) if fmt == "zip" else m.ref.mode
                if mode & 0o111:
                    os.chmod(dest, 0o755)
        for m in links:
            dest = into / m.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_symlink() or dest.is_file():
                dest.unlink()
            os.symlink(m.link, dest)
        for m in links:  # links created later may change where earlier ones lead: check the real paths
            dest = into / m.name
            if not _inside(into, dest):
                for n in links:
                    (into / n.name).unlink(missing_ok=True)
                raise UnsafeArchiveError(f"{archive}: symlink {m.name!r} -> {m.link!r} resolves outside {into}")
    return [m.name for m in members]


# --- Hugging Face -----------------------------------------------------------------------------------


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _hf_error(repo_id: str, revision: str, exc: Exception) -> DownloadError:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if _offline():
        return NetworkError(
            f"{repo_id}@{revision}: HF_HUB_OFFLINE=1 and the files are not in the local cache "
            f"({os.environ.get('HF_HUB_CACHE') or os.environ.get('HF_HOME') or '~/.cache/huggingface'}). "
            "Run once with network access (HF_ENDPOINT may point at a mirror), or copy a cache that has them."
        )
    why = " ".join(f"{type(exc).__name__}: {exc}".split())
    return NetworkError(f"{repo_id}@{revision}: download from {endpoint} failed: {why}; run it where {endpoint} is "
                        "reachable (HF_ENDPOINT may point at a mirror, HF_TOKEN for gated repos), or with "
                        "HF_HUB_OFFLINE=1 and a Hugging Face cache (HF_HOME) that has the files")


def resolve_revision(repo_id: str, revision: str, repo_type: str | None, recorded: str | None,
                     pin_hint: str = "config/sources.yaml") -> str:
    """Commit to download: the record's, a 40-hex config pin, or the branch resolved now (online).

    ``pin_hint`` says where the revision is configured (the source entry, or a hub model's
    ``revision`` in config/config.yaml), so the offline error points at the right file."""
    if recorded:
        if _SHA_RE.match(revision) and revision != recorded:
            raise DownloadError(
                f"{repo_id}: config pins revision {revision} but the local copy recorded {recorded}; "
                "delete the record (and the folder) to switch"
            )
        return recorded
    if _SHA_RE.match(revision):
        return revision
    if _offline():
        raise NetworkError(
            f"{repo_id}@{revision}: HF_HUB_OFFLINE=1 and nothing recorded, so the branch {revision!r} cannot be "
            f"resolved to a commit; pin a 40-hex revision ({pin_hint}) or run once online"
        )
    from huggingface_hub import HfApi

    try:
        info = HfApi().repo_info(repo_id, revision=revision, repo_type=repo_type)
    except Exception as exc:  # network, auth, missing repo: all reported the same way
        raise _hf_error(repo_id, revision, exc) from exc
    return info.sha


def _file_table(folder: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and not rel.startswith(".cache/"):
            out[rel] = {"size": p.stat().st_size, "sha256": file_sha256(p)}
    return out


def fetch_hf_snapshot(repo_id: str, revision: str, dest: str | Path, *, repo_type: str | None = None,
                      allow_patterns: list[str] | None = None, name: str | None = None,
                      verify: bool = True, pin_hint: str = "config/sources.yaml") -> dict[str, Any]:
    """Snapshot of a hub repo into ``dest`` at a pinned commit; record per-file size + sha256."""
    dest = Path(dest)
    rec = read_record(dest)
    commit = resolve_revision(repo_id, revision, repo_type, (rec or {}).get("commit"), pin_hint)
    if rec and dest.is_dir():
        if verify:
            got = _file_table(dest)
            bad = [f for f, v in rec["files"].items() if got.get(f) != v]
            if bad:
                raise ChecksumError(
                    f"{dest}: {len(bad)} file(s) differ from {record_path(dest)} (e.g. {bad[:3]}); delete the "
                    "folder to re-download, or the record to accept the local content"
                )
        return rec
    from huggingface_hub import snapshot_download

    log.info("hf snapshot %s@%s (%s) -> %s", repo_id, commit, revision, dest)
    try:
        snapshot_download(repo_id=repo_id, revision=commit, repo_type=repo_type, local_dir=str(dest),
                          allow_patterns=allow_patterns)
    except Exception as exc:
        raise _hf_error(repo_id, commit, exc) from exc
    files = _file_table(dest)
    if not files:
        raise DownloadError(f"{repo_id}@{commit}: nothing matched allow_patterns {allow_patterns}")
    if rec and rec.get("files") and files != rec["files"]:
        raise ChecksumError(f"{dest}: re-downloaded files differ from {record_path(dest)}")
    rec = rec or {"source": name, "repo_id": repo_id, "repo_type": repo_type or "model", "revision": revision,
                  "commit": commit, "allow_patterns": allow_patterns, "files": files, "recorded": _now()}
    write_record(dest, rec)
    return rec


def fetch_hf_file(repo_id: str, filename: str, revision: str, dest: str | Path, *, repo_type: str | None = None,
                  sha256: str | None = None, size: int | None = None, name: str | None = None) -> dict[str, Any]:
    """One file of a hub repo, saved as ``dest`` (any name), with the same record rules as a URL."""
    dest = Path(dest)
    rec = read_record(dest)
    if dest.exists():  # downloaded before, or placed by hand (then the commit is unknown unless pinned)
        commit = (rec or {}).get("commit") or (revision if _SHA_RE.match(revision) else None)
        meta = {"source": name, "repo_id": repo_id, "repo_type": repo_type or "model", "filename": filename,
                "revision": revision, "commit": commit}
        return _adopt_or_verify(dest, sha256, size, meta)
    commit = resolve_revision(repo_id, revision, repo_type, (rec or {}).get("commit"))
    meta = {"source": name, "repo_id": repo_id, "repo_type": repo_type or "model", "filename": filename,
            "revision": revision, "commit": commit}
    rec, exp_sha, exp_size, origin = _expected(dest, sha256, size)
    from huggingface_hub import hf_hub_download

    staging = dest.parent / f".hf-staging-{dest.name}"
    try:
        got = hf_hub_download(repo_id, filename, revision=commit, repo_type=repo_type, local_dir=str(staging))
    except Exception as exc:
        raise _hf_error(repo_id, commit, exc) from exc
    try:
        got_size, got_sha = _check(Path(got), exp_size, exp_sha, origin or "nothing recorded", dest)
        os.replace(got, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if rec is None:
        rec = {**meta, "size": got_size, "sha256": got_sha, "recorded": _now()}
        write_record(dest, rec)
    return rec


# --- links and manual sources -----------------------------------------------------------------------


def make_link(dest: str | Path, target: str) -> None:
    """Relative symlink ``dest -> target`` (as the seed's ``ln -s ../coco/val2014 ./``)."""
    dest = Path(dest)
    if os.path.isabs(target):
        raise DownloadError(f"{dest}: link target {target!r} must be relative")
    if dest.is_symlink():
        if os.readlink(dest) == target:
            return
        raise DownloadError(f"{dest}: already links to {os.readlink(dest)!r}, expected {target!r}")
    if dest.exists():
        log.info("%s exists (not a link); leaving it in place", dest)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, dest)


def check_manual(name: str, dest: str | Path, where: str, instructions: str, access: str | None = None,
                 expect: str = "file", sha256: str | None = None, size: int | None = None) -> dict[str, Any]:
    dest = Path(dest)
    present = dest.is_file() if expect == "file" else (dest.is_dir() and any(dest.iterdir()))
    if not present:
        raise ManualSourceError(name, dest, where, instructions, access)
    if expect == "file":
        return _adopt_or_verify(dest, sha256, size, {"source": name, "url": where, "manual": True})
    return {"source": name, "manual": True, "files": sum(1 for p in dest.rglob("*") if p.is_file())}


# --- sources.yaml -----------------------------------------------------------------------------------


def load_sources(path: str | Path) -> dict[str, Any]:
    """Parse and sanity-check ``config/sources.yaml``; returns the whole document."""
    import yaml

    doc = yaml.safe_load(Path(path).read_text())
    roots = doc.get("roots") or {}
    problems = []
    for name, e in (doc.get("sources") or {}).items():
        kind = e.get("kind")
        if kind not in KINDS:
            problems.append(f"{name}: kind {kind!r} not in {KINDS}")
            continue
        if e.get("root") not in roots:
            problems.append(f"{name}: root {e.get('root')!r} not in roots {sorted(roots)}")
        if not e.get("dest"):
            problems.append(f"{name}: dest missing")
        need = {"url": ["url"], "hf": ["repo_id", "revision"], "hf_file": ["repo_id", "filename", "revision"],
                "manual": ["where", "instructions"], "link": ["target"]}[kind]
        problems += [f"{name}: {kind} source needs {k!r}" for k in need if not e.get(k)]
        if kind == "url" and "drive.google.com" in str(e.get("url")):
            problems.append(f"{name}: Google Drive links cannot be fetched reliably; make it a manual source")
        if e.get("extract") not in (None, False) and kind not in ("url", "hf_file", "manual"):
            problems.append(f"{name}: extract only applies to a downloaded file")
        if kind == "link" and isinstance(e.get("target"), Mapping) and e["target"].get("root") not in roots:
            problems.append(f"{name}: link target root {e['target'].get('root')!r} unknown")
        problems += [f"{name}: after names unknown source {a!r}" for a in e.get("after") or []
                     if a not in doc["sources"]]
    if problems:
        raise DownloadError(f"{path}: " + "; ".join(problems))
    return doc


def _dest(entry: Mapping[str, Any], roots: Mapping[str, str]) -> Path:
    return Path(roots[entry["root"]]) / entry["dest"]


def fetch_source(name: str, entry: Mapping[str, Any], roots: Mapping[str, str],
                 **http: Any) -> dict[str, Any]:
    """Bring one source in place (download/verify, extract, link); returns a summary for the stamp."""
    try:
        return _fetch_source(name, entry, roots, **http)
    except ManualSourceError:
        raise
    except NetworkError as exc:
        dest = _dest(entry, roots).resolve()
        fix = ("" if entry["kind"] == "hf" else
               f"; run the download where the network is reachable, or fetch the file yourself and place it at "
               f"{dest} (it is then recorded and verified)")
        raise type(exc)(f"source {name!r}: {str(exc).rstrip('.')}{fix}") from None
    except DownloadError as exc:
        if f"source {name!r}" in str(exc):
            raise
        raise type(exc)(f"source {name!r}: {exc}") from None


def _fetch_source(name: str, entry: Mapping[str, Any], roots: Mapping[str, str], **http: Any) -> dict[str, Any]:
    kind, dest = entry["kind"], _dest(entry, roots)
    summary: dict[str, Any] = {"source": name, "kind": kind, "dest": str(dest)}
    if kind == "url":
        rec = fetch_url(entry["url"], dest, entry.get("sha256"), entry.get("size"), name=name, **http)
    elif kind == "hf_file":
        rec = fetch_hf_file(entry["repo_id"], entry["filename"], str(entry["revision"]), dest,
                            repo_type=entry.get("repo_type"), sha256=entry.get("sha256"), size=entry.get("size"),
                            name=name)
    elif kind == "hf":
        rec = fetch_hf_snapshot(entry["repo_id"], str(entry["revision"]), dest, repo_type=entry.get("repo_type"),
                                allow_patterns=entry.get("allow_patterns"), name=name)
        rec = {k: rec[k] for k in ("repo_id", "commit", "revision")} | {"files": len(rec["files"])}
    elif kind == "link":
        target = entry["target"]
        if isinstance(target, Mapping):  # {root, path}: relative to another root, wherever that lives
            target = os.path.relpath(Path(roots[target["root"]]) / target["path"], dest.parent)
        make_link(dest, target)
        rec = {"target": target}
    else:
        rec = check_manual(name, dest, entry["where"], entry["instructions"], entry.get("access"),
                           entry.get("expect", "file"), entry.get("sha256"), entry.get("size"))
    summary["record"] = rec
    ex = entry.get("extract")
    if ex is not None and ex is not False:  # true, {} or {into: <folder beside dest>, format: zip|tar}
        ex = {} if ex is True else ex
        into = dest.parent / ex.get("into", ".")
        members = safe_extract(dest, into, ex.get("format"))
        summary["extracted"] = {"into": str(into), "members": len(members)}
    root = Path(roots[entry["root"]])
    missing = [c for c in entry.get("check") or [] if not (root / c).exists()]
    if missing:
        where = dest.parent / (ex or {}).get("into", ".") if isinstance(ex, Mapping) else dest.parent
        top = sorted(p.name for p in where.iterdir())[:20] if where.is_dir() else []
        raise DownloadError(
            f"source {name!r}: expected {[str(root / c) for c in missing]} after fetching {dest}, but they are "
            f"missing (found in {where}: {top}); the upstream layout differs from config/sources.yaml: fix "
            "its extract/check entries"
        )
    return summary


def fetch_sources(names: Iterable[str], doc: Mapping[str, Any], roots: Mapping[str, str] | None = None,
                  **http: Any) -> list[dict[str, Any]]:
    roots = roots or doc["roots"]
    return [fetch_source(n, doc["sources"][n], roots, **http) for n in names]



# --- which source a file comes from ---------------------------------------------------------------


def source_roots(doc: Mapping[str, Any], data_root: str | Path) -> dict[str, str]:
    """The roots of a sources document with ``data`` at the config's ``data_root`` (as download.smk)."""
    return dict(doc["roots"], data=str(data_root))


def sources_providing(path: str | Path, doc: Mapping[str, Any], roots: Mapping[str, str]) -> list[str]:
    """Names of the sources whose files include ``path``: the destination itself, anything under a
    folder destination, the archive's extraction folder or one of its ``check`` paths."""
    target = os.path.normpath(os.path.abspath(path))
    out = []
    for name, e in doc["sources"].items():
        root = Path(roots[e["root"]])
        places = [root / e["dest"], *(root / c for c in e.get("check") or [])]
        for place in places:
            p = os.path.normpath(os.path.abspath(place))
            if target == p or target.startswith(p + os.sep):
                out.append(name)
                break
    return out


def missing_file_hint(path: str | Path, sources_file: str | Path, data_root: str | Path,
                      state_dir: str | Path | None = None) -> str | None:
    """How to get a missing input ``path``: the source that provides it and the command that fetches it
    (or, for a manual source, where to place it); None when no source provides it."""
    doc = load_sources(sources_file)
    roots = source_roots(doc, data_root)
    names = sources_providing(path, doc, roots)
    if not names:
        return None
    state = Path(state_dir) if state_dir is not None else Path(data_root) / ".sources"
    name = names[0]
    stamp = state / f"{name}.json"
    e = doc["sources"][name]
    if stamp.exists():
        return (f"it comes from source {name!r} ({sources_file}), whose stamp {stamp} exists: the file was moved or "
                f"deleted since, or the source's layout differs; delete {stamp} and run again")
    if e["kind"] == "manual":
        return str(ManualSourceError(name, _dest(e, roots), e["where"], e["instructions"], e.get("access")))
    return f"it comes from source {name!r} ({sources_file}): fetch it with `snakemake --cores 1 {stamp}`"


def explain_missing(exc: DataError, config: Mapping[str, Any], repo: str | Path) -> DataError:
    """``exc`` with the source that provides its file when that file is missing (a real run's config;
    the demo writes its own files): the error then says which command fetches it."""
    if "demo" in config or Path(exc.path).exists():
        return exc
    sources = Path(repo, config.get("sources_file", "config/sources.yaml"))
    return exc.with_hint(missing_file_hint(exc.path, sources, config["data_root"]))
