"""Downloads against a local HTTP server on 127.0.0.1: resume, checksums, unsafe archives, manual sources,
Hugging Face offline mode and HF_ENDPOINT."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from internvl import download as dl

REPO = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _State:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, list[int]] = {}  # path -> byte counts at which to drop the connection, one per request
        self.ignore_range = False
        self.validators = {"etag", "last_modified"}  # which validators the server sends
        self.honor_if_range = True  # False: a broken server that sends the range whatever If-Range says
        self.mtime: dict[str, str] = {}  # path -> Last-Modified (default: derived from the content)
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.if_range: list[str | None] = []  # the If-Range header of each request

    def etag(self, body: bytes) -> str:
        return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'

    def last_modified(self, path: str, body: bytes) -> str:
        # a distinct, valid HTTP date per content (the day of the year from the hash)
        day = 1 + hashlib.sha256(body).digest()[0] % 28
        return self.mtime.get(path, f"Mon, {day:02d} Jan 2024 00:00:00 GMT")


class _Handler(BaseHTTPRequestHandler):
    state: _State
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _serve(self, head: bool):
        st = self.state
        path = self.path.split("?")[0]
        st.requests.append((self.command, path, self.headers.get("Range")))
        st.if_range.append(self.headers.get("If-Range"))
        m = re.match(r"^/hf/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$", path)
        body = st.files.get(m.group("file") if m else path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        rng = self.headers.get("Range")
        etag, modified = st.etag(body), st.last_modified(path, body)
        cond = self.headers.get("If-Range")
        if rng and cond and st.honor_if_range and cond not in (etag, modified):
            rng = None  # RFC 9110 13.1.5: the representation changed, send all of it
        if rng and not st.ignore_range:
            start = int(re.match(r"bytes=(\d+)-", rng).group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("Accept-Ranges", "bytes")
        if m:  # just enough of the hub's resolve endpoint for huggingface_hub
            self.send_header("ETag", '"' + hashlib.sha256(body).hexdigest() + '"')
            self.send_header("X-Repo-Commit", COMMIT)
        else:
            if "etag" in st.validators:
                self.send_header("ETag", etag)
            if "last_modified" in st.validators:
                self.send_header("Last-Modified", modified)
        self.end_headers()
        if head:
            return
        payload = body[start:]
        cuts = st.cut.get(path)
        if cuts:
            n = cuts.pop(0)
            self.wfile.write(payload[:n])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # drop mid-body: the client sees fewer bytes than Content-Length
            return
        self.wfile.write(payload)

    def do_GET(self):  # noqa: N802
        self._serve(head=False)

    def do_HEAD(self):  # noqa: N802
        self._serve(head=True)


@pytest.fixture()
def server():
    state = _State()
    handler = type("H", (_Handler,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


def _blob(n: int, seed: int = 0) -> bytes:
    out, h = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:n])


FAST = {"retries": 3, "backoff": 0.0, "timeout": 10.0}


def test_resume_after_cut_connection(server, tmp_path):
    body = _blob(3_000_000)
    server.files["/big.bin"] = body
    server.cut["/big.bin"] = [1_100_000]
    dest = tmp_path / "d" / "big.bin"
    rec = dl.fetch_url(server.base + "/big.bin", dest, **FAST)
    assert dest.read_bytes() == body
    assert rec["size"] == len(body) and rec["sha256"] == hashlib.sha256(body).hexdigest()
    assert json.loads(dl.record_path(dest).read_text())["sha256"] == rec["sha256"]
    ranges = [r for (_, p, r) in server.requests if p == "/big.bin"]
    assert ranges[0] is None and ranges[1] is not None
    assert int(re.match(r"bytes=(\d+)-", ranges[1]).group(1)) > 0  # resumed, not restarted
    assert not dest.with_name("big.bin.part").exists()


def test_resume_on_the_next_run(server, tmp_path):
    body = _blob(2_500_000, seed=1)
    server.files["/f.bin"] = body
    server.cut["/f.bin"] = [700_000]
    dest = tmp_path / "f.bin"
    with pytest.raises(dl.DownloadError, match="next run resumes"):
        dl.fetch_url(server.base + "/f.bin", dest, retries=0, backoff=0.0)
    part = dest.with_name("f.bin.part")
    assert not dest.exists() and 0 < part.stat().st_size < len(body)
    kept = part.stat().st_size
    dl.fetch_url(server.base + "/f.bin", dest, **FAST)
    assert dest.read_bytes() == body
    assert server.requests[-1][2] == f"bytes={kept}-"


def test_complete_part_file_is_finished_without_refetching(server, tmp_path):
    body = _blob(10_000, seed=3)
    server.files["/done.bin"] = body
    dest = tmp_path / "done.bin"
    dest.with_name("done.bin.part").write_bytes(body)  # e.g. killed between the last byte and the rename
    dl.validator_path(dest.with_name("done.bin.part")).write_text(json.dumps({"etag": server.etag(body)}))
    dl.fetch_url(server.base + "/done.bin", dest, **FAST)
    assert dest.read_bytes() == body and server.requests == [("GET", "/done.bin", "bytes=10000-")]  # a 416


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    body = _blob(1_500_000, seed=2)
    server.files["/r.bin"] = body
    server.cut["/r.bin"] = [400_000]
    server.ignore_range = True
    dest = tmp_path / "r.bin"
    dl.fetch_url(server.base + "/r.bin", dest, **FAST)
    assert dest.read_bytes() == body


def _cut_then_change(server, tmp_path, name: str) -> tuple[Path, bytes, bytes, str]:
    """A first run cut mid-file, then the upstream file replaced by another of the same size."""
    old, new = _blob(1_200_000, seed=10), _blob(1_200_000, seed=11)
    server.files[name] = old
    server.cut[name] = [500_000]
    dest = tmp_path / name.strip("/")
    with pytest.raises(dl.DownloadError, match="next run resumes"):
        dl.fetch_url(server.base + name, dest, retries=0, backoff=0.0)
    assert 0 < dest.with_name(dest.name + ".part").stat().st_size < len(old)
    validator = server.etag(old)
    server.files[name] = new
    return dest, old, new, validator


def test_resume_after_the_file_changed_upstream_restarts_from_zero(server, tmp_path):
    """Fault 2: a Range request without a validator spliced the old head onto the new tail."""
    dest, old, new, etag = _cut_then_change(server, tmp_path, "/changed.bin")
    rec = dl.fetch_url(server.base + "/changed.bin", dest, **FAST)
    assert dest.read_bytes() == new  # not old[:cut] + new[cut:]
    assert rec["sha256"] == hashlib.sha256(new).hexdigest()
    assert server.if_range[-1] == etag  # the resumed request named the version the .part began with
    assert server.requests[-1][2] is not None  # it did ask for a range; the server answered 200 (changed)
    assert not dest.with_name("changed.bin.part").exists()
    assert not dl.validator_path(dest.with_name("changed.bin.part")).exists()


def test_resume_uses_last_modified_without_an_etag(server, tmp_path):
    server.validators = {"last_modified"}
    dest, old, new, _ = _cut_then_change(server, tmp_path, "/lm.bin")
    stamp = server.last_modified("/lm.bin", old)
    server.mtime["/lm.bin"] = "Tue, 02 Jul 2024 10:00:00 GMT"  # the new file's date
    dl.fetch_url(server.base + "/lm.bin", dest, **FAST)
    assert dest.read_bytes() == new and server.if_range[-1] == stamp


def test_resume_refuses_a_range_of_another_version(server, tmp_path):
    """A server that ignores If-Range and sends 206 with a new ETag: the part is dropped, not spliced."""
    server.honor_if_range = False
    dest, _, new, _ = _cut_then_change(server, tmp_path, "/liar.bin")
    dl.fetch_url(server.base + "/liar.bin", dest, **FAST)
    assert dest.read_bytes() == new
    assert server.requests[-1][2] is None  # the last request restarted from byte 0


def test_part_without_a_validator_is_not_resumed(server, tmp_path):
    """No ETag or Last-Modified: nothing proves the bytes kept belong to the same file, so start over."""
    server.validators = set()
    dest, _, new, _ = _cut_then_change(server, tmp_path, "/novalidator.bin")
    dl.fetch_url(server.base + "/novalidator.bin", dest, **FAST)
    assert dest.read_bytes() == new and server.requests[-1][2] is None


def test_checksum_hints_name_files_that_exist(server, tmp_path):
    """Fault 7: the mismatch hint named '<dest>.part.sha256.json', a file that never exists."""
    server.files["/h.txt"] = b"first\n"
    dest = tmp_path / "h.txt"
    dl.fetch_url(server.base + "/h.txt", dest, **FAST)
    dest.unlink()
    server.files["/h.txt"] = b"second\n"
    with pytest.raises(dl.ChecksumError) as err:
        dl.fetch_url(server.base + "/h.txt", dest, **FAST)
    named = re.findall(r"(/\S+?\.sha256\.json)", str(err.value))
    assert named and all(Path(p).exists() for p in named), str(err.value)
    assert ".part" not in str(err.value)
    # a pinned checksum: the hint is the pin in config/sources.yaml, not a record that was never written
    with pytest.raises(dl.ChecksumError) as err:
        dl.fetch_url(server.base + "/h.txt", tmp_path / "pinned.txt", sha256="0" * 64, **FAST)
    assert "config/sources.yaml" in str(err.value) and ".sha256.json" not in str(err.value)


def test_unresolvable_host_fails_at_once_with_the_fix(tmp_path):
    """No network: one clear error naming the source, the URL's host and what to do, without retries."""
    entry = {"kind": "url", "root": "data", "dest": "mmbench/x.tsv", "url": "http://no-such-host.invalid/x.tsv"}
    with pytest.raises(dl.DownloadError) as err:
        dl.fetch_source("mmbench_x", entry, {"data": str(tmp_path)}, retries=5, backoff=10.0)
    msg = str(err.value)
    assert "\n" not in msg and "mmbench_x" in msg and "no-such-host.invalid" in msg
    assert str((tmp_path / "mmbench/x.tsv").resolve()) in msg  # where to place the file by hand


