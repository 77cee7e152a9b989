"""Normalizers for the multimodal benchmarks (family B) of the V1.2 ``evaluate.sh``.

Split keys are ``evaluate.sh`` task names; ``data_root`` is the original ``internvl_chat/data/``. Each
normalizer reads the files the V1.2 script (and its scorer) read, keeps every record, and raises
:class:`DataError` naming file, line/row and field on anything the original would choke on or that
would silently change a score. Layout under ``data_root`` (the seed README's ``data/`` tree):

- ``mme``: ``mme/Your_Results/<subtask>.txt`` (14 files, ``image<TAB>question<TAB>Yes|No``; the original
  keeps them in ``eval/mme/Your_Results``), images ``mme/images/<subtask>/<image>``. Two consecutive
  lines of a subtask file form one image pair (the scorer pairs by position, as ``calculation.py``).
- ``mmbench-dev-cn`` / ``mmbench-test-en`` / ``mmbench-test-cn``: ``mmbench/mmbench_{dev_cn,test_en,
  test_cn}_20231003.tsv`` through :func:`read_mmbench_tsv`; test splits have ``answers == []``.
- ``mmmu-dev`` / ``-val`` / ``-test``: the HF ``MMMU/MMMU`` parquet shards, ``mmmu/<Subject>/
  <split>-*.parquet`` (or ``mmmu/MMMU/<Subject>/``) for all 30 subjects (the original loads them with
  ``datasets.load_dataset``), checked against ``mmmu/answer_dict_val.json`` for val when present. Only
  ``image_1`` is kept (the only image V1.2 feeds the model).
- ``scienceqa``: ``scienceqa/scienceqa_test_img.jsonl`` {image, hint, question, choices, answer (index)}.
- ``tiny_lvlm``: ``tiny_lvlm/updated_datasets/<Category>/dataset.json`` [{image_path, question,
  gt_answers}]; the category is the image's parent folder, as the original scorer derives it.
- ``llava-bench``: ``llava-bench-in-the-wild/{questions,context,answers_gpt4}.jsonl``; the GPT-4
  reference answer of a question is the line at the same position (the review script zips by order).
- ``mmvet``: ``mm-vet/llava-mm-vet.jsonl`` (what V1.2 sends) + ``mm-vet/mm-vet.json`` (gold answer and
  capabilities the official grader uses), images ``mm-vet/images``.
- ``mmvp``: ``MMVP/Questions.csv`` (header ``lndex,Question,Options,Correct Answer``), images
  ``MMVP/MMVP Images/<lndex>.jpg``.
- ``mathvista-testmini`` / ``-test``: ``MathVista/{testmini,test}.json`` ({pid: problem}, the layout of the
  MathVista GitHub ``data/`` folder) with the prompt from each problem's ``query`` or from
  ``MathVista/query.json``; images ``MathVista/<problem image>`` (e.g. ``images/1.jpg``).
- ``seed``: ``SEED/seed.jsonl`` (the original keeps it in ``eval/seed/``) + ``SEED/SEED-Bench.json``
  (gold answer and question type, which is where ``calculation.py`` takes them from); images under
  ``SEED/``. Every record is kept (video questions use their middle frame); the headline is the image
  part (types 1-9).
"""

from __future__ import annotations

# Created before the imports below on purpose: ``benchmarks`` registers this module at its end with
# ``NORMALIZERS.update(bench_family_b.NORMALIZERS)``, which must find the name even when this module
# is the one imported first (it is filled in place at the bottom, and pushed to ``benchmarks`` too).
NORMALIZERS: dict = {}

import ast  # noqa: E402
import csv  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from PIL import Image, UnidentifiedImageError  # noqa: E402

from internvl.data import benchmarks as _base  # noqa: E402
from internvl.data.benchmarks import (  # noqa: E402
    _check_unique,
    _int_id,
    _load_json_list,
    _load_listing,
    _nonempty_str,
    _objects,
    _record_image,
    _require_listed,
    _row,
    _unique_qid,
    _with_notes,
    read_mmbench_tsv,
    resolve_image,
    table_notes,
)
from internvl.data.io import iter_jsonl, load_json, require  # noqa: E402
from internvl.data.schema import table_from_rows  # noqa: E402
from internvl.errors import DataError  # noqa: E402

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _letters(n: int, src: Path, line: int | None, field: str, limit: int) -> str:
    if n > limit:
        raise DataError(src, f"{n} choices, but the original labels at most {limit} ({LETTERS[:limit]})",
                        line=line, field=field)
    return LETTERS[:n]


def _check_image_bytes(data: bytes, src: Path, where: str) -> None:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(src, f"embedded image is not a readable image ({exc})", field=where) from None


# --- MME -------------------------------------------------------------------------------------------

MME_PERCEPTION: tuple[str, ...] = (
    "existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork", "OCR",
)  # fmt: skip
MME_COGNITION: tuple[str, ...] = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
MME_EXTRA: dict[str, pa.DataType] = {
    "category": pa.string(),  # the subtask (file stem)
    "eval_type": pa.string(),  # Perception / Cognition
    "image_name": pa.string(),
    "pair_index": pa.int64(),  # index of the image pair (two consecutive lines) within the subtask
}


