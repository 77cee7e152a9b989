"""Normalizers of the multimodal (family B) splits, against the real-format samples in shared/realdata.

Real files used as they are (see shared/realdata/PROVENANCE.md): the 14 MME ``Your_Results`` files,
the MMMU Accounting parquet shards + ``answer_dict_val.json``, LLaVA-Bench questions/context/answers,
MM-Vet ``llava-mm-vet.jsonl`` + ``mm-vet.json``, MathVista ``testmini.json``. Images that are not in the
samples are empty placeholder files (normalizers check existence, they do not decode path images).

Rebuilt in tmp in the documented format because no real copy is available (each builder says how):
MMBench CN/test TSVs, the other 29 MMMU subjects (tiny synthetic shards), ``scienceqa_test_img.jsonl``
(from real problems.json test records), Tiny LVLM ``dataset.json``, MMVP ``Questions.csv``, MathVista
``query.json`` (built from the real problems by the documented query rules and checked against verbatim
real queries), SEED ``seed.jsonl`` + ``SEED-Bench.json`` (real question ids and gold letters).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REALDATA, jpeg_b64, needs_realdata, png_bytes, read_jsonl, touch
from PIL import Image

from internvl.data import bench_family_b
from internvl.data.bench_family_b import MMMU_SUBJECTS, read_mmmu
from internvl.data.benchmarks import NORMALIZERS, normalize, table_notes
from internvl.errors import DataError
from internvl.eval.prompts import build_question
from internvl.eval.registry import BENCHMARKS, resolve

FAMILY_B = ("mme", "mmbench-dev-cn", "mmbench-test-en", "mmbench-test-cn", "mmmu-dev", "mmmu-val", "mmmu-test",
            "scienceqa", "tiny_lvlm", "llava-bench", "mmvet", "mmvp", "mathvista-testmini", "mathvista-test", "seed")


def test_family_b_registered() -> None:
    assert set(FAMILY_B) <= set(NORMALIZERS) and set(FAMILY_B) == set(bench_family_b.NORMALIZERS)
    for split in FAMILY_B:
        b = resolve(split)
        assert b.name == split and b.metric == split and b.table in ("multimodal", "caption_vqa")
    assert resolve("SEEDv1").name == "seed" and resolve("MMMU_validation").name == "mmmu-val"
    assert {b: BENCHMARKS[b].paper_value for b in ("mme", "mmmu-val", "mmvp", "seed", "tiny_lvlm")} == {
        "mme": 1672.1, "mmmu-val": 51.6, "mmvp": 56.7, "seed": 75.6, "tiny_lvlm": 350.3}
    mme = BENCHMARKS["mme"].generation.as_kwargs()
    assert mme["do_sample"] is True and mme["num_beams"] == 5 and (mme["top_k"], mme["top_p"]) == (50, 0.9)
    assert mme["max_new_tokens"] == 20 and BENCHMARKS["mme"].notes


# --- MME (real question files) ---------------------------------------------------------------------

MME_ORDER = ["existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork",
             "OCR", "commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning"]


def build_mme_root(root: Path) -> Path:
    d = root / "mme" / "Your_Results"
    d.mkdir(parents=True)
    for f in (REALDATA / "mme" / "Your_Results").glob("*.txt"):
        shutil.copy(f, d / f.name)
        for line in f.read_text(encoding="utf-8").splitlines():
            touch(root / "mme" / "images" / f.stem / line.split("\t")[0])
    return root


@needs_realdata
def test_mme_real_files(tmp_path: Path) -> None:
    root = build_mme_root(tmp_path)
    table = normalize("mme", root)
    df = table.to_pandas()
    assert len(df) == 140 and list(dict.fromkeys(df["category"])) == MME_ORDER
    assert Counter(df["eval_type"]) == {"Perception": 100, "Cognition": 40}
    ocr = df[df["category"] == "OCR"]
    lines = (REALDATA / "mme" / "Your_Results" / "OCR.txt").read_text(encoding="utf-8").splitlines()
    assert ocr["id"].tolist() == [f"OCR:{k}" for k in range(10)]
    assert ocr["question"].tolist() == [ln.split("\t")[1] for ln in lines]
    assert [list(a) for a in ocr["answers"]] == [[ln.split("\t")[2]] for ln in lines]
    assert ocr["pair_index"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert ocr["image_path"].iloc[0] == "mme/images/OCR/0001.jpg"
    assert df.loc[df["id"] == "artwork:0", "image_name"].item() == "10002.jpg"
    row = df.iloc[0].to_dict()
    assert build_question(row, resolve("mme")) == (
        row["question"] + " Answer the question using a single word or phrase.")
    assert row["question"].endswith("Please answer yes or no.")


@needs_realdata
def test_mme_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    root = build_mme_root(tmp_path)
    f = root / "mme" / "Your_Results" / "color.txt"
    lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\n"  # gt column lost
    f.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match="3 tab-separated fields") as err:
        normalize("mme", root)
    assert f"{f}:3:" in str(err.value)


@needs_realdata
def test_mme_pairs_must_share_an_image(tmp_path: Path) -> None:
    root = build_mme_root(tmp_path)
    f = root / "mme" / "Your_Results" / "count.txt"
    lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[3], lines[4] = lines[4], lines[3]  # second question of image 2 swapped with first of image 3
    f.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match="does not share the image") as err:
        normalize("mme", root)
    assert f"{f}:4:" in str(err.value)
    (root / "mme" / "Your_Results" / "count.txt").unlink()
    with pytest.raises(DataError, match="file not found"):
        normalize("mme", root)


# --- MMBench dev-cn / test (rebuilt TSVs) ----------------------------------------------------------

MMB_HEADER = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image", "source",
              "l2-category", "comment", "split"]


def build_mmbench_tsv(path: Path, with_answer: bool) -> None:
    """An MMBench TSV in the header layout recorded in PROVENANCE.md (no CN/test copy is available):
    Chinese text as in the CN release, a rotated copy (index + 1e6), empty C/D cells; test files have
    no ``answer`` column."""
    header = MMB_HEADER if with_answer else [c for c in MMB_HEADER if c != "answer"]
    rows = [
        {"index": 7, "question": "图中有几只猫？", "hint": "", "A": "一只", "B": "两只", "C": "", "D": "", "answer": "B",
         "category": "object_localization", "image": jpeg_b64((200, 0, 0))[0], "source": "coco",
         "l2-category": "coarse_perception", "comment": "", "split": "dev"},
        {"index": 1000007, "question": "图中有几只猫？", "hint": "", "A": "两只", "B": "一只", "C": "", "D": "",
         "answer": "A", "category": "object_localization", "image": jpeg_b64((0, 200, 0))[0], "source": "coco",
         "l2-category": "coarse_perception", "comment": "", "split": "dev"},
        {"index": 9, "question": "这是什么颜色？", "hint": "看图回答。\n只选一个。", "A": "红", "B": "绿", "C": "蓝",
         "D": "黄", "answer": "C", "category": "attribute_recognition", "image": jpeg_b64((0, 0, 200))[0],
         "source": "coco", "l2-category": "finegrained_perception", "comment": "", "split": "dev"},
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow([r[c] for c in header])


def test_mmbench_dev_cn_and_test(tmp_path: Path) -> None:
    d = tmp_path / "mmbench"
    build_mmbench_tsv(d / "mmbench_dev_cn_20231003.tsv", with_answer=True)
    build_mmbench_tsv(d / "mmbench_test_en_20231003.tsv", with_answer=False)
    build_mmbench_tsv(d / "mmbench_test_cn_20231003.tsv", with_answer=True)  # a copy that carries answers
    dev = normalize("mmbench-dev-cn", tmp_path).to_pandas()
    assert dev["id"].tolist() == ["7", "1000007", "9"]
    assert [list(a) for a in dev["answers"]] == [["B"], ["A"], ["C"]]
    assert json.loads(dev.loc[0, "options"]) == {"A": "一只", "B": "两只"}
    row = dev.iloc[2].to_dict()
    assert build_question(row, resolve("mmbench-dev-cn")) == (
        "看图回答。\n只选一个。\n这是什么颜色？\nA. 红\nB. 绿\nC. 蓝\nD. 黄\n请直接回答选项字母。")
    test_en = normalize("mmbench-test-en", tmp_path).to_pandas()
    assert len(test_en) == 3 and all(len(a) == 0 for a in test_en["answers"])
    test_cn = normalize("mmbench-test-cn", tmp_path)
    assert all(a == [] for a in test_cn.column("answers").to_pylist())
    assert any("3 rows carry an answer" in n for n in table_notes(test_cn))


# --- MMMU (real Accounting shards + synthetic other subjects) --------------------------------------


def _mmmu_shard(path: Path, rows: list[dict]) -> None:
    """A parquet shard with the HF ``MMMU/MMMU`` columns (image_k = struct<bytes, path>)."""
    img = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema(
        [("id", pa.string()), ("question", pa.string()), ("options", pa.string()), ("explanation", pa.string())]
        + [(f"image_{k}", img) for k in range(1, 8)]
        + [("img_type", pa.string()), ("answer", pa.string()), ("topic_difficulty", pa.string()),
           ("question_type", pa.string()), ("subfield", pa.string())]
    )
    full = [{f.name: r.get(f.name) for f in schema} for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(full, schema=schema), path)


def _synthetic_mmmu(subject: str, split: str, k: int) -> dict:
    rid = f"{split}_{subject}_1"
    if k % 2:
        return {"id": rid, "question": "What is shown? <image 1>", "options": "['a cat', ' a dog ']",
                "answer": "A" if split != "test" else "?", "question_type": "multiple-choice",
                "image_1": {"bytes": png_bytes((k, 0, 0)), "path": f"{rid}_1.png"}, "subfield": "x",
                "img_type": "['Photos']", "topic_difficulty": "Easy"}
    return {"id": rid, "question": "<image 1> Compute the ratio.", "options": "[]",
            "answer": "['24/7', '3.429']" if split != "test" else "?", "question_type": "open",
            "image_1": {"bytes": png_bytes((0, k, 0)), "path": f"{rid}_1.png"},
            "image_2": {"bytes": png_bytes((0, 0, k)), "path": f"{rid}_2.png"}, "subfield": "y", "img_type": "['Plots']",
            "topic_difficulty": "Hard"}


def build_mmmu_root(root: Path, splits: tuple[str, ...] = ("dev", "validation")) -> Path:
    """``mmmu/<Subject>/<split>-00000-of-00001.parquet`` as in the HF dataset repo: the real Accounting
    dev/validation shards, plus one synthetic question per other subject (no real copy of those)."""
    d = root / "mmmu"
    for split in splits:
        for k, subject in enumerate(MMMU_SUBJECTS):
            dest = d / subject / f"{split}-00000-of-00001.parquet"
            real = REALDATA / "mmmu" / "MMMU" / subject / dest.name
            if real.is_file():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(real, dest)
            else:
                _mmmu_shard(dest, [_synthetic_mmmu(subject, split, k)])
    return root


@needs_realdata
def test_mmmu_real_accounting_validation(tmp_path: Path) -> None:
    root = build_mmmu_root(tmp_path)
    answer_dict = REALDATA / "mmmu" / "answer_dict_val.json"
    table = read_mmmu(root / "mmmu", "validation", subjects=("Accounting",), answer_dict=answer_dict)
    df = table.to_pandas()
    gold = json.loads(answer_dict.read_text())
    assert df["id"].tolist() == [f"validation_Accounting_{k}" for k in range(1, 31)] == list(gold)
    assert [list(a) for a in df["answers"]] == [[gold[i]["ground_truth"]] for i in df["id"]]
    assert set(df["question_type"]) == {"multiple-choice"} and set(df["num_images"]) == {1}
    assert json.loads(df.loc[0, "options"]) == {"A": "$6", "B": "$7", "C": "$8", "D": "$9"}
    raw = pq.read_table(REALDATA / "mmmu" / "MMMU" / "Accounting" / "validation-00000-of-00001.parquet")
    assert df.loc[0, "image_bytes"] == raw.column("image_1")[0].as_py()["bytes"]
    assert Image.open(io.BytesIO(df.loc[0, "image_bytes"])).format == "PNG"
    assert any("cross-checked" in n for n in table_notes(table))
    # prompt: "<image 1>" removed (not stripped), choices, MC instruction
    row = df.iloc[0].to_dict()
    q = build_question(row, resolve("mmmu-val"))
    assert q.startswith(" Baxter Company") and "<image 1>" not in q
    assert q.endswith("\nA. $6\nB. $7\nC. $8\nD. $9\nAnswer with the option's letter from the given choices directly.")


@needs_realdata
def test_mmmu_all_subjects_dev_and_test(tmp_path: Path) -> None:
    root = build_mmmu_root(tmp_path, splits=("dev", "test"))
    dev = normalize("mmmu-dev", root).to_pandas()
    assert len(dev) == 5 + 29 and list(dict.fromkeys(dev["subject"])) == list(MMMU_SUBJECTS)
    acc = dev[dev["subject"] == "Accounting"]
    assert acc["id"].tolist() == [f"dev_Accounting_{k}" for k in range(1, 6)]
    assert [a[0] for a in acc["answers"]] == ["D", "A", "C", "A", "B"]
    agri = dev[dev["subject"] == "Agriculture"].iloc[0].to_dict()  # synthetic MC: choices are stripped
    assert json.loads(agri["options"]) == {"A": "a cat", "B": "a dog"} and list(agri["answers"]) == ["A"]
    arch = dev[dev["subject"] == "Architecture_and_Engineering"].iloc[0].to_dict()  # synthetic open question
    assert list(arch["answers"]) == ["24/7", "3.429"] and arch["num_images"] == 2 and arch["options"] == "{}"
    assert build_question(arch, resolve("mmmu-dev")) == (
        " Compute the ratio.\nAnswer the question using a single word or phrase.")
    test = normalize("mmmu-test", root)
    assert all(a == [] for a in test.column("answers").to_pylist())
    assert any("EvalAI" in n for n in table_notes(test))
    # the HF dataset-repo layout (mmmu/MMMU/<Subject>/, as in shared/realdata) is read the same way
    hf = root / "mmmu" / "MMMU"
    hf.mkdir()
    for subject in MMMU_SUBJECTS:
        (root / "mmmu" / subject).rename(hf / subject)
    assert normalize("mmmu-dev", root).to_pandas()["id"].tolist() == dev["id"].tolist()


def test_mmmu_bad_options_and_missing_subject(tmp_path: Path) -> None:
    d = tmp_path / "mmmu"
    shard = d / "Accounting" / "dev-00000-of-00001.parquet"
    good = _synthetic_mmmu("Accounting", "dev", 1)
    bad = dict(_synthetic_mmmu("Accounting", "dev", 1), id="dev_Accounting_2", options="['$1', '$2'")
    _mmmu_shard(shard, [good, bad])
    with pytest.raises(DataError, match="not a Python list literal") as err:
        read_mmmu(d, "dev", subjects=("Accounting",))
    assert str(shard) in str(err.value) and "[1].options" in str(err.value)
    _mmmu_shard(shard, [good])
    with pytest.raises(DataError, match="no dev-\\*.parquet shard for subject 'Agriculture'"):
        normalize("mmmu-dev", tmp_path)


@needs_realdata
def test_mmmu_answer_dict_disagreement(tmp_path: Path) -> None:
    root = build_mmmu_root(tmp_path)
    gold = json.loads((REALDATA / "mmmu" / "answer_dict_val.json").read_text())
    gold["validation_Accounting_3"]["ground_truth"] = "A"
    path = tmp_path / "answer_dict_val.json"
    path.write_text(json.dumps(gold))
    with pytest.raises(DataError, match="validation_Accounting_3") as err:
        read_mmmu(root / "mmmu", "validation", subjects=("Accounting",), answer_dict=path)
    assert str(path) in str(err.value)


# --- ScienceQA (rebuilt from real problems.json test records) --------------------------------------


def build_scienceqa_root(root: Path) -> tuple[Path, list[tuple[str, dict]]]:
    """``scienceqa/scienceqa_test_img.jsonl`` in the Qwen-VL converted layout {image, hint, question,
    choices, answer} (the real file is not available), from the real test records with an image; the
    image path follows the README's ``scienceqa/images/test/<pid>/image.png`` layout."""
    problems = json.loads((REALDATA / "scienceqa" / "third_party_think-scienceqa" / "problems.json").read_text())
    recs = [(pid, p) for pid, p in problems.items() if p["split"] == "test" and p["image"]]
    d = root / "scienceqa"
    d.mkdir(parents=True)
    with (d / "scienceqa_test_img.jsonl").open("w", encoding="utf-8") as fh:
        for pid, p in recs:
            image = f"data/scienceqa/images/test/{pid}/image.png"
            touch(root / "scienceqa" / "images" / "test" / pid / "image.png")
            fh.write(json.dumps({"image": image, "hint": p["hint"], "question": p["question"],
                                 "choices": p["choices"], "answer": p["answer"]}) + "\n")
    return root, recs


