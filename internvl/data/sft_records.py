"""Validation of LLaVA-format SFT records, one JSONL block at a time, fast and exact.

:meth:`RecordChecker.validate` is the rule book: one record (a dict from ``json.loads``) either
passes, giving its normalized image path, or raises a :class:`DataError` naming file, 1-based line
and field. Everything else here is a faster route to the same answers:

* A block of whole lines (a few MiB) is parsed by ``pyarrow.json`` against a fixed schema. A block
  it cannot parse exactly one row per line (a malformed line, a blank line, a non-string ``id``, a
  list of images...) is handed to :meth:`RecordChecker._python_block`, which parses line by line
  with ``json`` and reports the bad line as :func:`internvl.data.io.iter_jsonl` would.
* Over a parsed block, vectorized checks (``pyarrow.compute`` and numpy) mark every row that *might*
  break a rule: a superset of the bad rows. Only those rows go through ``validate``, so the messages
  are always the rule book's; the other rows are known good.
* Image checks avoid a ``Path.resolve()`` or even a ``stat`` per record: for a path whose text is
  already normal (relative, no ``.``/``..``/empty parts), each distinct directory is resolved once
  (to catch a symlinked directory that leads out of the source root) and listed once with
  ``os.scandir`` (entry types come with the listing); an image is then a set lookup. A file that is
  itself a symlink, or anything else not found this way, goes through the exact route.

The default image check is existence as a regular file inside the root; ``verify_images`` decodes
each image (truncated or corrupt bytes, empty files, unreadable files), at milliseconds per image.

Line numbers count ``\\n`` (as ``wc -l`` and editors do); a blank line has a number but no record.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
from PIL import Image, ImageFile

from internvl.errors import DataError

ROLES = ("human", "gpt")
TURN = pa.struct([("from", pa.string()), ("value", pa.string())])
#: what ``pyarrow.json`` parses; any other field of a record is ignored (as the original did)
PARSE_SCHEMAS = (
    pa.schema([("id", pa.string()), ("image", pa.string()), ("conversations", pa.list_(TURN))]),
    pa.schema([("id", pa.int64()), ("image", pa.string()), ("conversations", pa.list_(TURN))]),
)
#: per-block output of the checker; ``normalize_sft`` adds ``source`` and ``repeat_index``
BLOCK_SCHEMA = pa.schema([("id", pa.string()), ("line", pa.int64()), ("image_path", pa.string()),
                          ("conversations", pa.list_(TURN))])
BLOCK_SCHEMA_EMBED = BLOCK_SCHEMA.append(pa.field("image_bytes", pa.binary()))

#: the characters ``str.strip()`` removes (``str.isspace``), so "empty answer" means the same in both routes
PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                 "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_WS_HEADS = pa.array(["", *PY_WHITESPACE])
_BLANK_RE = "^[" + "".join(f"\\x{{{ord(c):x}}}" for c in PY_WHITESPACE) + "]*$"
# an image path whose text is not already normal: absolute, empty/./.. parts, trailing slash, NUL
_ODD_PATH_RE = r"^/|(^|/)\.{0,2}(/|$)|\x00"
_BLANK_START = re.compile(rb"[ \t\r]*(?:\n|\Z)")  # (matched at the start of a block)
_BLANK_INSIDE = re.compile(rb"\n[ \t\r]*\n")
_BLANK_END = re.compile(rb"\n[ \t\r]+\Z")
_S_IFMT, _S_IFREG = 0o170000, stat.S_IFREG
_DIR_CACHE_MAX = 1 << 16
_LISTING_MAX = 1 << 20  # a directory with more regular files than this is not listed
_LISTED_MAX = 2 << 20  # file names kept over all listings (~150 MiB at most), then the cache restarts

ErrorSink = Callable[[DataError], None]
_WS_START = (b" ", b"\t", b"\r", b"\n")


class Block(NamedTuple):
    line0: int  # 1-based number of its first line
    n_lines: int
    data: bytes  # whole lines
    maybe_blank: bool  # some line starts with whitespace (blank lines need the exact route)


def record_error(path: str | Path, kind: str, message: str, line: int | None, field: str | None = None) -> DataError:
    """A DataError with a ``kind`` (counted per kind in the manifest and the skip report)."""
    err = DataError(path, message, line=line, field=field)
    err.kind = kind
    return err


class RecordChecker:
    """Checks the records of one source (annotation file + image root).

    ``base_dir`` only decides how image paths are written out: relative to it when the root lies
    under it (so a data tree can move), absolute otherwise. ``check_images=False`` keeps only the
    checks on the path text. ``verify_images`` decodes every image (see :meth:`_decode`).
    """

    def __init__(self, annotation: str | Path, root: str | Path, base_dir: str | Path, *, check_images: bool = True,
                 verify_images: bool = False, embed_images: bool = False):
        self.annotation = Path(annotation)
        self.stem = self.annotation.stem
        self.root_str = os.path.abspath(root)
        root_real = os.path.realpath(root)
        self._root_real_slash = root_real.rstrip("/") + "/"
        self._root_real = root_real
        self.check_images, self.verify_images, self.embed_images = check_images, verify_images, embed_images
        base = os.path.abspath(base_dir)
        rel = os.path.relpath(self.root_str, base)
        if rel == ".":
            self.out_prefix = ""
        elif rel == ".." or rel.startswith("../"):
            self.out_prefix = self.root_str.rstrip("/") + "/"
        else:
            self.out_prefix = rel + "/"
        self._dirs: dict[str, bool] = {}
        self._listings: dict[str, frozenset[str] | None] = {}
        self._listed = 0
        self._last_schema = PARSE_SCHEMAS[0]
        self.schema = BLOCK_SCHEMA_EMBED if embed_images else BLOCK_SCHEMA

    # ---------------------------------------------------------------- the rule book (exact, per record)
    def error(self, kind: str, message: str, line: int | None, field: str | None = None) -> DataError:
        return record_error(self.annotation, kind, message, line, field)

    def validate(self, rec: dict[str, Any], line: int) -> str | None:
        """Check one record; return its image path relative to the root (normalized) or None (text-only)."""
        convs = rec.get("conversations")
        if not isinstance(convs, list) or not convs:
            raise self.error("no_conversation", "missing or empty conversation list", line, "conversations")
        for j, turn in enumerate(convs):
            if not isinstance(turn, dict) or not isinstance(turn.get("value"), str) or turn.get("from") not in ROLES:
                raise self.error("bad_turn", f"turn {j} must be {{'from': 'human'|'gpt', 'value': str}}", line,
                                 f"conversations[{j}]")
        start = 0 if convs[0]["from"] == "human" else 1  # the original drops a leading gpt turn
        for j in range(start, len(convs)):
            turn = convs[j]
            if turn["from"] != ROLES[(j - start) % 2]:
                raise self.error("bad_roles", "roles must alternate human/gpt, starting with human", line,
                                 f"conversations[{j}].from")
            if turn["from"] == "gpt" and not turn["value"].strip():
                raise self.error("empty_answer", "empty answer", line, f"conversations[{j}].value")
        if start == len(convs):
            raise self.error("no_conversation", "no human turn (a leading gpt turn is dropped)", line, "conversations")
        if convs[-1]["from"] != "gpt":
            raise self.error("empty_answer", "the last human turn has no answer", line,
                             f"conversations[{len(convs) - 1}]")
        has_tag = any("<image>" in t["value"] for t in convs)
        image = rec.get("image")
        if image is None or image == "":
            if has_tag:
                raise self.error("image_tag", "<image> in a conversation without an image", line, "image")
            return None
        if not isinstance(image, str):
            raise self.error("image_path", f"expected a single image path, got {type(image).__name__}", line, "image")
        if "<image>" not in convs[start]["value"]:
            raise self.error("image_tag", "image given but the first human turn has no <image>", line,
                             "conversations")
        tags = sum(t["value"].count("<image>") for t in convs)
        if tags > 1:  # V1.2 expands every tag into an image span: more image tokens than image features
            raise self.error("image_tag", f"{tags} <image> tags for one image (V1.2 takes one image per sample)",
                             line, "conversations")
        return self.image(image, line)

    def image(self, image: str, line: int) -> str:
        """Exact checks of one image path; returns it normalized, relative to the root."""
        root = self.root_str
        _encodable(image, self, line, "image")
        if "\x00" in image:
            raise self.error("image_path", f"image path contains a NUL byte: {image!r}", line, "image")
        if image.startswith("/"):
            raise self.error("image_escape", f"absolute image path; it must be relative to the source root {root}: "
                             f"{image!r}", line, "image")
        parts = image.split("/")
        if ".." in parts:
            raise self.error("image_escape", f"image path escapes the source root {root} ('..'): {image!r}",
                             line, "image")
        rel = "/".join(p for p in parts if p not in ("", "."))
        if not rel:
            raise self.error("image_missing", f"image path names the source root itself: {image!r}", line, "image")
        if not self.check_images:
            return rel
        if not self._dir_inside(rel.rpartition("/")[0]):
            raise self.error("image_escape", f"image path escapes the source root {root} through a symlinked "
                             f"directory: {image!r}", line, "image")
        full = f"{root}/{rel}"
        try:
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                if not self._inside(os.path.realpath(full)):
                    raise self.error("image_escape", f"image is a symlink out of the source root {root}: "
                                     f"{image!r} -> {os.path.realpath(full)}", line, "image")
                st = os.stat(full)
        except (FileNotFoundError, NotADirectoryError):
            raise self.error("image_missing", f"image not found: {full}", line, "image") from None
        except OSError as exc:
            raise self.error("image_unreadable", f"image unreadable: {full}: {exc.strerror}", line, "image") from None
        if not stat.S_ISREG(st.st_mode):
            raise self.error("image_missing", f"image is not a regular file: {full}", line, "image")
        if self.verify_images:
            if st.st_size == 0:
                raise self.error("image_corrupt", f"image file is empty (0 bytes): {full}", line, "image")
            problem = self._decode(full)
            if problem is not None:
                kind, why = problem
                raise self.error(kind, f"{why}: {full}", line, "image")
        return rel

    def _inside(self, real: str) -> bool:
        return real == self._root_real or real.startswith(self._root_real_slash)

    def _dir_inside(self, rel_dir: str) -> bool:
        """Whether ``root/rel_dir`` resolves inside the root; one realpath per distinct directory."""
        ok = self._dirs.get(rel_dir)
        if ok is None:
            if len(self._dirs) >= _DIR_CACHE_MAX:
                self._dirs.clear()
            ok = self._dirs[rel_dir] = (not rel_dir) or self._inside(os.path.realpath(f"{self.root_str}/{rel_dir}"))
        return ok

    @staticmethod
    def _decode(full: str) -> tuple[str, str] | None:
        """Decode the whole image; ``(kind, reason)`` if that fails.

        Opt-in: a full decode costs milliseconds per image (hours for 1.2M), against ~1 us for the
        ``lstat`` of the default check. JPEGs decode in draft mode (1/8 scale), which still reads
        every entropy-coded byte, so truncation is caught at a fraction of the cost.
        """
        lenient, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
        try:
            with Image.open(full) as im:
                im.draft("RGB", (64, 64))
                im.load()
        except PermissionError as exc:
            return "image_unreadable", f"image unreadable ({exc.strerror})"
        except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, struct.error... on bad bytes
            return "image_corrupt", f"corrupt or truncated image ({type(exc).__name__}: {exc})"
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = lenient
        return None

    # ---------------------------------------------------------------- blocks
    @staticmethod
    def blocks(fh, block_bytes: int, on_bytes: Callable[[bytes], None]) -> Iterator[Block]:
        """Cut a binary file into blocks of whole lines."""
        tail, line0 = b"", 1
        while True:
            chunk = fh.read(block_bytes)
            if not chunk:
                if tail:
                    yield Block(line0, 1, tail, tail[:1] in _WS_START)
                return
            on_bytes(chunk)
            data = tail + chunk if tail else chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                tail = data
                continue
            block, tail = data[:cut + 1], data[cut + 1:]
            arr = np.frombuffer(block, np.uint8)
            newlines = np.flatnonzero(arr == 10)
            heads = arr[newlines[:-1] + 1]  # the first byte of every line but the first
            maybe_blank = block[:1] in _WS_START or bool(
                ((heads == 10) | (heads == 32) | (heads == 13) | (heads == 9)).any())
            yield Block(line0, len(newlines), block, maybe_blank)
            line0 += len(newlines)

    def process(self, block: Block, on_bad: ErrorSink | None, fast: bool = True) -> pa.Table:
        """Validate one block; return its good records as a ``self.schema`` table.

        A bad record raises, unless ``on_bad`` is given: it then receives the error and the record
        is left out. Errors come in line order either way.
        """
        table = self._parse(block) if fast else None
        if table is None:
            return self._python_block(block.data, block.line0, on_bad)
        return self._arrow_block(table, block.line0, on_bad)

    def _parse(self, block: Block) -> pa.Table | None:
        """``pyarrow.json`` parse, only if it gives exactly one row per line; None otherwise."""
        data, n_lines = block.data, block.n_lines
        if block.maybe_blank and (_BLANK_START.match(data) or _BLANK_INSIDE.search(data) or _BLANK_END.search(data)):
            return None  # pyarrow skips blank lines: the line numbers would shift
        ropts = pj.ReadOptions(use_threads=False, block_size=len(data) + 64)
        for schema in sorted(PARSE_SCHEMAS, key=lambda sc: sc is not self._last_schema):  # last good one first
            popts = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
            try:
                table = pj.read_json(pa.BufferReader(data), read_options=ropts, parse_options=popts)
            except (pa.ArrowInvalid, UnicodeDecodeError):
                continue
            self._last_schema = schema
            if table.num_rows != n_lines:
                return None
            try:
                table.validate(full=True)  # the JSON parser does not check UTF-8; this does (~GB/s)
            except pa.ArrowInvalid:
                return None
            if table.schema.field("id").type != pa.string():
                table = table.set_column(0, "id", pc.cast(table.column("id"), pa.string()))
            return table
        return None

    def _python_block(self, block: bytes, line0: int, on_bad: ErrorSink | None) -> pa.Table:
        """The exact route: ``json.loads`` line by line (messages as in ``iter_jsonl``), then ``validate``."""
        rows: dict[str, list] = {name: [] for name in self.schema.names}
        lines = block.split(b"\n")
        if block.endswith(b"\n"):
            lines.pop()
        for k, raw in enumerate(lines):
            line = line0 + k
            try:
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise self.error("malformed_json", f"invalid UTF-8 (byte {exc.start + 1} of the line)", line) from None
                if not text.strip():
                    continue
                try:
                    rec = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise self.error("malformed_json", f"malformed JSON ({exc.msg} at column {exc.colno})", line) from None
                if not isinstance(rec, dict):
                    raise self.error("malformed_json", f"expected a JSON object, got {type(rec).__name__}", line)
                rel = self.validate(rec, line)
                convs = [{"from": t["from"], "value": t["value"]} for t in rec["conversations"]]
                for t in convs:
                    _encodable(t["value"], self, line)
                rid = rec.get("id")
                rid = str(rid) if rid not in (None, "") else f"{self.stem}:{line}"
                _encodable(rid, self, line, "id")
            except DataError as exc:
                if on_bad is None:
                    raise
                on_bad(exc)
                continue
            rows["id"].append(rid)
            rows["line"].append(line)
            rows["image_path"].append(None if rel is None else self.out_prefix + rel)
            rows["conversations"].append(convs)
            if self.embed_images:
                rows["image_bytes"].append(None if rel is None else self._read(rel))
        return pa.table(rows, schema=self.schema)

    def _arrow_block(self, table: pa.Table, line0: int, on_bad: ErrorSink | None) -> pa.Table:
        n = table.num_rows
        lines = np.arange(line0, line0 + n, dtype=np.int64)
        suspect = self._suspect_rows(table)
        image_col = table.column("image").combine_chunks()
        has_img = pc.fill_null(pc.not_equal(image_col, ""), False).to_numpy(zero_copy_only=False)
        images: list | None = None
        if self.check_images or self.verify_images or self.embed_images:
            todo = np.flatnonzero(has_img & ~suspect)
            if len(todo):
                images = image_col.to_pylist()
                bad = self._fast_image_checks(todo.tolist(), images)
                if bad:
                    suspect[bad] = True
        keep = ~suspect
        fixed: dict[int, str | None] = {}
        for i in np.flatnonzero(suspect).tolist():
            row = table.slice(i, 1).to_pylist()[0]
            try:
                rel = self.validate(row, int(lines[i]))
            except DataError as exc:
                if on_bad is None:
                    raise
                on_bad(exc)
                continue
            keep[i] = True
            fixed[i] = rel
        image_arr = pc.if_else(pa.array(has_img), image_col, pa.nulls(n, pa.string()))
        if any(rel != (image_col[i].as_py() or None) for i, rel in fixed.items()):
            vals = image_arr.to_pylist()
            for i, rel in fixed.items():
                vals[i] = rel
            image_arr = pa.array(vals, pa.string())
        image_path = pc.binary_join_element_wise(self.out_prefix, image_arr, "") if self.out_prefix else image_arr
        ids = table.column("id").combine_chunks()
        line_arr = pa.array(lines)
        fallback = pc.binary_join_element_wise(self.stem, pc.cast(line_arr, pa.string()), ":")
        ids = pc.if_else(pc.fill_null(pc.not_equal(ids, ""), False), ids, fallback)
        cols = [ids, line_arr, image_path, table.column("conversations").combine_chunks()]
        if self.embed_images:
            if images is None:
                images = image_col.to_pylist()
            cols.append(pa.array([self._read(fixed.get(i, images[i])) if has_img[i] and keep[i] else None
                                  for i in range(n)], pa.binary()))
        out = pa.Table.from_arrays(cols, schema=self.schema)
        return out if keep.all() else out.filter(pa.array(keep))

    def _suspect_rows(self, table: pa.Table) -> np.ndarray:
        """Rows that might break a rule of :meth:`validate` (a superset of the bad ones)."""
        n = table.num_rows
        conv = table.column("conversations").combine_chunks()
        lens = pc.fill_null(pc.list_value_length(conv), 0).to_numpy(zero_copy_only=False)
        bad = lens == 0
        image_col = table.column("image").combine_chunks()
        has_img = pc.fill_null(pc.not_equal(image_col, ""), False).to_numpy(zero_copy_only=False)
        odd_path = pc.fill_null(pc.match_substring_regex(image_col, _ODD_PATH_RE), False).to_numpy(zero_copy_only=False)
        bad |= has_img & odd_path
        offsets = conv.offsets.to_numpy()
        m = int(offsets[-1] - offsets[0])
        if m == 0:
            return bad
        flat = conv.values.slice(int(offsets[0]), m)  # the turns, row after row
        parent = pc.list_parent_indices(conv).to_numpy()
        first = (offsets[:-1] - offsets[0]).astype(np.int64)  # row -> index of its first turn in flat
        frm, val = pc.struct_field(flat, "from"), pc.struct_field(flat, "value")
        is_h = pc.fill_null(pc.equal(frm, "human"), False).to_numpy(zero_copy_only=False)
        is_g = pc.fill_null(pc.equal(frm, "gpt"), False).to_numpy(zero_copy_only=False)
        turn_bad = ~flat.is_valid().to_numpy(zero_copy_only=False) | ~(is_h | is_g) | \
            val.is_null().to_numpy(zero_copy_only=False)
        # an all-whitespace answer is empty or starts with whitespace: run the exact regex on those only
        head = pc.utf8_slice_codeunits(val, 0, 1)
        maybe = np.flatnonzero(is_g & pc.fill_null(pc.is_in(head, value_set=_WS_HEADS), False)
                               .to_numpy(zero_copy_only=False))
        if len(maybe):
            blank = pc.fill_null(pc.match_substring_regex(val.take(maybe), _BLANK_RE), False)
            turn_bad[maybe[blank.to_numpy(zero_copy_only=False)]] = True
        nonempty = lens > 0
        safe_first = np.minimum(first, m - 1)
        start = np.where(nonempty & is_h[safe_first], 0, 1)
        rel = np.arange(m) - first[parent] - start[parent]
        turn_bad |= (rel >= 0) & (is_h != (rel % 2 == 0))
        bad |= np.bincount(parent[turn_bad], minlength=n).astype(bool)
        last = np.minimum(first + lens - 1, m - 1)
        bad |= nonempty & ~is_g[last]
        bad |= lens - start <= 0
        # image rows: <image> in the first human turn; text-only rows: no <image> anywhere
        rows_img = np.flatnonzero(has_img & ~bad)
        if len(rows_img):
            tag = pc.match_substring(val.take(first[rows_img] + start[rows_img]), "<image>")
            bad[rows_img[~pc.fill_null(tag, False).to_numpy(zero_copy_only=False)]] = True
            tags = pc.fill_null(pc.count_substring(val, "<image>"), 0).to_numpy(zero_copy_only=False)
            bad |= has_img & (np.bincount(parent, weights=tags, minlength=n) > 1)
        turns_txt = np.flatnonzero(~has_img[parent])
        if len(turns_txt):
            tag = pc.fill_null(pc.match_substring(val.take(turns_txt), "<image>"), False).to_numpy(zero_copy_only=False)
            bad[parent[turns_txt[tag]]] = True
        return bad

    def _fast_image_checks(self, rows: list[int], images: list) -> list[int]:
        """Rows whose image is not known to be a regular file in the root: they take the exact route.

        Each directory is listed once (``os.scandir``: names and entry types, no stat per file) and
        cached, so an image costs a set lookup instead of an ``lstat``. A symlinked file is not in the
        listing's set of regular files, so it always goes through :meth:`image`.
        """
        bad = []
        listings = self._listings
        check = self.check_images
        for i in rows:
            if check:
                d, _, name = images[i].rpartition("/")
                files = listings.get(d, False)
                if files is False:
                    files = self._listing(d)
                if files is None:  # not listed (huge directory): one lstat
                    try:
                        ok = os.lstat(f"{self.root_str}/{images[i]}").st_mode & _S_IFMT == _S_IFREG
                    except OSError:
                        ok = False
                    ok = ok and self._dir_inside(d)
                else:
                    ok = name in files
                if not ok:
                    bad.append(i)
                    continue
            if self.verify_images and self._decode(f"{self.root_str}/{images[i]}") is not None:
                bad.append(i)
        return bad

    def _listing(self, rel_dir: str) -> frozenset[str] | None:
        """The regular files (not symlinks) of ``root/rel_dir``; empty if it is missing or leads out
        of the root; None for a directory too large to keep in memory (then each file is lstat-ed)."""
        if self._listed > _LISTED_MAX:
            self._listings.clear()
            self._listed = 0
        names: frozenset[str] | None = frozenset()
        if self._dir_inside(rel_dir):
            try:
                with os.scandir(f"{self.root_str}/{rel_dir}" if rel_dir else self.root_str) as it:
                    found = []
                    for entry in it:
                        if entry.is_file(follow_symlinks=False):
                            found.append(entry.name)
                            if len(found) > _LISTING_MAX:
                                found = None
                                break
                names = None if found is None else frozenset(found)
            except OSError:
                pass
        self._listings[rel_dir] = names
        self._listed += len(names) if names else 1
        return names

    def _read(self, rel: str) -> bytes:
        with open(f"{self.root_str}/{rel}", "rb") as fh:
            return fh.read()


def _encodable(text: str, checker: RecordChecker, line: int, field: str = "conversations") -> None:
    """``json.loads`` accepts lone surrogates (``"\\ud800"``), which cannot be stored as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise checker.error("malformed_json", "string is not valid Unicode (lone surrogate escape)", line,
                            field) from None
