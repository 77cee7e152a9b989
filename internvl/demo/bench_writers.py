"""Demo raw files for every benchmark split that :mod:`internvl.demo.writers` does not write (family A here).

Why: the demo must be able to run *every* split of :data:`internvl.eval.registry.BENCHMARKS` end to end,
through the same normalizers (``internvl.data.benchmarks.normalize``), prompts and scorers as the full
reproduction. So each writer produces the split's real raw layout (the paths, JSON vs JSON lines, id
types, image folders and field names its normalizer reads, which mirror the originals), filled with
questions about the shape world whose gold answers are true for the rendered scene.

This module writes the captioning, VQA and grounding splits (eval table, section A) and holds the helpers
both halves share; :mod:`internvl.demo.bench_writers_mm` writes the multimodal benchmarks (section B).
:func:`write_all_benchmarks` runs both; ``build_demo`` calls it only when ``DemoSizes.all_benchmarks`` is
set, so the default demo is unchanged.

Layout written under ``root`` (``data/`` is the normalizers' ``data_root``)::

    data/flickr30k/flickr30k_test_karpathy.json + Images/<id>.jpg          COCO format, indent 2
    data/nocaps/nocaps_val_4500_captions.json + images/<hex>.jpg           COCO format + domain
    data/vqav2/vqav2_testdev.jsonl + data/coco/test2015/                    questions only (server)
    data/okvqa/okvqa_val.jsonl, OpenEnded_mscoco_val2014_questions.json, mscoco_val2014_annotations.json
    data/textvqa/textvqa_val_llava.jsonl, textvqa_val_{questions,annotations}.json + train_images/
    data/vizwiz/vizwiz_val.jsonl, vizwiz_val_{questions,annotations}.json, vizwiz_test.jsonl + val/, test/
    data/docvqa/val.jsonl + val/val_v1.0.json + val/documents/, test.jsonl + test/documents/   (PNG)
    data/chartqa/test_{human,augmented}.jsonl + test/png/                   question_id -1, as shipped
    data/gqa/llava_gqa_testdev_balanced_qwen_format.jsonl + testdev_balanced_questions.json + images/
    data/ocrvqa/ocrvqa_{val,test}.jsonl + images/
    data/ai2diagram/test.jsonl + ai2d/{images,abc_images}/                  options inside the question
    data/refcoco/refcoco{,+,g}_<split>.jsonl + data/coco/train2014/         xyxy pixel boxes

Determinism: every split draws from its own stream ``_rng(seed, "bench:<split>")`` (names no existing
stream uses, so the four original benchmarks and the SFT data are untouched), images are encoded with
fixed settings, and every scene drawn is added to the caller's ``scenes`` set so training scenes avoid it.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from internvl.data.io import write_jsonl_atomic
from internvl.demo import world
from internvl.demo.world import QA, Scene, Shape
from internvl.demo.writers import (
    SHORT_ANSWER,
    DemoSizes,
    _annotator_answers,
    _arrange,
    _coco_name,
    _jpeg,
    _LetterBag,
    _rng,
    _write_bytes,
    _write_compact_json,
    mmbench_prompt,
)

_DEMO = "Synthetic coloured-shape demo data written by internvl.demo (not real images)."

# Image id ranges of the new COCO-style files; disjoint from writers._ID_RANGES (100000-581929) and
# from each other, so images that share a folder never collide.
OKVQA_IDS = (1, 49_999)
VQAV2_TESTDEV_IDS = (1, 581_929)  # test2015: its own folder
REFCOCO_IDS = (50_000, 99_999)  # train2014: its own folder


# ---------------------------------------------------------------------------------------------------------
# helpers shared with bench_writers_mm


def bench_rng(seed: int, split: str) -> random.Random:
    """The split's own stream; the ``bench:`` prefix keeps it apart from the streams writers.py uses."""
    return _rng(seed, f"bench:{split}")


def png(scene: Scene, size: int) -> bytes:
    """PNG bytes of the scene (documents, charts and diagrams ship as PNG); no timestamps, so deterministic."""
    buf = io.BytesIO()
    world.render(scene, size).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def draw_scene(rng: random.Random, scenes: set[Scene], n_shapes: int | None = None) -> Scene:
    """A scene from the world prior, recorded in ``scenes`` (the benchmark set that SFT data must avoid)."""
    scene = world.sample_scene(rng, n_shapes)
    scenes.add(scene)
    return scene


