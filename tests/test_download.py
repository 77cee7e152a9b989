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
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)


class _Handler(BaseHTTPRequestHandler):
    state: _State
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _serve(self, head: bool):
        st = self.state
        path = self.path.split("?")[0]
        st.requests.append((self.command, path, self.headers.get("Range")))
        m = re.match(r"^/hf/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$", path)
        body = st.files.get(m.group("file") if m else path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        rng = self.headers.get("Range")
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
    assert "place it at" in msg and "drive.google.com" in msg and "Google Drive" in msg
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