@needs_realdata
def test_scienceqa(tmp_path: Path) -> None:
    root, recs = build_scienceqa_root(tmp_path)
    df = normalize("scienceqa", root).to_pandas()
    assert len(df) == len(recs) == 14
    assert df["id"].tolist() == [f"scienceqa_test_img:{k}" for k in range(14)]
    assert [a[0] for a in df["answers"]] == ["ABCDE"[p["answer"]] for _, p in recs]
    assert df["answer_index"].tolist() == [p["answer"] for _, p in recs]
    assert df["image_path"].iloc[0] == f"scienceqa/images/test/{recs[0][0]}/image.png"
    k = next(i for i, (_, p) in enumerate(recs) if not p["hint"])
    assert df["hint"].isna().iloc[k]  # empty hint -> none, as the original
    p = recs[0][1]
    expected = p["hint"] + "\n" + p["question"] + "".join(
        f"\n{L}. {c}" for L, c in zip("ABCDE", p["choices"], strict=False))
    expected += "\nAnswer with the option's letter from the given choices directly."
    assert build_question(df.iloc[0].to_dict(), resolve("scienceqa")) == expected


def test_scienceqa_bad_answer_index(tmp_path: Path) -> None:
    d = tmp_path / "scienceqa"
    touch(d / "images" / "x.png")
    rec = {"image": "images/x.png", "hint": "", "question": "Q?", "choices": ["a", "b"], "answer": 2}
    (d / "scienceqa_test_img.jsonl").write_text(json.dumps(dict(rec, answer=0)) + "\n" + json.dumps(rec) + "\n")
    with pytest.raises(DataError, match="answer index 2") as err:
        normalize("scienceqa", tmp_path)
    assert "scienceqa_test_img.jsonl:2:" in str(err.value)