def read_mme(results_dir: Path, data_root: Path, image_base: str = "mme/images") -> pa.Table:
    """The 14 MME ``<subtask>.txt`` question files; ids are ``<subtask>:<0-based line index>``.

    Each line is stripped and split on tabs into exactly (image, question, gt) as ``eval.py`` does; gt
    must be yes/no in any case (``calculation.py`` lowercases and asserts). Lines 2k and 2k+1 must name
    the same image: ``calculation.py`` scores acc+ on consecutive pairs, whatever they contain.
    """
    results_dir = Path(results_dir)
    rows: list[dict[str, Any]] = []
    cache: dict[str, bool] = {}
    for eval_type, subtasks in (("Perception", MME_PERCEPTION), ("Cognition", MME_COGNITION)):
        for subtask in subtasks:
            path = results_dir / f"{subtask}.txt"
            if not path.is_file():
                raise DataError(path, "file not found (MME needs all 14 subtask files)")
            with path.open("r", encoding="utf-8") as fh:  # universal newlines, as eval.py's readlines()
                lines = [ln.rstrip("\n") for ln in fh.readlines()]
            if not lines:
                raise DataError(path, "no records")
            for k, raw in enumerate(lines):
                line = k + 1
                fields = raw.strip().split("\t")
                if len(fields) != 3:
                    raise DataError(path, f"expected 3 tab-separated fields (image, question, Yes/No), got "
                                          f"{len(fields)}: {raw[:80]!r}", line=line)
                img, question, gt = fields
                if gt.lower() not in ("yes", "no"):
                    raise DataError(path, f"answer must be Yes or No, got {gt!r}", line=line, field="gt")
                if not question.strip():
                    raise DataError(path, "empty question", line=line, field="question")
                if k % 2 == 1 and img != rows[-1]["image_name"]:
                    raise DataError(path, f"line {line} ({img!r}) does not share the image of line {line - 1} "
                                          f"({rows[-1]['image_name']!r}); acc+ pairs consecutive lines", line=line)
                image = resolve_image(img, data_root, (f"{image_base}/{subtask}",), path, line, cache=cache)
                rows.append(_row(f"{subtask}:{k}", image, question, [gt], category=subtask, eval_type=eval_type,
                                 image_name=img, pair_index=k // 2))
            if len(lines) % 2:
                raise DataError(path, f"{len(lines)} lines: the last image has one question, but every MME "
                                      "image has two (calculation.py asserts pairs)", line=len(lines))
    return table_from_rows(rows, MME_EXTRA)


def normalize_mme(data_root: Path) -> pa.Table:
    return read_mme(Path(data_root) / "mme" / "Your_Results", Path(data_root))


# --- MMBench (dev-cn, test-en, test-cn) ------------------------------------------------------------


def _mmbench_test(path: Path) -> pa.Table:
    """Test TSVs have no answer column; if a copy does carry answers they are dropped (server-scored)."""
    table = read_mmbench_tsv(path, require_answer=False)
    notes = table_notes(table)
    had = sum(1 for a in table.column("answers").to_pylist() if a)
    if had:
        notes.append(f"{had} rows carry an answer; dropped: MMBench test is scored by the MMBench server")
    idx = table.schema.get_field_index("answers")
    empty = pa.array([[] for _ in range(table.num_rows)], type=pa.list_(pa.string()))
    return _with_notes(table.set_column(idx, table.schema.field("answers"), empty), notes)


def normalize_mmbench_dev_cn(data_root: Path) -> pa.Table:
    return read_mmbench_tsv(Path(data_root) / "mmbench" / "mmbench_dev_cn_20231003.tsv", require_answer=True)


def normalize_mmbench_test_en(data_root: Path) -> pa.Table:
    return _mmbench_test(Path(data_root) / "mmbench" / "mmbench_test_en_20231003.tsv")


def normalize_mmbench_test_cn(data_root: Path) -> pa.Table:
    return _mmbench_test(Path(data_root) / "mmbench" / "mmbench_test_cn_20231003.tsv")


# --- MMMU --------------------------------------------------------------------------------------------

# The 30 subject configs in the order the original concatenates them (CAT_SHORT2LONG values).
MMMU_SUBJECTS: tuple[str, ...] = (
    "Accounting", "Agriculture", "Architecture_and_Engineering", "Art", "Art_Theory", "Basic_Medical_Science",
    "Biology", "Chemistry", "Clinical_Medicine", "Computer_Science", "Design",
    "Diagnostics_and_Laboratory_Medicine", "Economics", "Electronics", "Energy_and_Power", "Finance",
    "Geography", "History", "Literature", "Manage", "Marketing", "Materials", "Math", "Mechanical_Engineering",
    "Music", "Pharmacy", "Physics", "Psychology", "Public_Health", "Sociology",
)  # fmt: skip
MMMU_QUESTION_TYPES = ("multiple-choice", "open")
MMMU_EXTRA: dict[str, pa.DataType] = {
    "subject": pa.string(),
    "question_type": pa.string(),  # "multiple-choice" or "open"
    "subfield": pa.string(),
    "img_type": pa.string(),
    "topic_difficulty": pa.string(),
    "num_images": pa.int64(),  # image_1..image_7 present; only image_1 is used
}
_MMMU_REQUIRED = ("id", "question", "options", "answer", "question_type", "image_1")


def _mmmu_literal_list(text: Any, src: Path, where: str) -> list[str]:
    """``options`` is a stringified Python list (the original ``eval()``s it); strings only."""
    if not isinstance(text, str):
        raise DataError(src, f"expected a stringified list, got {type(text).__name__}", field=where)
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise DataError(src, f"not a Python list literal ({exc.__class__.__name__}): {text[:80]!r}",
                        field=where) from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(src, f"expected a list of strings, got {text[:80]!r}", field=where)
    return value


def _mmmu_open_gold(answer: str) -> list[str]:
    """Open answers are a string, or a stringified list of accepted strings (e.g. "['24/7', '3.429']")."""
    text = answer.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return [answer]
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return value
    return [answer]


def _mmmu_answer_dict(path: Path) -> dict[str, dict[str, Any]]:
    doc = load_json(path)
    if not isinstance(doc, dict):
        raise DataError(path, f"expected a JSON object keyed by id, got {type(doc).__name__}")
    return doc


def read_mmmu(mmmu_dir: Path, split: str, subjects: Sequence[str] = MMMU_SUBJECTS,
              answer_dict: Path | None = None) -> pa.Table:
    """All subjects' ``<split>-*.parquet`` shards, in the original's subject order.

    ``answers``: the letter for multiple-choice, the accepted strings for open questions, ``[]`` for the
    test split (scored on EvalAI). ``options`` holds the stripped choices as the prompt shows them
    (letters A..Z, as the original). When ``answer_dict`` (the ``answer_dict_val.json`` the original
    scores the validation split against) exists, every row must agree with it.
    """
    mmmu_dir = Path(mmmu_dir)
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    seen: dict[str, int] = {}
    multi_image = 0
    gold_dict = _mmmu_answer_dict(answer_dict) if answer_dict is not None and answer_dict.is_file() else None
    for subject in subjects:
        sdir = mmmu_dir / subject
        shards = sorted(sdir.glob(f"{split}-*.parquet"))
        if not shards:
            raise DataError(sdir, f"no {split}-*.parquet shard for subject {subject!r} (MMMU needs all "
                                  f"{len(MMMU_SUBJECTS)} subjects)")
        for shard in shards:
            try:
                table = pq.read_table(shard)
            except (pa.ArrowInvalid, OSError) as exc:
                raise DataError(shard, f"unreadable parquet ({exc})") from None
            missing = [c for c in _MMMU_REQUIRED if c not in table.column_names]
            if missing:
                raise DataError(shard, f"missing columns {missing} (has {table.column_names})")
            image_cols = [c for c in table.column_names if re.fullmatch(r"image_\d+", c)]
            for k, rec in enumerate(table.to_pylist()):
                where = f"[{k}]"
                rid = rec["id"]
                if not isinstance(rid, str) or not rid:
                    raise DataError(shard, f"expected a non-empty string id, got {rid!r}", field=f"{where}.id")
                if rid in seen:
                    raise DataError(shard, f"duplicate id {rid!r}", field=f"{where}.id")
                seen[rid] = k
                qtype = rec["question_type"]
                if qtype not in MMMU_QUESTION_TYPES:
                    raise DataError(shard, f"{rid}: question_type {qtype!r} not in {MMMU_QUESTION_TYPES} (the "
                                           "original picks the prompt by it)", field=f"{where}.question_type")
                question = rec["question"]
                if not isinstance(question, str):
                    raise DataError(shard, f"{rid}: question is not a string", field=f"{where}.question")
                choices = _mmmu_literal_list(rec["options"], shard, f"{where}.options")
                letters = _letters(len(choices), shard, None, f"{where}.options", len(LETTERS))
                options = {letters[i]: c.strip() for i, c in enumerate(choices)}
                image = rec["image_1"]
                if not isinstance(image, dict) or not image.get("bytes"):
                    raise DataError(shard, f"{rid}: no image_1 (V1.2 feeds image_1 only)", field=f"{where}.image_1")
                _check_image_bytes(image["bytes"], shard, f"{where}.image_1")
                n_images = sum(1 for c in image_cols if rec.get(c))
                multi_image += n_images > 1
                answer = rec["answer"]
                if split == "test":
                    answers: list[str] = []
                elif not isinstance(answer, str) or not answer.strip():
                    raise DataError(shard, f"{rid}: empty answer", field=f"{where}.answer")
                elif qtype == "multiple-choice":
                    answers = [answer]
                    if answer not in options:
                        notes.append(f"{rid}: gold {answer!r} is not one of the option letters {sorted(options)}")
                else:
                    answers = _mmmu_open_gold(answer)
                if gold_dict is not None:
                    _mmmu_cross_check(gold_dict, answer_dict, rid, qtype, answers)
                rows.append(_row(
                    rid, None, question, answers,
                    image_bytes=image["bytes"],
                    options=options,
                    subject=subject,
                    question_type=qtype,
                    subfield=rec.get("subfield"),
                    img_type=rec.get("img_type"),
                    topic_difficulty=rec.get("topic_difficulty"),
                    num_images=n_images,
                ))
    if not rows:
        raise DataError(mmmu_dir, f"no {split} records")
    if multi_image:
        notes.append(f"{multi_image} questions have more than one image; only image_1 is used, as in V1.2")
    if split == "test":
        notes.append("test split: no gold answers (scored on EvalAI, challenge 2179)")
    elif answer_dict is not None:
        notes.append(f"gold answers cross-checked against {answer_dict}" if gold_dict is not None
                     else f"{answer_dict} not found; gold answers from the parquet only")
    return _with_notes(table_from_rows(rows, MMMU_EXTRA), notes)


def _mmmu_cross_check(gold: dict[str, Any], path: Path, rid: str, qtype: str, answers: list[str]) -> None:
    entry = gold.get(rid)
    if not isinstance(entry, dict) or "ground_truth" not in entry:
        raise DataError(path, f"no ground_truth for {rid} (the original scorer would fail on it)", field=rid)
    truth = entry["ground_truth"]
    truth_list = truth if isinstance(truth, list) else [truth]
    want_type = "multiple-choice" if qtype == "multiple-choice" else "short-answer"
    if entry.get("question_type") != want_type or truth_list != answers:
        raise DataError(path, f"{rid}: {entry!r} disagrees with the parquet ({qtype}, {answers!r})", field=rid)


def _mmmu(split: str, hf_split: str) -> Callable[[Path], pa.Table]:
    def normalize_mmmu(data_root: Path) -> pa.Table:
        d = Path(data_root) / "mmmu"
        answer_dict = d / "answer_dict_val.json" if hf_split == "validation" else None
        # mmmu/<Subject>/ (seed README) or mmmu/MMMU/<Subject>/ (a clone of the HF dataset repo)
        shards = d / "MMMU" if (d / "MMMU").is_dir() and not (d / MMMU_SUBJECTS[0]).is_dir() else d
        return read_mmmu(shards, hf_split, answer_dict=answer_dict)

    normalize_mmmu.__name__ = f"normalize_{split.replace('-', '_')}"
    return normalize_mmmu


# --- ScienceQA (Qwen-VL converted test-img jsonl) --------------------------------------------------

SCIENCEQA_EXTRA: dict[str, pa.DataType] = {"answer_index": pa.int64()}


def read_scienceqa(jsonl: Path, data_root: Path, image_bases: Sequence[str] = ("scienceqa",)) -> pa.Table:
    """{image, hint, question, choices, answer}: choices lettered A-E (the original's list), gold = letter.

    An empty hint counts as none (``hint if hint else None``). Ids: ``question_id`` when a record has
    one, else ``<file stem>:<0-based record index>``.
    """
    jsonl = Path(jsonl)
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    cache: dict[str, bool] = {}
    for k, (line, rec) in enumerate(iter_jsonl(jsonl)):
        rid = str(rec["question_id"]) if "question_id" in rec else f"{jsonl.stem}:{k}"
        _check_unique(seen, rid, jsonl, line, "question_id")
        question = _nonempty_str(rec, "question", jsonl, line)
        hint = require(rec, "hint", jsonl, line, (str, type(None)))
        choices = require(rec, "choices", jsonl, line, list)
        if not choices or not all(isinstance(c, str) for c in choices):
            raise DataError(jsonl, "expected a non-empty list of strings", line=line, field="choices")
        letters = _letters(len(choices), jsonl, line, "choices", 5)
        answer = require(rec, "answer", jsonl, line, int)
        if isinstance(answer, bool) or not 0 <= answer < len(choices):
            raise DataError(jsonl, f"answer index {answer!r} outside 0..{len(choices) - 1}", line=line, field="answer")
        image = _record_image(rec, jsonl, line, data_root, image_bases, cache)
        rows.append(_row(rid, image, question, [letters[answer]], hint=hint if hint else None,
                         options={letters[i]: c for i, c in enumerate(choices)}, answer_index=answer))
    if not rows:
        raise DataError(jsonl, "no records")
    return table_from_rows(rows, SCIENCEQA_EXTRA)


def normalize_scienceqa(data_root: Path) -> pa.Table:
    return read_scienceqa(Path(data_root) / "scienceqa" / "scienceqa_test_img.jsonl", Path(data_root))


# --- Tiny LVLM-eHub ----------------------------------------------------------------------------------

TINY_LVLM_CATEGORIES: tuple[str, ...] = (
    "Visual_Reasoning", "Visual_Perception", "Visual_Knowledge_Acquisition", "Visual_Commonsense",
    "Object_Hallucination",
)  # fmt: skip
TINY_LVLM_EXTRA: dict[str, pa.DataType] = {"category": pa.string()}


def read_tiny_lvlm(root: Path, data_root: Path) -> pa.Table:
    """Every ``<root>/<dir>/dataset.json`` (the original lists all folders that have one).

    The category is the parent folder of ``<dir>/<image_path>``, which ``calculate_score.py`` asserts
    is one of the 5 categories; ids are ``<dir>:<0-based record index>``. ``gt_answers`` may be a
    string or a list; both become a list (scored the same way).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "folder not found")
    dirs = sorted(p for p in root.iterdir() if (p / "dataset.json").is_file())
    if not dirs:
        raise DataError(root, "no <category>/dataset.json")
    rel_root = os.path.relpath(root, data_root).replace(os.sep, "/")
    rows: list[dict[str, Any]] = []
    cache: dict[str, bool] = {}
    for d in dirs:
        path = d / "dataset.json"
        for k, where, item in _objects(path, _load_json_list(path)):
            image = item.get("image_path")
            if not isinstance(image, str) or not image:
                raise DataError(path, f"expected a non-empty string, got {image!r}", field=f"{where}.image_path")
            category = f"{d.name}/{image}".split("/")[-2]
            if category not in TINY_LVLM_CATEGORIES:
                raise DataError(path, f"the image's parent folder {category!r} is not one of "
                                      f"{TINY_LVLM_CATEGORIES} (calculate_score.py asserts it)",
                                field=f"{where}.image_path")
            question = item.get("question")
            if not isinstance(question, str) or not question.strip():
                raise DataError(path, f"expected a non-empty string, got {question!r}", field=f"{where}.question")
            gts = item.get("gt_answers")
            gts = [gts] if isinstance(gts, str) else gts
            if not isinstance(gts, list) or not gts or not all(isinstance(g, str) for g in gts):
                raise DataError(path, f"expected a string or a non-empty list of strings, got "
                                      f"{item.get('gt_answers')!r}", field=f"{where}.gt_answers")
            rel = resolve_image(image, data_root, (f"{rel_root}/{d.name}",), path, None, field=f"{where}.image_path",
                                cache=cache)
            rows.append(_row(f"{d.name}:{k}", rel, question, gts, category=category))
    notes = []
    missing = [c for c in TINY_LVLM_CATEGORIES if c not in {r["category"] for r in rows}]
    if missing:
        notes.append(f"no questions for categories {missing}: the score sums fewer than 5 categories")
    return _with_notes(table_from_rows(rows, TINY_LVLM_EXTRA), notes)


def normalize_tiny_lvlm(data_root: Path) -> pa.Table:
    return read_tiny_lvlm(Path(data_root) / "tiny_lvlm" / "updated_datasets", Path(data_root))


# --- LLaVA-Bench (in the wild) -------------------------------------------------------------------

LLAVA_BENCH_CATEGORIES = ("conv", "detail", "complex")
LLAVA_BENCH_EXTRA: dict[str, pa.DataType] = {
    "category": pa.string(),
    "caption": pa.string(),  # context.jsonl caption(s) of the image, joined by "\n" as the review does
    "reference_answer_id": pa.string(),
}


def read_llava_bench(d: Path, data_root: Path) -> pa.Table:
    """Questions + image captions + the GPT-4 reference answers (``answers`` = [reference text]).

    The review script zips questions, reference answers and model answers by line order; here the
    k-th reference line must carry the k-th question's id, so a reordered file fails here instead of
    being judged against the wrong reference.
    """
    d = Path(d)
    qfile, cfile, afile = d / "questions.jsonl", d / "context.jsonl", d / "answers_gpt4.jsonl"
    captions: dict[str, str] = {}
    for line, rec in iter_jsonl(cfile):
        image = require(rec, "image", cfile, line, str)
        cap = require(rec, "caption", cfile, line, (str, list))
        captions[image] = "\n".join(cap) if isinstance(cap, list) else cap
    refs = list(iter_jsonl(afile))
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    cache: dict[str, bool] = {}
    rel = os.path.relpath(d, data_root).replace(os.sep, "/")
    for k, (line, rec) in enumerate(iter_jsonl(qfile)):
        qid, rid = _unique_qid(rec, qfile, line, seen)
        text = _nonempty_str(rec, "text", qfile, line)
        category = require(rec, "category", qfile, line, str)
        if category not in LLAVA_BENCH_CATEGORIES:
            raise DataError(qfile, f"category {category!r} has no review rule (expected one of "
                                   f"{LLAVA_BENCH_CATEGORIES})", line=line, field="category")
        image_raw = require(rec, "image", qfile, line, str)
        image = resolve_image(image_raw, data_root, (f"{rel}/images",), qfile, line, cache=cache)
        if image_raw not in captions:
            raise DataError(cfile, f"no caption for image {image_raw!r} ({qfile}:{line})")
        if k >= len(refs):
            raise DataError(afile, f"has {len(refs)} answers but {qfile}:{line} is question {k + 1}")
        ref_line, ref = refs[k]
        ref_qid = _int_id(require(ref, "question_id", afile, ref_line), afile, ref_line, "question_id")
        if ref_qid != qid:
            raise DataError(afile, f"line {ref_line} answers question {ref_qid}, but {qfile}:{line} is question "
                                   f"{qid} (the review pairs them by order)", line=ref_line, field="question_id")
        ref_text = require(ref, "text", afile, ref_line, str)
        rows.append(_row(rid, image, text, [ref_text], category=category, caption=captions[image_raw],
                         reference_answer_id=str(ref.get("answer_id", ref_qid))))
    if not rows:
        raise DataError(qfile, "no records")
    notes = []
    if len(refs) > len(rows):
        notes.append(f"{afile}: {len(refs) - len(rows)} answers after the last question are unused")
    return _with_notes(table_from_rows(rows, LLAVA_BENCH_EXTRA), notes)


def normalize_llava_bench(data_root: Path) -> pa.Table:
    return read_llava_bench(Path(data_root) / "llava-bench-in-the-wild", Path(data_root))


# --- MM-Vet ----------------------------------------------------------------------------------------

MMVET_EXTRA: dict[str, pa.DataType] = {
    "mmvet_key": pa.string(),  # "v1_<question_id>", the key of the upload file and of mm-vet.json
    "capability": pa.list_(pa.string()),
    "category": pa.string(),
}


def read_mmvet(jsonl: Path, gold_json: Path, data_root: Path, image_bases: Sequence[str] = ("mm-vet/images",)
               ) -> pa.Table:
    """LLaVA's ``llava-mm-vet.jsonl`` joined with the official ``mm-vet.json`` on ``v1_<question_id>``.

    ``answers`` = [the official answer, with its ``<AND>``/``<OR>`` syntax], for the GPT-4 grader. The
    two files must agree on question text and image name.
    """
    jsonl, gold_json = Path(jsonl), Path(gold_json)
    gold = load_json(gold_json)
    if not isinstance(gold, dict):
        raise DataError(gold_json, f"expected an object keyed by v1_<id>, got {type(gold).__name__}")
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    cache: dict[str, bool] = {}
    for line, rec in iter_jsonl(jsonl):
        qid, rid = _unique_qid(rec, jsonl, line, seen)
        text = _nonempty_str(rec, "text", jsonl, line)
        image_raw = require(rec, "image", jsonl, line, str)
        key = f"v1_{qid}"
        entry = gold.get(key)
        if not isinstance(entry, dict):
            raise DataError(gold_json, f"no entry {key!r} for {jsonl}:{line}", field=key)
        for field in ("question", "answer", "imagename"):
            if not isinstance(entry.get(field), str):
                raise DataError(gold_json, "missing or not a string", field=f"{key}.{field}")
        caps = entry.get("capability")
        if not isinstance(caps, list) or not caps or not all(isinstance(c, str) for c in caps):
            raise DataError(gold_json, "expected a non-empty list of strings", field=f"{key}.capability")
        if entry["question"] != text or entry["imagename"] != image_raw:
            raise DataError(jsonl, f"question/image differ from {gold_json} {key} ({entry['question']!r}, "
                                   f"{entry['imagename']!r})", line=line)
        image = resolve_image(image_raw, data_root, image_bases, jsonl, line, cache=cache)
        rows.append(_row(rid, image, text, [entry["answer"]], mmvet_key=key, capability=caps,
                         category=rec.get("category")))
    if not rows:
        raise DataError(jsonl, "no records")
    notes = []
    unused = len(gold) - len(rows)
    if unused:
        notes.append(f"{unused} entries of {gold_json} have no question in {jsonl}")
    return _with_notes(table_from_rows(rows, MMVET_EXTRA), notes)


def normalize_mmvet(data_root: Path) -> pa.Table:
    d = Path(data_root) / "mm-vet"
    return read_mmvet(d / "llava-mm-vet.jsonl", d / "mm-vet.json", Path(data_root))


# --- MMVP --------------------------------------------------------------------------------------------

MMVP_EXTRA: dict[str, pa.DataType] = {"mmvp_index": pa.int64(), "pair_index": pa.int64()}
_MMVP_COLUMNS = ("lndex", "Question", "Options", "Correct Answer")


def _mmvp_options(text: str) -> list[str]:
    """'(a) x (b) y' -> ['x', 'y'], exactly as the original splits it (on '(b)', then strips)."""
    parts = text.split("(b)")
    parts[0] = parts[0].replace("(a)", "").strip()
    if len(parts) > 1:
        parts[1] = parts[1].replace("(b)", "").strip()
    return [p.strip() for p in parts]


def read_mmvp(csv_path: Path, data_root: Path, image_dir: str = "MMVP/MMVP Images") -> pa.Table:
    """``Questions.csv`` rows in file order; rows 2k and 2k+1 form pair k (the scorer pairs by position).

    ``line`` in errors is the CSV line where the record ends. The gold ``(a)``/``(b)`` becomes A/B as
    in the original, and must name one of the parsed options.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(csv_path, "file not found")
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    cache: dict[str, bool] = {}
    with csv_path.open("r", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _MMVP_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(csv_path, f"missing columns {missing} (header {reader.fieldnames})", line=1)
        for k, rec in enumerate(reader):
            line = reader.line_num
            if None in rec or any(rec[c] is None for c in _MMVP_COLUMNS):
                raise DataError(csv_path, "wrong number of fields", line=line)
            idx = _int_id(rec["lndex"], csv_path, line, "lndex")
            rid = str(idx)
            _check_unique(seen, rid, csv_path, line, "lndex")
            if not rec["Question"].strip():
                raise DataError(csv_path, "empty question", line=line, field="Question")
            choices = _mmvp_options(rec["Options"])
            letters = _letters(len(choices), csv_path, line, "Options", 4)
            if len(choices) < 2 or not all(choices):
                raise DataError(csv_path, f"cannot parse '(a) x (b) y' options from {rec['Options']!r}",
                                line=line, field="Options")
            options = {letters[i]: c for i, c in enumerate(choices)}
            gold = rec["Correct Answer"]
            for src, dst in (("(a)", "A"), ("(b)", "B"), ("(c)", "C"), ("(d)", "D")):
                gold = gold.replace(src, dst)
            if gold not in options:
                raise DataError(csv_path, f"answer {rec['Correct Answer']!r} is not one of the options "
                                          f"{sorted(options)}", line=line, field="Correct Answer")
            image = resolve_image(f"{rec['lndex']}.jpg", data_root, (image_dir,), csv_path, line, field="lndex",
                                  cache=cache)
            rows.append(_row(rid, image, rec["Question"], [gold], options=options, mmvp_index=idx, pair_index=k // 2))
    if not rows:
        raise DataError(csv_path, "no records")
    notes = []
    if len(rows) % 2:
        notes.append(f"{len(rows)} questions: the last one has no pair partner and is not scored")
    return _with_notes(table_from_rows(rows, MMVP_EXTRA), notes)


def normalize_mmvp(data_root: Path) -> pa.Table:
    return read_mmvp(Path(data_root) / "MMVP" / "Questions.csv", Path(data_root))


# --- MathVista ---------------------------------------------------------------------------------------

MATHVISTA_QUESTION_TYPES = ("multi_choice", "free_form")
MATHVISTA_ANSWER_TYPES = ("text", "integer", "float", "list")
MATHVISTA_META_KEYS = ("language", "source", "category", "task", "context", "grade")
MATHVISTA_EXTRA: dict[str, pa.DataType] = {
    "question_type": pa.string(),
    "answer_type": pa.string(),
    "precision": pa.float64(),  # decimals for float answers (null otherwise)
    "unit": pa.string(),
    "problem": pa.string(),  # the bare question; ``question`` holds the ``query`` that V1.2 sends
    **{k: pa.string() for k in MATHVISTA_META_KEYS},
    "skills": pa.list_(pa.string()),
}


def read_mathvista(problems: Path, data_root: Path, queries: Path | None = None, has_gold: bool = True,
                   image_base: str = "MathVista") -> pa.Table:
    """MathVista problems ({pid: problem}); ``question`` = the ``query`` string sent as-is to chat().

    The query comes from the problem (HF records carry it) or from ``queries`` ({pid: query}, the
    MathVista repo's ``query.json``). ``options`` = {A: choice 0, ...} for multi-choice problems; the
    scorer maps letters/closest text back to these choices. ``answers`` = [answer] (a string), or [] for
    the test split.
    """
    problems = Path(problems)
    doc = load_json(problems)
    if not isinstance(doc, dict):
        raise DataError(problems, f"expected an object keyed by pid, got {type(doc).__name__}")
    query_map: dict[str, Any] | None = None
    if queries is not None and queries.is_file():
        query_map = load_json(queries)
        if not isinstance(query_map, dict):
            raise DataError(queries, "expected an object {pid: query}")
    rows: list[dict[str, Any]] = []
    cache: dict[str, bool] = {}
    with_answer = 0
    for key, rec in doc.items():
        if not isinstance(rec, dict):
            raise DataError(problems, "expected an object", field=key)
        pid = str(rec.get("pid", key))
        if pid != key:
            raise DataError(problems, f"pid {pid!r} differs from its key", field=f"{key}.pid")
        query = rec.get("query")
        if query is None and query_map is not None:
            query = query_map.get(key)
        if not isinstance(query, str) or not query.strip():
            where = f"{queries} has none" if query_map is not None else f"{queries or 'no query.json'} given"
            raise DataError(problems, f"problem {key} has no 'query' ({where}); the query is what V1.2 sends",
                            field=f"{key}.query")
        qtype, atype = rec.get("question_type"), rec.get("answer_type")
        if qtype not in MATHVISTA_QUESTION_TYPES:
            raise DataError(problems, f"expected one of {MATHVISTA_QUESTION_TYPES}, got {qtype!r}",
                            field=f"{key}.question_type")
        if atype not in MATHVISTA_ANSWER_TYPES:
            raise DataError(problems, f"expected one of {MATHVISTA_ANSWER_TYPES}, got {atype!r}",
                            field=f"{key}.answer_type")
        choices = rec.get("choices")
        if qtype == "multi_choice":
            if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
                raise DataError(problems, f"multi_choice needs a list of string choices, got {choices!r}",
                                field=f"{key}.choices")
            options = {LETTERS[i]: c for i, c in enumerate(choices)}
        elif choices:
            raise DataError(problems, f"free_form problem with choices {choices!r}", field=f"{key}.choices")
        else:
            options = {}
        precision = rec.get("precision")
        if precision is not None and (isinstance(precision, bool) or not isinstance(precision, (int, float))):
            raise DataError(problems, f"expected a number or null, got {precision!r}", field=f"{key}.precision")
        answer = rec.get("answer")
        if has_gold:
            if not isinstance(answer, str):
                raise DataError(problems, f"expected a string answer, got {answer!r}", field=f"{key}.answer")
            answers = [answer]
        else:
            answers = []
            with_answer += isinstance(answer, str) and bool(answer)
        meta = rec.get("metadata") or {}
        if not isinstance(meta, dict):
            raise DataError(problems, "expected an object", field=f"{key}.metadata")
        skills = meta.get("skills") or []
        image = resolve_image(rec.get("image"), data_root, (image_base,), problems, None, field=f"{key}.image",
                              cache=cache)
        rows.append(_row(
            key, image, query, answers,
            options=options,
            question_type=qtype,
            answer_type=atype,
            precision=None if precision is None else float(precision),
            unit=rec.get("unit"),
            problem=rec.get("question"),
            **{k: (None if meta.get(k) is None else str(meta.get(k))) for k in MATHVISTA_META_KEYS},
            skills=[str(s) for s in skills],
        ))
    if not rows:
        raise DataError(problems, "no records")
    notes = []
    if not has_gold:
        notes.append("test split: no gold answers (MathVista test is scored by its evaluation server)"
                     + (f"; {with_answer} answers in the file ignored" if with_answer else ""))
    return _with_notes(table_from_rows(rows, MATHVISTA_EXTRA), notes)


def normalize_mathvista_testmini(data_root: Path) -> pa.Table:
    d = Path(data_root) / "MathVista"
    return read_mathvista(d / "testmini.json", Path(data_root), queries=d / "query.json", has_gold=True)


def normalize_mathvista_test(data_root: Path) -> pa.Table:
    d = Path(data_root) / "MathVista"
    return read_mathvista(d / "test.json", Path(data_root), queries=d / "query.json", has_gold=False)


# --- SEED-Bench-1 ------------------------------------------------------------------------------------

SEED_EXTRA: dict[str, pa.DataType] = {
    "question_type_id": pa.int64(),
    "question_type": pa.string(),
    "data_type": pa.string(),  # "image" or "video" (video questions use their middle frame)
}


def _seed_annotation(path: Path) -> tuple[dict[str, dict[str, Any]], dict[int, str]]:
    doc = _load_listing(path, "questions", "an object with a 'questions' list")
    qtypes = doc.get("question_type")
    if not isinstance(qtypes, dict):
        raise DataError(path, "expected an object {name: id}", field="question_type")
    names = {}
    for name, tid in qtypes.items():
        names[_int_id(tid, path, None, f"question_type.{name}")] = name
    by_id: dict[str, dict[str, Any]] = {}
    for k, q in enumerate(doc["questions"]):
        where = f"questions[{k}]"
        if not isinstance(q, dict) or "question_id" not in q:
            raise DataError(path, "expected an object with a question_id", field=where)
        qid = str(q["question_id"])
        if qid in by_id:
            raise DataError(path, f"duplicate question_id {qid!r}", field=f"{where}.question_id")
        tid = _int_id(q.get("question_type_id"), path, None, f"{where}.question_type_id")
        if tid not in names:
            raise DataError(path, f"question_type_id {tid} is not in 'question_type'", field=f"{where}.question_type_id")
        if q.get("answer") not in ("A", "B", "C", "D"):
            raise DataError(path, f"expected an answer letter A-D, got {q.get('answer')!r}", field=f"{where}.answer")
        by_id[qid] = q
    return by_id, names


def read_seed(jsonl: Path, annotation: Path, data_root: Path, image_bases: Sequence[str] = ("SEED",)) -> pa.Table:
    """LLaVA-format ``seed.jsonl`` questions; gold and type from ``SEED-Bench.json`` (as calculation.py).

    ``question`` = ``text`` (question + options + instruction, sent as-is). ``options`` come from the
    annotation's choice_a..choice_d. Every jsonl question must be annotated; a jsonl ``answer`` that
    differs from the annotation is noted (the annotation is what is scored).
    """
    jsonl, annotation = Path(jsonl), Path(annotation)
    anno, names = _seed_annotation(annotation)
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    cache: dict[str, bool] = {}
    mismatched: list[str] = []
    for line, rec in iter_jsonl(jsonl):
        qid = require(rec, "question_id", jsonl, line, (str, int))
        rid = str(qid)
        _check_unique(seen, rid, jsonl, line, "question_id")
        text = _nonempty_str(rec, "text", jsonl, line)
        _require_listed(rid, anno, annotation, jsonl, line)
        q = anno[rid]
        if "answer" in rec and rec["answer"] != q["answer"]:
            mismatched.append(rid)
        image = _record_image(rec, jsonl, line, data_root, image_bases, cache)
        options = {L: q[f"choice_{L.lower()}"] for L in "ABCD" if isinstance(q.get(f"choice_{L.lower()}"), str)}
        tid = int(q["question_type_id"])
        rows.append(_row(rid, image, text, [q["answer"]], options=options, question_type_id=tid,
                         question_type=names[tid], data_type=q.get("data_type")))
    if not rows:
        raise DataError(jsonl, "no records")
    notes = []
    if mismatched:
        notes.append(f"{len(mismatched)} jsonl answers differ from {annotation.name} (scored against the "
                     f"annotation, as calculation.py): {mismatched[:5]}")
    present = {r["question_type_id"] for r in rows}
    absent = [f"{t} {names[t]}" for t in sorted(names) if t not in present]
    if absent:
        notes.append(f"no questions of types {absent} (the original calculation.py divides by zero there)")
    return _with_notes(table_from_rows(rows, SEED_EXTRA), notes)


def normalize_seed(data_root: Path) -> pa.Table:
    d = Path(data_root) / "SEED"
    return read_seed(d / "seed.jsonl", d / "SEED-Bench.json", Path(data_root))


# --- registry ----------------------------------------------------------------------------------------

NORMALIZERS.update({
    "mme": normalize_mme,
    "mmbench-dev-cn": normalize_mmbench_dev_cn,
    "mmbench-test-en": normalize_mmbench_test_en,
    "mmbench-test-cn": normalize_mmbench_test_cn,
    "mmmu-dev": _mmmu("mmmu-dev", "dev"),
    "mmmu-val": _mmmu("mmmu-val", "validation"),
    "mmmu-test": _mmmu("mmmu-test", "test"),
    "scienceqa": normalize_scienceqa,
    "tiny_lvlm": normalize_tiny_lvlm,
    "llava-bench": normalize_llava_bench,
    "mmvet": normalize_mmvet,
    "mmvp": normalize_mmvp,
    "mathvista-testmini": normalize_mathvista_testmini,
    "mathvista-test": normalize_mathvista_test,
    "seed": normalize_seed,
})
_base.NORMALIZERS.update(NORMALIZERS)  # no-op when benchmarks.py already registered this module
