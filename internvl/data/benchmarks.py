"""Normalizers: raw benchmark files (in the formats InternVL V1.2 reads) -> one parquet table per split.

Each normalizer reads exactly the files the original eval script reads, keeps every record, and
raises :class:`DataError` (file, line, field) on anything malformed, so a bad download fails loudly at
data-preparation time rather than as a silent score change later. Split keys are the task names of
the seed's ``evaluate.sh``. ``data_root`` plays the role of the original ``internvl_chat/data/``.

Facts the normalizers preserve (see the eval table for the protocol):

- ``mmbench-dev-en`` reads ``mmbench/mmbench_dev_20230712.tsv`` (the older file, not dev_en_20231003).
  Options are the single-letter columns that are not "NaN" as pandas' default reader sees them (the
  original skips NaN options); images stay as decoded bytes.
- ``vqa-vqav2-val`` takes questions and images from the Qwen-format jsonl and the 10 gold answers plus
  answer/question types from the official VQA v2 json files, which is what the scorer reads.
- ``caption-coco`` has one row per image; the id is the image id parsed from the file name as the
  original does, and the references are the ones in ``coco_karpathy_test_gt.json`` (the ones scored).
- ``pope`` pairs each question with the label file of its category **by order**, as the original
  scorer does, and checks that image and question text of each pair agree.

Anything worth knowing but not an error (e.g. unused label lines) is stored as a JSON list under the
``internvl.notes`` key of the table's schema metadata.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

from internvl.data.io import atomic_path, iter_jsonl, load_json, require
from internvl.data.schema import options_json, table_from_rows
from internvl.errors import DataError

NOTES_KEY = b"internvl.notes"

# The eval scripts run in ``internvl_chat/`` and store image paths starting with ``data/``; our
# data_root is that ``data/`` folder, so the prefix is dropped.
_ORIGINAL_DATA_PREFIX = "data/"

# pandas' default NA strings: the original reads the MMBench TSV with ``pd.read_csv(sep="\t")`` and
# skips options/hints that come back as NaN. We read raw strings and apply the same rule explicitly
# so that we can report the non-empty cells it hides (e.g. an option whose text is "None").
try:  # pragma: no cover - depends on the pandas build
    from pandas._libs.parsers import STR_NA_VALUES as _PANDAS_NA
except ImportError:  # pragma: no cover
    _PANDAS_NA = {
        "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
        "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
    }  # fmt: skip
PANDAS_NA_TOKENS: frozenset[str] = frozenset(_PANDAS_NA)


# --- shared helpers ---------------------------------------------------------------------------------


def resolve_image(
    raw: Any,
    data_root: Path,
    bases: Sequence[str],
    src: Path,
    line: int | None,
    field: str = "image",
    cache: dict[str, bool] | None = None,
) -> str:
    """Return the image path relative to ``data_root`` after checking it exists and stays inside.

    Candidates, first existing wins: the raw path minus a leading ``data/`` (paths written relative to
    ``internvl_chat/``), then the raw path under each of ``bases`` (folders relative to data_root). The
    containment check is lexical (``..`` and absolute paths outside data_root are refused) so that
    data folders that are symlinks to shared storage keep working.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise DataError(src, f"expected a non-empty image path, got {raw!r}", line=line, field=field)
    root = os.path.normpath(os.path.abspath(data_root))
    candidates: list[str] = []
    if os.path.isabs(raw):
        candidates.append(os.path.relpath(os.path.normpath(raw), root))
    else:
        if raw.startswith(_ORIGINAL_DATA_PREFIX):
            candidates.append(raw[len(_ORIGINAL_DATA_PREFIX) :])
        candidates.extend(os.path.join(b, raw) for b in bases)
    tried: list[str] = []
    escaped = False
    for cand in candidates:
        rel = os.path.normpath(cand)
        if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
            escaped = True
            continue
        rel = rel.replace(os.sep, "/")
        tried.append(rel)
        exists = cache.get(rel) if cache is not None else None
        if exists is None:
            exists = (Path(root) / rel).is_file()
            if cache is not None:
                cache[rel] = exists
        if exists:
            return rel
    if escaped and not tried:
        raise DataError(src, f"image path {raw!r} points outside data_root {root}", line=line, field=field)
    raise DataError(src, f"image not found under {root} (tried {', '.join(tried)})", line=line, field=field)