def write_image(root: Path, rel: str, scene: Scene, size: int, fmt: str = "jpg") -> None:
    """Render ``scene`` to ``root/rel`` as JPEG (the writers' fixed settings) or PNG."""
    _write_bytes(root / rel, png(scene, size) if fmt == "png" else _jpeg(scene, size))


def write_text(dest: Path, text: str) -> None:
    _write_bytes(dest, text.encode("utf-8"))


def dump_json(dest: Path, obj: Any, indent: int | None = None, newline: bool = False, ascii_: bool = True) -> None:
    """JSON with the layout of the original file (``indent``, trailing newline, ``\\uXXXX`` escaping)."""
    write_text(dest, json.dumps(obj, indent=indent, ensure_ascii=ascii_) + ("\n" if newline else ""))


def sample_ids(rng: random.Random, lo: int, hi: int, n: int) -> list[int]:
    return sorted(rng.sample(range(lo, hi + 1), n))


def hex_id(rng: random.Random, digits: int = 16) -> str:
    """A hex image id such as TextVQA's or Open Images' (``003a8ae2ef43b901``)."""
    return f"{rng.getrandbits(4 * digits):0{digits}x}"


def distinct_qas(scene: Scene, rng: random.Random, k: int, families: tuple[str, ...] | None = None) -> list[QA]:
    """Up to ``k`` questions about the scene with distinct wording (a scene supports only so many)."""
    out: list[QA] = []
    for _ in range(20 * k):
        if len(out) == k:
            break
        qa = world.sample_qa(scene, rng, families)
        if all(qa.question != o.question for o in out):
            out.append(qa)
    return out


def one_qa(scene: Scene, rng: random.Random, families: tuple[str, ...] | None = None) -> QA:
    return world.sample_qa(scene, rng, families)


def mcq_with_letters(scene: Scene, rng: random.Random, letters: _LetterBag,
                     categories: tuple[str, ...] = tuple(world.MC_CATEGORIES)) -> tuple[world.MCQ, dict[str, str], str]:
    """A world MCQ of a random supported category, options lettered with balanced answer positions."""
    while True:
        mcq = world.sample_mcq(scene, rng, rng.choice(categories))
        if mcq is not None:
            options, answer = _arrange(mcq, rng, letters.draw(len(mcq.options)))
            return mcq, options, answer


# ---------------------------------------------------------------------------------------------------------
# captions (COCO-format files)


def _caption_file(root: Path, rng: random.Random, sizes: DemoSizes, scenes: set[Scene], image_dir: str,
                  names: list[tuple[int, str]], extra: Callable[[int, str], dict[str, Any]] | None = None,
                  n_refs: int = 5) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    images, annotations = [], []
    for image_id, file_name in names:
        scene = draw_scene(rng, scenes)
        write_image(root, f"{image_dir}/{file_name}", scene, sizes.image_size)
        images.append({"id": image_id, "file_name": file_name, **(extra(image_id, file_name) if extra else {})})
        for ref in world.reference_captions(scene, rng, n_refs):
            annotations.append({"image_id": image_id, "caption": ref, "id": len(annotations)})
    return images, annotations


