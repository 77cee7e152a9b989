"""Normalizers of the family A splits (captioning, VQA, grounding) against real-format samples.

Real samples come from ``shared/realdata`` (see its PROVENANCE.md). Where the exact file InternVL reads
is not there, a small one is built in tmp in the documented format, from real records where a related
real file exists; each builder's docstring says which. Images are dummy files (never decoded).
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from conftest import REALDATA, needs_realdata, read_jsonl, touch, write_json, write_jsonl

from internvl.data import bench_family_a
from internvl.data.benchmarks import NORMALIZERS, normalize, table_notes
from internvl.errors import DataError
from internvl.eval.metrics import SCORERS
from internvl.eval.prompts import build_question
from internvl.eval.registry import BENCHMARKS, VQA_PROMPT, resolve

FAMILY_A = [
    "caption-flickr30k", "caption-nocaps", "vqa-vqav2-testdev", "vqa-okvqa-val", "vqa-textvqa-val",
    "vqa-vizwiz-val", "vqa-vizwiz-test", "vqa-docvqa-val", "vqa-docvqa-test", "vqa-chartqa-test-human",
    "vqa-chartqa-test-augmented", "vqa-gqa-testdev", "vqa-ocrvqa-val", "vqa-ocrvqa-test", "vqa-ai2d-test",
    "refcoco-val", "refcoco-testA", "refcoco-testB", "refcoco+-val", "refcoco+-testA", "refcoco+-testB",
    "refcocog-val", "refcocog-test",
]  # fmt: skip


def _touch_images(root: Path, records: list[dict], key: str = "image") -> None:
    for r in records:
        touch(root / r[key].removeprefix("data/"))


def _write_official_vqa(
    root: Path, d: Path, names: tuple[str, str, str], jsonl: list[dict], questions: list[dict], annotations: list[dict]
) -> None:
    """The Qwen-format jsonl and the official-format (VQA API) question and annotation files, named
    ``names`` in ``d``; placeholder images for the jsonl records."""
    jsonl_name, questions_name, annotations_name = names
    write_jsonl(d / jsonl_name, jsonl)
    write_json(d / questions_name, {"questions": questions})
    write_json(d / annotations_name, {"annotations": annotations})
    _touch_images(root, jsonl)


# --- registration ---------------------------------------------------------------------------------------


def test_family_a_is_registered_everywhere() -> None:
    assert list(bench_family_a.NORMALIZERS) == FAMILY_A
    assert set(FAMILY_A) <= set(NORMALIZERS)
    for split in FAMILY_A:
        bench = BENCHMARKS[split]
        assert bench.metric in SCORERS and bench.table in ("caption_vqa", "grounding")
        assert all("-" not in a for a in bench.aliases) and bench.aliases
    assert resolve("okvqa_val").name == "vqa-okvqa-val" and resolve("refcoco+_testA").name == "refcoco+-testA"
    assert resolve("textvqa_val_ocr").name == "vqa-textvqa-val"
    assert {b: BENCHMARKS[b].paper_value for b in ("vqa-gqa-testdev", "refcocog-test", "vqa-docvqa-val")} == {
        "vqa-gqa-testdev": 64.0,
        "refcocog-test": 70.0,
        "vqa-docvqa-val": None,
    }


def test_prompts_of_family_a() -> None:
    row = {"question": "the man in red", "hint": None, "options": "{}"}
    assert build_question(row, resolve("refcoco-val")) == (
        "Please provide the bounding box coordinate of the region this sentence describes: <ref>the man in red</ref>"
    )
    assert build_question({"question": "What is this?"}, resolve("vqa-vizwiz-val")) == (
        "What is this? When the provided information is insufficient, respond with 'Unanswerable'. "
        "Answer the question using a single word or phrase."
    )
    ai2d_q = "Which stage is shown?\nA. egg\nB. larva\nAnswer with the option's letter from the given choices directly."
    assert build_question({"question": ai2d_q}, resolve("vqa-ai2d-test")) == ai2d_q
    assert build_question({"question": ""}, resolve("caption-nocaps")) == (
        "Provide a one-sentence caption for the provided image."
    )
    gen = resolve("caption-flickr30k").generation
    assert (gen.max_new_tokens, gen.min_new_tokens) == (30, 8)
    assert resolve("vqa-docvqa-val").generation.max_new_tokens == 100
    assert resolve("vqa-gqa-testdev").generation.max_new_tokens == 10
    assert resolve("refcocog-test").generation.max_new_tokens == 100


# --- Flickr30k (real InternVL-converted file) -------------------------------------------------------------


def build_flickr_root(root: Path) -> dict:
    """The real InternVL-converted ``flickr30k_test_karpathy.json`` slice, verbatim; dummy images."""
    d = root / "flickr30k"
    d.mkdir(parents=True)
    shutil.copy(REALDATA / "flickr30k" / "flickr30k_test_karpathy.json", d)
    doc = json.loads((d / "flickr30k_test_karpathy.json").read_text())
    for im in doc["images"]:
        touch(d / im["file_name"])
    return doc


@needs_realdata
def test_caption_flickr30k_real(tmp_path: Path) -> None:
    doc = build_flickr_root(tmp_path)
    table = normalize("caption-flickr30k", tmp_path)
    df = table.to_pandas()
    assert len(df) == 25 and df["id"].tolist() == [str(im["id"]) for im in doc["images"]]
    assert df["image_id"].tolist() == [im["id"] for im in doc["images"]]
    assert df.loc[0, "image_path"] == "flickr30k/Images/1007129816.jpg"
    assert (df["question"] == "").all() and (df["answers"].map(len) == 5).all()
    # independent source: the raw CSV the json was made from. The conversion split each line at its
    # first comma, so quoted captions that contain a comma are cut (and keep the opening quote).
    lines = (REALDATA / "flickr30k" / "flickr30k_test_karpathy.txt").read_text().splitlines()[1:]
    naive: dict[str, list[str]] = {}
    for line in lines:
        naive.setdefault(line.split(",")[0], []).append(line.split(",")[1])
    proper: dict[str, list[str]] = {}
    with (REALDATA / "flickr30k" / "flickr30k_test_karpathy.txt").open(newline="") as fh:
        for rec in csv.DictReader(fh):
            proper.setdefault(rec["image"], []).append(rec["caption"])
    differs = 0
    for rid, answers in zip(df["id"], df["answers"], strict=True):
        assert list(answers) == naive[f"{rid}.jpg"]
        differs += sum(a != b for a, b in zip(answers, proper[f"{rid}.jpg"], strict=True))
    assert differs == 14
    notes = table_notes(table)
    assert len(notes) == 1 and "14 of 125 references" in notes[0]
    assert df.loc[df["id"] == "1007129816", "answers"].item()[0] == (
        "The man with pierced ears is wearing glasses and an orange hat."
    )


@needs_realdata
def test_caption_flickr30k_missing_image(tmp_path: Path) -> None:
    doc = build_flickr_root(tmp_path)
    (tmp_path / "flickr30k" / doc["images"][3]["file_name"]).unlink()
    with pytest.raises(DataError, match=r"images\[3\]\.file_name") as err:
        normalize("caption-flickr30k", tmp_path)
    assert "flickr30k_test_karpathy.json" in str(err.value) and "image not found" in str(err.value)


# --- NoCaps (built) ---------------------------------------------------------------------------------------


def build_nocaps_root(root: Path) -> dict:
    """``nocaps/nocaps_val_4500_captions.json`` in the official nocaps layout (no real copy exists):
    images with id/file_name/open_images_id/domain, 10 captions per image (made up), plus the
    captions of an image that is not listed (never scored)."""
    images = [
        {"id": i, "file_name": f"{oid}.jpg", "coco_url": f"https://example.invalid/{oid}.jpg", "height": 768,
         "width": 1024, "open_images_id": oid, "date_captured": "2018-11-06 11:04:33", "domain": dom}
        for i, (oid, dom) in enumerate(
            [("0013ea2087020901", "in-domain"), ("00223fb9e4a7e2c4", "near-domain"), ("0046c7e1d22a4a7b", "out-domain")]
        )
    ]  # fmt: skip
    annotations = [
        {"image_id": i, "id": 10 * i + k, "caption": f"caption {k} of image {i}."} for i in (0, 1, 2, 99) for k in range(10)
    ]
    doc = {"licenses": [], "info": {"url": "https://nocaps.org", "version": "0.1"}, "images": images,
           "annotations": annotations}  # fmt: skip
    write_json(root / "nocaps" / "nocaps_val_4500_captions.json", doc)
    for im in images:
        touch(root / "nocaps" / "images" / im["file_name"])
    return doc


def test_caption_nocaps(tmp_path: Path) -> None:
    build_nocaps_root(tmp_path)
    table = normalize("caption-nocaps", tmp_path)
    df = table.to_pandas()
    assert df["id"].tolist() == ["0", "1", "2"]
    assert df["image_path"].tolist()[0] == "nocaps/images/0013ea2087020901.jpg"
    assert df["domain"].tolist() == ["in-domain", "near-domain", "out-domain"]
    assert list(df.loc[2, "answers"]) == [f"caption {k} of image 2." for k in range(10)]
    assert any("1 image ids that are not in 'images'" in n for n in table_notes(table))


def test_caption_nocaps_image_without_reference(tmp_path: Path) -> None:
    doc = build_nocaps_root(tmp_path)
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != 1]
    write_json(tmp_path / "nocaps" / "nocaps_val_4500_captions.json", doc)
    with pytest.raises(DataError, match=r"no reference caption for image id 1") as err:
        normalize("caption-nocaps", tmp_path)
    assert "images[1].id" in str(err.value)


# --- VQA v2 test-dev (built, server-scored) ------------------------------------------------------------------


def build_vqav2_testdev_root(root: Path) -> list[dict]:
    """``vqav2/vqav2_testdev.jsonl`` {image, question, question_id} (Qwen format, no answer); questions
    and ids taken from the real (transcribed) official val question file, images renamed to test2015."""
    doc = json.loads((REALDATA / "vqav2" / "official_format" / "v2_OpenEnded_mscoco_val2014_questions.json").read_text())
    recs = [
        {"image": f"data/vqav2/test2015/COCO_test2015_{q['image_id']:012d}.jpg", "question": q["question"],
         "question_id": q["question_id"]}
        for q in doc["questions"][:12]
    ]  # fmt: skip
    write_jsonl(root / "vqav2" / "vqav2_testdev.jsonl", recs)
    _touch_images(root, recs)
    return recs


@needs_realdata
def test_vqav2_testdev_has_no_gold(tmp_path: Path) -> None:
    recs = build_vqav2_testdev_root(tmp_path)
    table = normalize("vqa-vqav2-testdev", tmp_path)
    df = table.to_pandas()
    assert df["id"].tolist() == [str(r["question_id"]) for r in recs] and df.loc[0, "id"] == "262148000"
    assert (df["answers"].map(len) == 0).all()
    assert df.loc[0, "image_path"] == "vqav2/test2015/COCO_test2015_000000262148.jpg"
    assert any("evaluation server" in n for n in table_notes(table))


@needs_realdata
def test_vqav2_testdev_duplicate_id(tmp_path: Path) -> None:
    recs = build_vqav2_testdev_root(tmp_path)
    recs[5]["question_id"] = recs[1]["question_id"]
    path = write_jsonl(tmp_path / "vqav2" / "vqav2_testdev.jsonl", recs)
    with pytest.raises(DataError, match="duplicate id") as err:
        normalize("vqa-vqav2-testdev", tmp_path)
    assert f"{path}:6:" in str(err.value)


# --- OK-VQA (built from real VQA v2 val records) ---------------------------------------------------------------


def build_okvqa_root(root: Path, n: int = 10) -> list[dict]:
    """``okvqa/okvqa_val.jsonl`` + ``OpenEnded_mscoco_val2014_questions.json`` +
    ``mscoco_val2014_annotations.json`` in the OK-VQA layout (same as VQA v1/v2, but annotations carry
    ``confidence`` and answers carry ``raw_answer`` and there is no ``multiple_choice_answer``). No OK-VQA
    file exists in shared/realdata; the questions and 10 answers are real VQA v2 val records (DAM-QA)."""
    src = read_jsonl(REALDATA / "vqav2" / "third_party_dam-qa" / "dam-qa_vqav2_restval.jsonl")[:n]
    d = root / "okvqa"
    jsonl, questions, annotations = [], [], []
    for r in src:
        image_id = int(r["image"].rsplit("_", 1)[1].split(".")[0])
        jsonl.append({"image": f"data/coco/val2014/{r['image']}", "question": r["question"],
                      "question_id": r["question_id"], "answer": r["answer"][0]["answer"]})  # fmt: skip
        questions.append({"image_id": image_id, "question": r["question"], "question_id": r["question_id"]})
        answers = [{**a, "raw_answer": a["answer"]} for a in r["answer"]]
        annotations.append({"image_id": image_id, "answer_type": "other", "question_type": "other",
                            "question_id": r["question_id"], "answers": answers, "confidence": 3})  # fmt: skip
    names = ("okvqa_val.jsonl", "OpenEnded_mscoco_val2014_questions.json", "mscoco_val2014_annotations.json")
    _write_official_vqa(root, d, names, jsonl, questions, annotations)
    return src


@needs_realdata
def test_okvqa_val(tmp_path: Path) -> None:
    src = build_okvqa_root(tmp_path)
    table = normalize("vqa-okvqa-val", tmp_path)
    df = table.to_pandas()
    assert df["id"].tolist() == [str(r["question_id"]) for r in src]
    assert [list(a) for a in df["answers"]] == [[a["answer"] for a in r["answer"]] for r in src]
    assert df["multiple_choice_answer"].isna().all() and (df["answer_type"] == "other").all()
    assert df.loc[0, "image_path"] == "coco/val2014/COCO_val2014_000000452060.jpg"
    assert df.loc[0, "image_id"] == "452060"
    meta0 = [json.loads(m) for m in df.loc[0, "answer_meta"]]
    assert meta0[0] == {"answer_confidence": "yes", "answer_id": 1, "raw_answer": "racket"}
    assert table_notes(table) == []


@needs_realdata
def test_okvqa_annotation_without_question_type(tmp_path: Path) -> None:
    build_okvqa_root(tmp_path)
    path = tmp_path / "okvqa" / "mscoco_val2014_annotations.json"
    doc = json.loads(path.read_text())
    del doc["annotations"][4]["question_type"]
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match="question_type") as err:
        normalize("vqa-okvqa-val", tmp_path)
    assert str(path) in str(err.value)


@needs_realdata
def test_okvqa_question_not_annotated(tmp_path: Path) -> None:
    src = build_okvqa_root(tmp_path)
    path = tmp_path / "okvqa" / "mscoco_val2014_annotations.json"
    doc = json.loads(path.read_text())
    doc["annotations"] = doc["annotations"][1:]
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError) as err:
        normalize("vqa-okvqa-val", tmp_path)
    assert "okvqa_val.jsonl:1:" in str(err.value) and str(src[0]["question_id"]) in str(err.value)


# --- TextVQA, dataset key textvqa_val_ocr (built from the real LLaVA file + real answers) ------------------------


def build_textvqa_root(root: Path, keep_instruction: bool = False) -> list[dict]:
    """``textvqa/textvqa_val_llava.jsonl`` (Qwen format) made from the real LLaVA
    ``llava_textvqa_val_v051_ocr.jsonl`` lines: question = the LLaVA text (question + "Reference OCR
    token" line; the trailing instruction line removed unless ``keep_instruction``), with the numeric
    TextVQA question ids and 10 answers of the same questions from the real DAM-QA val records (same
    40 questions, same order). Official-format questions/annotations are built from those."""
    llava = read_jsonl(REALDATA / "textvqa" / "llava_format" / "llava_textvqa_val_v051_ocr.jsonl")
    dam = read_jsonl(REALDATA / "textvqa" / "third_party_dam-qa" / "dam-qa_textvqa_val_updated.jsonl")
    d = root / "textvqa"
    jsonl, questions, annotations = [], [], []
    for lv, dm in zip(llava, dam, strict=True):
        text = lv["text"] if keep_instruction else lv["text"].removesuffix("\n" + VQA_PROMPT)
        jsonl.append({"question_id": dm["question_id"], "image": f"data/textvqa/train_images/{lv['image']}",
                      "question": text, "answer": dm["answer"][0]["answer"]})  # fmt: skip
        image_id = lv["image"].removesuffix(".jpg")
        questions.append({"image_id": image_id, "question": dm["question"], "question_id": dm["question_id"]})
        annotations.append({"question_type": "what", "answer_type": "other", "image_id": image_id,
                            "question_id": dm["question_id"], "answers": dm["answer"]})  # fmt: skip
    names = ("textvqa_val_llava.jsonl", "textvqa_val_questions.json", "textvqa_val_annotations.json")
    _write_official_vqa(root, d, names, jsonl, questions, annotations)
    return dam


@needs_realdata
def test_textvqa_val_ocr_variant(tmp_path: Path) -> None:
    dam = build_textvqa_root(tmp_path)
    table = normalize("vqa-textvqa-val", tmp_path)
    df = table.to_pandas()
    assert len(df) == 40 and df.loc[0, "id"] == "34602"
    assert df.loc[0, "question"] == (
        "What is the brand of this camera?\nReference OCR token: DAKOTA, DIGITAL, Single-Use, Camera, Pire, digitat"
    )
    assert df.loc[0, "image_id"] == "003a8ae2ef43b901"
    assert df.loc[0, "image_path"] == "textvqa/train_images/003a8ae2ef43b901.jpg"
    assert [list(a) for a in df["answers"]] == [[a["answer"] for a in r["answer"]] for r in dam]
    assert list(df.loc[0, "answers"]).count("dakota") == 5
    notes = table_notes(table)
    assert notes == [
        "textvqa_val_llava.jsonl (key textvqa_val_ocr, the LLaVA OCR variant): 40 of 40 questions embed "
        "'Reference OCR token: ...'"
    ]
    assert "textvqa_val_llava.jsonl" in resolve("vqa-textvqa-val").notes[0]
    # the LLaVA file keys questions by image id: two questions of one image share it
    llava = read_jsonl(REALDATA / "textvqa" / "llava_format" / "llava_textvqa_val_v051_ocr.jsonl")
    assert Counter(r["question_id"] for r in llava)["831bcec304a17054"] == 2


@needs_realdata
def test_textvqa_instruction_already_in_question_is_noted(tmp_path: Path) -> None:
    build_textvqa_root(tmp_path, keep_instruction=True)
    table = normalize("vqa-textvqa-val", tmp_path)
    assert any(n.startswith("40 questions already end with") for n in table_notes(table))
    row = table.to_pandas().iloc[0].to_dict()
    assert build_question(row, resolve("vqa-textvqa-val")).endswith(f"{VQA_PROMPT}\n{VQA_PROMPT}".replace("\n", " "))


# --- VizWiz val (built) and test (from the real LLaVA test file) -----------------------------------------------


def build_vizwiz_val_root(root: Path) -> list[dict]:
    """``vizwiz/vizwiz_val.jsonl`` + official-format ``vizwiz_val_{questions,annotations}.json``. No val
    file exists in shared/realdata: questions are real VizWiz questions (LLaVA test file, first line),
    question ids are image paths (as VizWiz test ids are), answers are made up in the VizWiz style
    ``{answer, answer_confidence}`` without an ``answer_id``."""
    llava = read_jsonl(REALDATA / "vizwiz" / "llava_format" / "llava_test.jsonl")[:4]
    answer_sets = [
        ["unanswerable"] * 8 + ["blue"] * 2,
        ["soup"] * 6 + ["can of soup"] * 4,
        ["no"] * 10,
        ["unanswerable"] * 5 + ["white"] * 5,
    ]
    d = root / "vizwiz"
    jsonl, questions, annotations = [], [], []
    for i, (lv, answers) in enumerate(zip(llava, answer_sets, strict=True)):
        qid = f"data/vizwiz/val/VizWiz_val_{i:08d}.jpg"
        question = lv["text"].split("\n")[0]
        jsonl.append({"image": qid, "question": question, "question_id": qid, "answer": answers[0]})
        questions.append({"image_id": qid, "question": question, "question_id": qid})
        annotations.append({"question_type": "other", "answer_type": "yes/no" if answers[0] == "no" else "other",
                            "image_id": qid, "question_id": qid,
                            "answers": [{"answer": a, "answer_confidence": "yes"} for a in answers]})  # fmt: skip
    names = ("vizwiz_val.jsonl", "vizwiz_val_questions.json", "vizwiz_val_annotations.json")
    _write_official_vqa(root, d, names, jsonl, questions, annotations)
    return jsonl


@needs_realdata
def test_vizwiz_val_string_ids_and_identical_records(tmp_path: Path) -> None:
    jsonl = build_vizwiz_val_root(tmp_path)
    table = normalize("vqa-vizwiz-val", tmp_path)
    df = table.to_pandas()
    assert df["id"].tolist() == [r["question_id"] for r in jsonl]
    assert df.loc[0, "question"] == "What is this? and what color is it?"
    assert df.loc[0, "image_path"] == "vizwiz/val/VizWiz_val_00000000.jpg"
    assert set(df.loc[0, "answer_meta"]) == {'{"answer_confidence": "yes"}'}
    assert any(n.startswith("4 questions have identical answer records") for n in table_notes(table))


def build_vizwiz_test_root(root: Path) -> list[dict]:
    """``vizwiz/vizwiz_test.jsonl`` from the real LLaVA ``llava_test.jsonl`` (TEST split) records: question
    = first line of the LLaVA text (LLaVA appends the two instruction lines), question_id = image path
    ``data/vizwiz/test/<file>`` as the table documents for the Qwen file."""
    llava = read_jsonl(REALDATA / "vizwiz" / "llava_format" / "llava_test.jsonl")
    recs = [{"image": f"data/vizwiz/test/{r['image']}", "question": r["text"].split("\n")[0],
             "question_id": f"data/vizwiz/test/{r['image']}"} for r in llava]  # fmt: skip
    write_jsonl(root / "vizwiz" / "vizwiz_test.jsonl", recs)
    _touch_images(root, recs)
    return llava


@needs_realdata
def test_vizwiz_test(tmp_path: Path) -> None:
    llava = build_vizwiz_test_root(tmp_path)
    table = normalize("vqa-vizwiz-test", tmp_path)
    df = table.to_pandas()
    assert len(df) == 40 and (df["answers"].map(len) == 0).all()
    assert df["submission_image"].tolist() == [r["image"] for r in llava]
    assert df.loc[0, "submission_image"] == "VizWiz_test_00000000.jpg"
    assert df.loc[2, "question"] == "Has this oven gotten up to four hundred fifty degrees fahrenheit yet?"
    # all LLaVA texts carry the VizWiz instruction that the V1.2 prompt appends after a space
    assert all(r["text"].split("\n")[1:] == [
        "When the provided information is insufficient, respond with 'Unanswerable'.", VQA_PROMPT] for r in llava)


@needs_realdata
def test_vizwiz_test_integer_id_is_refused(tmp_path: Path) -> None:
    build_vizwiz_test_root(tmp_path)
    path = tmp_path / "vizwiz" / "vizwiz_test.jsonl"
    recs = read_jsonl(path)
    recs[7]["question_id"] = 7  # LLaVA style; the submission needs the image path
    write_jsonl(path, recs)
    with pytest.raises(DataError, match="image path as question_id") as err:
        normalize("vqa-vizwiz-test", tmp_path)
    assert f"{path}:8:" in str(err.value)


# --- DocVQA (built from real val records) -------------------------------------------------------------------------


def build_docvqa_root(root: Path) -> list[dict]:
    """``docvqa/val.jsonl`` (Qwen format, answer = list) from the real DAM-QA val records (image path
    given the ``data/docvqa/val/documents/`` prefix), and ``docvqa/val/val_v1.0.json`` in the official
    DocVQA layout with the same answers plus one GT question that has no jsonl record; ``test.jsonl``
    is the same questions without answers."""
    src = read_jsonl(REALDATA / "docvqa" / "third_party_dam-qa" / "val.jsonl")
    d = root / "docvqa"
    val = [{"image": f"data/docvqa/val/documents/{r['image']}", "question": r["question"],
            "question_id": r["question_id"], "answer": r["answer"]} for r in src]  # fmt: skip
    data = [
        {"questionId": r["question_id"], "question": r["question"], "question_types": ["form"],
         "image": f"documents/{r['image']}", "docId": 1000 + i, "ucsf_document_id": r["image"].split("_")[0],
         "ucsf_document_page_no": r["image"].rsplit("_", 1)[1].split(".")[0], "answers": r["answer"],
         "data_split": "val"}
        for i, r in enumerate(src)
    ]  # fmt: skip
    data.append({**data[0], "questionId": 1, "question": "an extra GT question", "answers": ["x"]})
    write_jsonl(d / "val.jsonl", val)
    write_json(d / "val" / "val_v1.0.json",
                {"dataset_name": "docvqa", "dataset_version": "1.0", "dataset_split": "val", "data": data})
    test = [{"image": f"data/docvqa/test/documents/{r['image']}", "question": r["question"],
             "question_id": r["question_id"]} for r in src]  # fmt: skip
    write_jsonl(d / "test.jsonl", test)
    _touch_images(root, val + test)
    return src


@needs_realdata
def test_docvqa_val_and_test(tmp_path: Path) -> None:
    src = build_docvqa_root(tmp_path)
    table = normalize("vqa-docvqa-val", tmp_path)
    df = table.to_pandas()
    assert len(df) == 50 and df["id"].tolist() == [str(r["question_id"]) for r in src]
    assert [list(a) for a in df["answers"]] == [r["answer"] for r in src]
    assert list(df.loc[1, "answers"]) == [
        "university of california", "University of California", "university of california, san diego"
    ]
    assert df.loc[0, "image_path"] == "docvqa/val/documents/pybv0228_81.png"
    assert list(df.loc[0, "question_types"]) == ["form"]
    assert table_notes(table) == [
        "1 questions of val_v1.0.json have no record in val.jsonl (the original evaluator refuses a submission "
        "that does not cover the GT file)"
    ]
    test = normalize("vqa-docvqa-test", tmp_path).to_pandas()
    assert test["id"].tolist() == df["id"].tolist() and (test["answers"].map(len) == 0).all()


@needs_realdata
def test_docvqa_question_missing_from_gt(tmp_path: Path) -> None:
    src = build_docvqa_root(tmp_path)
    gt_path = tmp_path / "docvqa" / "val" / "val_v1.0.json"
    gt = json.loads(gt_path.read_text())
    gt["data"] = [q for q in gt["data"] if q["questionId"] != src[9]["question_id"]]
    gt_path.write_text(json.dumps(gt))
    with pytest.raises(DataError, match="is not in") as err:
        normalize("vqa-docvqa-val", tmp_path)
    assert "val.jsonl:10:" in str(err.value)


# --- ChartQA (real third-party files, verbatim) ---------------------------------------------------------------------


def build_chartqa_root(root: Path, name: str) -> list[dict]:
    """The real third-party ``chartqa/<name>.jsonl``, verbatim; dummy images. Returns its records."""
    src_path = REALDATA / "chartqa" / "third_party_dam-qa" / f"{name}.jsonl"
    d = root / "chartqa"
    d.mkdir()
    shutil.copy(src_path, d / f"{name}.jsonl")
    src = read_jsonl(src_path)
    for r in src:
        touch(d / r["image"])
    return src


@needs_realdata
@pytest.mark.parametrize("name", ["test_human", "test_augmented"])
def test_chartqa_real_files(tmp_path: Path, name: str) -> None:
    src = build_chartqa_root(tmp_path, name)
    table = normalize(f"vqa-chartqa-{name.replace('_', '-')}", tmp_path)
    df = table.to_pandas()
    assert len(df) == 50
    # every record of this conversion has question_id -1: ids fall back to file stem + record index
    assert df["id"].tolist() == [f"{name}:{i}" for i in range(50)] and set(df["question_id"]) == {"-1"}
    assert any("question_id repeats" in n and "x50" in n for n in table_notes(table))
    assert [list(a) for a in df["answers"]] == [[r["answer"]] for r in src]
    assert df["image_path"].str.startswith("chartqa/test/png/").all()


@needs_realdata
def test_chartqa_malformed_line(tmp_path: Path) -> None:
    d = tmp_path / "chartqa"
    d.mkdir()
    lines = (REALDATA / "chartqa" / "third_party_dam-qa" / "test_human.jsonl").read_text().splitlines(keepends=True)
    lines[6] = lines[6][:30] + "\n"
    (d / "test_human.jsonl").write_text("".join(lines))
    with pytest.raises(DataError, match="malformed JSON") as err:
        normalize("vqa-chartqa-test-human", tmp_path)
    assert f"{d / 'test_human.jsonl'}:7:" in str(err.value)


@needs_realdata
def test_chartqa_answer_of_wrong_type(tmp_path: Path) -> None:
    src = read_jsonl(REALDATA / "chartqa" / "third_party_dam-qa" / "test_augmented.jsonl")
    src[3]["answer"] = 47
    path = write_jsonl(tmp_path / "chartqa" / "test_augmented.jsonl", src)
    for r in src:
        touch(tmp_path / "chartqa" / r["image"])
    with pytest.raises(DataError, match="'answer'") as err:
        normalize("vqa-chartqa-test-augmented", tmp_path)
    assert f"{path}:4:" in str(err.value)


# --- GQA (real LLaVA questions; official file built) --------------------------------------------------------------


def build_gqa_root(root: Path) -> list[dict]:
    """``gqa/llava_gqa_testdev_balanced_qwen_format.jsonl`` converted from the real LLaVA
    ``llava_gqa_testdev_balanced.jsonl`` (question = first line of the text, string ids kept, image under
    ``data/gqa/images/``), and ``gqa/testdev_balanced_questions.json`` in the official layout for those
    ids (answers made up: yes/no questions -> "yes", others -> "table"; structural type accordingly)."""
    llava = read_jsonl(REALDATA / "gqa" / "llava_format" / "llava_gqa_testdev_balanced.jsonl")
    recs, official = [], {}
    for r in llava:
        question = r["text"].split("\n")[0]
        binary = question.split()[0] in ("Is", "Are", "Does", "Do", "Can", "Was", "Were", "Has", "Have")
        recs.append({"image": f"data/gqa/images/{r['image']}", "question": question, "question_id": r["question_id"]})
        official[r["question_id"]] = {
            "question": question, "imageId": r["image"].removesuffix(".jpg"), "answer": "yes" if binary else "table",
            "isBalanced": True, "types": {"structural": "verify" if binary else "query", "semantic": "attr",
                                          "detailed": "x"},
            "fullAnswer": "-", "groups": {"global": None, "local": "x"}, "semantic": [], "entailed": [],
            "equivalent": [r["question_id"]], "annotations": {},
        }  # fmt: skip
    write_jsonl(root / "gqa" / "llava_gqa_testdev_balanced_qwen_format.jsonl", recs)
    write_json(root / "gqa" / "testdev_balanced_questions.json", official)
    _touch_images(root, recs)
    return llava


@needs_realdata
def test_gqa_testdev(tmp_path: Path) -> None:
    llava = build_gqa_root(tmp_path)
    table = normalize("vqa-gqa-testdev", tmp_path)
    df = table.to_pandas()
    assert df["id"].tolist() == [r["question_id"] for r in llava] and df.loc[0, "id"] == "201307251"
    assert df.loc[0, "question"] == "Is it overcast?" and list(df.loc[0, "answers"]) == ["yes"]
    assert df.loc[1, "structural_type"] == "query" and list(df.loc[1, "answers"]) == ["table"]
    assert df.loc[0, "image_id"] == "n161313" and df["is_balanced"].all()
    assert df.loc[0, "image_path"] == "gqa/images/n161313.jpg"
    assert table_notes(table) == []


@needs_realdata
def test_gqa_real_official_fixture(tmp_path: Path) -> None:
    """The real official-format GQA record (allennlp fixture) is read as the gold file."""
    shutil.copy(REALDATA / "gqa" / "official_format" / "allennlp_fixture_questions.json",
                write_json(tmp_path / "gqa" / "testdev_balanced_questions.json", {}))
    recs = [{"image": "data/gqa/images/n578564.jpg", "question": "What is hanging above the chalkboard?",
             "question_id": 202218649}]  # fmt: skip
    write_jsonl(tmp_path / "gqa" / "llava_gqa_testdev_balanced_qwen_format.jsonl", recs)
    _touch_images(tmp_path, recs)
    table = normalize("vqa-gqa-testdev", tmp_path)
    row = table.to_pylist()[0]
    assert (row["id"], row["answers"], row["image_id"], row["structural_type"], row["semantic_type"]) == (
        "202218649", ["picture"], "n578564", "query", "rel"
    )
    assert any("1 question ids are integers" in n for n in table_notes(table))


@needs_realdata
def test_gqa_unknown_question(tmp_path: Path) -> None:
    build_gqa_root(tmp_path)
    path = tmp_path / "gqa" / "llava_gqa_testdev_balanced_qwen_format.jsonl"
    recs = read_jsonl(path)
    recs[11]["question_id"] = "999"
    write_jsonl(path, recs)
    with pytest.raises(DataError, match="'999' is not in") as err:
        normalize("vqa-gqa-testdev", tmp_path)
    assert f"{path}:12:" in str(err.value)


# --- OCR-VQA and AI2D (built) ---------------------------------------------------------------------------------------


def build_ocrvqa_root(root: Path, split: str) -> list[dict]:
    """``ocrvqa/ocrvqa_{split}.jsonl`` {image, question, question_id, answer} (Qwen format; no real copy
    exists). Questions follow the OCR-VQA templates, answers made up; one gold is a list."""
    recs = [
        {"image": "data/ocrvqa/images/1607104369.jpg", "question": "Who wrote this book?", "question_id": 10,
         "answer": "Ian Chapman"},
        {"image": "data/ocrvqa/images/1607104369.jpg", "question": "What is the title of this book?",
         "question_id": 11, "answer": "Baby Knits Made Easy"},
        {"image": "data/ocrvqa/images/0312315422.jpg", "question": "Is this a comedy book?", "question_id": 12,
         "answer": ["No", "no"]},
    ]  # fmt: skip
    write_jsonl(root / "ocrvqa" / f"ocrvqa_{split}.jsonl", recs)
    _touch_images(root, recs)
    return recs


@pytest.mark.parametrize("split", ["val", "test"])
def test_ocrvqa(tmp_path: Path, split: str) -> None:
    build_ocrvqa_root(tmp_path, split)
    df = normalize(f"vqa-ocrvqa-{split}", tmp_path).to_pandas()
    assert df["id"].tolist() == ["10", "11", "12"] and df["question_id"].tolist() == ["10", "11", "12"]
    assert [list(a) for a in df["answers"]] == [["Ian Chapman"], ["Baby Knits Made Easy"], ["No", "no"]]
    assert df.loc[0, "image_path"] == "ocrvqa/images/1607104369.jpg"


def test_ai2d_test(tmp_path: Path) -> None:
    """``ai2diagram/test.jsonl`` (HF OpenGVLab/InternVL layout as the table documents: the question holds
    options + instruction, question_id = image path, answer = letter); made-up records, two questions
    on one image so the id repeats."""
    q = "{}\nA. {}\nB. {}\nAnswer with the option's letter from the given choices directly."
    recs = [
        {"image": "ai2d/abc_images/1002.png", "question": q.format("What stage is D?", "egg", "pupa"),
         "question_id": "ai2d/abc_images/1002.png", "answer": "B"},
        {"image": "ai2d/abc_images/1002.png", "question": q.format("What stage is A?", "egg", "adult"),
         "question_id": "ai2d/abc_images/1002.png", "answer": "A"},
        {"image": "ai2d/images/1003.png", "question": q.format("What eats grass?", "cow", "fox"),
         "question_id": "ai2d/images/1003.png", "answer": "A"},
    ]  # fmt: skip
    write_jsonl(tmp_path / "ai2diagram" / "test.jsonl", recs)
    for r in recs:
        touch(tmp_path / "ai2diagram" / r["image"])
    table = normalize("vqa-ai2d-test", tmp_path)
    df = table.to_pandas()
    assert df["id"].tolist() == ["test:0", "test:1", "test:2"]
    assert df["question_id"].tolist() == [r["question_id"] for r in recs]
    assert df["abc_image"].tolist() == [True, True, False]
    assert df.loc[2, "image_path"] == "ai2diagram/ai2d/images/1003.png"
    assert df.loc[0, "question"] == recs[0]["question"] and [list(a) for a in df["answers"]] == [["B"], ["A"], ["A"]]
    notes = table_notes(table)
    assert any("question_id repeats" in n for n in notes) and any(n.startswith("2 of 3 questions use") for n in notes)


# --- RefCOCO / + / g (built) ------------------------------------------------------------------------------------------

REF_RECORDS = [
    {"image": "data/coco/train2014/COCO_train2014_000000581857.jpg", "sent": "the lady with the blue shirt",
     "bbox": [103.93, 299.99, 238.15, 477.41], "height": 640, "width": 427},
    {"image": "data/coco/train2014/COCO_train2014_000000581857.jpg", "sent": "woman in front",
     "bbox": [274.58, 318.48, 425.39, 637.46], "height": 640, "width": 427},
    {"image": "data/coco/train2014/COCO_train2014_000000581563.jpg", "sent": "left elephant",
     "bbox": [0, 71, 272, 391], "height": 427, "width": 640},
]  # fmt: skip


def build_refcoco_root(root: Path, stem: str) -> Path:
    """``refcoco/<stem>.jsonl`` {image, sent, bbox [x1, y1, x2, y2] px, width, height} (the Qwen-VL files
    are not in shared/realdata); COCO train2014 image names, made-up sentences and boxes."""
    path = write_jsonl(root / "refcoco" / f"{stem}.jsonl", REF_RECORDS)
    _touch_images(root, REF_RECORDS)
    return path


@pytest.mark.parametrize("split", FAMILY_A[-8:])
def test_refcoco_splits(tmp_path: Path, split: str) -> None:
    stem = bench_family_a.REFCOCO_SPLITS[split]
    build_refcoco_root(tmp_path, stem)
    table = normalize(split, tmp_path)
    df = table.to_pandas()
    assert df["id"].tolist() == [f"{stem}:{i}" for i in range(3)]
    assert df["question"].tolist() == [r["sent"] for r in REF_RECORDS]
    assert [list(b) for b in df["bbox"]] == [[float(v) for v in r["bbox"]] for r in REF_RECORDS]
    assert df["width"].tolist() == [427, 427, 640] and df["height"].tolist() == [640, 640, 427]
    assert df.loc[0, "image_path"] == "coco/train2014/COCO_train2014_000000581857.jpg"
    assert json.loads(df.loc[2, "answers"][0]) == [0, 71, 272, 391]
    assert table_notes(table) == [
        f"{stem}.jsonl: not every record has a question_id; ids are '<file stem>:<record index>' instead "
        "(the original never uses this id to score)"
    ]


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [("bbox", [1, 2, 3], "4 finite numbers"), ("bbox", [1, 2, "3", 4], "4 finite numbers"),
     ("width", "427", "positive integer"), ("height", 0, "positive integer"), ("sent", "", "empty string")],
)  # fmt: skip
def test_refcoco_malformed(tmp_path: Path, field: str, value: object, match: str) -> None:
    path = build_refcoco_root(tmp_path, "refcoco_testA")
    recs = read_jsonl(path)
    recs[1][field] = value
    write_jsonl(path, recs)
    with pytest.raises(DataError, match=match) as err:
        normalize("refcoco-testA", tmp_path)
    assert f"{path}:2:" in str(err.value) and repr(field) in str(err.value)


def test_refcoco_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found") as err:
        normalize("refcocog-val", tmp_path)
    assert "refcocog_val.jsonl" in str(err.value)
