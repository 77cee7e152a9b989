"""Write the embedded demo data set: SFT sources and four benchmarks, all in the formats the originals use.

Why real formats: the demo exists to run the *same* readers, prompts, scorers and Snakemake rules as the
full reproduction, just on data small enough for a CPU or one GPU. So every file here mimics its original
byte layout (JSONL vs JSON, compact vs indented, CRLF in POPE's label files, quoted multi-line TSV cells,
the exact relative image paths), and the SFT questions use the benchmark prompts so a tiny model can learn
the answer formats it is scored on.

Layout written under ``root`` (the pipeline's working directory, like ``internvl_chat/`` upstream)::

    playground/meta/demo_finetune.json                  meta file, shell/data/*.json format
    playground/demo_shapes_caption.jsonl                LLaVA-style conversations (one JSON per line)
    playground/demo_shapes_vqa.jsonl
    playground/demo_shapes_mcq.jsonl
    playground/demo_text_only.jsonl                     no ``image`` key, no ``<image>``
    playground/data/demo_shapes/images/{caption,vqa,mcq}_NNNNNN.jpg
    data/mmbench/mmbench_dev_20230712.tsv               base64 JPEG images inline
    data/vqav2/vqav2_val.jsonl                          Qwen-VL format
    data/vqav2/v2_OpenEnded_mscoco_val2014_questions.json
    data/vqav2/v2_mscoco_val2014_annotations.json
    data/coco/val2014/COCO_val2014_<12 digits>.jpg      VQAv2 and caption images (disjoint ids)
    data/coco/annotations/coco_karpathy_test.json       BLIP-style list
    data/coco/annotations/coco_karpathy_test_gt.json    COCO captions format
    data/pope/llava_pope_test.jsonl
    data/pope/coco/coco_pope_{adversarial,popular,random}.json   JSON lines, CRLF
    data/pope/val2014/COCO_val2014_<12 digits>.jpg

Determinism: every output draws from its own ``random.Random`` stream keyed by (seed, stream name), JPEG
encoding uses fixed settings, and JSON is written with fixed separators, so one seed gives byte-identical
files. Training scenes are re-drawn whenever they equal a benchmark scene, so no training image is also a
benchmark image.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from internvl.data.io import atomic_path, iter_jsonl, load_json, write_json_atomic, write_jsonl_atomic
from internvl.data.schema import options_json
from internvl.demo import world
from internvl.demo.world import MCQ, QA, Scene
from internvl.eval.prompts import build_question
from internvl.eval.registry import CAPTION_PROMPT, MC_PROMPT_EN, VQA_PROMPT, resolve

# Prompts exactly as the InternVL V1.2 evaluation builds them (see internvl_eval_table.md).
# The SFT prompts are the evaluation prompts, so the demo model learns the answer formats it is scored on.
SHORT_ANSWER = VQA_PROMPT
MC_INSTRUCTION = MC_PROMPT_EN
LETTERS = "ABCD"

META_PATH = "playground/meta/demo_finetune.json"
ALIGN_META_PATH = "playground/meta/demo_align.json"
ALIGN_ANNOTATION = "playground/demo_shapes_align.jsonl"
LM_CORPUS = "playground/demo_lm_corpus.jsonl"
LOOKUP_CORPUS = "playground/demo_lookup_corpus.jsonl"
IMAGE_DIR = "playground/data/demo_shapes/images"
MMBENCH_TSV = "data/mmbench/mmbench_dev_20230712.tsv"
MMBENCH_COLUMNS = ("index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image", "source",
                   "l2-category", "comment", "split")
VQAV2_JSONL = "data/vqav2/vqav2_val.jsonl"
VQAV2_QUESTIONS = "data/vqav2/v2_OpenEnded_mscoco_val2014_questions.json"
VQAV2_ANNOTATIONS = "data/vqav2/v2_mscoco_val2014_annotations.json"
COCO_TEST = "data/coco/annotations/coco_karpathy_test.json"
COCO_TEST_GT = "data/coco/annotations/coco_karpathy_test_gt.json"
POPE_QUESTIONS = "data/pope/llava_pope_test.jsonl"
POPE_SPLITS = ("adversarial", "random", "popular")  # the order LLaVA's question file uses
POPE_QID_OFFSET = {"adversarial": 0, "random": 10_000_000, "popular": 20_000_000}

# COCO-like image ids come from disjoint ranges so the benchmarks sharing data/coco/val2014 never collide
# and each benchmark's ids do not depend on the others' sizes.
_ID_RANGES = {"vqav2": (100_000, 299_999), "coco": (300_000, 499_999), "pope": (500_000, 581_929)}
_JPEG = {"format": "JPEG", "quality": 90, "subsampling": 0, "optimize": False}
_DEMO_INFO_NOTE = "Synthetic coloured-shape demo data written by internvl.demo (not real images)."


@dataclass(frozen=True)
class DemoSizes:
    """How much of everything to write; the defaults give ~6000 SFT samples and small benchmarks."""

    sft_caption: int = 1500
    sft_vqa: int = 2500
    sft_mcq: int = 1500
    sft_text: int = 500
    multi_turn_fraction: float = 0.3
    vqa_max_turns: int = 3  # a multi-turn VQA sample asks 2..vqa_max_turns questions about its image
    mcq_max_turns: int = 1  # likewise for multiple-choice samples (1: always one question)
    # Text-only corpus the demo LLM is pretrained on before SFT (the stand-in for Yi-34B's pretraining):
    # lm_docs conversations about scenes described in words, lm_turns questions each.
    lm_docs: int = 4800
    lm_turns: int = 4
    # Opt-in (0 = not written): conversations of lookup questions only, for the second LM stage that made
    # the shipped demo LLM (config/demo_llm.yaml; see _lookup_corpus).
    lookup_docs: int = 0
    lookup_turns: int = 6
    # The projector-pretraining ("alignment") mix: images with lookup questions only (see _align_data), its own
    # meta file (ALIGN_META_PATH); 0 = not written.
    align_images: int = 6000
    align_turns: int = 3
    mmbench_questions: int = 200
    mmbench_circular: bool = True
    vqav2_images: int = 100
    vqav2_questions_per_image: int = 3
    coco_images: int = 100
    pope_images: int = 10
    image_size: int = 224
    # Opt-in: also write every other split of internvl.eval.registry.BENCHMARKS (internvl.demo.bench_writers),
    # each with about bench_items questions. Off by default, so the default demo stays as it was.
    all_benchmarks: bool = False
    bench_items: int = 8

    @classmethod
    def tiny(cls) -> DemoSizes:
        """A few of everything, for tests."""
        return cls(sft_caption=12, sft_vqa=16, sft_mcq=12, sft_text=6, mmbench_questions=16, vqav2_images=4,
                   coco_images=4, pope_images=3, image_size=64, lm_docs=24, align_images=8)


# ---------------------------------------------------------------------------------------------------------
# prompt builders (kept identical to the evaluation prompts)


def vqa_prompt(question: str) -> str:
    """Short-answer VQA prompt, built exactly as the VQAv2 evaluation builds it."""
    return build_question({"question": question}, resolve("vqa-vqav2-val"))


def pope_text(question: str) -> str:
    """POPE/LLaVA question text: the instruction sits on its own line."""
    return f"{question}\n{SHORT_ANSWER}"


def mmbench_prompt(question: str, options: dict[str, str], hint: str | None = None) -> str:
    """The MMBench prompt, built exactly as the MMBench evaluation builds it."""
    row = {"question": question, "hint": hint, "options": options_json(options)}
    return build_question(row, resolve("mmbench-dev-en"))


# ---------------------------------------------------------------------------------------------------------
# small helpers


def _rng(seed: int, stream: str) -> random.Random:
    """An independent stream per output; str seeds hash with SHA-512, so no PYTHONHASHSEED dependence."""
    return random.Random(f"internvl-demo:{seed}:{stream}")


def _jpeg(scene: Scene, size: int) -> bytes:
    buf = io.BytesIO()
    world.render(scene, size).save(buf, **_JPEG)
    return buf.getvalue()


def _write_bytes(dest: Path, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def _write_compact_json(dest: Path, obj: Any) -> None:
    """Single-line JSON with default separators and no trailing newline, like the official VQA/COCO files."""
    _write_bytes(dest, json.dumps(obj).encode("utf-8"))


def _coco_name(image_id: int) -> str:
    return f"COCO_val2014_{image_id:012d}.jpg"


def _image_ids(seed: int, bench: str, n: int) -> list[int]:
    lo, hi = _ID_RANGES[bench]
    return sorted(_rng(seed, f"{bench}-ids").sample(range(lo, hi + 1), n))


def _fresh_scene(rng: random.Random, banned: set[Scene], n_shapes: int | None = None) -> Scene:
    while True:
        scene = world.sample_scene(rng, n_shapes)
        if scene not in banned:
            return scene


class _LetterBag:
    """Hands out answer positions so each letter is used equally often (per number of options)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.bags: dict[int, list[int]] = {}

    def draw(self, n: int) -> int:
        bag = self.bags.setdefault(n, [])
        if not bag:
            bag.extend(range(n))
            self.rng.shuffle(bag)
        return bag.pop()