def write_flickr30k(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """InternVL's converted ``flickr30k_test_karpathy.json``: {images: [{id, file_name}], annotations}, indent 2."""
    rng = bench_rng(seed, "caption-flickr30k")
    ids = sample_ids(rng, 10_000_000, 9_999_999_999, sizes.bench_items)
    names = [(i, f"Images/{i}.jpg") for i in ids]
    images, annotations = _caption_file(root, rng, sizes, scenes, "data/flickr30k", names)
    dest = "data/flickr30k/flickr30k_test_karpathy.json"
    dump_json(root / dest, {"images": images, "annotations": annotations}, indent=2, newline=True)
    return {dest: len(images)}


NOCAPS_DOMAINS = ("in-domain", "near-domain", "out-domain")


def write_nocaps(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """``nocaps_val_4500_captions.json``: COCO format whose images carry ``domain`` (compact, one line)."""
    rng = bench_rng(seed, "caption-nocaps")
    names = [(k, f"{hex_id(rng)}.jpg") for k in range(sizes.bench_items)]

    def extra(image_id: int, file_name: str) -> dict[str, Any]:
        return {"open_images_id": file_name[:-4], "height": sizes.image_size, "width": sizes.image_size,
                "domain": NOCAPS_DOMAINS[image_id % 3], "coco_url": "", "license": 0, "date_captured": ""}

    images, annotations = _caption_file(root, rng, sizes, scenes, "data/nocaps/images", names, extra)
    info = {"description": _DEMO + " Format of nocaps val.", "version": "0.1", "year": 2018}
    dest = "data/nocaps/nocaps_val_4500_captions.json"
    _write_compact_json(root / dest, {"licenses": [], "info": info, "images": images, "annotations": annotations})
    return {dest: len(images)}


# ---------------------------------------------------------------------------------------------------------
# VQA with official question/annotation files


def _vqa_official_docs(questions: list[dict[str, Any]], annotations: list[dict[str, Any]], subtype: str,
                       what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    info = {"description": f"{_DEMO} Format of {what}.", "version": "1.0", "year": 2017}
    license_ = {"url": "", "name": "synthetic demo data"}
    qdoc = {"info": info, "task_type": "Open-Ended", "data_type": "mscoco", "license": license_,
            "data_subtype": subtype, "questions": questions}
    adoc = {"info": info, "license": license_, "data_subtype": subtype, "annotations": annotations,
            "data_type": "mscoco"}
    return qdoc, adoc


def write_okvqa(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """OK-VQA val: Qwen jsonl over COCO val2014 images + VQA-API json (no multiple_choice_answer, raw_answer)."""
    rng = bench_rng(seed, "vqa-okvqa-val")
    jsonl, questions, annotations = [], [], []
    for image_id in sample_ids(rng, *OKVQA_IDS, sizes.bench_items):
        scene = draw_scene(rng, scenes)
        rel = f"data/coco/val2014/{_coco_name(image_id)}"
        write_image(root, rel, scene, sizes.image_size)
        qa = one_qa(scene, rng)
        qid = image_id * 10 + 5
        answers = [{**a, "raw_answer": a["answer"]} for a in _annotator_answers(qa, rng)]
        questions.append({"image_id": image_id, "question": qa.question, "question_id": qid})
        annotations.append({"image_id": image_id, "answer_type": "other", "question_type": "eight",
                            "question_id": qid, "answers": answers, "confidence": 3})
        jsonl.append({"image": rel, "question": qa.question, "question_id": qid, "answer": qa.answer})
    qdoc, adoc = _vqa_official_docs(questions, annotations, "val2014", "OK-VQA")
    d = "data/okvqa"
    write_jsonl_atomic(root / f"{d}/okvqa_val.jsonl", jsonl)
    _write_compact_json(root / f"{d}/OpenEnded_mscoco_val2014_questions.json", qdoc)
    _write_compact_json(root / f"{d}/mscoco_val2014_annotations.json", adoc)
    return {f"{d}/okvqa_val.jsonl": len(jsonl)}


def write_textvqa(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """``textvqa_val_llava.jsonl`` (question + the LLaVA instruction line) + VQA-API json with hex image ids.

    The shape images carry no text, so no "Reference OCR token:" line is written (LLaVA omits it for
    images without OCR tokens).
    """
    rng = bench_rng(seed, "vqa-textvqa-val")
    jsonl, questions, annotations = [], [], []
    for k in range(sizes.bench_items):
        scene = draw_scene(rng, scenes)
        image_id = hex_id(rng)
        rel = f"data/textvqa/train_images/{image_id}.jpg"
        write_image(root, rel, scene, sizes.image_size)
        qa = one_qa(scene, rng)
        qid = 34_602 + k
        answers = _annotator_answers(qa, rng)
        questions.append({"image_id": image_id, "question": qa.question.lower(), "question_id": qid})
        annotations.append({"question_type": qa.question_type, "answer_type": qa.answer_type, "answers": answers,
                            "multiple_choice_answer": qa.answer, "image_id": image_id, "question_id": qid})
        jsonl.append({"image": rel, "question": f"{qa.question}\n{SHORT_ANSWER}", "question_id": qid,
                      "answer": qa.answer})
    qdoc, adoc = _vqa_official_docs(questions, annotations, "val", "TextVQA 0.5.1 (VQA API)")
    d = "data/textvqa"
    write_jsonl_atomic(root / f"{d}/textvqa_val_llava.jsonl", jsonl)
    _write_compact_json(root / f"{d}/textvqa_val_questions.json", qdoc)
    _write_compact_json(root / f"{d}/textvqa_val_annotations.json", adoc)
    return {f"{d}/textvqa_val_llava.jsonl": len(jsonl)}


def _vizwiz_qa(scene: Scene, rng: random.Random) -> QA:
    """A VQA question, or (1 in 4) one about an empty cell, whose VizWiz answer is ``unanswerable``."""
    empty = [p for i, p in enumerate(world.POSITIONS) if i not in {s.cell for s in scene.shapes}]
    if empty and rng.random() < 0.25:
        pos = rng.choice(empty)
        return QA(f"What color is the shape in the {pos}?", "unanswerable", "color", "unanswerable", "what color")
    return one_qa(scene, rng)


def _vizwiz_answers(qa: QA, rng: random.Random) -> list[dict[str, str]]:
    """Ten ``{answer, answer_confidence}`` records without ``answer_id``, as VizWiz ships them.

    Identical records drop together in the original's leave-one-out, so the gold answer comes with both
    confidences, at least three times each: a correct answer then still scores 1.0.
    """
    n_yes = rng.randint(4, 7)
    given = [(qa.answer, "yes")] * n_yes + [(qa.answer, "maybe")] * 3
    pool = world.wrong_answers(qa) if qa.answer_type != "unanswerable" else ("unsuitable image",)
    while len(given) < 10:
        given.append((rng.choice(pool), "no"))
    rng.shuffle(given)
    return [{"answer": a, "answer_confidence": c} for a, c in given]


def write_vizwiz(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """VizWiz val (question id = image path, string) + test (questions only, ids stripped on submission)."""
    rng = bench_rng(seed, "vqa-vizwiz")
    jsonl, questions, annotations, test = [], [], [], []
    for k in range(sizes.bench_items):
        scene = draw_scene(rng, scenes)
        name = f"VizWiz_val_{k:08d}.jpg"
        rel = f"data/vizwiz/val/{name}"
        write_image(root, rel, scene, sizes.image_size)
        qa = _vizwiz_qa(scene, rng)
        questions.append({"image_id": name, "question": qa.question, "question_id": rel})
        annotations.append({"question_id": rel, "image_id": name, "question_type": "other",
                            "answer_type": qa.answer_type, "answers": _vizwiz_answers(qa, rng),
                            "answerable": int(qa.answer != "unanswerable")})
        jsonl.append({"image": rel, "question": qa.question, "question_id": rel, "answer": qa.answer})
    for k in range(sizes.bench_items):
        scene = draw_scene(rng, scenes)
        rel = f"data/vizwiz/test/VizWiz_test_{k:08d}.jpg"
        write_image(root, rel, scene, sizes.image_size)
        test.append({"image": rel, "question": _vizwiz_qa(scene, rng).question, "question_id": rel})
    qdoc, adoc = _vqa_official_docs(questions, annotations, "val", "VizWiz (VQA API)")
    d = "data/vizwiz"
    write_jsonl_atomic(root / f"{d}/vizwiz_val.jsonl", jsonl)
    _write_compact_json(root / f"{d}/vizwiz_val_questions.json", qdoc)
    _write_compact_json(root / f"{d}/vizwiz_val_annotations.json", adoc)
    write_jsonl_atomic(root / f"{d}/vizwiz_test.jsonl", test)
    return {f"{d}/vizwiz_val.jsonl": len(jsonl), f"{d}/vizwiz_test.jsonl": len(test)}


def write_vqav2_testdev(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """``vqav2_testdev.jsonl``: Qwen-format questions over COCO test2015 images, no answers (EvalAI scores)."""
    rng = bench_rng(seed, "vqa-vqav2-testdev")
    records = []
    for image_id in sample_ids(rng, *VQAV2_TESTDEV_IDS, sizes.bench_items):
        scene = draw_scene(rng, scenes)
        rel = f"data/coco/test2015/COCO_test2015_{image_id:012d}.jpg"
        write_image(root, rel, scene, sizes.image_size)
        records.append({"image": rel, "question": one_qa(scene, rng).question, "question_id": image_id * 1000})
    dest = "data/vqav2/vqav2_testdev.jsonl"
    write_jsonl_atomic(root / dest, records)
    return {dest: len(records)}


# ---------------------------------------------------------------------------------------------------------
# DocVQA, ChartQA, OCR-VQA, AI2D, GQA


def write_docvqa(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """DocVQA val (jsonl + the ``val_v1.0.json`` GT the ANLS evaluator reads) and test (questions only)."""
    rng = bench_rng(seed, "vqa-docvqa")
    val, data, test = [], [], []
    for split, out in (("val", val), ("test", test)):
        for k in range(sizes.bench_items):
            scene = draw_scene(rng, scenes)
            name = f"{hex_id(rng, 4)}{k:04d}_{rng.randrange(1, 99)}.png"
            write_image(root, f"data/docvqa/{split}/documents/{name}", scene, sizes.image_size, "png")
            qa = one_qa(scene, rng)
            qid = (50_000 if split == "val" else 60_000) + k
            if split == "test":
                out.append({"image": name, "question": qa.question, "question_id": qid})
                continue
            answers = [qa.answer, qa.answer.capitalize()] if qa.answer.capitalize() != qa.answer else [qa.answer]
            out.append({"image": name, "question": qa.question, "question_id": qid, "answer": answers})
            data.append({"questionId": qid, "question": qa.question, "question_types": ["figure/diagram"],
                         "image": f"documents/{name}", "docId": k, "ucsf_document_id": name[:8],
                         "ucsf_document_page_no": name.rsplit("_", 1)[1][:-4], "answers": answers,
                         "data_split": "val"})
    d = "data/docvqa"
    write_jsonl_atomic(root / f"{d}/val.jsonl", val)
    dump_json(root / f"{d}/val/val_v1.0.json",
              {"dataset_name": "docvqa", "dataset_version": "1.0", "dataset_split": "val", "data": data})
    write_jsonl_atomic(root / f"{d}/test.jsonl", test)
    return {f"{d}/val.jsonl": len(val), f"{d}/test.jsonl": len(test)}


def write_chartqa(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """ChartQA test_human / test_augmented: {image, question, question_id: -1, answer} as the shipped files.

    Human questions mix counts and words; augmented ones are counts (ChartQA's machine questions are
    mostly numeric), which exercises the relaxed numeric match.
    """
    counts: dict[str, int] = {}
    for name, families in (("test_human", ("count", "color", "shape", "existence")), ("test_augmented", ("count",))):
        rng = bench_rng(seed, f"vqa-chartqa-{name}")
        records = []
        for _ in range(sizes.bench_items):
            scene = draw_scene(rng, scenes)
            image = f"test/png/{rng.randrange(10**13, 10**14)}.png"
            write_image(root, f"data/chartqa/{image}", scene, sizes.image_size, "png")
            qa = one_qa(scene, rng, families)
            answer = qa.answer.capitalize() if qa.answer_type == "yes/no" else qa.answer
            records.append({"image": image, "question": qa.question, "question_id": -1, "answer": answer})
        dest = f"data/chartqa/{name}.jsonl"
        write_jsonl_atomic(root / dest, records)
        counts[dest] = len(records)
    return counts


def write_ocrvqa(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """OCR-VQA val/test: Qwen-format records whose ``answer`` is the gold (images named like ASINs)."""
    counts: dict[str, int] = {}
    for split in ("val", "test"):
        rng = bench_rng(seed, f"vqa-ocrvqa-{split}")
        records = []
        for k in range(sizes.bench_items):
            scene = draw_scene(rng, scenes)
            image = f"images/{rng.randrange(10**9, 10**10)}.jpg"
            write_image(root, f"data/ocrvqa/{image}", scene, sizes.image_size)
            qa = one_qa(scene, rng)
            records.append({"image": image, "question": qa.question, "question_id": k, "answer": qa.answer})
        dest = f"data/ocrvqa/ocrvqa_{split}.jsonl"
        write_jsonl_atomic(root / dest, records)
        counts[dest] = len(records)
    return counts


def write_ai2d(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """AI2D ``test.jsonl``: options and instruction inside ``question``, gold letter, id = image path.

    One or two questions per diagram, so ids repeat as in the real file; a third of the diagrams live
    in ``abc_images`` (the variant the README warns about).
    """
    rng = bench_rng(seed, "vqa-ai2d-test")
    letters = _LetterBag(rng)
    records: list[dict[str, Any]] = []
    k = 0
    while len(records) < sizes.bench_items:
        scene = draw_scene(rng, scenes)
        folder = "abc_images" if k % 3 == 2 else "images"
        image = f"ai2d/{folder}/{k + 1}.png"
        write_image(root, f"data/ai2diagram/{image}", scene, sizes.image_size, "png")
        asked: set[str] = set()
        for _ in range(min(rng.choice((1, 2)), sizes.bench_items - len(records))):
            mcq, options, answer = mcq_with_letters(scene, rng, letters)
            if mcq.question in asked:
                continue
            asked.add(mcq.question)
            records.append({"image": image, "question": mmbench_prompt(mcq.question, options),
                            "question_id": image, "answer": answer})
        k += 1
    dest = "data/ai2diagram/test.jsonl"
    write_jsonl_atomic(root / dest, records)
    return {dest: len(records)}


_GQA_TYPES = {  # QA family -> (structural, semantic, detailed)
    "color": ("query", "attr", "colorObj"), "shape": ("query", "cat", "categoryObj"),
    "position": ("query", "rel", "positionQuery"), "count": ("query", "obj", "count"),
    "size": ("choose", "attr", "chooseAttr"), "existence": ("verify", "obj", "existObj"),
}


def write_gqa(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """GQA test-dev: the Qwen-format question jsonl + ``testdev_balanced_questions.json`` ({qid: question})."""
    rng = bench_rng(seed, "vqa-gqa-testdev")
    records, official = [], {}
    for k in range(sizes.bench_items):
        scene = draw_scene(rng, scenes)
        image_id = f"n{rng.randrange(10**5, 10**6)}"
        write_image(root, f"data/gqa/images/{image_id}.jpg", scene, sizes.image_size)
        qa = one_qa(scene, rng)
        qid = str(20_000_000 + 1000 * k + rng.randrange(1000))
        structural, semantic, detailed = _GQA_TYPES[qa.family]
        full = f"{qa.answer.capitalize()}." if qa.answer_type == "yes/no" else f"The answer is {qa.answer}."
        official[qid] = {"semantic": [], "entailed": [], "equivalent": [qid], "question": qa.question,
                         "imageId": image_id, "isBalanced": True, "groups": {"global": None, "local": None},
                         "answer": qa.answer, "semanticStr": "", "annotations": {},
                         "types": {"detailed": detailed, "semantic": semantic, "structural": structural},
                         "fullAnswer": full}
        records.append({"image": f"{image_id}.jpg", "question": qa.question, "question_id": qid, "answer": qa.answer})
    d = "data/gqa"
    write_jsonl_atomic(root / f"{d}/llava_gqa_testdev_balanced_qwen_format.jsonl", records)
    _write_compact_json(root / f"{d}/testdev_balanced_questions.json", official)
    return {f"{d}/llava_gqa_testdev_balanced_qwen_format.jsonl": len(records)}


# ---------------------------------------------------------------------------------------------------------
# RefCOCO / RefCOCO+ / RefCOCOg


def _refcoco_sentence(dataset: str, scene: Scene, s: Shape, rng: random.Random) -> str:
    """A referring expression that picks out ``s`` alone (colour + kind is unique in a scene).

    RefCOCO: short phrases, location words allowed; RefCOCO+: appearance only, no location words;
    RefCOCOg: longer, complete descriptions.
    """
    unique_kind = len(scene.with_kind(s.kind)) == 1
    unique_color = len(scene.with_color(s.color)) == 1
    if dataset == "refcoco":
        forms = [f"{s.color} {s.kind}", f"{s.position} shape", f"{s.kind} in the {s.position}"]
        forms += [f"{s.position} {s.kind}", s.kind] if unique_kind else []
    elif dataset == "refcoco+":
        forms = [f"{s.color} {s.kind}", f"{s.size} {s.color} {s.kind}"]
        forms += [f"{s.color} one", f"{s.color} thing"] if unique_color else []
        forms += [f"the {s.kind}"] if unique_kind else []
    else:
        forms = [f"a {s.size} {s.color} {s.kind} in the {s.position} of the picture",
                 f"the {s.color} {s.kind} that sits in the {s.position} corner",
                 f"a {s.color} {s.kind} drawn on a plain light background"]
    return rng.choice(forms)


REFCOCO_FILES: dict[str, str] = {  # split -> file stem (as internvl.data.bench_family_a.REFCOCO_SPLITS)
    "refcoco-val": "refcoco_val", "refcoco-testA": "refcoco_testA", "refcoco-testB": "refcoco_testB",
    "refcoco+-val": "refcoco+_val", "refcoco+-testA": "refcoco+_testA", "refcoco+-testB": "refcoco+_testB",
    "refcocog-val": "refcocog_val", "refcocog-test": "refcocog_test",
}


def write_refcoco(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """The 8 RefCOCO-family jsonl files: {image, sent, bbox [x1, y1, x2, y2] pixels, width, height}.

    The box is the drawn extent of the shape (:func:`internvl.demo.world.shape_box`). As in RefCOCO,
    testA refers to one kind of object (here circles) and testB to the others; every referable shape of
    an image gets a sentence, so images repeat across lines.
    """
    counts: dict[str, int] = {}
    ids = iter(sample_ids(bench_rng(seed, "refcoco-ids"), *REFCOCO_IDS, 8 * sizes.bench_items))
    size = sizes.image_size
    for split, stem in REFCOCO_FILES.items():
        rng = bench_rng(seed, split)
        dataset = stem.split("_")[0]
        wanted: Callable[[Shape], bool] = {
            "testA": lambda s: s.kind == "circle", "testB": lambda s: s.kind != "circle",
        }.get(stem.split("_")[1], lambda s: True)
        records: list[dict[str, Any]] = []
        while len(records) < sizes.bench_items:
            scene = world.sample_scene(rng)
            targets = [s for s in scene.shapes if wanted(s)]
            if not targets:
                continue
            scenes.add(scene)
            image = f"train2014/COCO_train2014_{next(ids):012d}.jpg"
            write_image(root, f"data/coco/{image}", scene, size)
            for s in targets[: sizes.bench_items - len(records)]:
                records.append({"image": image, "sent": _refcoco_sentence(dataset, scene, s, rng),
                                "bbox": list(world.shape_box(s, size)), "height": size, "width": size})
        dest = f"data/refcoco/{stem}.jsonl"
        write_jsonl_atomic(root / dest, records)
        counts[dest] = len(records)
    return counts


# ---------------------------------------------------------------------------------------------------------
# entry point

Writer = Callable[[Path, int, DemoSizes, set[Scene]], dict[str, int]]

FAMILY_A_WRITERS: tuple[Writer, ...] = (
    write_flickr30k, write_nocaps, write_vqav2_testdev, write_okvqa, write_textvqa, write_vizwiz, write_docvqa,
    write_chartqa, write_gqa, write_ocrvqa, write_ai2d, write_refcoco,
)


def write_all_benchmarks(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    """Write every split writers.py does not; return {relative path: number of records}.

    Each writer has its own stream, so adding or resizing one split never changes another's files.
    """
    from internvl.demo.bench_writers_mm import FAMILY_B_WRITERS  # that module imports helpers from this one

    root = Path(root)
    summary: dict[str, int] = {}
    for write in FAMILY_A_WRITERS + FAMILY_B_WRITERS:
        summary.update(write(root, seed, sizes, scenes))
    return summary