def test_checksum_mismatch_on_second_run(server, tmp_path):
    server.files["/a.json"] = b'{"v": 1}\n'
    dest = tmp_path / "a.json"
    rec = dl.fetch_url(server.base + "/a.json", dest, **FAST)
    assert dl.fetch_url(server.base + "/a.json", dest, **FAST) == rec  # second run: verified, nothing fetched
    assert len(server.requests) == 1
    assert dl.verify_file(dest)["sha256"] == rec["sha256"]
    # the file is damaged on disk -> the verification of a later run fails
    dest.write_bytes(b'{"v": 2}\n')
    with pytest.raises(dl.ChecksumError, match="checksum mismatch") as err:
        dl.fetch_url(server.base + "/a.json", dest, **FAST)
    assert str(dl.record_path(dest)) in str(err.value)
    # upstream changed and the local copy is gone -> the re-download must match the record
    dest.unlink()
    server.files["/a.json"] = b'{"v": 3}\n'
    with pytest.raises(dl.ChecksumError, match="sha256"):
        dl.fetch_url(server.base + "/a.json", dest, **FAST)
    assert not dest.exists() and not dest.with_name("a.json.part").exists()
    # accepting the new content is explicit: delete the record
    dl.record_path(dest).unlink()
    assert dl.fetch_url(server.base + "/a.json", dest, **FAST)["sha256"] == hashlib.sha256(b'{"v": 3}\n').hexdigest()