def _arrange(mcq: MCQ, rng: random.Random, answer_pos: int) -> tuple[dict[str, str], str]:
    """Put the correct option at ``answer_pos`` and the shuffled distractors elsewhere."""
    distractors = list(mcq.options[1:])
    rng.shuffle(distractors)
    distractors.insert(answer_pos, mcq.options[0])
    return dict(zip(LETTERS, distractors, strict=False)), LETTERS[answer_pos]


def _posed(mcq: MCQ, rng: random.Random) -> tuple[str, str]:
    """A training turn for ``mcq``: options at random positions, an optional hint, the MMBench prompt, the letter."""
    options, answer = _arrange(mcq, rng, rng.randrange(len(mcq.options)))
    return mmbench_prompt(mcq.question, options, world.sample_hint(rng)), answer


# ---------------------------------------------------------------------------------------------------------
# benchmarks


def _write_vqav2(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    rng = _rng(seed, "vqav2")
    info = {"description": _DEMO_INFO_NOTE + " Format of VQA v2.0.", "url": "", "version": "2.0", "year": 2017,
            "contributor": "internvl demo", "date_created": "2017-04-26 17:00:44"}
    license_ = {"url": "", "name": "synthetic demo data"}
    questions, annotations, qwen = [], [], []
    for image_id in _image_ids(seed, "vqav2", sizes.vqav2_images):
        scene = world.sample_scene(rng)
        scenes.add(scene)
        rel = f"data/coco/val2014/{_coco_name(image_id)}"
        _write_bytes(root / rel, _jpeg(scene, sizes.image_size))
        asked: list[QA] = []
        while len(asked) < sizes.vqav2_questions_per_image:
            qa = world.sample_qa(scene, rng)
            if all(qa.question != a.question for a in asked):
                asked.append(qa)
        for j, qa in enumerate(asked):
            qid = image_id * 1000 + j
            answers = _annotator_answers(qa, rng)
            mc = Counter(a["answer"] for a in answers).most_common(1)[0][0]
            questions.append({"image_id": image_id, "question": qa.question, "question_id": qid})
            annotations.append({"question_type": qa.question_type, "multiple_choice_answer": mc, "answers": answers,
                                "image_id": image_id, "answer_type": qa.answer_type, "question_id": qid})
            qwen.append({"image": rel, "question": qa.question, "question_id": qid, "answer": mc})
    _write_compact_json(root / VQAV2_QUESTIONS, {"info": info, "task_type": "Open-Ended", "data_type": "mscoco",
                                                 "license": license_, "data_subtype": "val2014",
                                                 "questions": questions})
    _write_compact_json(root / VQAV2_ANNOTATIONS, {"info": info, "license": license_, "data_subtype": "val2014",
                                                   "annotations": annotations, "data_type": "mscoco"})
    write_jsonl_atomic(root / VQAV2_JSONL, qwen)
    return {VQAV2_JSONL: len(qwen), VQAV2_QUESTIONS: len(questions), VQAV2_ANNOTATIONS: len(annotations)}


def _annotator_answers(qa: QA, rng: random.Random) -> list[dict[str, Any]]:
    """Ten human-like answers: mostly the canonical one, a few paraphrases and the odd mistake."""
    n_variant = rng.choices((0, 1, 2), weights=(0.5, 0.3, 0.2))[0]
    n_wrong = rng.choices((0, 1, 2), weights=(0.55, 0.3, 0.15))[0]
    given = [(rng.choice(world.answer_variants(qa)), rng.choice(("yes", "maybe"))) for _ in range(n_variant)]
    given += [(rng.choice(world.wrong_answers(qa)), rng.choice(("maybe", "no", "yes"))) for _ in range(n_wrong)]
    while len(given) < 10:
        given.append((qa.answer, rng.choices(("yes", "maybe"), weights=(0.85, 0.15))[0]))
    rng.shuffle(given)
    return [{"answer": a, "answer_confidence": c, "answer_id": i} for i, (a, c) in enumerate(given, start=1)]


def _write_coco_caption(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    rng = _rng(seed, "coco-caption")
    blip, images, annotations = [], [], []
    ann_id = rng.randrange(1, 1000)
    for image_id in _image_ids(seed, "coco", sizes.coco_images):
        scene = world.sample_scene(rng)
        scenes.add(scene)
        name = _coco_name(image_id)
        _write_bytes(root / "data/coco/val2014" / name, _jpeg(scene, sizes.image_size))
        refs = world.reference_captions(scene, rng, 5)
        blip.append({"image": f"val2014/{name}", "caption": refs})
        images.append({"id": image_id, "file_name": name, "height": sizes.image_size, "width": sizes.image_size})
        for ref in refs:
            annotations.append({"image_id": image_id, "id": ann_id, "caption": ref})
            ann_id += rng.randrange(1, 50)
    info = {"description": _DEMO_INFO_NOTE + " Format of COCO 2014 captions (Karpathy test split).",
            "url": "", "version": "1.0", "year": 2014, "contributor": "internvl demo", "date_created": "2017/09/01"}
    licenses = [{"url": "", "id": 1, "name": "synthetic demo data"}]
    _write_compact_json(root / COCO_TEST, blip)
    _write_compact_json(root / COCO_TEST_GT, {"info": info, "images": images, "licenses": licenses,
                                              "type": "captions", "annotations": annotations})
    return {COCO_TEST: len(blip), COCO_TEST_GT: len(annotations)}


def _pope_statistics(rng: random.Random, pool_size: int = 2000) -> tuple[Counter, dict[str, Counter]]:
    """Object frequencies and co-occurrence counts over a reference pool drawn from the world prior.

    POPE computes these over the whole COCO annotation set; the pool plays that role here.
    """
    freq: Counter = Counter()
    cooc: dict[str, Counter] = {o: Counter() for o in world.ALL_OBJECTS}
    for _ in range(pool_size):
        objs = world.sample_scene(rng).objects
        freq.update(objs)
        for a, b in combinations(objs, 2):
            cooc[a][b] += 1
            cooc[b][a] += 1
    return freq, cooc


def _pope_negatives(scene: Scene, split: str, rng: random.Random, freq: Counter,
                    cooc: dict[str, Counter]) -> list[str]:
    """POPE's three negative samplers: uniform / most frequent / most co-occurring absent objects."""
    absent = world.absent_objects(scene)
    k = len(scene.shapes)
    if split == "random":
        return rng.sample(absent, k)
    if split == "popular":
        return sorted(absent, key=lambda o: (-freq[o], o))[:k]
    return sorted(absent, key=lambda o: (-sum(cooc[p][o] for p in scene.objects), o))[:k]


def _write_pope(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    rng = _rng(seed, "pope")
    freq, cooc = _pope_statistics(_rng(seed, "pope-stats"))
    per_split: dict[str, list[dict[str, Any]]] = {s: [] for s in POPE_SPLITS}
    for image_id in _image_ids(seed, "pope", sizes.pope_images):
        scene = world.sample_scene(rng, n_shapes=3)
        scenes.add(scene)
        name = _coco_name(image_id)
        _write_bytes(root / "data/pope/val2014" / name, _jpeg(scene, sizes.image_size))
        for split in POPE_SPLITS:
            negatives = _pope_negatives(scene, split, rng, freq, cooc)
            for pos, neg in zip(scene.objects, negatives, strict=True):
                for obj, label in ((pos, "yes"), (neg, "no")):
                    recs = per_split[split]
                    recs.append({"question_id": len(recs) + 1, "image": name, "text": world.pope_question(obj),
                                 "label": label})
    llava = []
    counts: dict[str, int] = {}
    for split in POPE_SPLITS:
        recs = per_split[split]
        dest = f"data/pope/coco/coco_pope_{split}.json"
        _write_bytes(root / dest, "".join(json.dumps(r) + "\r\n" for r in recs).encode("utf-8"))
        counts[dest] = len(recs)
        for r in recs:
            llava.append({"question_id": POPE_QID_OFFSET[split] + r["question_id"], "image": r["image"],
                          "text": pope_text(r["text"]), "category": split})
    write_jsonl_atomic(root / POPE_QUESTIONS, llava)
    counts[POPE_QUESTIONS] = len(llava)
    return counts


def _write_mmbench(root: Path, seed: int, sizes: DemoSizes, scenes: set[Scene]) -> dict[str, int]:
    rng = _rng(seed, "mmbench")
    letters = _LetterBag(rng)
    names = tuple(world.MC_CATEGORIES)
    categories = [names[i % len(names)] for i in range(sizes.mmbench_questions)]  # balanced, then shuffled
    rng.shuffle(categories)
    rows: list[dict[str, Any]] = []
    for index, category in enumerate(categories):
        while True:
            scene = world.sample_scene(rng)
            mcq = world.sample_mcq(scene, rng, category)
            if mcq is not None:
                break
        scenes.add(scene)
        options, answer = _arrange(mcq, rng, letters.draw(len(mcq.options)))
        image = base64.b64encode(_jpeg(scene, sizes.image_size)).decode("ascii")
        base = {"index": index, "question": mcq.question, "hint": world.sample_hint(rng) or "", "answer": answer,
                "category": mcq.category, "image": image, "source": "demo_shapes", "l2-category": mcq.l2_category,
                "comment": "", "split": "dev"}
        rows.append({**base, **options})
        if sizes.mmbench_circular:  # rotated copies, index + k * 1e6, as in the real dev file
            values = list(options.values())
            for k in range(1, len(values)):
                rotated = values[k:] + values[:k]
                rows.append({**base, **dict(zip(LETTERS, rotated, strict=False)), "index": index + k * 1_000_000,
                             "answer": LETTERS[rotated.index(options[answer])]})
    rows.sort(key=lambda r: r["index"])
    dest = root / MMBENCH_TSV
    with atomic_path(dest) as tmp:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
            writer.writerow(MMBENCH_COLUMNS)
            for r in rows:
                writer.writerow([r.get(c, "") for c in MMBENCH_COLUMNS])
    return {MMBENCH_TSV: len(rows)}


# ---------------------------------------------------------------------------------------------------------
# SFT sources


def _turn(human: str, gpt: str) -> list[dict[str, str]]:
    return [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]


def _short_turn(scene: Scene, rng: random.Random, pope_prob: float = 0.35) -> tuple[str, str]:
    """A short-answer turn: POPE-style existence ("Yes"/"No") or VQA-style (lowercase short answer)."""
    if rng.random() < pope_prob:
        positive = rng.random() < 0.5
        obj = rng.choice(scene.objects) if positive else world.negative_object(scene, rng)
        # POPE's eval appends " " to the question; real models have seen stray trailing spaces in
        # pretraining, our from-scratch demo model only sees them here.
        trail = " " if rng.random() < 0.5 else ""
        return pope_text(world.pope_question(obj)) + trail, "Yes" if positive else "No"
    qa = world.sample_qa(scene, rng)
    return vqa_prompt(qa.question), qa.answer


def _sft_images(root: Path, prefix: str, n: int, rng: random.Random, banned: set[Scene],
                sizes: DemoSizes) -> list[tuple[str, Scene]]:
    out = []
    for i in range(n):
        scene = _fresh_scene(rng, banned)
        name = f"{prefix}_{i:06d}.jpg"
        _write_bytes(root / IMAGE_DIR / name, _jpeg(scene, sizes.image_size))
        out.append((name, scene))
    return out


def _sft_caption(root: Path, seed: int, sizes: DemoSizes, banned: set[Scene]) -> list[dict[str, Any]]:
    rng = _rng(seed, "sft-caption")
    records = []
    for i, (name, scene) in enumerate(_sft_images(root, "caption", sizes.sft_caption, rng, banned, sizes)):
        # the image tag sometimes trails the question, as in LLaVA's data; the loader handles both
        human = f"{CAPTION_PROMPT}\n<image>" if rng.random() < 0.05 else f"<image>\n{CAPTION_PROMPT}"
        conv = _turn(human, world.caption(scene, rng))
        if rng.random() < sizes.multi_turn_fraction / 2:
            conv += _turn(*_short_turn(scene, rng))
        records.append({"id": f"caption_{i:06d}", "image": f"demo_shapes/images/{name}", "conversations": conv})
    return records


def _sft_vqa(root: Path, seed: int, sizes: DemoSizes, banned: set[Scene]) -> list[dict[str, Any]]:
    rng = _rng(seed, "sft-vqa")
    records = []
    for i, (name, scene) in enumerate(_sft_images(root, "vqa", sizes.sft_vqa, rng, banned, sizes)):
        n_turns = rng.choice(range(2, sizes.vqa_max_turns + 1)) if rng.random() < sizes.multi_turn_fraction else 1
        conv: list[dict[str, str]] = []
        seen: set[str] = set()
        while len(conv) < 2 * n_turns:
            q, a = _short_turn(scene, rng)
            if q in seen:
                continue
            seen.add(q)
            conv += _turn(q if conv else f"<image>\n{q}", a)
        records.append({"id": f"vqa_{i:06d}", "image": f"images/{name}", "conversations": conv})
    return records


def _sft_mcq(root: Path, seed: int, sizes: DemoSizes, banned: set[Scene]) -> list[dict[str, Any]]:
    rng = _rng(seed, "sft-mcq")
    records = []
    categories = tuple(world.MC_CATEGORIES)
    for i in range(sizes.sft_mcq):
        while True:
            scene = _fresh_scene(rng, banned)
            mcq = world.sample_mcq(scene, rng, rng.choice(categories))
            if mcq is not None:
                break
        name = f"mcq_{i:06d}.jpg"
        _write_bytes(root / IMAGE_DIR / name, _jpeg(scene, sizes.image_size))
        prompt, answer = _posed(mcq, rng)
        conv = _turn(f"<image>\n{prompt}", answer)
        if sizes.mcq_max_turns > 1 and rng.random() < sizes.multi_turn_fraction:
            conv += _more_mcq_turns(scene, rng, rng.choice(range(1, sizes.mcq_max_turns)), {mcq.question})
        records.append({"id": f"mcq_{i:06d}", "image": f"images/{name}", "conversations": conv})
    return records


def _more_mcq_turns(scene: Scene, rng: random.Random, n: int, seen: set[str]) -> list[dict[str, str]]:
    """Up to ``n`` further multiple-choice turns about the same image (questions not asked before)."""
    conv: list[dict[str, str]] = []
    categories = tuple(world.MC_CATEGORIES)
    for _ in range(4 * n):
        if len(conv) == 2 * n:
            break
        mcq = world.sample_mcq(scene, rng, rng.choice(categories))
        if mcq is None or mcq.question in seen:
            continue
        seen.add(mcq.question)
        conv += _turn(*_posed(mcq, rng))
    return conv


def _sft_text(seed: int, sizes: DemoSizes) -> list[dict[str, Any]]:
    rng = _rng(seed, "sft-text")
    facts = world.text_only_qas()
    records = []
    for i in range(sizes.sft_text):
        n_turns = 2 if rng.random() < sizes.multi_turn_fraction else 1
        conv: list[dict[str, str]] = []
        for q, short, long in rng.sample(facts, n_turns):
            conv += _turn(vqa_prompt(q), short) if rng.random() < 0.6 else _turn(q, long)
        records.append({"id": f"text_{i:06d}", "conversations": conv})
    return records


def _mcq_turn(scene: Scene, rng: random.Random) -> tuple[str, str]:
    while True:
        mcq = world.sample_mcq(scene, rng, rng.choice(tuple(world.MC_CATEGORIES)))
        if mcq is not None:
            return _posed(mcq, rng)


def _lm_turn(scene: Scene, rng: random.Random) -> tuple[str, str]:
    u = rng.random()
    if u < 0.15:
        return CAPTION_PROMPT, world.caption(scene, rng)
    if u < 0.55:
        return _short_turn(scene, rng)
    return _mcq_turn(scene, rng)


def _text_conversations(rng: random.Random, n_docs: int, n_turns: int, banned: set[Scene], id_prefix: str,
                        turn: Callable[[Scene, random.Random], tuple[str, str]]) -> list[dict[str, Any]]:
    """``n_docs`` image-free conversations: a fresh scene in words, then ``n_turns`` distinct questions."""
    records = []
    for i in range(n_docs):
        scene = _fresh_scene(rng, banned)
        conv = _conversation(scene, rng, n_turns, turn, f"{world.describe(scene)}\n")
        records.append({"id": f"{id_prefix}_{i:06d}", "conversations": conv})
    return records


def _conversation(scene: Scene, rng: random.Random, n_turns: int,
                  turn: Callable[[Scene, random.Random], tuple[str, str]], lead: str) -> list[dict[str, str]]:
    """Up to ``n_turns`` distinct questions about ``scene``; ``lead`` (the scene in words, or the image tag)
    opens the first."""
    conv: list[dict[str, str]] = []
    seen: set[str] = set()
    for _ in range(8 * n_turns):
        if len(conv) == 2 * n_turns:
            break
        q, a = turn(scene, rng)
        if q in seen:
            continue
        seen.add(q)
        conv += _turn(q if conv else f"{lead}{q}", a)
    return conv


def _lm_corpus(seed: int, sizes: DemoSizes, banned: set[Scene]) -> list[dict[str, Any]]:
    """Text-only conversations for the demo LLM's pretraining: the scene in words, then questions.

    Why it exists: V1.2 starts its SFT from a pretrained chat LLM; the demo's LLM is pretrained on these
    (see ``internvl.train.lm_pretrain`` for what that measurably does and does not give it). The
    questions use the benchmark prompt formats, the scenes are fresh (never a benchmark scene) and no
    image is involved.
    """
    return _text_conversations(_rng(seed, "lm-corpus"), sizes.lm_docs, sizes.lm_turns, banned, "lm", _lm_turn)


def _lookup_turn(scene: Scene, rng: random.Random) -> tuple[str, str]:
    """One of four lookups, equally often: existence (POPE prompt), colour at a cell (VQA prompt), MC colour or
    kind, MC location (MMBench prompt)."""
    family = rng.randrange(4)
    if family == 0:
        return _short_turn(scene, rng, pope_prob=1.0)
    if family == 1:
        shape = rng.choice(scene.shapes)
        return vqa_prompt(f"What color is the shape in the {shape.position}?"), shape.color
    category = "attribute_recognition" if family == 2 else "object_localization"
    while True:
        mcq = world.sample_mcq(scene, rng, category)
        if mcq is not None:
            return _posed(mcq, rng)


def _lookup_corpus(seed: int, sizes: DemoSizes, banned: set[Scene]) -> list[dict[str, Any]]:
    """Conversations of lookup questions only, about a scene in words.

    Why it exists: on the mixed LM corpus the tiny LLM never learns in-context lookups (is the named object
    in the described scene?), and without them in text the SFT never learns them from images either
    (measured, see README). On this corpus, with loss on every token, existence goes through a phase
    transition (0.53 at step 400, 0.93 at 1,200, batch 16). The 2,400-step stage is too slow for
    ``make demo``, so its result is shipped (resources/demo_llm, made by config/demo_llm.yaml), as the real
    pipeline downloads its LLM.
    """
    return _text_conversations(_rng(seed, "lookup-corpus"), sizes.lookup_docs, sizes.lookup_turns, banned,
                               "lookup", _lookup_turn)


def _align_data(root: Path, seed: int, sizes: DemoSizes, banned: set[Scene]) -> list[dict[str, Any]]:
    """Images with ``align_turns`` lookup questions each (:func:`_lookup_turn`'s four kinds), for the stage that
    trains the ViT and projector under the frozen LLM.

    Why its own mix: V1.2's projector came from a pretraining stage on data of its own, before the SFT. Under
    a frozen lookup LLM, one epoch on the SFT mix (whose loss is mostly caption tokens) left existence at
    chance (POPE 50%, 3% "yes"; stop 9's probe); this mix, asked in the words the LLM already answers about
    scenes in text, teaches the ViT and projector to show it the scene (existence 0.80 on images after one
    epoch, POPE F1 80.8 through the DAG; README).
    """
    rng = _rng(seed, "align")
    records = []
    for i, (name, scene) in enumerate(_sft_images(root, "align", sizes.align_images, rng, banned, sizes)):
        conv = _conversation(scene, rng, sizes.align_turns, _lookup_turn, "<image>\n")
        records.append({"id": f"align_{i:06d}", "image": f"images/{name}", "conversations": conv})
    return records


def _write_align(root: Path, seed: int, sizes: DemoSizes, banned: set[Scene]) -> dict[str, int]:
    sources = {"demo_shapes_align": ("playground/data/demo_shapes/", ALIGN_ANNOTATION)}
    return _write_sources(root, ALIGN_META_PATH, sources, {"demo_shapes_align": _align_data(root, seed, sizes, banned)})


# name -> (root, annotation); roots differ on purpose, like the original mixture's roots
SFT_SOURCES: dict[str, tuple[str, str]] = {
    "demo_shapes_caption": ("playground/data/", "playground/demo_shapes_caption.jsonl"),
    "demo_shapes_vqa": ("playground/data/demo_shapes/", "playground/demo_shapes_vqa.jsonl"),
    "demo_shapes_mcq": ("playground/data/demo_shapes/", "playground/demo_shapes_mcq.jsonl"),
    "demo_text_only": ("playground/data/", "playground/demo_text_only.jsonl"),
}


def _write_sft(root: Path, seed: int, sizes: DemoSizes, banned: set[Scene]) -> dict[str, int]:
    built = {
        "demo_shapes_caption": _sft_caption(root, seed, sizes, banned),
        "demo_shapes_vqa": _sft_vqa(root, seed, sizes, banned),
        "demo_shapes_mcq": _sft_mcq(root, seed, sizes, banned),
        "demo_text_only": _sft_text(seed, sizes),
    }
    counts = _write_sources(root, META_PATH, SFT_SOURCES, built)
    counts[IMAGE_DIR] = sizes.sft_caption + sizes.sft_vqa + sizes.sft_mcq
    return counts


def _write_sources(root: Path, meta_path: str, sources: dict[str, tuple[str, str]],
                   built: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Each source's annotation JSONL, then a meta file in the original format listing them; returns the counts."""
    meta: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for name, records in built.items():
        data_root, annotation = sources[name]
        write_jsonl_atomic(root / annotation, records)
        meta[name] = {"root": data_root, "annotation": annotation, "data_augment": False, "repeat_time": 1,
                      "length": len(records)}
        counts[annotation] = len(records)
    write_json_atomic(root / meta_path, meta)
    counts[meta_path] = len(meta)
    return counts


# ---------------------------------------------------------------------------------------------------------
# entry points


def build_demo(root: Path, seed: int = 0, sizes: DemoSizes | None = None) -> dict[str, int]:
    """Write the whole demo data set under ``root``; return {relative path: number of records}.

    Image folders map to their number of images. Existing files are overwritten, nothing is deleted.

    Benchmarks are written first and their scenes are banned from the SFT streams, so benchmark outputs
    do not depend on the SFT sizes and no training image equals a benchmark image.
    """
    root = Path(root)
    sizes = sizes or DemoSizes()
    bench_scenes: set[Scene] = set()
    summary: dict[str, int] = {}
    summary.update(_write_mmbench(root, seed, sizes, bench_scenes))
    summary.update(_write_vqav2(root, seed, sizes, bench_scenes))
    summary.update(_write_coco_caption(root, seed, sizes, bench_scenes))
    summary.update(_write_pope(root, seed, sizes, bench_scenes))
    if sizes.all_benchmarks:  # imported here: bench_writers imports this module
        from internvl.demo.bench_writers import write_all_benchmarks

        summary.update(write_all_benchmarks(root, seed, sizes, bench_scenes))
    summary.update(_write_sft(root, seed, sizes, bench_scenes))
    if sizes.align_images:
        summary.update(_write_align(root, seed, sizes, bench_scenes))
        summary[IMAGE_DIR] += sizes.align_images
    write_jsonl_atomic(root / LM_CORPUS, _lm_corpus(seed, sizes, bench_scenes))
    summary[LM_CORPUS] = sizes.lm_docs
    if sizes.lookup_docs:
        write_jsonl_atomic(root / LOOKUP_CORPUS, _lookup_corpus(seed, sizes, bench_scenes))
        summary[LOOKUP_CORPUS] = sizes.lookup_docs
    summary["data/coco/val2014"] = sizes.vqav2_images + sizes.coco_images
    summary["data/pope/val2014"] = sizes.pope_images
    return summary


SYSTEM_SEGMENT = "system\nAnswer the questions."  # text between <|im_start|> and <|im_end|> of the system turn
ROLE_PREFIX = {"human": "user\n", "gpt": "assistant\n"}


def corpus_texts(root: Path) -> list[str]:
    """The text the tokenizer will see in training, one string per template segment, in file order.

    Each SFT record contributes its Hermes-2 segments (the text between ``<|im_start|>`` and
    ``<|im_end|>``: role word + message, ``<image>`` tags removed), so template words get their true
    frequency. The benchmark prompts use the same templates, so the benchmark files are not needed.
    """
    root = Path(root)
    texts: list[str] = []
    for entry in load_json(root / META_PATH).values():
        for _, rec in iter_jsonl(root / entry["annotation"]):
            texts.append(SYSTEM_SEGMENT)
            for turn in rec["conversations"]:
                value = turn["value"].replace("<image>\n", "").replace("\n<image>", "").replace("<image>", "")
                texts.append(ROLE_PREFIX[turn["from"]] + value)
    return texts


def write_corpus(root: Path, dest: Path | None = None) -> list[str]:
    """Collect :func:`corpus_texts` and also save them (one JSON string per line) for inspection."""
    texts = corpus_texts(root)
    dest = Path(dest) if dest is not None else Path(root) / "playground/meta/demo_tokenizer_corpus.jsonl"
    with atomic_path(dest) as tmp:
        tmp.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    return texts