def _with_notes(table: pa.Table, notes: list[str]) -> pa.Table:
    meta = dict(table.schema.metadata or {})
    meta[NOTES_KEY] = json.dumps(notes, ensure_ascii=False).encode()
    return table.replace_schema_metadata(meta)


def table_notes(table: pa.Table) -> list[str]:
    """The notes a normalizer attached to its table (empty list if none)."""
    raw = (table.schema.metadata or {}).get(NOTES_KEY)
    return json.loads(raw) if raw else []


def _check_unique(seen: dict[str, int], key: str, src: Path, line: int | None, field: str) -> None:
    if key in seen:
        raise DataError(src, f"duplicate id {key!r} (first seen at line {seen[key]})", line=line, field=field)
    seen[key] = line if line is not None else -1


def _int_id(value: Any, src: Path, line: int | None, field: str) -> int:
    """Benchmark ids are integers in these files; accept ints and integer strings, nothing else."""
    if isinstance(value, bool):
        raise DataError(src, f"expected an integer id, got {value!r}", line=line, field=field)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise DataError(src, f"expected an integer id, got {value!r}", line=line, field=field)


def _nonempty_str(rec: dict[str, Any], field: str, src: Path, line: int | None) -> str:
    value = require(rec, field, src, line, str)
    if not value.strip():
        raise DataError(src, "empty string", line=line, field=field)
    return value


IdParser = Callable[[Any, Path, int | None, str], Any]  # _int_id, or bench_family_a._id_value