def test_pinned_checksum_checked_on_first_download(server, tmp_path):
    server.files["/p.txt"] = b"hello\n"
    dest = tmp_path / "p.txt"
    with pytest.raises(dl.ChecksumError, match="pinned in config"):
        dl.fetch_url(server.base + "/p.txt", dest, sha256="0" * 64, **FAST)
    assert not dest.exists() and not dl.record_path(dest).exists()
    with pytest.raises(dl.ChecksumError, match="bytes, expected 5"):
        dl.fetch_url(server.base + "/p.txt", dest, size=5, **FAST)
    good = hashlib.sha256(b"hello\n").hexdigest()
    assert dl.fetch_url(server.base + "/p.txt", dest, sha256=good, size=6, **FAST)["sha256"] == good


def test_http_error_is_clear(server, tmp_path):
    with pytest.raises(dl.DownloadError, match="HTTP 404"):
        dl.fetch_url(server.base + "/missing.zip", tmp_path / "m.zip", **FAST)


# --- archives ---------------------------------------------------------------------------------------


def _zip(entries: list[tuple[str, bytes | None, str | None]]) -> bytes:
    """(name, data, symlink target) -> zip bytes; a symlink is stored the way Info-ZIP stores it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, link in entries:
            info = zipfile.ZipInfo(name)
            if link is not None:
                info.external_attr = (0o120777 << 16)
                zf.writestr(info, link)
            else:
                info.external_attr = (0o100644 << 16)
                zf.writestr(info, data or b"")
    return buf.getvalue()


def _tar(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for e in entries:
            if isinstance(e, tarfile.TarInfo):
                tf.addfile(e)
            else:
                info = tarfile.TarInfo(e[0])
                info.size = len(e[1])
                tf.addfile(info, io.BytesIO(e[1]))
    return buf.getvalue()


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


UNSAFE = {
    "zip_slip": ("zip", _zip([("ok.txt", b"fine", None), ("../../evil.txt", b"pwned", None)]), "'..'"),
    "zip_absolute": ("zip", _zip([("/tmp/evil-abs.txt", b"pwned", None)]), "absolute"),
    "zip_symlink_out": ("zip", _zip([("out", None, "../../outside")]), "outside"),
    "tar_slip": ("tar", _tar([("a/../../evil.txt", b"x")]), "'..'"),
    "tar_absolute": ("tar", _tar([("/etc/evil", b"x")]), "absolute"),
    "tar_symlink_abs": ("tar", _tar([_link("etc", "/etc")]), "absolute"),
    "tar_symlink_out": ("tar", _tar([_link("sub/up", "../../x")]), "outside"),
    "tar_hardlink_out": ("tar", _tar([_link("h", "../secret", tarfile.LNKTYPE)]), "'..'"),
    "tar_device": ("tar", _tar([_link("dev", "", tarfile.CHRTYPE)]), "device"),
    "tar_fifo": ("tar", _tar([_link("fifo", "", tarfile.FIFOTYPE)]), "device"),
    # each link looks inside on its own; together 'a' resolves to the parent folder
    "tar_symlink_chain": ("tar", _tar([_link("a", "b/.."), _link("b", ".")]), "outside"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_archive_rejected(case, tmp_path):
    fmt, data, why = UNSAFE[case]
    archive = tmp_path / f"x.{'zip' if fmt == 'zip' else 'tar.gz'}"
    archive.write_bytes(data)
    into = tmp_path / "deep" / "into"
    with pytest.raises(dl.UnsafeArchiveError, match=why):
        dl.safe_extract(archive, into)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "deep" / "evil.txt").exists()
    if case != "tar_symlink_chain":  # refused before anything is written
        assert not any(into.iterdir())
    else:
        assert not (into / "a").is_symlink()


def test_safe_archives_extract(tmp_path):
    z = tmp_path / "ok.zip"
    z.write_bytes(_zip([("top/", None, None), ("top/a.txt", b"A", None), ("top/link", None, "a.txt")]))
    assert sorted(dl.safe_extract(z, tmp_path / "z")) == ["top", "top/a.txt", "top/link"]
    assert (tmp_path / "z/top/link").read_bytes() == b"A"
    t = tmp_path / "ok.tar.gz"
    t.write_bytes(_tar([("d/b.txt", b"B"), _link("d/hard", "d/b.txt", tarfile.LNKTYPE), _link("d/s", "b.txt")]))
    dl.safe_extract(t, tmp_path / "t")
    assert (tmp_path / "t/d/hard").read_bytes() == b"B" and (tmp_path / "t/d/s").read_bytes() == b"B"


def test_zip_written_by_python_writestr_extracts(tmp_path):
    """Fault 3: zipfile.writestr gives mode 0o600 without a file type (or 0, or a DOS zip); all are files."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("plain/a.txt", b"A")  # external_attr = 0o600 << 16: no S_IFREG bits
        zf.writestr(zipfile.ZipInfo("plain/b.txt"), b"B")  # external_attr = 0
        dos = zipfile.ZipInfo("plain/c.txt")
        dos.create_system, dos.external_attr = 0, 0x20  # MS-DOS "archive" attribute
        zf.writestr(dos, b"C")
        zf.writestr("plain/sub/", b"")
    z = tmp_path / "py.zip"
    z.write_bytes(buf.getvalue())
    dl.safe_extract(z, tmp_path / "out")
    assert [(tmp_path / "out/plain" / n).read_bytes() for n in ("a.txt", "b.txt", "c.txt")] == [b"A", b"B", b"C"]
    assert (tmp_path / "out/plain/sub").is_dir()


