"""Normalizers for the captioning, VQA and grounding splits of ``evaluate.sh`` (eval table, section A).

Each function reads the files the V1.2 script reads (paths relative to ``data_root``, the original
``internvl_chat/data/``) and returns one table in the schema of :mod:`internvl.data.schema`. Gold
answers come from the file the original *scores* against (the official VQA json files, the DocVQA
``val_v1.0.json``, GQA's ``testdev_balanced_questions.json``, the COCO-format caption file), not from
the convenience ``answer`` field of the question jsonl. Server-scored splits (VQAv2 test-dev, VizWiz
test, DocVQA test) have ``answers == []``.

Per-split extra columns:

- captions (flickr30k, nocaps): ``image_id`` (int); nocaps also ``domain`` (in/near/out-domain).
- okvqa / textvqa / vizwiz-val: ``image_id`` (string: TextVQA ids are hex strings), ``question_type``,
  ``answer_type``, ``multiple_choice_answer`` (nullable) and ``answer_meta``: per gold answer, the JSON
  of its annotation record without the ``answer`` text. The original's leave-one-out compares whole
  answer records (``item != gtAnsDatum``), so records without a distinguishing ``answer_id`` drop
  *all* identical copies at once; the scorer needs the records to reproduce that.
- vizwiz-test: ``submission_image`` (the question id minus ``data/vizwiz/test/``, as submitted).
- docvqa-val: ``question_types`` (list, from the GT file when present).
- chartqa / ocrvqa / ai2d: ``question_id`` (the raw id as a string; see "ids" below); ai2d also
  ``abc_image`` (the image comes from ``abc_images``, see the README caveat on AI2D).
- gqa: ``image_id``, ``is_balanced``, ``structural_type``, ``semantic_type`` (from the official file).
- refcoco*: ``bbox`` (x1, y1, x2, y2 in pixels), ``width``, ``height``; ``answers`` holds the box as JSON.

Ids: where the original pairs records by id (VQA, DocVQA, GQA) or submits them (test splits), the
raw id is used and must be unique. ChartQA, OCR-VQA, AI2D and RefCOCO never use the id for scoring and
real files repeat it (ChartQA conversions carry ``question_id == -1``, AI2D uses the image path): the
raw id is used when it is present and unique over the file, otherwise every row gets
``<file stem>:<0-based record index>`` and a note says so.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from internvl.data.io import iter_jsonl, load_json, require
from internvl.data.schema import table_from_rows
from internvl.errors import DataError

VQA_INSTRUCTION = "Answer the question using a single word or phrase."
OCR_TOKEN_MARKER = "Reference OCR token:"
VIZWIZ_TEST_PREFIX = "data/vizwiz/test/"


# --- small shared pieces -------------------------------------------------------------------------------


def _id_value(value: Any, src: Path, line: int | None, field: str) -> int | str:
    """An id that is an int or a non-empty string (kept as is: the original compares ids by ``==``)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, str) and not value.strip()):
        raise DataError(src, f"expected an integer or non-empty string id, got {value!r}", line=line, field=field)
    return value