def _row(
    rid: str,
    image: str | None,
    question: str,
    answers: list[str],
    *,
    image_bytes: bytes | None = None,
    hint: str | None = None,
    options: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One normalized row: the core columns of :mod:`internvl.data.schema`, then the ``extra`` ones."""
    return {
        "id": rid,
        "image_path": image,
        "image_bytes": image_bytes,
        "question": question,
        "hint": hint,
        "options": options_json(options),
        "answers": answers,
        **extra,
    }


def _unique_qid(
    rec: dict[str, Any], src: Path, line: int, seen: dict[str, int], parse: IdParser = _int_id
) -> tuple[Any, str]:
    """The record's ``question_id`` as ``parse`` reads it, and its string form (checked unique in ``seen``)."""
    qid = parse(require(rec, "question_id", src, line), src, line, "question_id")
    rid = str(qid)
    _check_unique(seen, rid, src, line, "question_id")
    return qid, rid


def _record_image(
    rec: dict[str, Any], src: Path, line: int, data_root: Path, bases: Sequence[str], cache: dict[str, bool]
) -> str:
    """The record's ``image``, resolved by :func:`resolve_image`."""
    return resolve_image(require(rec, "image", src, line), data_root, bases, src, line, cache=cache)


def _qwen_question(
    rec: dict[str, Any],
    src: Path,
    line: int,
    seen: dict[str, int],
    data_root: Path,
    bases: Sequence[str],
    cache: dict[str, bool],
    parse: IdParser = _int_id,
) -> tuple[Any, str, str, str]:
    """A Qwen-format ``{question_id, question, image}`` record -> (question id, row id, question, image path)."""
    qid, rid = _unique_qid(rec, src, line, seen, parse)
    question = _nonempty_str(rec, "question", src, line)
    return qid, rid, question, _record_image(rec, src, line, data_root, bases, cache)


def _require_listed(qid: Any, listing: Mapping[Any, Any], listing_path: Path, src: Path, line: int) -> None:
    if qid not in listing:
        raise DataError(src, f"question_id {qid!r} is not in {listing_path}", line=line, field="question_id")


def _load_json_list(path: Path) -> list[Any]:
    items = load_json(path)
    if not isinstance(items, list):
        raise DataError(path, f"expected a JSON list, got {type(items).__name__}")
    return items


def _load_listing(path: Path, key: str, expected: str) -> dict[str, Any]:
    """A JSON object whose ``key`` is a list; ``expected`` says what the error message asks for."""
    doc = load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
        raise DataError(path, f"expected {expected}", field=key)
    return doc


def _objects(path: Path, items: list[Any], prefix: str = "") -> Iterator[tuple[int, str, dict[str, Any]]]:
    """``(index, "<prefix>[<index>]", item)`` for each item, each of which must be an object."""
    for k, item in enumerate(items):
        where = f"{prefix}[{k}]"
        if not isinstance(item, dict):
            raise DataError(path, "expected an object", field=where)
        yield k, where, item


def _index_by_id(
    path: Path,
    items: list[Any],
    prefix: str,
    id_key: str = "question_id",
    parse: IdParser = _int_id,
    unique: bool = True,
    check: Callable[[dict[str, Any], str], None] | None = None,
) -> dict[Any, dict[str, Any]]:
    """Objects keyed by their ``id_key`` as ``parse`` reads it; a repeated id is an error when ``unique``
    (else the last one wins). ``check(item, where)`` runs on each item after its id checks."""
    out: dict[Any, dict[str, Any]] = {}
    for _, where, item in _objects(path, items, prefix):
        qid = parse(item.get(id_key), path, None, f"{where}.{id_key}")
        if unique and qid in out:
            raise DataError(path, f"duplicate {id_key} {qid!r}", field=f"{where}.{id_key}")
        if check is not None:
            check(item, where)
        out[qid] = item
    return out


def _unique_image_id(seen: dict[str, int], image_id: int, k: int, path: Path, prefix: str, field: str) -> str:
    """``str(image_id)`` after checking no earlier item (``<prefix>[<index>]``) had the same image id."""
    rid = str(image_id)
    if rid in seen:
        raise DataError(path, f"duplicate image id {image_id} (also at {prefix}[{seen[rid]}])", field=field)
    seen[rid] = k
    return rid


def _answer_records(ann: dict[str, Any], path: Path, where: str) -> list[dict[str, Any]]:
    """A VQA annotation's ``answers``: a non-empty list of ``{'answer': str, ...}`` records."""
    answers = ann.get("answers")
    if not isinstance(answers, list) or not answers:
        raise DataError(path, "expected a non-empty list", field=f"{where}.answers")
    for j, a in enumerate(answers):
        if not isinstance(a, dict) or not isinstance(a.get("answer"), str):
            raise DataError(path, "expected {'answer': str, ...}", field=f"{where}.answers[{j}]")
    return answers


# --- MMBench ---------------------------------------------------------------------------------------

MMBENCH_EXTRA: dict[str, pa.DataType] = {
    "category": pa.string(),
    "l2_category": pa.string(),
    "source": pa.string(),
    "mmbench_index": pa.int64(),
}
_MMBENCH_REQUIRED = ("index", "question", "image", "category")


def _is_pandas_na(cell: str) -> bool:
    return cell in PANDAS_NA_TOKENS


def _decode_image(cell: str, src: Path, line: int, index: str) -> bytes:
    """base64 -> bytes, strictly (the lenient stdlib default silently drops junk characters)."""
    text = cell.strip()
    if len(text) <= 64 and text.isdigit():
        raise DataError(
            src,
            f"index {index}: image is a reference to row {text} (VLMEvalKit TSV style), "
            "not base64; InternVL's reader cannot use such files",
            line=line,
            field="image",
        )
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DataError(src, f"index {index}: bad base64 image ({exc})", line=line, field="image") from None
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()  # structural check only; pixels are decoded at inference time
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(
            src, f"index {index}: base64 decodes to no known image ({exc})", line=line, field="image"
        ) from None
    return data


def read_mmbench_tsv(path: Path, require_answer: bool = True) -> pa.Table:
    """Normalize an MMBench TSV. ``line`` in errors is the record's row number (header = row 1).

    The TSV must be parsed honouring quotes (hints span several lines), so the row number equals the
    physical line only when no field contains a newline; messages also name the MMBench ``index``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(path, f"unreadable TSV ({exc})") from None
    columns = list(df.columns)
    needed = _MMBENCH_REQUIRED + (("answer",) if require_answer else ())
    for col in needed:
        if col not in columns:
            raise DataError(path, f"missing column (header has {columns})", line=1, field=col)
    letters = [c for c in columns if len(c) == 1 and "A" <= c <= "Z"]
    letters.sort()
    if not letters:
        raise DataError(path, "no option columns (A, B, ...) in header", line=1)

    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    seen: dict[str, int] = {}
    for i, rec in enumerate(df.to_dict(orient="records")):
        line = i + 2
        index = rec["index"].strip()
        idx = _int_id(index, path, line, "index")
        rid = str(idx)
        _check_unique(seen, rid, path, line, "index")
        question = rec["question"]
        if _is_pandas_na(question):
            raise DataError(path, f"index {rid}: question is empty/NaN ({question!r})", line=line, field="question")
        options: dict[str, str] = {}
        for letter in letters:
            cell = rec[letter]
            if _is_pandas_na(cell):
                if cell.strip():
                    notes.append(
                        f"index {rid} (row {line}): option {letter}={cell!r} is NaN for pandas' "
                        "default reader and is skipped, as in the original"
                    )
                continue
            options[letter] = cell
        if not options:
            raise DataError(path, f"index {rid}: no non-empty option", line=line, field="A")
        hint_cell = rec.get("hint", "")
        hint = None if _is_pandas_na(hint_cell) else hint_cell
        if hint is None and hint_cell.strip():
            notes.append(f"index {rid} (row {line}): hint {hint_cell!r} is NaN for pandas and is dropped")
        answers: list[str] = []
        if "answer" in rec and not _is_pandas_na(rec["answer"]):
            answer = rec["answer"].strip()
            if answer not in options:
                raise DataError(
                    path,
                    f"index {rid}: answer {answer!r} is not one of the options {sorted(options)}",
                    line=line,
                    field="answer",
                )
            answers = [answer]
        elif require_answer:
            raise DataError(path, f"index {rid}: empty answer", line=line, field="answer")
        category = rec["category"]
        if _is_pandas_na(category):
            raise DataError(path, f"index {rid}: empty category", line=line, field="category")
        rows.append(
            _row(
                rid,
                None,
                question,
                answers,
                image_bytes=_decode_image(rec["image"], path, line, rid),
                hint=hint,
                options=options,
                category=category,
                l2_category=_optional_cell(rec, "l2-category"),
                source=_optional_cell(rec, "source"),
                mmbench_index=idx,
            )
        )
    if not rows:
        raise DataError(path, "no records")
    return _with_notes(table_from_rows(rows, MMBENCH_EXTRA), notes)


def _optional_cell(rec: dict[str, str], col: str) -> str | None:
    cell = rec.get(col)
    return None if cell is None or _is_pandas_na(cell) else cell


def normalize_mmbench_dev_en(data_root: Path) -> pa.Table:
    return read_mmbench_tsv(Path(data_root) / "mmbench" / "mmbench_dev_20230712.tsv", require_answer=True)


# --- VQA (Qwen-format jsonl + official question/annotation json) -----------------------------------

VQA_EXTRA: dict[str, pa.DataType] = {
    "image_id": pa.int64(),
    "question_type": pa.string(),
    "answer_type": pa.string(),
    "multiple_choice_answer": pa.string(),
}


def _load_vqa_official(questions_path: Path, annotations_path: Path) -> tuple[dict[int, dict], dict[int, dict]]:
    """Index the official VQA question and annotation files by question_id (strictly; a repeated
    question record is not an error, the last one counts)."""
    qdoc = _load_listing(questions_path, "questions", "an object with a 'questions' list")
    questions = _index_by_id(questions_path, qdoc["questions"], "questions", unique=False)
    adoc = _load_listing(annotations_path, "annotations", "an object with an 'annotations' list")
    return questions, _index_by_id(annotations_path, adoc["annotations"], "annotations")


def _vqa_gold(ann: dict, path: Path, qid: int, expected_answers: int | None) -> dict[str, Any]:
    where = f"annotations[question_id={qid}]"
    texts = [a["answer"] for a in _answer_records(ann, path, where)]
    if expected_answers is not None and len(texts) != expected_answers:
        raise DataError(path, f"expected {expected_answers} answers, got {len(texts)}", field=f"{where}.answers")
    out: dict[str, Any] = {"answers": texts}
    for key in ("question_type", "answer_type", "multiple_choice_answer"):
        if not isinstance(ann.get(key), str):
            raise DataError(path, "missing or not a string", field=f"{where}.{key}")
        out[key] = ann[key]
    out["image_id"] = _int_id(ann.get("image_id"), path, None, f"{where}.image_id")
    return out


def read_vqa(
    jsonl: Path,
    questions_path: Path,
    annotations_path: Path,
    data_root: Path,
    image_bases: Sequence[str],
    expected_answers: int | None = 10,
) -> pa.Table:
    """Normalize a Qwen-format VQA jsonl, taking gold answers from the official json files.

    Every jsonl question must exist in both official files with the same image id. Official
    annotations without a jsonl record are not scored (the original's ``loadRes`` would refuse such
    a results file); their count is recorded as a note.
    """
    jsonl = Path(jsonl)
    questions, annotations = _load_vqa_official(Path(questions_path), Path(annotations_path))
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    cache: dict[str, bool] = {}
    for line, rec in iter_jsonl(jsonl):
        qid, rid, question, image = _qwen_question(rec, jsonl, line, seen, data_root, image_bases, cache)
        _require_listed(qid, questions, questions_path, jsonl, line)
        _require_listed(qid, annotations, annotations_path, jsonl, line)
        gold = _vqa_gold(annotations[qid], Path(annotations_path), qid, expected_answers)
        q_image_id = _int_id(
            questions[qid].get("image_id"), Path(questions_path), None, f"questions[question_id={qid}].image_id"
        )
        if q_image_id != gold["image_id"]:
            raise DataError(
                annotations_path,
                f"image_id {gold['image_id']} != {q_image_id} in {questions_path}",
                field=f"annotations[question_id={qid}].image_id",
            )
        rows.append(_row(rid, image, question, **gold))
    if not rows:
        raise DataError(jsonl, "no records")
    notes = []
    unused = len(annotations) - len(rows)
    if unused:
        notes.append(f"{unused} annotated questions in {annotations_path} have no record in {jsonl}")
    return _with_notes(table_from_rows(rows, VQA_EXTRA), notes)


def normalize_vqav2_val(data_root: Path) -> pa.Table:
    d = Path(data_root) / "vqav2"
    return read_vqa(
        d / "vqav2_val.jsonl",
        d / "v2_OpenEnded_mscoco_val2014_questions.json",
        d / "v2_mscoco_val2014_annotations.json",
        Path(data_root),
        image_bases=("vqav2",),
    )


# --- COCO Karpathy captions (BLIP-style list + COCO-format GT) -------------------------------------

CAPTION_EXTRA: dict[str, pa.DataType] = {"image_id": pa.int64()}


def coco_image_id_from_filename(filename: str) -> int:
    """``val2014/COCO_val2014_000000391895.jpg`` -> 391895, as the original caption script parses it."""
    return int(filename.split("_")[-1].replace(".jpg", ""))


def _coco_gt_captions(gt_path: Path) -> dict[int, list[str]]:
    doc = _load_listing(gt_path, "annotations", "a COCO-format object with an 'annotations' list")
    caps: dict[int, list[str]] = {}
    for _, where, ann in _objects(gt_path, doc["annotations"], "annotations"):
        image_id = _int_id(ann.get("image_id"), gt_path, None, f"{where}.image_id")
        caption = ann.get("caption")
        if not isinstance(caption, str):
            raise DataError(gt_path, f"expected a string, got {type(caption).__name__}", field=f"{where}.caption")
        caps.setdefault(image_id, []).append(caption)
    return caps


def read_coco_karpathy(list_path: Path, gt_path: Path, data_root: Path, image_bases: Sequence[str]) -> pa.Table:
    """One row per image of the BLIP-style list; references from the COCO-format GT file.

    The GT file is what the original scores against (``COCO(gt).loadRes(results)``), so its captions
    are the ``answers``; the list's own ``caption`` field is only checked for type. The question is
    empty: the caption prompt is added at inference time.
    """
    list_path, gt_path = Path(list_path), Path(gt_path)
    items = _load_json_list(list_path)
    gt = _coco_gt_captions(gt_path)
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    cache: dict[str, bool] = {}
    for k, where, item in _objects(list_path, items):
        image = item.get("image")
        if not isinstance(image, str):
            raise DataError(list_path, f"expected a string, got {image!r}", field=f"{where}.image")
        try:
            image_id = coco_image_id_from_filename(image)
        except ValueError:
            raise DataError(list_path, f"cannot parse an image id from {image!r}", field=f"{where}.image") from None
        if "caption" in item and not isinstance(item["caption"], (list, str)):
            raise DataError(list_path, "expected a list of strings", field=f"{where}.caption")
        rid = _unique_image_id(seen, image_id, k, list_path, "", f"{where}.image")
        rel = resolve_image(image, data_root, image_bases, list_path, None, field=f"{where}.image", cache=cache)
        refs = gt.get(image_id)
        if not refs:
            raise DataError(
                gt_path,
                f"no reference captions for image_id {image_id} (from {list_path} {where})",
                field="annotations",
            )
        rows.append(_row(rid, rel, "", refs, image_id=image_id))
    if not rows:
        raise DataError(list_path, "no records")
    notes = []
    extra = len(set(gt) - {int(r["id"]) for r in rows})
    if extra:
        notes.append(f"{extra} images of {gt_path} are not in {list_path} (not scored, as in the original)")
    return _with_notes(table_from_rows(rows, CAPTION_EXTRA), notes)


def normalize_caption_coco(data_root: Path) -> pa.Table:
    ann = Path(data_root) / "coco" / "annotations"
    return read_coco_karpathy(
        ann / "coco_karpathy_test.json", ann / "coco_karpathy_test_gt.json", Path(data_root), image_bases=("coco",)
    )


# --- POPE ------------------------------------------------------------------------------------------

POPE_EXTRA: dict[str, pa.DataType] = {"split": pa.string(), "label": pa.string(), "label_question_id": pa.int64()}
POPE_SPLITS: tuple[str, ...] = ("adversarial", "popular", "random")


def _pope_labels(path: Path) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for line, rec in iter_jsonl(path):  # the .json label files are JSON lines
        label = require(rec, "label", path, line, str)
        if label not in ("yes", "no"):
            raise DataError(path, f"label must be 'yes' or 'no', got {label!r}", line=line, field="label")
        out.append((line, rec))
    return out


def read_pope(
    question_file: Path,
    label_dir: Path,
    data_root: Path,
    image_bases: Sequence[str],
    label_pattern: str = "coco_pope_{}.json",
) -> pa.Table:
    """LLaVA POPE questions + POPE label files, paired by order within each category.

    The original scorer zips the k-th answer of a category with the k-th line of its label file, so
    a reordered file would silently score against the wrong labels. We do the same pairing and
    require each pair to show the same image and question text (the LLaVA text is the label-file
    text plus the answer instruction on a new line).
    """
    question_file, label_dir = Path(question_file), Path(label_dir)
    labels: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    used: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    cache: dict[str, bool] = {}
    for line, rec in iter_jsonl(question_file):
        qid, rid = _unique_qid(rec, question_file, line, seen)
        text = _nonempty_str(rec, "text", question_file, line)
        category = require(rec, "category", question_file, line, str)
        if category not in POPE_SPLITS:
            raise DataError(
                question_file,
                f"unknown category {category!r} (expected one of {POPE_SPLITS})",
                line=line,
                field="category",
            )
        image_raw = require(rec, "image", question_file, line, str)
        image = resolve_image(image_raw, data_root, image_bases, question_file, line, cache=cache)
        label_path = label_dir / label_pattern.format(category)
        if category not in labels:
            labels[category] = _pope_labels(label_path)
            used[category] = 0
        k = used[category]
        if k >= len(labels[category]):
            raise DataError(
                label_path,
                f"has only {k} labels but {question_file}:{line} is question {k + 1} of category {category!r}",
            )
        lab_line, lab = labels[category][k]
        used[category] = k + 1
        lab_text = require(lab, "text", label_path, lab_line, str)
        lab_image = require(lab, "image", label_path, lab_line, str)
        if lab_image != image_raw or not (text == lab_text or text.startswith(lab_text + "\n")):
            raise DataError(
                label_path,
                f"label line does not line up with {question_file}:{line} "
                f"(question {qid}: {image_raw!r} {text.splitlines()[0]!r}; label: {lab_image!r} "
                f"{lab_text!r})",
                line=lab_line,
            )
        lab_qid = _int_id(require(lab, "question_id", label_path, lab_line), label_path, lab_line, "question_id")
        rows.append(_row(rid, image, text, [lab["label"]], split=category, label=lab["label"], label_question_id=lab_qid))
    if not rows:
        raise DataError(question_file, "no records")
    notes = []
    for category, labs in labels.items():
        if used[category] < len(labs):
            notes.append(
                f"{label_dir / label_pattern.format(category)}: {len(labs) - used[category]} label lines "
                f"after the {used[category]} questions of {question_file} are unused"
            )
    missing = [s for s in POPE_SPLITS if s not in labels]
    if missing:
        notes.append(f"no questions for categories {missing}")
    return _with_notes(table_from_rows(rows, POPE_EXTRA), notes)


def normalize_pope(data_root: Path) -> pa.Table:
    d = Path(data_root) / "pope"
    return read_pope(d / "llava_pope_test.jsonl", d / "coco", Path(data_root), image_bases=("pope/val2014",))


# --- registry ----------------------------------------------------------------------------------------

NORMALIZERS: dict[str, Callable[[Path], pa.Table]] = {
    "mmbench-dev-en": normalize_mmbench_dev_en,
    "vqa-vqav2-val": normalize_vqav2_val,
    "caption-coco": normalize_caption_coco,
    "pope": normalize_pope,
}


def normalize(split: str, data_root: Path) -> pa.Table:
    """Normalize one evaluate.sh split from ``data_root`` (the original ``internvl_chat/data``)."""
    if split not in NORMALIZERS:
        raise KeyError(f"no normalizer for split {split!r}; known: {sorted(NORMALIZERS)}")
    return NORMALIZERS[split](Path(data_root))


def write_parquet(table: pa.Table, out: str | Path) -> None:
    """Write atomically: a crash never leaves a half-written parquet where Snakemake expects a good one."""
    with atomic_path(out, suffix=".parquet.tmp") as tmp:
        pq.write_table(table, tmp)

from internvl.data import bench_family_a  # noqa: E402

NORMALIZERS.update(bench_family_a.NORMALIZERS)

from internvl.data import bench_family_b  # noqa: E402

NORMALIZERS.update(bench_family_b.NORMALIZERS)