# --- Tiny LVLM (rebuilt) ---------------------------------------------------------------------------


def build_tiny_lvlm_root(root: Path) -> Path:
    """``tiny_lvlm/updated_datasets/<Category>/dataset.json`` in the documented format [{image_path,
    question, gt_answers}] (the real files are on Google Drive only); ``gt_answers`` as a list and as a
    plain string, image files next to dataset.json."""
    base = root / "tiny_lvlm" / "updated_datasets"
    data = {
        "Visual_Reasoning": [{"image_path": "vr_0.jpg", "question": "What is the man holding?",
                              "gt_answers": ["umbrella", "an umbrella"]}],
        "Object_Hallucination": [{"image_path": "oh_0.jpg", "question": "Is there a dog in the image?",
                                  "gt_answers": "yes"},
                                 {"image_path": "oh_1.jpg", "question": "Is there a cat in the image?",
                                  "gt_answers": "no"}],
    }
    for cat, items in data.items():
        (base / cat).mkdir(parents=True)
        (base / cat / "dataset.json").write_text(json.dumps(items))
        for it in items:
            touch(base / cat / it["image_path"])
    (base / "README_not_a_category").mkdir()  # folders without dataset.json are ignored, as the original
    return root


def test_tiny_lvlm(tmp_path: Path) -> None:
    root = build_tiny_lvlm_root(tmp_path)
    table = normalize("tiny_lvlm", root)
    df = table.to_pandas()
    assert df["id"].tolist() == ["Object_Hallucination:0", "Object_Hallucination:1", "Visual_Reasoning:0"]
    assert [list(a) for a in df["answers"]] == [["yes"], ["no"], ["umbrella", "an umbrella"]]
    assert df["image_path"].iloc[2] == "tiny_lvlm/updated_datasets/Visual_Reasoning/vr_0.jpg"
    assert any("Visual_Perception" in n for n in table_notes(table))
    assert build_question(df.iloc[2].to_dict(), resolve("tiny_lvlm")) == (
        "What is the man holding? Answer the question using a single word or phrase.")


