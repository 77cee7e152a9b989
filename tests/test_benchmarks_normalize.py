"""Normalizers for mmbench-dev-en, vqa-vqav2-val, caption-coco and pope against real-format samples.

Real samples come from ``shared/realdata`` (see its PROVENANCE.md). Files whose exact original is not
available there are rebuilt in a tmp dir in the documented format; each such test says so.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import REALDATA, jpeg_b64, needs_realdata, read_jsonl, touch

from internvl.data.benchmarks import NORMALIZERS, normalize, table_notes, write_parquet
from internvl.errors import DataError

POPE_SPLITS = ("adversarial", "popular", "random")


# --- POPE (real files) ------------------------------------------------------------------------------


def build_pope_root(root: Path) -> Path:
    """Real LLaVA question file and real POPE label files laid out as InternVL expects; dummy images."""
    pope = root / "pope"
    (pope / "coco").mkdir(parents=True)
    shutil.copy(REALDATA / "pope" / "llava_pope_test.jsonl", pope / "llava_pope_test.jsonl")
    for s in POPE_SPLITS:
        shutil.copy(REALDATA / "pope" / "coco" / f"coco_pope_{s}.json", pope / "coco" / f"coco_pope_{s}.json")
    for rec in read_jsonl(pope / "llava_pope_test.jsonl"):
        touch(pope / "val2014" / rec["image"])
    return root


@needs_realdata
def test_pope_real_files(tmp_path: Path) -> None:
    root = build_pope_root(tmp_path)
    table = normalize("pope", root)
    df = table.to_pandas()
    questions = read_jsonl(root / "pope" / "llava_pope_test.jsonl")
    assert len(df) == len(questions) == 60
    assert df["id"].tolist() == [str(q["question_id"]) for q in questions]
    assert df["question"].tolist() == [q["text"] for q in questions]
    assert Counter(df["split"]) == {s: 20 for s in POPE_SPLITS}
    assert df["image_path"].str.startswith("pope/val2014/COCO_val2014_").all()
    # labels: the k-th question of a category gets line k of that category's label file
    for s in POPE_SPLITS:
        expected = [r["label"] for r in read_jsonl(REALDATA / "pope" / "coco" / f"coco_pope_{s}.json")][:20]
        assert df.loc[df["split"] == s, "label"].tolist() == expected
        assert df.loc[df["split"] == s, "label_question_id"].tolist() == list(range(1, 21))
    assert all(list(a) == [lab] for a, lab in zip(df["answers"], df["label"], strict=True))
    notes = table_notes(table)
    assert len(notes) == 3 and all("40 label lines" in n for n in notes)
    out = tmp_path / "out" / "pope.parquet"
    write_parquet(table, out)
    back = pq.read_table(out)
    assert back.equals(table) and table_notes(back) == notes
    assert not list(out.parent.glob(".*tmp"))


@needs_realdata
def test_pope_reordered_labels_are_refused(tmp_path: Path) -> None:
    root = build_pope_root(tmp_path)
    label_file = root / "pope" / "coco" / "coco_pope_random.json"
    lines = label_file.read_text().splitlines(keepends=True)
    lines[1], lines[2] = lines[2], lines[1]
    label_file.write_text("".join(lines))
    with pytest.raises(DataError) as err:
        normalize("pope", root)
    assert f"{label_file}:2" in str(err.value) and "llava_pope_test.jsonl:22" in str(err.value)


@needs_realdata
def test_pope_missing_image_names_file_and_line(tmp_path: Path) -> None:
    root = build_pope_root(tmp_path)
    (root / "pope" / "val2014" / "COCO_val2014_000000210789.jpg").unlink()  # first used on line 7
    with pytest.raises(DataError) as err:
        normalize("pope", root)
    assert "llava_pope_test.jsonl:7:" in str(err.value) and "'image'" in str(err.value)


@needs_realdata
def test_pope_image_outside_data_root_is_refused(tmp_path: Path) -> None:
    root = build_pope_root(tmp_path / "data")
    qfile = root / "pope" / "llava_pope_test.jsonl"
    recs = read_jsonl(qfile)
    recs[0]["image"] = "../../../secret.jpg"
    touch(tmp_path / "secret.jpg")
    qfile.write_text("".join(json.dumps(r) + "\n" for r in recs))
    with pytest.raises(DataError, match="outside data_root") as err:
        normalize("pope", root)
    assert "llava_pope_test.jsonl:1:" in str(err.value)


@needs_realdata
def test_pope_label_other_than_yes_no(tmp_path: Path) -> None:
    root = build_pope_root(tmp_path)
    label_file = root / "pope" / "coco" / "coco_pope_popular.json"
    label_file.write_text(label_file.read_text().replace('"label": "no"', '"label": "No"', 1))
    with pytest.raises(DataError, match="label") as err:
        normalize("pope", root)
    assert f"{label_file}:2:" in str(err.value)


# --- VQAv2 -------------------------------------------------------------------------------------------


def _answer_type(answers: list[str]) -> str:
    top = Counter(answers).most_common(1)[0][0]
    return "yes/no" if top in ("yes", "no") else "number" if top.isdigit() else "other"


def build_vqav2_root(root: Path) -> tuple[Path, list[dict]]:
    """vqav2/ with Qwen-format ``vqav2_val.jsonl`` + official-format question/annotation files.

    The Qwen-VL ``vqav2_val.jsonl`` and the official val annotations are not in shared/realdata, so
    they are rebuilt from the real DAM-QA restval records (real val2014 questions with their real 10
    answers): jsonl = {image: "data/vqav2/val2014/<file>", question, question_id, answer (majority)}
    as the Qwen files are; the annotation file follows the official VQA v2 layout, with answer_type
    derived from the majority answer and question_type approximated by the first two words.
    """
    src = read_jsonl(REALDATA / "vqav2" / "third_party_dam-qa" / "dam-qa_vqav2_restval.jsonl")
    header = json.loads(
        (REALDATA / "vqav2" / "official_format" / "v2_OpenEnded_mscoco_val2014_questions.json").read_text()
    )
    d = root / "vqav2"
    d.mkdir(parents=True)
    jsonl_lines, questions, annotations = [], [], []
    for r in src:
        answers = [a["answer"] for a in r["answer"]]
        image_id = int(r["image"].rsplit("_", 1)[1].split(".")[0])
        majority = Counter(answers).most_common(1)[0][0]
        jsonl_lines.append(
            {
                "image": f"data/vqav2/val2014/{r['image']}",
                "question": r["question"],
                "question_id": r["question_id"],
                "answer": majority,
            }
        )
        questions.append({"image_id": image_id, "question": r["question"], "question_id": r["question_id"]})
        annotations.append(
            {
                "question_type": " ".join(r["question"].lower().split()[:2]),
                "multiple_choice_answer": majority,
                "answers": r["answer"],
                "image_id": image_id,
                "answer_type": _answer_type(answers),
                "question_id": r["question_id"],
            }
        )
        touch(d / "val2014" / r["image"])
    (d / "vqav2_val.jsonl").write_text("".join(json.dumps(x) + "\n" for x in jsonl_lines))
    (d / "v2_OpenEnded_mscoco_val2014_questions.json").write_text(json.dumps({**header, "questions": questions}))
    ann_header = {k: v for k, v in header.items() if k not in ("questions", "task_type")}
    (d / "v2_mscoco_val2014_annotations.json").write_text(json.dumps({**ann_header, "annotations": annotations}))
    return root, src


@needs_realdata
def test_vqav2_val(tmp_path: Path) -> None:
    root, src = build_vqav2_root(tmp_path)
    table = normalize("vqa-vqav2-val", root)
    df = table.to_pandas()
    assert len(df) == len(src) == 40
    assert df["id"].tolist() == [str(r["question_id"]) for r in src]
    assert [list(a) for a in df["answers"]] == [[a["answer"] for a in r["answer"]] for r in src]
    assert df["image_path"].tolist() == [f"vqav2/val2014/{r['image']}" for r in src]
    assert df["image_id"].tolist() == [int(r["image"][-16:-4]) for r in src]
    assert set(df["answer_type"]) == {"yes/no", "number", "other"}
    assert df.loc[df["id"] == "452060001", "multiple_choice_answer"].item() == "tennis racket"
    assert (df["options"] == "{}").all() and df["hint"].isna().all() and df["image_bytes"].isna().all()
    assert table_notes(table) == []


@needs_realdata
def test_vqav2_malformed_jsonl_line(tmp_path: Path) -> None:
    root, _ = build_vqav2_root(tmp_path)
    jsonl = root / "vqav2" / "vqav2_val.jsonl"
    lines = jsonl.read_text().splitlines(keepends=True)
    lines[2] = lines[2][:40] + "\n"
    jsonl.write_text("".join(lines))
    with pytest.raises(DataError, match="malformed JSON") as err:
        normalize("vqa-vqav2-val", root)
    assert f"{jsonl}:3:" in str(err.value)


@needs_realdata
def test_vqav2_question_without_annotation(tmp_path: Path) -> None:
    root, _ = build_vqav2_root(tmp_path)
    ann_file = root / "vqav2" / "v2_mscoco_val2014_annotations.json"
    doc = json.loads(ann_file.read_text())
    doc["annotations"] = doc["annotations"][:-1]
    ann_file.write_text(json.dumps(doc))
    with pytest.raises(DataError) as err:
        normalize("vqa-vqav2-val", root)
    assert "vqav2_val.jsonl:40:" in str(err.value) and "448627002" in str(err.value)


@needs_realdata
def test_vqa_official_fixture_without_types_is_refused(tmp_path: Path) -> None:
    """The real allennlp VQA v2 fixture has only question_id/answers per annotation (types stripped)."""
    from internvl.data.benchmarks import read_vqa

    off = REALDATA / "vqav2" / "official_format"
    qs = json.loads((off / "allennlp_fixture_questions.json").read_text())["questions"]
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps(
                {"image": f"img/{q['image_id']}.jpg", "question": q["question"], "question_id": q["question_id"]}
            )
            + "\n"
            for q in qs
        )
    )
    for q in qs:
        touch(tmp_path / "img" / f"{q['image_id']}.jpg")
    with pytest.raises(DataError, match="question_type"):
        read_vqa(
            jsonl,
            off / "allennlp_fixture_questions.json",
            off / "allennlp_fixture_annotations.json",
            tmp_path,
            image_bases=("",),
        )


# --- COCO captions ------------------------------------------------------------------------------------


def build_coco_root(root: Path) -> tuple[Path, dict]:
    """coco/annotations with the real COCO-format karpathy test sample as ``coco_karpathy_test_gt.json``
    and a BLIP-style ``coco_karpathy_test.json`` ([{image: "val2014/<file>", caption: [...]}], the
    release asset is not on GitHub) built from it; dummy images under coco/val2014/."""
    gt = json.loads((REALDATA / "coco_caption" / "coco_test_karpathy.json").read_text())
    ann = root / "coco" / "annotations"
    ann.mkdir(parents=True)
    (ann / "coco_karpathy_test_gt.json").write_text(json.dumps(gt))
    caps: dict[int, list[str]] = {}
    for a in gt["annotations"]:
        caps.setdefault(a["image_id"], []).append(a["caption"])
    blip = [{"image": f"val2014/{im['file_name']}", "caption": caps[im["id"]]} for im in gt["images"]]
    (ann / "coco_karpathy_test.json").write_text(json.dumps(blip))
    for im in gt["images"]:
        touch(root / "coco" / "val2014" / im["file_name"])
    return root, gt


@needs_realdata
def test_caption_coco(tmp_path: Path) -> None:
    root, gt = build_coco_root(tmp_path)
    df = normalize("caption-coco", root).to_pandas()
    assert len(df) == len(gt["images"]) == 25
    assert df["id"].tolist() == [str(im["id"]) for im in gt["images"]]
    assert df["image_id"].tolist() == [im["id"] for im in gt["images"]]
    assert df.loc[0, "image_path"] == "coco/val2014/COCO_val2014_000000391895.jpg"
    for rid, answers in zip(df["image_id"], df["answers"], strict=True):
        assert list(answers) == [a["caption"] for a in gt["annotations"] if a["image_id"] == rid]
    assert (df["question"] == "").all()
    assert df["answers"].map(len).min() >= 5


@needs_realdata
def test_caption_unparsable_filename(tmp_path: Path) -> None:
    root, _ = build_coco_root(tmp_path)
    path = root / "coco" / "annotations" / "coco_karpathy_test.json"
    items = json.loads(path.read_text())
    items[3]["image"] = "val2014/broken.jpg"
    path.write_text(json.dumps(items))
    with pytest.raises(DataError, match=r"\[3\]\.image"):
        normalize("caption-coco", root)


# --- MMBench (TSV rebuilt in the documented format) -------------------------------------------------


MMB_HEADER = [
    "index",
    "question",
    "hint",
    "A",
    "B",
    "C",
    "D",
    "answer",
    "category",
    "image",
    "source",
    "l2-category",
    "comment",
    "split",
]
Q241 = "Identify the question that Madelyn and Tucker's experiment can best answer."
HINT241 = (
    "The passage below describes an experiment. Read the passage and then follow the instructions below.\n\n"
    "Madelyn applied a thin layer of wax to the underside of her snowboard and rode the board straight "
    "down a hill.\nFigure: snowboarding down a hill."
)
OPT241 = [
    "Does Madelyn's snowboard slide down a hill in less time when it has a thin layer of wax or a thick layer of wax?",
    "Does Madelyn's snowboard slide down a hill in less time when it has a layer of wax "
    "or when it does not have a layer of wax?",
]


def build_mmbench_root(root: Path, bad_image_row: int | None = None) -> tuple[Path, list[bytes]]:
    """``mmbench/mmbench_dev_20230712.tsv`` written like the real file (no copy is in shared/realdata):
    the header recorded in PROVENANCE.md, csv quoting for the multi-line hint, empty C/D cells, base64
    JPEGs. Index 241 is the real first record (hint shortened); 1000241 is its rotated copy."""
    imgs = [jpeg_b64((i * 40, 0, 0)) for i in range(4)]
    rows = [
        [
            241,
            Q241,
            HINT241,
            OPT241[0],
            OPT241[1],
            "",
            "",
            "B",
            "identity_reasoning",
            imgs[0][0],
            "scienceqa",
            "attribute_reasoning",
            "",
            "dev",
        ],
        [
            1000241,
            Q241,
            HINT241,
            OPT241[1],
            OPT241[0],
            "",
            "",
            "A",
            "identity_reasoning",
            imgs[1][0],
            "scienceqa",
            "attribute_reasoning",
            "",
            "dev",
        ],
        [
            252,
            "What is the color of the bus?",
            "",
            "red",
            "blue",
            "None",
            "green",
            "D",
            "attribute_recognition",
            imgs[2][0],
            "coco",
            "finegrained_perception (instance-level)",
            "",
            "dev",
        ],
        [
            253,
            "How many dogs are there?",
            "",
            "1",
            "2",
            "3",
            "4",
            "C",
            "object_localization",
            imgs[3][0],
            "coco",
            "coarse_perception",
            "",
            "dev",
        ],
    ]
    if bad_image_row is not None:
        rows[bad_image_row][9] = "this is *not* base64!"
    d = root / "mmbench"
    d.mkdir(parents=True)
    with (d / "mmbench_dev_20230712.tsv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(MMB_HEADER)
        w.writerows(rows)
    return root, [b for _, b in imgs]


def test_mmbench_dev_en(tmp_path: Path) -> None:
    root, images = build_mmbench_root(tmp_path)
    tsv = root / "mmbench" / "mmbench_dev_20230712.tsv"
    assert pd.read_csv(tsv, sep="\t").shape == (4, len(MMB_HEADER))  # the original reader sees 4 records
    table = normalize("mmbench-dev-en", root)
    df = table.to_pandas()
    assert df["id"].tolist() == ["241", "1000241", "252", "253"]
    assert df["mmbench_index"].tolist() == [241, 1000241, 252, 253]
    assert df.loc[0, "hint"] == HINT241 and df.loc[0, "question"] == Q241
    assert json.loads(df.loc[0, "options"]) == {"A": OPT241[0], "B": OPT241[1]}  # empty C, D skipped
    assert json.loads(df.loc[1, "options"]) == {"A": OPT241[1], "B": OPT241[0]}
    assert table.column("hint")[2].as_py() is None and pd.isna(df.loc[2, "hint"])
    # an option whose text is "None" is NaN for pandas' default reader: skipped as in the original, noted
    assert json.loads(df.loc[2, "options"]) == {"A": "red", "B": "blue", "D": "green"}
    assert any("index 252" in n and "'None'" in n for n in table_notes(table))
    assert [list(a) for a in df["answers"]] == [["B"], ["A"], ["D"], ["C"]]
    assert json.loads(df.loc[3, "options"]) == {"A": "1", "B": "2", "C": "3", "D": "4"}
    assert df["image_bytes"].tolist() == images and df["image_path"].isna().all()
    assert df["category"].tolist()[:2] == ["identity_reasoning"] * 2
    assert df.loc[2, "l2_category"] == "finegrained_perception (instance-level)"


def test_mmbench_bad_base64_names_file_and_row(tmp_path: Path) -> None:
    root, _ = build_mmbench_root(tmp_path, bad_image_row=2)
    with pytest.raises(DataError, match="bad base64") as err:
        normalize("mmbench-dev-en", root)
    # row 4 = header + 3rd record (the physical line is later: the hints above span several lines)
    assert f"{root / 'mmbench' / 'mmbench_dev_20230712.tsv'}:4:" in str(err.value) and "index 252" in str(err.value)


def test_mmbench_answer_must_be_an_option(tmp_path: Path) -> None:
    root, _ = build_mmbench_root(tmp_path)
    tsv = root / "mmbench" / "mmbench_dev_20230712.tsv"
    df = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
    df.loc[0, "answer"] = "C"  # C is empty for index 241
    df.to_csv(tsv, sep="\t", index=False)
    with pytest.raises(DataError, match="not one of the options") as err:
        normalize("mmbench-dev-en", root)
    assert ":2:" in str(err.value) and "'answer'" in str(err.value)


def test_unknown_split_and_missing_file(tmp_path: Path) -> None:
    assert set(NORMALIZERS) >= {"mmbench-dev-en", "vqa-vqav2-val", "caption-coco", "pope"}
    with pytest.raises(KeyError, match="no normalizer"):
        normalize("vqa-nonexistent", tmp_path)
    with pytest.raises(DataError, match="file not found"):
        normalize("pope", tmp_path)