def _zip_fifo() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("fifo")
        info.create_system, info.external_attr = 3, (0o010644 << 16)
        zf.writestr(info, b"")
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_member_under_a_linked_directory_is_refused_before_writing(fmt, tmp_path):
    """Fault 3: a symlinked folder, then a file under it: refused cleanly, not a FileExistsError halfway."""
    if fmt == "zip":
        data = _zip([("sub/", None, None), ("ok.txt", b"ok", None), ("d", None, "sub"), ("d/x.txt", b"x", None)])
    else:
        data = _tar([("ok.txt", b"ok"), _link("d", "sub"), ("d/x.txt", b"x")])
    archive = tmp_path / f"linkdir.{'zip' if fmt == 'zip' else 'tar.gz'}"
    archive.write_bytes(data)
    into = tmp_path / "into"
    with pytest.raises(dl.UnsafeArchiveError, match="under the link"):
        dl.safe_extract(archive, into)
    assert not any(into.iterdir())  # nothing written


def test_zip_fifo_is_still_refused(tmp_path):
    z = tmp_path / "fifo.zip"
    z.write_bytes(_zip_fifo())
    with pytest.raises(dl.UnsafeArchiveError, match="device"):
        dl.safe_extract(z, tmp_path / "o")


def test_fetch_source_downloads_and_refuses_zip_slip(server, tmp_path):
    server.files["/good.zip"] = _zip([("imgs/1.jpg", b"jpg", None)])
    server.files["/slip.zip"] = UNSAFE["zip_slip"][1]
    roots = {"data": str(tmp_path / "data")}
    good = {"kind": "url", "root": "data", "dest": "coco/good.zip", "url": server.base + "/good.zip", "extract": {}}
    out = dl.fetch_source("good", good, roots, **FAST)
    assert out["extracted"]["members"] == 1 and (tmp_path / "data/coco/imgs/1.jpg").read_bytes() == b"jpg"
    bad = dict(good, dest="coco/slip.zip", url=server.base + "/slip.zip")
    with pytest.raises(dl.UnsafeArchiveError):
        dl.fetch_source("bad", bad, roots, **FAST)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "data/evil.txt").exists()