def test_tiny_lvlm_image_in_subfolder_is_refused(tmp_path: Path) -> None:
    root = build_tiny_lvlm_root(tmp_path)
    f = root / "tiny_lvlm" / "updated_datasets" / "Visual_Reasoning" / "dataset.json"
    f.write_text(json.dumps([{"image_path": "images/vr_0.jpg", "question": "Q", "gt_answers": ["a"]}]))
    with pytest.raises(DataError, match="parent folder 'images'") as err:
        normalize("tiny_lvlm", root)
    assert str(f) in str(err.value) and "[0].image_path" in str(err.value)


# --- LLaVA-Bench (real files) ----------------------------------------------------------------------


def _copy_real_files(src: Path, d: Path, names: tuple[str, ...]) -> None:
    """The real files ``names`` from ``src`` into ``d``; the images that the first one (the questions)
    names are copied from ``src/images`` when the samples have them, else placeholders."""
    (d / "images").mkdir(parents=True)
    for name in names:
        shutil.copy(src / name, d / name)
    for q in read_jsonl(d / names[0]):
        image = src / "images" / q["image"]
        if image.is_file():
            shutil.copy(image, d / "images" / q["image"])
        elif not (d / "images" / q["image"]).exists():
            touch(d / "images" / q["image"])


def build_llava_bench_root(root: Path) -> Path:
    files = ("questions.jsonl", "context.jsonl", "answers_gpt4.jsonl")
    _copy_real_files(REALDATA / "llava_bench", root / "llava-bench-in-the-wild", files)
    return root


