"""Demo raw files for the multimodal benchmarks (eval table, section B), in the layouts their normalizers read.

The companion of :mod:`internvl.demo.bench_writers` (which documents the why and runs both halves). Every
gold answer is true for the rendered scene, so a model that answers the scene correctly gets the maximum
score from each scorer. Layout written under ``root``::

    data/mme/Your_Results/<subtask>.txt (14) + data/mme/images/<subtask>/    image<TAB>question<TAB>Yes|No
    data/mmbench/mmbench_{dev_cn,test_en,test_cn}_20231003.tsv               base64 JPEG, rotated copies
    data/mmmu/MMMU/<Subject>/{dev,validation,test}-00000-of-00001.parquet    HF shards, image bytes inline
    data/mmmu/answer_dict_val.json
    data/scienceqa/scienceqa_test_img.jsonl + images/test/<k>/image.png
    data/tiny_lvlm/updated_datasets/<Category>/dataset.json + images
    data/llava-bench-in-the-wild/{questions,context,answers_gpt4}.jsonl + images/
    data/mm-vet/llava-mm-vet.jsonl + mm-vet.json + images/v1_<k>.png
    data/MMVP/Questions.csv + "MMVP Images"/<lndex>.jpg                        image pairs
    data/MathVista/{testmini,test,query}.json + images/<pid>.jpg
    data/SEED/seed.jsonl + SEED-Bench.json + SEED-Bench-image/
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from internvl.data.io import atomic_path, write_jsonl_atomic
from internvl.demo import world
from internvl.demo.bench_writers import (
    Writer,
    bench_rng,
    draw_scene,
    dump_json,
    mcq_with_letters,
    one_qa,
    png,
    write_image,
    write_text,
)
from internvl.demo.world import MCQ, Scene, Shape
from internvl.demo.writers import MMBENCH_COLUMNS, DemoSizes, _arrange, _jpeg, _LetterBag, mmbench_prompt

LETTERS = "ABCD"
MC_CATEGORIES = tuple(world.MC_CATEGORIES)
_COUNT_WORDS = ("zero", "one", "two", "three", "four")


def _present(scene: Scene) -> set[int]:
    return {s.cell for s in scene.shapes}


# ---------------------------------------------------------------------------------------------------------
# MME: 14 subtask files, two yes/no questions per image (the first answered Yes, the second No)


def _mme_pair(subtask: str, scene: Scene, rng: random.Random) -> tuple[str, str]:
    """(question whose answer is Yes, question whose answer is No) for one image of ``subtask``.

    The real subtasks are about photos, posters, code...; each is mapped to a shape-world skill of the
    same flavour (counting, positions, colours, arithmetic on counts, "translating" a colour name).
    """
    s = rng.choice(scene.shapes)
    n = len(scene.shapes)
    other_color = rng.choice([c for c in world.COLOR_NAMES if c != s.color])
    other_pos = rng.choice([p for p in world.POSITIONS if p != s.position])
    absent = world.negative_object(scene, rng)
    if subtask in ("existence", "landmark"):
        pair = (f"Is there a {s.name} in this image?", f"Is there a {absent} in this image?")
    elif subtask == "count":
        pair = (f"Are there {_COUNT_WORDS[n]} shapes in this image?",
                f"Are there {_COUNT_WORDS[n + 1]} shapes in this image?")
    elif subtask in ("position", "celebrity"):
        pair = (f"Is the {s.name} in the {s.position} of the image?", f"Is the {s.name} in the {other_pos} of the image?")
    elif subtask in ("color", "artwork"):
        pair = (f"Is the {s.kind} in the {s.position} {s.color}?", f"Is the {s.kind} in the {s.position} {other_color}?")
    elif subtask in ("posters", "OCR"):
        pair = (f"Is the shape in the {s.position} a {s.kind}?",
                f"Is the shape in the {s.position} a {rng.choice([k for k in world.KINDS if k != s.kind])}?")
    elif subtask == "scene":
        pair = ("Is this picture a drawing of shapes on a plain background?", "Is this picture a photo of a busy street?")
    elif subtask == "commonsense_reasoning":
        pair = (f"Could the {s.name} be described as {s.size}?",
                f"Could the {s.name} be described as {'small' if s.size == 'large' else 'large'}?")
    elif subtask == "numerical_calculation":
        pair = (f"Is the number of shapes in the image plus two equal to {n + 2}?",
                f"Is the number of shapes in the image plus two equal to {n + 3}?")
    elif subtask == "text_translation":
        pair = (f"Is '{s.color}' the English name of the color of the {s.kind} in the {s.position}?",
                f"Is '{other_color}' the English name of the color of the {s.kind} in the {s.position}?")
    else:  # code_reasoning
        pair = (f"If x is the number of shapes in the image, does the Python code print(x * 2) output {2 * n}?",
                f"If x is the number of shapes in the image, does the Python code print(x * 2) output {2 * n + 1}?")
    yes, no = pair
    return f"{yes} Please answer yes or no.", f"{no} Please answer yes or no."


_MME_COCO_STYLE = ("existence", "count", "position", "color")  # these use COCO val2017 file names


def write_mme(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """``Your_Results/<subtask>.txt``: ``image<TAB>question<TAB>Yes|No``, LF, the pair of an image adjacent."""
    from internvl.data.bench_family_b import MME_COGNITION, MME_PERCEPTION

    rng = bench_rng(seed, "mme")
    per_subtask = max(1, sizes.bench_items // 4)
    total = 0
    for subtask in MME_PERCEPTION + MME_COGNITION:
        lines = []
        for k in range(per_subtask):
            scene = draw_scene(rng, scenes)
            if subtask in _MME_COCO_STYLE:
                name = f"{rng.randrange(1, 581_929):012d}.jpg"
            else:
                name = f"{k + 1:04d}.png" if subtask.endswith("reasoning") or subtask == "OCR" else f"{k + 1:04d}.jpg"
            write_image(root, f"data/mme/images/{subtask}/{name}", scene, sizes.image_size, name[-3:])
            yes, no = _mme_pair(subtask, scene, rng)
            lines += [f"{name}\t{yes}\tYes", f"{name}\t{no}\tNo"]
        write_text(root / f"data/mme/Your_Results/{subtask}.txt", "\n".join(lines) + "\n")
        total += len(lines)
    return {"data/mme/Your_Results": total}


# ---------------------------------------------------------------------------------------------------------
# MMBench dev-cn / test-en / test-cn

_CN_COLOR = {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色", "purple": "紫色"}
_CN_KIND = {"circle": "圆形", "square": "正方形", "triangle": "三角形"}
_CN_POS = {"top left": "左上角", "top right": "右上角", "bottom left": "左下角", "bottom right": "右下角"}
_CN_HINTS = ("图中是一些画在浅色背景上的彩色几何图形。", "图片被分成四个相等的部分：左上角、右上角、左下角和右下角。")


def _cn_mcq(scene: Scene, rng: random.Random) -> MCQ:
    """A Chinese multiple-choice question (MMBench-CN translates the English questions and options)."""
    s = rng.choice(scene.shapes)
    form = rng.randrange(3)
    if form == 0:
        ref = f"图中的{_CN_KIND[s.kind]}" if len(scene.with_kind(s.kind)) == 1 else f"位于{_CN_POS[s.position]}的图形"
        others = rng.sample([_CN_COLOR[c] for c in world.COLOR_NAMES if c != s.color], rng.choice((1, 2, 3)))
        return MCQ(f"{ref}是什么颜色？", (_CN_COLOR[s.color], *others), "attribute_recognition",
                   world.MC_CATEGORIES["attribute_recognition"])
    if form == 1:
        others = rng.sample([_CN_KIND[k] for k in world.KINDS if k != s.kind], rng.choice((1, 2)))
        return MCQ(f"位于{_CN_POS[s.position]}的图形是什么形状？", (_CN_KIND[s.kind], *others), "attribute_recognition",
                   world.MC_CATEGORIES["attribute_recognition"])
    others = rng.sample([_CN_POS[p] for p in world.POSITIONS if p != s.position], 3)
    return MCQ(f"{_CN_COLOR[s.color]}的{_CN_KIND[s.kind]}位于图片的什么位置？", (_CN_POS[s.position], *others),
               "object_localization", world.MC_CATEGORIES["object_localization"])


def _mmbench_rows(index: int, scene: Scene, rng: random.Random, letters: _LetterBag, chinese: bool, split: str,
                  sizes: DemoSizes) -> list[dict[str, Any]]:
    """The question's row and its rotated copies (``index + k * 1e6``), as in the real TSVs."""
    if chinese:
        mcq = _cn_mcq(scene, rng)
        options, answer = _arrange(mcq, rng, letters.draw(len(mcq.options)))
        hint = rng.choice(_CN_HINTS) if rng.random() < 0.4 else ""
    else:
        mcq, options, answer = mcq_with_letters(scene, rng, letters)
        hint = world.sample_hint(rng) or ""
    base = {"index": index, "question": mcq.question, "hint": hint, "answer": answer, "category": mcq.category,
            "image": base64.b64encode(_jpeg(scene, sizes.image_size)).decode("ascii"), "source": "demo_shapes",
            "l2-category": mcq.l2_category, "comment": "", "split": split}
    rows = [{**base, **options}]
    values = list(options.values())
    for k in range(1, len(values)):
        rotated = values[k:] + values[:k]
        rows.append({**base, **dict(zip(LETTERS, rotated, strict=False)), "index": index + k * 1_000_000,
                     "answer": LETTERS[rotated.index(options[answer])]})
    return rows