# --- manual sources, links, HF ----------------------------------------------------------------------


def test_manual_source_error_says_what_to_do(tmp_path):
    entry = {"kind": "manual", "root": "data", "dest": "dvqa/images.zip", "access": "Google Drive",
             "where": "https://drive.google.com/file/d/XYZ/view",
             "instructions": "Download the DVQA images archive from Google Drive."}
    roots = {"data": str(tmp_path / "data")}
    with pytest.raises(dl.ManualSourceError) as err:
        dl.fetch_source("dvqa_images", entry, roots)
    msg = str(err.value)
    assert "dvqa_images" in msg and str((tmp_path / "data/dvqa/images.zip").resolve()) in msg
    assert "place images.zip from https://drive.google.com/file/d/XYZ/view at " in msg and "Google Drive" in msg
    assert "\n" not in msg
    (tmp_path / "data/dvqa").mkdir(parents=True)
    (tmp_path / "data/dvqa/images.zip").write_bytes(_zip([("images/a.png", b"png", None)]))
    out = dl.fetch_source("dvqa_images", dict(entry, extract={}), roots)
    assert out["record"]["sha256"] and (tmp_path / "data/dvqa/images/a.png").exists()
    # once recorded, a replaced file is caught like a download
    (tmp_path / "data/dvqa/images.zip").write_bytes(b"something else")
    with pytest.raises(dl.ChecksumError):
        dl.fetch_source("dvqa_images", entry, roots)