def _answer_list(value: Any, src: Path, line: int | None, field: str = "answer") -> list[str]:
    """Qwen-format ``answer``: one string or a non-empty list of strings (the original wraps a string)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(a, str) for a in value):
        return list(value)
    raise DataError(src, f"expected a string or a non-empty list of strings, got {value!r}", line=line, field=field)


def _id_parser(int_ids: bool) -> Callable[[Any, Path, int | None, str], int | str]:
    """How question ids are read: integers only, or (``int_ids=False``) integers or non-empty strings."""
    return _int_id if int_ids else _id_value


def _records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    records = list(iter_jsonl(path))
    if not records:
        raise DataError(path, "no records")
    return records


def _auto_ids(path: Path, records: Sequence[tuple[int, dict[str, Any]]], notes: list[str]) -> list[str]:
    """Raw ``question_id`` when every record has one and they are unique, else ``<stem>:<index>``."""
    raw = [rec.get("question_id") for _, rec in records]
    usable = all(isinstance(v, (int, str)) and not isinstance(v, bool) and str(v).strip() for v in raw)
    as_str = [str(v) for v in raw]
    if usable and len(set(as_str)) == len(as_str):
        return as_str
    if not usable:
        why = "not every record has a question_id"
    else:
        dup, count = Counter(as_str).most_common(1)[0]
        why = f"question_id repeats (e.g. {dup!r} x{count})"
    notes.append(
        f"{path.name}: {why}; ids are '<file stem>:<record index>' instead (the original never uses this id to score)"
    )
    return [f"{path.stem}:{i}" for i in range(len(records))]


def _auto_id_records(path: Path, notes: list[str]) -> list[tuple[str, int, dict[str, Any]]]:
    """``(row id, line, record)`` for every record of a jsonl, with the ids of :func:`_auto_ids`."""
    records = _records(path)
    return [(rid, line, rec) for rid, (line, rec) in zip(_auto_ids(path, records, notes), records, strict=True)]


def _raw_qid(rec: dict[str, Any]) -> str | None:
    value = rec.get("question_id")
    return None if value is None else str(value)


# --- captions (COCO-format files: flickr30k, nocaps) -----------------------------------------------------


def read_coco_format_captions(ann_path: Path, data_root: Path, image_root: str, keep_domain: bool = False) -> pa.Table:
    """One row per entry of ``images`` (file order), references = every annotation of that image id.

    The same file is both the image list (``json.load(f)['images']``; path = root + ``file_name``, or
    ``image`` when there is no ``file_name``) and the GT given to ``COCO()``, as in the original.
    """
    ann_path = Path(ann_path)
    doc = _load_listing(ann_path, "images", "a COCO-format object with an 'images' list")
    refs = _coco_gt_captions(ann_path)
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    cache: dict[str, bool] = {}
    for k, where, im in _objects(ann_path, doc["images"], "images"):
        image_id = _int_id(im.get("id"), ann_path, None, f"{where}.id")
        key = "file_name" if "file_name" in im else "image"
        rid = _unique_image_id(seen, image_id, k, ann_path, "images", f"{where}.id")
        rel = resolve_image(im.get(key), data_root, (image_root,), ann_path, None, field=f"{where}.{key}", cache=cache)
        captions = refs.get(image_id)
        if not captions:
            raise DataError(ann_path, f"no reference caption for image id {image_id}", field=f"{where}.id")
        extra: dict[str, Any] = {"image_id": image_id}
        if keep_domain:
            domain = im.get("domain")
            extra["domain"] = domain if isinstance(domain, str) else None
        rows.append(_row(rid, rel, "", captions, **extra))
    if not rows:
        raise DataError(ann_path, "no images")
    notes = []
    orphans = len(set(refs) - {int(r["id"]) for r in rows})
    if orphans:
        notes.append(f"{ann_path.name}: captions of {orphans} image ids that are not in 'images' (never scored)")
    scored = [c for r in rows for c in r["answers"]]
    cut = sum(c.startswith('"') and not c.rstrip().endswith('"') for c in scored)
    if cut:
        notes.append(
            f"{ann_path.name}: {cut} of {len(scored)} references open a double quote that never closes (a quoted "
            "CSV caption cut at its first comma when the file was converted); scored as is, like the original"
        )
    extra_types = dict(CAPTION_EXTRA)
    if keep_domain:
        extra_types["domain"] = pa.string()
    return _with_notes(table_from_rows(rows, extra_types), notes)


def normalize_caption_flickr30k(data_root: Path) -> pa.Table:
    root = Path(data_root)
    return read_coco_format_captions(root / "flickr30k" / "flickr30k_test_karpathy.json", root, "flickr30k")


def normalize_caption_nocaps(data_root: Path) -> pa.Table:
    root = Path(data_root)
    return read_coco_format_captions(
        root / "nocaps" / "nocaps_val_4500_captions.json", root, "nocaps/images", keep_domain=True
    )


# --- VQA scored with the official question/annotation json (OK-VQA, TextVQA, VizWiz val) ---------------

VQA_OFFICIAL_EXTRA: dict[str, pa.DataType] = {
    "image_id": pa.string(),
    "question_type": pa.string(),
    "answer_type": pa.string(),
    "multiple_choice_answer": pa.string(),
    "answer_meta": pa.list_(pa.string()),
}


def _load_official_vqa(
    questions_path: Path, annotations_path: Path, int_ids: bool
) -> tuple[dict[Any, dict], dict[Any, dict]]:
    """Question and annotation records keyed by question id. ``int_ids=False`` also allows string ids
    (VizWiz conversions key questions by image path); ids are compared by ``==`` as the VQA API does."""

    out: list[dict[Any, dict]] = []
    for path, key in ((Path(questions_path), "questions"), (Path(annotations_path), "annotations")):
        doc = _load_listing(path, key, f"an object with a {key!r} list")
        out.append(_index_by_id(path, doc[key], key, parse=_id_parser(int_ids)))
    return out[0], out[1]


def _official_gold(ann: dict, path: Path, qid: Any) -> dict[str, Any]:
    """Fields VQAEval reads: answers (records with a string ``answer``), question_type, answer_type."""
    where = f"annotations[question_id={qid!r}]"
    answers = _answer_records(ann, path, where)
    metas = [json.dumps({k: v for k, v in a.items() if k != "answer"}, sort_keys=True, ensure_ascii=False) for a in answers]
    out: dict[str, Any] = {"answers": [a["answer"] for a in answers], "answer_meta": metas}
    for key in ("question_type", "answer_type"):  # VQAEval indexes both for its per-type tables
        if not isinstance(ann.get(key), str):
            raise DataError(path, "missing or not a string (the VQA evaluator needs it)", field=f"{where}.{key}")
        out[key] = ann[key]
    mc = ann.get("multiple_choice_answer")
    out["multiple_choice_answer"] = mc if isinstance(mc, str) else None
    if "image_id" not in ann:
        raise DataError(path, "missing (the VQA API indexes annotations by image)", field=f"{where}.image_id")
    out["image_id"] = str(_id_value(ann["image_id"], path, None, f"{where}.image_id"))
    return out


def read_vqa_official(
    jsonl: Path,
    questions_path: Path,
    annotations_path: Path,
    data_root: Path,
    image_bases: Sequence[str],
    int_ids: bool = True,
) -> pa.Table:
    """Qwen-format question jsonl + official-format (VQA API) question/annotation files.

    Like ``read_vqa`` for VQAv2, but the annotation record may lack ``multiple_choice_answer`` (OK-VQA),
    image ids may be strings (TextVQA) and question ids strings (VizWiz), and the answer records are
    kept for the exact leave-one-out of the original (see the module docstring).
    """
    jsonl, questions_path, annotations_path = Path(jsonl), Path(questions_path), Path(annotations_path)
    questions, annotations = _load_official_vqa(questions_path, annotations_path, int_ids)
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    cache: dict[str, bool] = {}
    n_not10 = n_dup_records = 0
    for line, rec in _records(jsonl):
        qid, rid, question, image = _qwen_question(
            rec, jsonl, line, seen, data_root, image_bases, cache, parse=_id_parser(int_ids)
        )
        _require_listed(qid, questions, questions_path, jsonl, line)
        _require_listed(qid, annotations, annotations_path, jsonl, line)
        gold = _official_gold(annotations[qid], annotations_path, qid)
        q_image = questions[qid].get("image_id")
        if q_image is not None and str(q_image) != gold["image_id"]:
            raise DataError(
                annotations_path,
                f"image_id {gold['image_id']!r} != {q_image!r} in {questions_path}",
                field=f"annotations[question_id={qid!r}].image_id",
            )
        n_not10 += len(gold["answers"]) != 10
        n_dup_records += len(set(zip(gold["answers"], gold["answer_meta"], strict=True))) != len(gold["answers"])
        rows.append(_row(rid, image, question, **gold))
    notes = []
    unused = len(annotations) - len(rows)
    if unused:
        notes.append(
            f"{unused} annotated questions in {annotations_path.name} have no record in {jsonl.name} "
            "(the original's loadRes refuses such a partial result file)"
        )
    if n_not10:
        notes.append(f"{n_not10} questions do not have exactly 10 gold answers")
    if n_dup_records:
        notes.append(
            f"{n_dup_records} questions have identical answer records (no distinguishing answer_id); the "
            "original's leave-one-out drops all identical copies at once, and the scorer does the same"
        )
    return _with_notes(table_from_rows(rows, VQA_OFFICIAL_EXTRA), notes)


def normalize_okvqa_val(data_root: Path) -> pa.Table:
    root = Path(data_root)
    d = root / "okvqa"
    return read_vqa_official(
        d / "okvqa_val.jsonl",
        d / "OpenEnded_mscoco_val2014_questions.json",
        d / "mscoco_val2014_annotations.json",
        root,
        image_bases=("okvqa", "coco"),
    )


def normalize_textvqa_val(data_root: Path) -> pa.Table:
    """Dataset key ``textvqa_val_ocr``: the LLaVA-derived ``textvqa_val_llava.jsonl`` (questions carry
    the "Reference OCR token: ..." line), gold from the official-format TextVQA val json files."""
    root = Path(data_root)
    d = root / "textvqa"
    jsonl = d / "textvqa_val_llava.jsonl"
    table = read_vqa_official(
        jsonl,
        d / "textvqa_val_questions.json",
        d / "textvqa_val_annotations.json",
        root,
        image_bases=("textvqa", "textvqa/train_images"),
    )
    questions = table.column("question").to_pylist()
    notes = [
        f"{jsonl.name} (key textvqa_val_ocr, the LLaVA OCR variant): {sum(OCR_TOKEN_MARKER in q for q in questions)} "
        f"of {len(questions)} questions embed '{OCR_TOKEN_MARKER} ...'"
    ]
    doubled = sum(q.rstrip().endswith(VQA_INSTRUCTION) for q in questions)
    if doubled:
        notes.append(
            f"{doubled} questions already end with '{VQA_INSTRUCTION}'; the script appends it again after a "
            "space, and so does the prompt here"
        )
    return _with_notes(table, table_notes(table) + notes)


def normalize_vizwiz_val(data_root: Path) -> pa.Table:
    root = Path(data_root)
    d = root / "vizwiz"
    return read_vqa_official(
        d / "vizwiz_val.jsonl",
        d / "vizwiz_val_questions.json",
        d / "vizwiz_val_annotations.json",
        root,
        image_bases=("vizwiz", "vizwiz/val"),
        int_ids=False,
    )


# --- question-only jsonl (server-scored test splits) -----------------------------------------------------


def read_server_split(
    jsonl: Path, data_root: Path, image_bases: Sequence[str], int_ids: bool, submission_prefix: str | None = None
) -> pa.Table:
    """Questions of a split scored by an evaluation server: ``answers == []``.

    ``submission_prefix``: the question id is an image path whose prefix the submission strips
    (VizWiz test); it then must be a string and ``submission_image`` is kept.
    """
    jsonl = Path(jsonl)
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    cache: dict[str, bool] = {}
    with_answer = 0
    for line, rec in _records(jsonl):
        qid, rid, question, image = _qwen_question(
            rec, jsonl, line, seen, data_root, image_bases, cache, parse=_id_parser(int_ids)
        )
        extra: dict[str, Any] = {}
        if submission_prefix is not None:
            if not isinstance(qid, str):
                raise DataError(
                    jsonl,
                    f"expected the image path as question_id (the submission strips {submission_prefix!r} from it), "
                    f"got {qid!r}",
                    line=line,
                    field="question_id",
                )
            extra["submission_image"] = qid.replace(submission_prefix, "")
        with_answer += "answer" in rec
        rows.append(_row(rid, image, question, [], **extra))
    notes = [f"{jsonl.name}: scored by the evaluation server; no local gold answers"]
    if with_answer:
        notes.append(f"{with_answer} records carry an 'answer' field; it is not a gold answer and is ignored")
    extra_types = {"submission_image": pa.string()} if submission_prefix is not None else {}
    return _with_notes(table_from_rows(rows, extra_types), notes)


def normalize_vqav2_testdev(data_root: Path) -> pa.Table:
    root = Path(data_root)
    return read_server_split(root / "vqav2" / "vqav2_testdev.jsonl", root, ("vqav2",), int_ids=True)


def normalize_vizwiz_test(data_root: Path) -> pa.Table:
    root = Path(data_root)
    return read_server_split(
        root / "vizwiz" / "vizwiz_test.jsonl",
        root,
        ("vizwiz", "vizwiz/test"),
        int_ids=False,
        submission_prefix=VIZWIZ_TEST_PREFIX,
    )


def normalize_docvqa_test(data_root: Path) -> pa.Table:
    root = Path(data_root)
    return read_server_split(
        root / "docvqa" / "test.jsonl", root, ("docvqa", "docvqa/test", "docvqa/test/documents"), int_ids=True
    )


# --- DocVQA val (ANLS against val_v1.0.json) --------------------------------------------------------------

DOCVQA_EXTRA: dict[str, pa.DataType] = {"question_types": pa.list_(pa.string())}


def _docvqa_gt(gt_path: Path) -> dict[int, dict]:
    doc = _load_listing(gt_path, "data", "an object with a 'data' list")
    if "dataset_name" not in doc:  # the evaluator's validate_data refuses such a file
        raise DataError(gt_path, "missing (the ANLS evaluator refuses a GT file without it)", field="dataset_name")

    def check(rec: dict[str, Any], where: str) -> None:
        answers = rec.get("answers")
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
            raise DataError(gt_path, "expected a non-empty list of strings", field=f"{where}.answers")
        qtypes = rec.get("question_types")
        if qtypes is not None and not (isinstance(qtypes, list) and all(isinstance(t, str) for t in qtypes)):
            raise DataError(gt_path, "expected a list of strings", field=f"{where}.question_types")

    return _index_by_id(gt_path, doc["data"], "data", id_key="questionId", check=check)


def normalize_docvqa_val(data_root: Path) -> pa.Table:
    """``docvqa/val.jsonl`` questions; gold = ``docvqa/val/val_v1.0.json`` answers (what the evaluator reads)."""
    root = Path(data_root)
    d = root / "docvqa"
    jsonl, gt_path = d / "val.jsonl", d / "val" / "val_v1.0.json"
    gt = _docvqa_gt(gt_path)
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    cache: dict[str, bool] = {}
    differs = 0
    for line, rec in _records(jsonl):
        qid, rid, question, image = _qwen_question(
            rec, jsonl, line, seen, root, ("docvqa", "docvqa/val", "docvqa/val/documents"), cache
        )
        _require_listed(qid, gt, gt_path, jsonl, line)
        if "answer" in rec and _answer_list(rec["answer"], jsonl, line) != gt[qid]["answers"]:
            differs += 1
        rows.append(_row(rid, image, question, list(gt[qid]["answers"]), question_types=gt[qid].get("question_types")))
    notes = []
    missing = len(gt) - len(rows)
    if missing:
        notes.append(
            f"{missing} questions of {gt_path.name} have no record in {jsonl.name} "
            "(the original evaluator refuses a submission that does not cover the GT file)"
        )
    if differs:
        notes.append(f"{differs} records of {jsonl.name} list other answers than {gt_path.name}; the GT file is scored")
    return _with_notes(table_from_rows(rows, DOCVQA_EXTRA), notes)


# --- Qwen-format jsonl with the gold in the record (ChartQA, OCR-VQA, AI2D) -------------------------------

RAW_ID_EXTRA: dict[str, pa.DataType] = {"question_id": pa.string()}


def read_qwen_answered(
    jsonl: Path, data_root: Path, image_bases: Sequence[str], extra_fn: Callable[[str], dict[str, Any]] | None = None,
    extra_types: dict[str, pa.DataType] | None = None,
) -> pa.Table:
    """``{image, question, question_id, answer}`` records whose ``answer`` (string or list) is the gold."""
    jsonl = Path(jsonl)
    notes: list[str] = []
    rows: list[dict[str, Any]] = []
    cache: dict[str, bool] = {}
    for rid, line, rec in _auto_id_records(jsonl, notes):
        question = _nonempty_str(rec, "question", jsonl, line)
        image = _record_image(rec, jsonl, line, data_root, image_bases, cache)
        answers = _answer_list(require(rec, "answer", jsonl, line), jsonl, line)
        extra = {"question_id": _raw_qid(rec), **(extra_fn(image) if extra_fn else {})}
        rows.append(_row(rid, image, question, answers, **extra))
    return _with_notes(table_from_rows(rows, {**RAW_ID_EXTRA, **(extra_types or {})}), notes)


def _chartqa(name: str) -> Callable[[Path], pa.Table]:
    def normalize(data_root: Path) -> pa.Table:
        root = Path(data_root)
        return read_qwen_answered(root / "chartqa" / f"{name}.jsonl", root, ("chartqa",))

    normalize.__name__ = f"normalize_chartqa_{name}"
    return normalize


def _ocrvqa(split: str) -> Callable[[Path], pa.Table]:
    def normalize(data_root: Path) -> pa.Table:
        root = Path(data_root)
        return read_qwen_answered(root / "ocrvqa" / f"ocrvqa_{split}.jsonl", root, ("ocrvqa", "ocrvqa/images"))

    normalize.__name__ = f"normalize_ocrvqa_{split}"
    return normalize


def normalize_ai2d_test(data_root: Path) -> pa.Table:
    """``ai2diagram/test.jsonl``: the question carries the options and instruction as shipped (sent as is)."""
    root = Path(data_root)
    table = read_qwen_answered(
        root / "ai2diagram" / "test.jsonl",
        root,
        ("ai2diagram",),
        extra_fn=lambda image: {"abc_image": "/abc_images/" in f"/{image}"},
        extra_types={"abc_image": pa.bool_()},
    )
    n_abc = sum(table.column("abc_image").to_pylist())
    return _with_notes(
        table,
        table_notes(table)
        + [f"{n_abc} of {table.num_rows} questions use abc_images (README: V1.2 first evaluated without them)"],
    )


# --- GQA test-dev (LLaVA questions in Qwen format; gold from testdev_balanced_questions.json) ---------------

GQA_EXTRA: dict[str, pa.DataType] = {
    "image_id": pa.string(),
    "is_balanced": pa.bool_(),
    "structural_type": pa.string(),
    "semantic_type": pa.string(),
}


def _gqa_official(path: Path) -> dict[str, dict]:
    doc = load_json(path)
    if not isinstance(doc, dict):
        raise DataError(path, f"expected an object keyed by question id, got {type(doc).__name__}")
    for qid, q in doc.items():
        where = f"[{qid!r}]"
        if not isinstance(q, dict) or not isinstance(q.get("answer"), str):
            raise DataError(path, "expected an object with a string 'answer'", field=where)
        if not isinstance(q.get("isBalanced"), bool):
            raise DataError(path, "missing or not a boolean", field=f"{where}.isBalanced")
        types = q.get("types")
        if not isinstance(types, dict) or not isinstance(types.get("structural"), str):
            raise DataError(path, "missing types.structural (eval.py splits binary/open by it)", field=f"{where}.types")
    return doc


def normalize_gqa_testdev(data_root: Path) -> pa.Table:
    """Dataset key ``gqa_testdev_llava``: ``gqa/llava_gqa_testdev_balanced_qwen_format.jsonl``, scored by
    the official eval.py against ``gqa/testdev_balanced_questions.json`` (in ``data/gqa/``)."""
    root = Path(data_root)
    d = root / "gqa"
    jsonl, official_path = d / "llava_gqa_testdev_balanced_qwen_format.jsonl", d / "testdev_balanced_questions.json"
    official = _gqa_official(official_path)
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    cache: dict[str, bool] = {}
    int_ids = differs = 0
    for line, rec in _records(jsonl):
        raw, rid = _unique_qid(rec, jsonl, line, seen, parse=_id_value)
        int_ids += isinstance(raw, int)
        _require_listed(rid, official, official_path, jsonl, line)
        question = _nonempty_str(rec, "question", jsonl, line)
        image = _record_image(rec, jsonl, line, root, ("gqa", "gqa/images"), cache)
        gold = official[rid]
        if "answer" in rec and _answer_list(rec["answer"], jsonl, line) != [gold["answer"]]:
            differs += 1
        image_id = gold.get("imageId")
        rows.append(
            _row(
                rid, image, question, [gold["answer"]],
                image_id=None if image_id is None else str(image_id),
                is_balanced=gold["isBalanced"],
                structural_type=gold["types"]["structural"],
                semantic_type=gold["types"].get("semantic"),
            )
        )
    notes = []
    missing = len(official) - len(rows)
    if missing:
        notes.append(
            f"{missing} questions of {official_path.name} have no record in {jsonl.name} "
            "(the official eval.py would stop on the missing prediction)"
        )
    if int_ids:
        notes.append(f"{int_ids} question ids are integers; GQA ids are strings, compared as strings here")
    if differs:
        notes.append(f"{differs} records' 'answer' differs from {official_path.name}; the official file is scored")
    return _with_notes(table_from_rows(rows, GQA_EXTRA), notes)


# --- RefCOCO / RefCOCO+ / RefCOCOg --------------------------------------------------------------------------

REFCOCO_EXTRA: dict[str, pa.DataType] = {
    "bbox": pa.list_(pa.float64()),
    "width": pa.int64(),
    "height": pa.int64(),
}
REFCOCO_SPLITS: dict[str, str] = {
    "refcoco-val": "refcoco_val",
    "refcoco-testA": "refcoco_testA",
    "refcoco-testB": "refcoco_testB",
    "refcoco+-val": "refcoco+_val",
    "refcoco+-testA": "refcoco+_testA",
    "refcoco+-testB": "refcoco+_testB",
    "refcocog-val": "refcocog_val",
    "refcocog-test": "refcocog_test",
}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _pixels(rec: dict[str, Any], field: str, src: Path, line: int) -> int:
    value = require(rec, field, src, line)
    if not _number(value) or value != int(value) or value <= 0:
        raise DataError(src, f"expected a positive integer, got {value!r}", line=line, field=field)
    return int(value)


def read_refcoco(jsonl: Path, data_root: Path, image_bases: Sequence[str]) -> pa.Table:
    """``{image, sent, bbox [x1, y1, x2, y2] in pixels, width, height}`` per line; question = ``sent``."""
    jsonl = Path(jsonl)
    notes: list[str] = []
    rows: list[dict[str, Any]] = []
    cache: dict[str, bool] = {}
    degenerate = outside = 0
    for rid, line, rec in _auto_id_records(jsonl, notes):
        sent = _nonempty_str(rec, "sent", jsonl, line)
        image = _record_image(rec, jsonl, line, data_root, image_bases, cache)
        bbox = require(rec, "bbox", jsonl, line, list)
        if len(bbox) != 4 or not all(_number(v) for v in bbox):
            raise DataError(jsonl, f"expected 4 finite numbers [x1, y1, x2, y2], got {bbox!r}", line=line, field="bbox")
        width, height = _pixels(rec, "width", jsonl, line), _pixels(rec, "height", jsonl, line)
        x1, y1, x2, y2 = (float(v) for v in bbox)
        degenerate += x2 <= x1 or y2 <= y1
        outside += x1 < 0 or y1 < 0 or x2 > width or y2 > height
        rows.append(
            _row(rid, image, sent, [json.dumps(bbox)], bbox=[x1, y1, x2, y2], width=width, height=height)
        )
    if degenerate:
        notes.append(f"{degenerate} gold boxes have x2 <= x1 or y2 <= y1 (are they xywh?)")
    if outside:
        notes.append(f"{outside} gold boxes reach outside the image")
    return _with_notes(table_from_rows(rows, REFCOCO_EXTRA), notes)


def _refcoco(stem: str) -> Callable[[Path], pa.Table]:
    def normalize(data_root: Path) -> pa.Table:
        root = Path(data_root)
        return read_refcoco(root / "refcoco" / f"{stem}.jsonl", root, ("coco", "refcoco"))

    normalize.__name__ = f"normalize_{stem.replace('+', '_plus')}"
    return normalize


# --- registry ----------------------------------------------------------------------------------------------

NORMALIZERS: dict[str, Callable[[Path], pa.Table]] = {
    "caption-flickr30k": normalize_caption_flickr30k,
    "caption-nocaps": normalize_caption_nocaps,
    "vqa-vqav2-testdev": normalize_vqav2_testdev,
    "vqa-okvqa-val": normalize_okvqa_val,
    "vqa-textvqa-val": normalize_textvqa_val,
    "vqa-vizwiz-val": normalize_vizwiz_val,
    "vqa-vizwiz-test": normalize_vizwiz_test,
    "vqa-docvqa-val": normalize_docvqa_val,
    "vqa-docvqa-test": normalize_docvqa_test,
    "vqa-chartqa-test-human": _chartqa("test_human"),
    "vqa-chartqa-test-augmented": _chartqa("test_augmented"),
    "vqa-gqa-testdev": normalize_gqa_testdev,
    "vqa-ocrvqa-val": _ocrvqa("val"),
    "vqa-ocrvqa-test": _ocrvqa("test"),
    "vqa-ai2d-test": normalize_ai2d_test,
    **{split: _refcoco(stem) for split, stem in REFCOCO_SPLITS.items()},
}

# Shared helpers of internvl.data.benchmarks, imported last: benchmarks.py imports this module at its
# end to register NORMALIZERS, so whichever of the two is imported first, the other finds what it needs.
from internvl.data.benchmarks import (  # noqa: E402
    CAPTION_EXTRA,
    _answer_records,
    _coco_gt_captions,
    _index_by_id,
    _int_id,
    _load_listing,
    _nonempty_str,
    _objects,
    _qwen_question,
    _record_image,
    _require_listed,
    _row,
    _unique_image_id,
    _unique_qid,
    _with_notes,
    resolve_image,
    table_notes,
)