@needs_realdata
def test_llava_bench_real_files(tmp_path: Path) -> None:
    root = build_llava_bench_root(tmp_path)
    df = normalize("llava-bench", root).to_pandas()
    questions = read_jsonl(REALDATA / "llava_bench" / "questions.jsonl")
    refs = read_jsonl(REALDATA / "llava_bench" / "answers_gpt4.jsonl")
    assert len(df) == 34 and df["id"].tolist() == [str(q["question_id"]) for q in questions]
    assert [a[0] for a in df["answers"]] == [r["text"] for r in refs]
    assert Counter(df["category"]) == {"complex": 15, "conv": 11, "detail": 8}
    assert df.loc[0, "caption"] == "An aerial view of Diamond Head in the Hawaiian Islands."
    assert df.loc[0, "reference_answer_id"] == "TeyehNxHw5j8naXfEWaxWd"
    assert df.loc[0, "image_path"] == "llava-bench-in-the-wild/images/001.jpg"
    assert build_question(df.iloc[0].to_dict(), resolve("llava-bench")) == (
        "What is the name of this famous sight in the photo? Please give a detailed answer.")


@needs_realdata
def test_llava_bench_reordered_references_are_refused(tmp_path: Path) -> None:
    root = build_llava_bench_root(tmp_path)
    f = root / "llava-bench-in-the-wild" / "answers_gpt4.jsonl"
    lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[4], lines[5] = lines[5], lines[4]
    f.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match="pairs them by order") as err:
        normalize("llava-bench", root)
    assert f"{f}:5:" in str(err.value) and "questions.jsonl:5" in str(err.value)