MMBENCH_FILES: dict[str, tuple[str, bool, bool]] = {  # split -> (file, Chinese, has answers)
    "mmbench-dev-cn": ("data/mmbench/mmbench_dev_cn_20231003.tsv", True, True),
    "mmbench-test-en": ("data/mmbench/mmbench_test_en_20231003.tsv", False, False),
    "mmbench-test-cn": ("data/mmbench/mmbench_test_cn_20231003.tsv", True, False),
}


def write_mmbench_more(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """The three 20231003 TSVs: base64 JPEG inline, quoted multi-line hints, rotated copies for CircularEval;
    the test files have no ``answer`` column (the MMBench server holds the answers)."""
    counts: dict[str, int] = {}
    for split, (dest, chinese, with_answer) in MMBENCH_FILES.items():
        rng = bench_rng(seed, split)
        letters = _LetterBag(rng)
        rows: list[dict[str, Any]] = []
        for index in range(sizes.bench_items):
            scene = draw_scene(rng, scenes)
            rows.extend(_mmbench_rows(index, scene, rng, letters, chinese, split.split("-")[1], sizes))
        rows.sort(key=lambda r: r["index"])
        columns = MMBENCH_COLUMNS if with_answer else tuple(c for c in MMBENCH_COLUMNS if c != "answer")
        with atomic_path(root / dest) as tmp:
            with tmp.open("w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
                writer.writerow(columns)
                for r in rows:
                    writer.writerow([r.get(c, "") for c in columns])
        counts[dest] = len(rows)
    return counts


# ---------------------------------------------------------------------------------------------------------
# MMMU: HF parquet shards, one per subject and split, image bytes inline

MMMU_SPLITS: tuple[str, ...] = ("dev", "validation", "test")
_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
_MMMU_SCHEMA = pa.schema(
    [("id", pa.string()), ("question", pa.string()), ("options", pa.string()), ("explanation", pa.string())]
    + [(f"image_{i}", _IMAGE) for i in range(1, 8)]
    + [(c, pa.string()) for c in ("img_type", "answer", "topic_difficulty", "question_type", "subfield")]
)
_HF_FEATURES = {f.name: ({"_type": "Image"} if f.type == _IMAGE else {"dtype": "string", "_type": "Value"})
                for f in _MMMU_SCHEMA}
_MMMU_SCHEMA = _MMMU_SCHEMA.with_metadata({"huggingface": json.dumps({"info": {"features": _HF_FEATURES}})})


def _mmmu_record(rid: str, scene: Scene, rng: random.Random, letters: _LetterBag, size: int) -> dict[str, Any]:
    """A multiple-choice question (7 in 10) or an open counting question, ``<image 1>`` in the text."""
    if rng.random() < 0.7:
        mcq, options, answer = mcq_with_letters(scene, rng, letters)
        question, choices, qtype = f"<image 1> {mcq.question}", list(options.values()), "multiple-choice"
    else:
        qa = one_qa(scene, rng, ("count",))
        question, choices, qtype, answer = f"{qa.question} <image 1>", [], "open", qa.answer
    return {"id": rid, "question": question, "options": str(choices), "explanation": "",
            "image_1": {"bytes": png(scene, size), "path": f"{rid}_1.png"},
            **{f"image_{i}": None for i in range(2, 8)},
            "img_type": "['Diagrams']", "answer": answer, "topic_difficulty": rng.choice(("Easy", "Medium", "Hard")),
            "question_type": qtype, "subfield": "Shapes and colours"}


def write_mmmu(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """All 30 subjects x {dev, validation, test} as HF parquet shards + ``answer_dict_val.json``.

    MMMU needs every subject, so each gets ``ceil(bench_items / 30)`` questions (at least one). Test
    answers are "?" as on the Hub (EvalAI holds them).
    """
    from internvl.data.bench_family_b import MMMU_SUBJECTS

    per_subject = max(1, math.ceil(sizes.bench_items / len(MMMU_SUBJECTS)))
    counts: dict[str, int] = {}
    answer_dict: dict[str, dict[str, str]] = {}
    for split in MMMU_SPLITS:
        rng = bench_rng(seed, f"mmmu-{split}")
        letters = _LetterBag(rng)
        n = 0
        for subject in MMMU_SUBJECTS:
            records = []
            for k in range(per_subject):
                rec = _mmmu_record(f"{split}_{subject}_{k + 1}", draw_scene(rng, scenes), rng, letters, sizes.image_size)
                if split == "test":
                    rec["answer"] = "?"
                elif split == "validation":
                    kind = "multiple-choice" if rec["question_type"] == "multiple-choice" else "short-answer"
                    answer_dict[rec["id"]] = {"question_type": kind, "ground_truth": rec["answer"]}
                records.append(rec)
            dest = root / f"data/mmmu/MMMU/{subject}/{split}-00000-of-00001.parquet"
            with atomic_path(dest, suffix=".parquet.tmp") as tmp:
                pq.write_table(pa.Table.from_pylist(records, schema=_MMMU_SCHEMA), tmp)
            n += len(records)
        counts[f"data/mmmu/MMMU/*/{split}-00000-of-00001.parquet"] = n
    dump_json(root / "data/mmmu/answer_dict_val.json", answer_dict, indent=4, newline=True)
    return counts


# ---------------------------------------------------------------------------------------------------------
# ScienceQA, Tiny LVLM


def write_scienceqa(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """``scienceqa_test_img.jsonl``: {image, hint, question, choices, answer (index)}; hints may be empty."""
    rng = bench_rng(seed, "scienceqa")
    letters = _LetterBag(rng)
    records = []
    for k in range(sizes.bench_items):
        scene = draw_scene(rng, scenes)
        image = f"data/scienceqa/images/test/{k + 1}/image.png"
        write_image(root, image, scene, sizes.image_size, "png")
        mcq, options, answer = mcq_with_letters(scene, rng, letters)
        hint = world.sample_hint(rng, 0.5) or ""
        records.append({"image": image, "hint": hint, "question": mcq.question, "choices": list(options.values()),
                        "answer": LETTERS.index(answer)})
    dest = "data/scienceqa/scienceqa_test_img.jsonl"
    write_jsonl_atomic(root / dest, records)
    return {dest: len(records)}


_CORNERS = {"circle": "0", "square": "4", "triangle": "3"}


def _tiny_item(category: str, scene: Scene, rng: random.Random) -> tuple[str, str]:
    """(question, gold) of the category's flavour: perception, knowledge, reasoning, commonsense, hallucination."""
    if category == "Visual_Commonsense":
        s = rng.choice(scene.shapes)
        return f"How many corners does the shape in the {s.position} have?", _CORNERS[s.kind]
    families = {"Visual_Perception": ("color", "shape"), "Visual_Knowledge_Acquisition": ("position",),
                "Visual_Reasoning": ("count", "size"), "Object_Hallucination": ("existence",)}[category]
    qa = one_qa(scene, rng, families)
    return qa.question, qa.answer


def write_tiny_lvlm(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """``updated_datasets/<Category>/dataset.json`` [{image_path, question, gt_answers}], images beside it."""
    from internvl.data.bench_family_b import TINY_LVLM_CATEGORIES

    rng = bench_rng(seed, "tiny_lvlm")
    per_category = max(1, math.ceil(sizes.bench_items / len(TINY_LVLM_CATEGORIES)))
    counts: dict[str, int] = {}
    for category in TINY_LVLM_CATEGORIES:
        d = f"data/tiny_lvlm/updated_datasets/{category}"
        items = []
        for k in range(per_category):
            scene = draw_scene(rng, scenes)
            name = f"{k:04d}.jpg"
            write_image(root, f"{d}/{name}", scene, sizes.image_size)
            question, gold = _tiny_item(category, scene, rng)
            items.append({"image_path": name, "question": question, "gt_answers": gold})
        dump_json(root / f"{d}/dataset.json", items, indent=4)
        counts[f"{d}/dataset.json"] = len(items)
    return counts


# ---------------------------------------------------------------------------------------------------------
# LLaVA-Bench, MM-Vet (judge-scored: gold answers are reference texts)

_SHORTUUID = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _detail(scene: Scene) -> str:
    """A GPT-4-style detailed description: every shape with size, colour and cell, and the empty cells."""
    placed = [f"a {s.size} {s.color} {s.kind} in the {s.position}" for s in scene.shapes]
    empty = [p for i, p in enumerate(world.POSITIONS) if i not in _present(scene)]
    n = len(scene.shapes)
    text = (f"The image is a simple drawing on a plain, light background, divided into four equal parts. It shows "
            f"{_COUNT_WORDS[n]} shape{'s' if n > 1 else ''}: " + "; ".join(placed) + ".")
    if empty:
        text += " The " + " and ".join(empty) + (" parts are" if len(empty) > 1 else " part is") + " empty."
    return text


def _llava_items(scene: Scene) -> list[tuple[str, str, str]]:
    """(category, question, GPT-4-style reference answer) for the three LLaVA-Bench question kinds."""
    order = ", then ".join(f"the {s.name} in the {s.position}" for s in scene.shapes)
    return [
        ("conv", "How many shapes are in the image, and what are they?", world.caption_templates(scene)[3]),
        ("detail", "Describe this image in detail.", _detail(scene)),
        ("complex", "How would you explain where each shape is to someone who cannot see the image?",
         f"Going through the picture in reading order, from the top left to the bottom right, you meet {order}. "
         "Nothing overlaps, so each shape sits on its own in its part of the picture."),
    ]


def write_llava_bench(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """questions / context / answers_gpt4 jsonl (the k-th answer line answers the k-th question) + images."""
    rng = bench_rng(seed, "llava-bench")
    d = "data/llava-bench-in-the-wild"
    questions, context, answers = [], [], []
    for k in range(max(1, math.ceil(sizes.bench_items / 3))):
        scene = draw_scene(rng, scenes)
        name = f"{k + 1:03d}.jpg"
        write_image(root, f"{d}/images/{name}", scene, sizes.image_size)
        context.append({"id": name[:3], "image": name, "caption": world.caption_templates(scene)[1]})
        for category, text, ref in _llava_items(scene):
            qid = len(questions)
            questions.append({"image": name, "text": text, "category": category, "question_id": qid})
            answers.append({"question_id": qid, "prompt": text, "answer_id": "".join(rng.choices(_SHORTUUID, k=22)),
                            "model_id": "gpt-4-0314", "metadata": {}, "text": ref})
    for stem, recs in (("questions", questions), ("context", context), ("answers_gpt4", answers)):
        write_jsonl_atomic(root / f"{d}/{stem}.jsonl", recs)
    return {f"{d}/questions.jsonl": len(questions)}


def _mmvet_item(k: int, scene: Scene, rng: random.Random) -> tuple[str, str, list[str]]:
    """(question, official-style answer with <AND>/<OR>, capabilities)."""
    n = len(scene.shapes)
    s = rng.choice(scene.shapes)
    form = k % 4
    if form == 0:
        return "How many shapes are in the image?", f"{n}<OR>{_COUNT_WORDS[n]}", ["rec"]
    if form == 1:
        colors = list(dict.fromkeys(t.color for t in scene.shapes))
        return "Which colors do the shapes in the image have?", "<AND>".join(colors), ["rec"]
    if form == 2:
        return f"Where is the {s.name} in the image?", s.position, ["rec", "spat"]
    return "What is the number of shapes in the image multiplied by three?", str(3 * n), ["rec", "math"]


def write_mmvet(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """LLaVA's ``llava-mm-vet.jsonl`` + the official ``mm-vet.json`` ({v1_<id>: ...}, indent 4) + PNG images."""
    rng = bench_rng(seed, "mmvet")
    d = "data/mm-vet"
    questions, gold = [], {}
    for k in range(sizes.bench_items):
        scene = draw_scene(rng, scenes)
        name = f"v1_{k}.png"
        write_image(root, f"{d}/images/{name}", scene, sizes.image_size, "png")
        question, answer, caps = _mmvet_item(k, scene, rng)
        questions.append({"image": name, "text": question, "category": "conv", "question_id": k})
        gold[f"v1_{k}"] = {"imagename": name, "question": question, "answer": answer, "capability": caps,
                           "imagesource": "demo"}
    write_jsonl_atomic(root / f"{d}/llava-mm-vet.jsonl", questions)
    dump_json(root / f"{d}/mm-vet.json", gold, indent=4)
    return {f"{d}/llava-mm-vet.jsonl": len(questions)}


# ---------------------------------------------------------------------------------------------------------
# MMVP: pairs of near-identical images with the same question and different answers


def _recoloured(scene: Scene, rng: random.Random) -> tuple[Shape, str, Scene] | None:
    """The scene with one shape's colour changed (keeping colour + kind unique), like MMVP's CLIP-blind pairs."""
    s = rng.choice(scene.shapes)
    taken = {(t.color, t.kind) for t in scene.shapes}
    colors = [c for c in world.COLOR_NAMES if c != s.color and (c, s.kind) not in taken]
    if not colors:
        return None
    c = rng.choice(colors)
    shapes = tuple(Shape(t.cell, t.kind, c, t.size, t.dx, t.dy) if t == s else t for t in scene.shapes)
    return s, c, Scene(shapes)


def write_mmvp(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """``Questions.csv`` (header ``lndex,Question,Options,Correct Answer``) + ``MMVP Images/<lndex>.jpg``."""
    rng = bench_rng(seed, "mmvp")
    rows: list[list[Any]] = []
    for _ in range(max(1, math.ceil(sizes.bench_items / 2))):
        while True:
            scene = world.sample_scene(rng)
            changed = _recoloured(scene, rng)
            if changed is not None:
                break
        s, new_color, other = changed
        pair = [s.color, new_color]
        rng.shuffle(pair)
        question = f"What color is the {s.kind} in the {s.position}?"
        for sc, truth in ((scene, s.color), (other, new_color)):
            scenes.add(sc)
            lndex = len(rows) + 1
            write_image(root, f"data/MMVP/MMVP Images/{lndex}.jpg", sc, sizes.image_size)
            rows.append([lndex, question, f"(a) {pair[0]} (b) {pair[1]}", "(a)" if truth == pair[0] else "(b)"])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["lndex", "Question", "Options", "Correct Answer"])
    writer.writerows(rows)
    write_text(root / "data/MMVP/Questions.csv", buf.getvalue())
    return {"data/MMVP/Questions.csv": len(rows)}


# ---------------------------------------------------------------------------------------------------------
# MathVista

_MV_INT_HINT = ("Hint: Please answer the question requiring an integer answer and provide the final value, "
                "e.g., 1, 2, 3, at the end.\nQuestion: ")
_MV_MC_HINT = ("Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.\n"
               "Question: ")


def _mathvista_problem(pid: str, split: str, scene: Scene, rng: random.Random, size: int) -> tuple[dict[str, Any], str]:
    """(problem record as in MathVista's data/*.json, its query): counting (integer) or multiple choice."""
    if rng.random() < 0.5:
        qa = one_qa(scene, rng, ("count",))
        question, choices, answer, qtype, atype = qa.question, None, qa.answer, "free_form", "integer"
        query = _MV_INT_HINT + question
        skills, category = ["arithmetic reasoning"], "math-targeted-vqa"
    else:
        mcq = world.sample_mcq(scene, rng, rng.choice(("attribute_recognition", "object_localization")))
        assert mcq is not None  # these two categories always have a question
        choices = list(mcq.options)
        rng.shuffle(choices)
        question, answer, qtype, atype = mcq.question, mcq.options[0], "multi_choice", "text"
        query = _MV_MC_HINT + question + "\nChoices:\n" + "\n".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))
        skills, category = ["logical reasoning"], "general-vqa"
    record = {"question": question, "image": f"images/{pid}.jpg", "choices": choices, "unit": None, "precision": None,
              "answer": answer if split == "testmini" else "", "question_type": qtype, "answer_type": atype,
              "pid": pid, "metadata": {"split": split, "language": "english", "img_width": size, "img_height": size,
                                       "source": "demo_shapes", "category": category, "task": "figure question answering",
                                       "context": "synthetic scene", "grade": "elementary school", "skills": skills}}
    return record, query


def write_mathvista(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """``testmini.json`` / ``test.json`` ({pid: problem}, indent 4, ASCII escapes, no final newline, the GitHub
    layout) + ``query.json`` ({pid: query} for both); test pids follow testmini's (1001.. as upstream)."""
    queries: dict[str, str] = {}
    counts: dict[str, int] = {}
    for split, first in (("testmini", 1), ("test", 1001)):
        rng = bench_rng(seed, f"mathvista-{split}")
        problems = {}
        for k in range(sizes.bench_items):
            pid = str(first + k)
            scene = draw_scene(rng, scenes)
            write_image(root, f"data/MathVista/images/{pid}.jpg", scene, sizes.image_size)
            problems[pid], queries[pid] = _mathvista_problem(pid, split, scene, rng, sizes.image_size)
        dump_json(root / f"data/MathVista/{split}.json", problems, indent=4)
        counts[f"data/MathVista/{split}.json"] = len(problems)
    dump_json(root / "data/MathVista/query.json", queries, indent=4)
    return counts


# ---------------------------------------------------------------------------------------------------------
# SEED-Bench-1 (image part)


def _seed_question(tid: int, scene: Scene, rng: random.Random) -> tuple[str, list[str]] | None:
    """(question, 4 options with the correct one first) for SEED type ``tid``, or None if the scene has none."""
    s = rng.choice(scene.shapes)
    if tid == 1:  # distractors describe scenes with another set of objects (not just another order)
        truth = world.caption_templates(scene)[2]
        others: list[str] = []
        while len(others) < 3:
            decoy = world.sample_scene(rng)
            text = world.caption_templates(decoy)[2]
            if set(decoy.objects) != set(scene.objects) and text not in others:
                others.append(text)
        return "Which description best fits the image?", [truth, *others]
    if tid == 2:
        return f"What shape is in the {s.position}?", [s.kind, *[k for k in world.KINDS if k != s.kind], "star"]
    if tid == 3:
        return f"What color is the {s.kind} in the {s.position}?", [s.color, *rng.sample(
            [c for c in world.COLOR_NAMES if c != s.color], 3)]
    if tid == 4:
        return f"Where is the {s.name} located in the image?", [s.position, *[p for p in world.POSITIONS if p != s.position]]
    if tid == 5:
        n = str(len(scene.shapes))
        return "How many shapes are in the image?", [n, *[str(i) for i in range(1, 5) if str(i) != n]]
    drawn = world.spatial_relation(scene, rng)
    if drawn is None:
        return None
    a, b, rel = drawn
    return f"Where is the {a.name} relative to the {b.name}?", [rel, *[r for r in world.RELATIONS if r != rel]]


def write_seed(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """LLaVA-format ``seed.jsonl`` (text = question + options + instruction) + ``SEED-Bench.json`` (gold, types).

    Questions cover the image types 1-6 (scene, identity, attributes, location, counting, spatial); the
    file still lists all 12 types, as the real one does.
    """
    from internvl.eval.metrics_family_b import SEED_QUESTION_TYPES

    rng = bench_rng(seed, "seed")
    letters = _LetterBag(rng)
    records, questions = [], []
    while len(records) < sizes.bench_items:
        tid = 1 + len(records) % 6
        scene = world.sample_scene(rng)
        built = _seed_question(tid, scene, rng)
        if built is None:
            continue
        scenes.add(scene)
        question, opts = built
        options, answer = _arrange(MCQ(question, tuple(opts), "", ""), rng, letters.draw(4))
        qid = str(100_000 + 37 * len(records) + rng.randrange(37))
        data_id = f"{rng.randrange(10**6, 10**7)}_{rng.randrange(10**9, 10**10)}.jpg"
        write_image(root, f"data/SEED/SEED-Bench-image/{data_id}", scene, sizes.image_size)
        records.append({"image": f"SEED-Bench-image/{data_id}", "text": mmbench_prompt(question, options),
                        "category": SEED_QUESTION_TYPES[tid], "question_id": qid, "answer": answer})
        questions.append({"answer": answer, **{f"choice_{L.lower()}": options[L] for L in LETTERS}, "data_id": data_id,
                          "data_type": "image", "question": question, "question_id": qid, "question_type_id": tid})
    write_jsonl_atomic(root / "data/SEED/seed.jsonl", records)
    types = {name: tid for tid, name in SEED_QUESTION_TYPES.items()}
    dump_json(root / "data/SEED/SEED-Bench.json", {"questions": questions, "question_type": types})
    return {"data/SEED/seed.jsonl": len(records)}


FAMILY_B_WRITERS: tuple[Writer, ...] = (
    write_mme, write_mmbench_more, write_mmmu, write_scienceqa, write_tiny_lvlm, write_llava_bench, write_mmvet,
    write_mmvp, write_mathvista, write_seed,
)