def test_link_source(tmp_path):
    roots = {"data": str(tmp_path)}
    (tmp_path / "coco/val2014").mkdir(parents=True)
    e = {"kind": "link", "root": "data", "dest": "vqav2/val2014", "target": "../coco/val2014"}
    dl.fetch_source("l", e, roots)
    dl.fetch_source("l", e, roots)  # idempotent
    assert os.readlink(tmp_path / "vqav2/val2014") == "../coco/val2014"
    with pytest.raises(dl.DownloadError, match="already links"):
        dl.fetch_source("l", dict(e, target="../coco/train2014"), roots)


def _run_py(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("HF_")} | env
    return subprocess.run([sys.executable, "-c", code], env=full, cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_hf_offline_with_empty_cache_is_a_clear_error(tmp_path):
    code = f"""
from internvl import download as dl
for rev in ["main", "{COMMIT}"]:
    try:
        dl.fetch_hf_snapshot("OpenGVLab/InternVL-Chat-V1-2", rev, r"{tmp_path}/ckpt")
    except dl.DownloadError as exc:
        print("ERR", rev, exc)
try:
    dl.fetch_hf_file("OpenGVLab/InternVL", "playground.zip", "{COMMIT}", r"{tmp_path}/p.zip")
except dl.DownloadError as exc:
    print("ERR file", exc)
"""
    out = _run_py(code, {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("ERR")]
    assert len(lines) == 3, out.stdout + out.stderr
    assert "cannot be resolved to a commit" in lines[0] and "HF_HUB_OFFLINE=1" in lines[0]
    assert all("HF_HUB_OFFLINE=1" in ln and "not in the local cache" in ln for ln in lines[1:])
    assert not (tmp_path / "p.zip").exists()


def test_hf_file_through_hf_endpoint_mirror(server, tmp_path):
    """HF_ENDPOINT redirects huggingface_hub; here to the local server acting as a mirror."""
    server.files["ai2d_test.jsonl"] = b'{"question": "q"}\n'
    code = f"""
from internvl import download as dl
rec = dl.fetch_hf_file("OpenGVLab/InternVL", "ai2d_test.jsonl", "{COMMIT}", r"{tmp_path}/ai2d/test.jsonl")
print("OK", rec["commit"], rec["sha256"])
"""
    out = _run_py(code, {"HF_ENDPOINT": server.base + "/hf", "HF_HOME": str(tmp_path / "hf")})
    assert "OK" in out.stdout, out.stdout + out.stderr
    assert (tmp_path / "ai2d/test.jsonl").read_bytes() == b'{"question": "q"}\n'
    assert COMMIT in out.stdout and not (tmp_path / "ai2d/.hf-staging-test.jsonl").exists()


def test_checkpoint_download_uses_the_recorded_snapshot_path(tmp_path):
    """The model rule's download goes through fetch_hf_snapshot: offline it fails with the same clear error."""
    code = f"""
from internvl import download as dl
from internvl.hub import download_checkpoint
try:
    download_checkpoint("OpenGVLab/InternVL-Chat-V1-2", "{COMMIT}", r"{tmp_path}/ckpt")
except dl.DownloadError as exc:
    print("ERR", exc)
"""
    out = _run_py(code, {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert "ERR" in out.stdout and "HF_HUB_OFFLINE=1" in out.stdout, out.stdout + out.stderr
    assert not (tmp_path / "ckpt" / "model.safetensors").exists()


def test_offline_hub_model_hint_points_at_the_config_that_defines_it(tmp_path):
    """Fault 7: a hub model of config/config.yaml was told to pin its revision in config/sources.yaml."""
    code = f"""
from internvl import download as dl
from internvl.hub import download_checkpoint
try:
    download_checkpoint("OpenGVLab/InternVL-Chat-V1-2", "main", r"{tmp_path}/ckpt",
                        pin_hint="models.internvl_chat_v1_2.revision in config/config.yaml")
except dl.DownloadError as exc:
    print("ERR", exc)
"""
    out = _run_py(code, {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("ERR"))
    assert "models.internvl_chat_v1_2.revision in config/config.yaml" in line and "sources.yaml" not in line