# --- MM-Vet (real files) ---------------------------------------------------------------------------


def build_mmvet_root(root: Path) -> Path:
    _copy_real_files(REALDATA / "mmvet", root / "mm-vet", ("llava-mm-vet.jsonl", "mm-vet.json"))
    return root


@needs_realdata
def test_mmvet_real_files(tmp_path: Path) -> None:
    root = build_mmvet_root(tmp_path)
    df = normalize("mmvet", root).to_pandas()
    gold = json.loads((REALDATA / "mmvet" / "mm-vet.json").read_text())
    assert len(df) == 25 and df["id"].tolist() == [str(k) for k in range(25)]
    assert df["mmvet_key"].tolist() == list(gold)
    assert [a[0] for a in df["answers"]] == [g["answer"] for g in gold.values()]
    assert list(df.loc[0, "capability"]) == ["ocr", "math"] and df.loc[0, "answers"][0] == "-1<AND>-5"
    assert df.loc[2, "image_path"] == "mm-vet/images/v1_1.png"
    assert build_question(df.iloc[0].to_dict(), resolve("mmvet")) == "What is x in the equation? "


@needs_realdata
def test_mmvet_question_mismatch_and_malformed_line(tmp_path: Path) -> None:
    root = build_mmvet_root(tmp_path)
    f = root / "mm-vet" / "llava-mm-vet.jsonl"
    lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
    rec = json.loads(lines[3])
    rec["text"] = "Something else?"
    lines[3] = json.dumps(rec) + "\n"
    f.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match="differ from") as err:
        normalize("mmvet", root)
    assert f"{f}:4:" in str(err.value)
    lines[3] = '{"image": "v1_3.png", "text": \n'
    f.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match="malformed JSON") as err:
        normalize("mmvet", root)
    assert f"{f}:4:" in str(err.value)


# --- MMVP (rebuilt CSV) ------------------------------------------------------------------------------


def build_mmvp_root(root: Path, extra_rows: list[list[str]] | None = None) -> Path:
    """``MMVP/Questions.csv`` with the real header (``lndex`` sic) and option syntax; row 1 is the real
    first record quoted in the V1.2 script, the others are written in the same format."""
    d = root / "MMVP"
    rows = [
        ["1", "Are the butterfly's wings closer to being open or closed?", "(a) Open (b) Closed", "(a)"],
        ["2", "Are the butterfly's wings closer to being open or closed?", "(a) Open (b) Closed", "(b)"],
        ["3", "Is the dog facing left or right from the camera's perspective?", "(a) Left (b) Right", "(b)"],
        ["4", "Is the dog facing left or right from the camera's perspective?", "(a) Left (b) Right", "(a)"],
        ["5", "Do you see any window in this image?", "(a) Yes (b) No", "(a)"],
    ] + (extra_rows or [])
    (d / "MMVP Images").mkdir(parents=True)
    with (d / "Questions.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["lndex", "Question", "Options", "Correct Answer"])
        w.writerows(rows)
    for r in rows:
        touch(d / "MMVP Images" / f"{r[0]}.jpg")
    return root


def test_mmvp(tmp_path: Path) -> None:
    root = build_mmvp_root(tmp_path)
    table = normalize("mmvp", root)
    df = table.to_pandas()
    assert df["id"].tolist() == ["1", "2", "3", "4", "5"] and df["pair_index"].tolist() == [0, 0, 1, 1, 2]
    assert [a[0] for a in df["answers"]] == ["A", "B", "B", "A", "A"]
    assert json.loads(df.loc[0, "options"]) == {"A": "Open", "B": "Closed"}
    assert df.loc[0, "image_path"] == "MMVP/MMVP Images/1.jpg"
    assert any("no pair partner" in n for n in table_notes(table))
    assert build_question(df.iloc[0].to_dict(), resolve("mmvp")) == (
        "Are the butterfly's wings closer to being open or closed?\nA. Open\nB. Closed\n"
        "Answer with the option's letter from the given choices directly.")


def test_mmvp_bad_answer_names_line(tmp_path: Path) -> None:
    root = build_mmvp_root(tmp_path, extra_rows=[["6", "Is it day?", "(a) Yes (b) No", "(c)"]])
    with pytest.raises(DataError, match="not one of the options") as err:
        normalize("mmvp", root)
    assert "Questions.csv:7:" in str(err.value) and "'Correct Answer'" in str(err.value)


# --- MathVista (real testmini.json, rebuilt query.json) --------------------------------------------

# Verbatim entries of the MathVista repo's data/query.json (the HF ``query`` field) for four pids.
REAL_QUERIES = {
    "1": "Hint: Please answer the question requiring a floating-point number with one decimal place and provide "
         "the final value, e.g., 1.2, 1.3, 1.4, at the end.\nQuestion: When a spring does work on an object, we "
         "cannot find the work by simply multiplying the spring force by the object's displacement. The reason is "
         "that there is no one value for the force-it changes. However, we can split the displacement up into an "
         "infinite number of tiny parts and then approximate the force in each as being constant. Integration "
         "sums the work done in all those parts. Here we use the generic result of the integration.\r\n\r\nIn "
         "Figure, a cumin canister of mass $m=0.40 \\mathrm{~kg}$ slides across a horizontal frictionless counter "
         "with speed $v=0.50 \\mathrm{~m} / \\mathrm{s}$. It then runs into and compresses a spring of spring "
         "constant $k=750 \\mathrm{~N} / \\mathrm{m}$. When the canister is momentarily stopped by the spring, by "
         "what distance $d$ is the spring compressed?",
    "2": "Hint: Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, "
         "at the end.\nQuestion: what is the total volume of the measuring cup? (Unit: g)",
    "5": "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.\n"
         "Question: Find $m\\angle H$\nChoices:\n(A) 97\n(B) 102\n(C) 107\n(D) 122",
    "10": "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.\n"
          "Question: Which object comes next?\nChoices:\n(A) A\n(B) B\n(C) C\n(D) D\n(E) E",
}


def _mathvista_query(p: dict) -> str:
    """The documented MathVista query rules (hint by answer type, "Question: ..." + unit, lettered choices)."""
    if p["question_type"] == "multi_choice":
        hint = "Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end."
    elif p["answer_type"] == "integer":
        hint = ("Please answer the question requiring an integer answer and provide the final value, "
                "e.g., 1, 2, 3, at the end.")
    elif p["answer_type"] == "float" and p["precision"] == 1:
        hint = ("Please answer the question requiring a floating-point number with one decimal place and provide "
                "the final value, e.g., 1.2, 1.3, 1.4, at the end.")
    else:
        raise AssertionError(f"no rule in this test for {p['answer_type']} / {p['precision']}")
    text = f"Hint: {hint}\nQuestion: {p['question']}" + (f" (Unit: {p['unit']})" if p["unit"] else "")
    if p["choices"]:
        text += "\nChoices:" + "".join(f"\n({chr(65 + i)}) {c}" for i, c in enumerate(p["choices"]))
    return text


def build_mathvista_root(root: Path) -> tuple[Path, dict]:
    d = root / "MathVista"
    d.mkdir(parents=True)
    problems = json.loads((REALDATA / "mathvista" / "testmini.json").read_text())
    shutil.copy(REALDATA / "mathvista" / "testmini.json", d / "testmini.json")
    (d / "query.json").write_text(json.dumps({pid: _mathvista_query(p) for pid, p in problems.items()}))
    for p in problems.values():
        touch(d / p["image"])
    return root, problems


@needs_realdata
def test_mathvista_testmini_real_problems(tmp_path: Path) -> None:
    root, problems = build_mathvista_root(tmp_path)
    queries = json.loads((root / "MathVista" / "query.json").read_text())
    assert {pid: queries[pid] for pid in REAL_QUERIES} == REAL_QUERIES  # the rebuilt queries are the real ones
    df = normalize("mathvista-testmini", root).to_pandas()
    assert df["id"].tolist() == [str(k) for k in range(1, 31)]
    assert [a[0] for a in df["answers"]] == [p["answer"] for p in problems.values()]
    assert df.loc[0, "question"] == REAL_QUERIES["1"] and df.loc[0, "precision"] == 1.0
    assert df.loc[0, "answer_type"] == "float" and df.loc[0, "image_path"] == "MathVista/images/1.jpg"
    assert json.loads(df.loc[2, "options"]) == {"A": "135°", "B": "140°", "C": "145°", "D": "150°"}
    assert df.loc[1, "unit"] == "g" and pd.isna(df.loc[1, "precision"]) and df.loc[1, "options"] == "{}"
    assert df.loc[0, "source"] == "SciBench" and list(df.loc[0, "skills"]) == ["scientific reasoning"]
    assert build_question(df.iloc[3].to_dict(), resolve("mathvista-testmini")) == df.loc[3, "question"]
    # the test split: same layout, no gold
    shutil.copy(root / "MathVista" / "testmini.json", root / "MathVista" / "test.json")
    test = normalize("mathvista-test", root)
    assert all(a == [] for a in test.column("answers").to_pylist())
    assert any("30 answers in the file ignored" in n for n in table_notes(test))


@needs_realdata
def test_mathvista_without_query_is_refused(tmp_path: Path) -> None:
    root, _ = build_mathvista_root(tmp_path)
    (root / "MathVista" / "query.json").unlink()
    with pytest.raises(DataError, match="has no 'query'") as err:
        normalize("mathvista-testmini", root)
    assert "testmini.json" in str(err.value) and "'1.query'" in str(err.value)


# --- SEED (rebuilt) ----------------------------------------------------------------------------------

SEED_TYPES = {"Scene Understanding": 1, "Instance Identity": 2, "Instance Attributes": 3, "Instance Location": 4,
              "Instances Counting": 5, "Spatial Relation": 6, "Instance Interaction": 7, "Visual Reasoning": 8,
              "Text Understanding": 9, "Action Recognition": 10, "Action Prediction": 11,
              "Procedure Understanding": 12}


def build_seed_root(root: Path, n: int = 12) -> tuple[Path, list[dict]]:
    """``SEED/SEED-Bench.json`` ({question_type: {name: id}, questions: [...]}) and the LLaVA-format
    ``SEED/seed.jsonl``, written in the documented layout (neither file is available). Question ids and
    gold letters are real (the official GPT-4V result file); texts, types and images are made up."""
    lines = (REALDATA / "seed" / "reference_outputs" / "GPT-4V_SEED-Bench-1.json.lines").read_text().splitlines()
    real = [json.loads(ln.rstrip().rstrip(",")) for ln in lines if ln.strip()][:n]
    questions, jsonl = [], []
    for k, r in enumerate(real):
        tid = 1 + k % 3 if k < n - 2 else 10  # types 1-3 and two "video" questions of type 10
        data_type = "image" if tid <= 9 else "video"
        image = f"SEED-Bench-image/{r['question_id']}.jpg" if data_type == "image" else \
            f"SEED-Bench-video-image-1/v{r['question_id']}.png"
        questions.append({"answer": r["gt_answer"], "choice_a": "one", "choice_b": "two", "choice_c": "three",
                          "choice_d": "four", "data_id": image.split("/")[-1], "data_type": data_type,
                          "question": f"Question {k}?", "question_id": r["question_id"], "question_type_id": tid})
        jsonl.append({"question_id": r["question_id"], "image": image, "answer": r["gt_answer"],
                      "text": f"Question {k}?\nA. one\nB. two\nC. three\nD. four\n"
                              "Answer with the option's letter from the given choices directly."})
        touch(root / "SEED" / image)
    d = root / "SEED"
    (d / "SEED-Bench.json").write_text(json.dumps({"question_type": SEED_TYPES, "questions": questions}))
    (d / "seed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in jsonl))
    return root, questions


@needs_realdata
def test_seed(tmp_path: Path) -> None:
    root, questions = build_seed_root(tmp_path)
    table = normalize("seed", root)
    df = table.to_pandas()
    assert df["id"].tolist() == [q["question_id"] for q in questions] and df["id"].iloc[0] == "104933"
    assert [a[0] for a in df["answers"]] == [q["answer"] for q in questions]
    assert df["question_type_id"].tolist() == [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 10, 10]
    assert df.loc[0, "question_type"] == "Scene Understanding" and df.loc[11, "data_type"] == "video"
    assert json.loads(df.loc[0, "options"]) == {"A": "one", "B": "two", "C": "three", "D": "four"}
    assert df.loc[0, "image_path"] == "SEED/SEED-Bench-image/104933.jpg"
    assert build_question(df.iloc[0].to_dict(), resolve("seed")) == df.loc[0, "question"]
    assert any("Instance Location" in n and "divides by zero" in n for n in table_notes(table))


@needs_realdata
def test_seed_unannotated_question(tmp_path: Path) -> None:
    root, _ = build_seed_root(tmp_path)
    f = root / "SEED" / "seed.jsonl"
    recs = read_jsonl(f)
    recs[2]["question_id"] = "999999999"
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    with pytest.raises(DataError, match="not in") as err:
        normalize("seed", root)
    assert f"{f}:3:" in str(err.value) and "'question_id'" in str(err.value)
