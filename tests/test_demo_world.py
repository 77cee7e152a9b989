"""The demo world and its writers: determinism, real-format fidelity, train/benchmark separation."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from internvl.demo import world
from internvl.demo.writers import (
    ALIGN_META_PATH,
    CAPTION_PROMPT,
    COCO_TEST,
    COCO_TEST_GT,
    IMAGE_DIR,
    MC_INSTRUCTION,
    META_PATH,
    MMBENCH_COLUMNS,
    MMBENCH_TSV,
    POPE_QUESTIONS,
    POPE_SPLITS,
    SHORT_ANSWER,
    VQAV2_ANNOTATIONS,
    VQAV2_JSONL,
    VQAV2_QUESTIONS,
    DemoSizes,
    _write_align,
    build_demo,
    corpus_texts,
    mmbench_prompt,
)

SIZES = DemoSizes.tiny()
COCO_NAME = re.compile(r"COCO_val2014_\d{12}\.jpg")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("demo")
    return root, build_demo(root, seed=0, sizes=SIZES)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------------------
# world


def test_scenes_respect_the_world_rules():
    rng = random.Random(3)
    for _ in range(500):
        scene = world.sample_scene(rng)
        cells = [s.cell for s in scene.shapes]
        assert 1 <= len(scene.shapes) <= 3
        assert cells == sorted(set(cells))
        assert len(set(scene.objects)) == len(scene.objects)
        assert all(o not in scene.objects for o in world.absent_objects(scene))
    assert len(world.sample_scene(rng, n_shapes=3).shapes) == 3


def test_render_draws_each_shape_in_its_cell_and_colour():
    rng = random.Random(5)
    for _ in range(30):
        scene = world.sample_scene(rng)
        for size in (224, 56):
            img = world.render(scene, size)
            assert img.mode == "RGB" and img.size == (size, size)
            cell = size / 2
            for s in scene.shapes:  # the middle of a cell is inside the shape whatever the jitter
                centre = (int((s.col + 0.5) * cell), int((s.row + 0.55) * cell))
                assert img.getpixel(centre) == world.COLORS[s.color], (s, size)
            empty = set(range(4)) - {s.cell for s in scene.shapes}
            for c in empty:
                assert img.getpixel((int((c % 2 + 0.5) * cell), int((c // 2 + 0.5) * cell))) == world.BACKGROUND
    assert world.render(scene).tobytes() == world.render(scene).tobytes()


def test_short_answers_agree_with_the_scene():
    rng = random.Random(7)
    for _ in range(300):
        scene = world.sample_scene(rng)
        qa = world.sample_qa(scene, rng)
        if qa.question in ("How many shapes are there?", "How many shapes are in the image?"):
            assert qa.answer == str(len(scene.shapes))
        m = re.fullmatch(r"Where is the (\w+ \w+)\?", qa.question)
        if m:
            assert qa.answer == next(s.position for s in scene.shapes if s.name == m.group(1))
        m = re.fullmatch(r"What color is the shape in the (.+)\?", qa.question)
        if m:
            assert qa.answer == next(s.color for s in scene.shapes if s.position == m.group(1))
        m = re.fullmatch(r"Is there a (\w+ \w+)\?", qa.question)
        if m:
            assert qa.answer == ("yes" if m.group(1) in scene.objects else "no")
        assert qa.answer_type in ("yes/no", "number", "other")


def test_reference_captions_are_distinct_and_mention_every_object():
    rng = random.Random(11)
    for _ in range(50):
        scene = world.sample_scene(rng)
        refs = world.reference_captions(scene, rng, 5)
        assert len(set(refs)) == 5
        for ref in refs:
            assert ref[0].isupper() and ref.endswith(".")
            for s in scene.shapes:
                assert s.color in ref and s.kind in ref


# ---------------------------------------------------------------------------------------------------------
# writers: determinism and layout


def test_same_seed_gives_byte_identical_files(demo, tmp_path):
    root, _ = demo
    build_demo(tmp_path / "again", seed=0, sizes=SIZES)
    first, second = _files(root), _files(tmp_path / "again")
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []
    build_demo(tmp_path / "other", seed=1, sizes=SIZES)
    assert _files(tmp_path / "other")[MMBENCH_TSV] != first[MMBENCH_TSV]


def test_summary_counts_match_the_files(demo):
    root, summary = demo
    for rel, n in summary.items():
        path = root / rel
        if path.is_dir():
            assert len(list(path.glob("*.jpg"))) == n, rel
        elif rel.endswith(".jsonl") or rel.startswith("data/pope/coco/"):
            assert len(_jsonl(path)) == n
    assert summary[VQAV2_JSONL] == SIZES.vqav2_images * SIZES.vqav2_questions_per_image
    assert summary[COCO_TEST] == SIZES.coco_images


def test_train_and_benchmark_images_are_disjoint(demo):
    root, _ = demo
    digest = lambda b: hashlib.sha256(b).hexdigest()  # noqa: E731
    train = {digest(p.read_bytes()) for p in (root / IMAGE_DIR).glob("*.jpg")}
    bench = {digest(p.read_bytes()) for p in (root / "data").rglob("*.jpg")}
    df = pd.read_csv(root / MMBENCH_TSV, sep="\t")
    bench |= {digest(base64.b64decode(b)) for b in df["image"]}
    assert train and bench and not train & bench
    assert len(train) == sum(1 for _ in (root / IMAGE_DIR).glob("*.jpg"))


def test_training_never_reuses_a_benchmark_scene(tmp_path, monkeypatch):
    """Shrink the world to 80 scenes so collisions are certain unless the writer bans benchmark scenes."""
    pool_rng = random.Random(0)
    pools = {n: [world.sample_scene(pool_rng, n) for _ in range(80)] for n in (None, 3)}
    monkeypatch.setattr(world, "sample_scene", lambda rng, n_shapes=None: rng.choice(pools[n_shapes]))
    build_demo(tmp_path, seed=0, sizes=SIZES)
    train = {p.read_bytes() for p in (tmp_path / IMAGE_DIR).glob("*.jpg")}
    bench = {p.read_bytes() for p in (tmp_path / "data").rglob("*.jpg")}
    bench |= {base64.b64decode(b) for b in pd.read_csv(tmp_path / MMBENCH_TSV, sep="\t")["image"]}
    assert train and not train & bench


# ---------------------------------------------------------------------------------------------------------
# SFT files


@pytest.mark.parametrize("meta_path, n_sources", [(META_PATH, 3), (ALIGN_META_PATH, 1)])
def test_meta_json_has_the_original_keys_and_paths(demo, meta_path, n_sources):
    root, _ = demo
    meta = json.loads((root / meta_path).read_text())
    assert len(meta) >= n_sources
    for name, entry in meta.items():
        assert list(entry) == ["root", "annotation", "data_augment", "repeat_time", "length"], name
        assert entry["annotation"].endswith(".jsonl") and (root / entry["annotation"]).is_file()
        assert entry["data_augment"] is False and entry["repeat_time"] == 1
        assert entry["length"] == len(_jsonl(root / entry["annotation"]))
        assert not Path(entry["root"]).is_absolute()


def test_sft_records_are_llava_conversations(demo):
    root, _ = demo
    meta = json.loads((root / META_PATH).read_text())
    n_image_sources = n_text = n_multi = 0
    for entry in meta.values():
        records = _jsonl(root / entry["annotation"])
        has_image = ["image" in r for r in records]
        assert len(set(has_image)) == 1  # a source is either all-image or all-text
        n_image_sources += has_image[0]
        for r in records:
            conv = r["conversations"]
            assert isinstance(r["id"], str) and len(conv) % 2 == 0 and conv
            assert [t["from"] for t in conv] == ["human", "gpt"] * (len(conv) // 2)
            n_multi += len(conv) > 2
            tags = sum(t["value"].count("<image>") for t in conv)
            if "image" in r:
                assert tags == 1 and "<image>" in conv[0]["value"]
                assert (root / entry["root"] / r["image"]).is_file()
            else:
                n_text += 1
                assert tags == 0
    assert n_image_sources >= 2 and n_text > 0 and n_multi > 0


def _cell_color(image: Image.Image, cell: int) -> str:
    """The colour of the shape drawn in ``cell`` (most of its non-background pixels), read off the decoded JPEG."""
    half = image.size[0] // 2
    x0, y0 = (cell % 2) * half, (cell // 2) * half
    palette = {**world.COLORS, "background": world.BACKGROUND}
    votes = Counter()
    for x in range(x0, x0 + half, 2):
        for y in range(y0, y0 + half, 2):
            rgb = image.getpixel((x, y))
            votes[min(palette, key=lambda c: sum((a - b) ** 2 for a, b in zip(palette[c], rgb, strict=True)))] += 1
    del votes["background"]
    return votes.most_common(1)[0][0]


def test_align_mix_is_its_own_source(demo):
    root, summary = demo
    (entry,) = json.loads((root / ALIGN_META_PATH).read_text()).values()
    assert entry["annotation"] not in {e["annotation"] for e in json.loads((root / META_PATH).read_text()).values()}
    assert len(_jsonl(root / entry["annotation"])) == SIZES.align_images == summary[entry["annotation"]]


def test_align_mix_asks_lookups_about_its_images(tmp_path):
    """Images only, ``align_turns`` lookups each, in the benchmark prompts; colour-at-a-cell answers are read
    back off the JPEG (60 images: enough two- and three-shape scenes that a wrong cell would show)."""
    root = tmp_path
    sizes = DemoSizes(align_images=60, image_size=64)
    _write_align(root, 0, sizes, set())
    (entry,) = json.loads((root / ALIGN_META_PATH).read_text()).values()
    records = _jsonl(root / entry["annotation"])
    assert len(records) == 60
    kinds = Counter()
    for r in records:
        conv = r["conversations"]
        assert [t["from"] for t in conv] == ["human", "gpt"] * sizes.align_turns
        assert conv[0]["value"].startswith("<image>\n") and sum(t["value"].count("<image>") for t in conv) == 1
        image = Image.open(root / entry["root"] / r["image"]).convert("RGB")
        for q, a in zip(conv[0::2], conv[1::2], strict=True):
            question, answer = q["value"].replace("<image>\n", ""), a["value"]
            if question.endswith(MC_INSTRUCTION):
                kinds["mc_where" if " located " in question else "mc_attr"] += 1
                assert re.fullmatch(r"[ABCD]", answer) and f"\n{answer}. " in question
            elif question.startswith("Is there a "):
                kinds["exists"] += 1
                assert answer in ("Yes", "No") and question.rstrip().endswith(SHORT_ANSWER)
            else:
                kinds["color_at"] += 1
                where = re.fullmatch(rf"What color is the shape in the ([a-z ]+)\? {SHORT_ANSWER}", question)
                assert _cell_color(image, world.POSITIONS.index(where.group(1))) == answer, (r["id"], question)
    assert set(kinds) == {"exists", "mc_where", "mc_attr", "color_at"}


def test_sft_questions_use_the_benchmark_prompts(demo):
    root, _ = demo
    turns = []
    for entry in json.loads((root / META_PATH).read_text()).values():
        for r in _jsonl(root / entry["annotation"]):
            conv = r["conversations"]
            turns += [(conv[i]["value"].replace("<image>\n", ""), conv[i + 1]["value"]) for i in range(0, len(conv), 2)]
    styles = Counter()
    for q, a in turns:
        if q.startswith(CAPTION_PROMPT) or q == CAPTION_PROMPT:
            styles["caption"] += 1
            assert a.endswith(".")
        elif q.endswith(MC_INSTRUCTION):
            styles["mc"] += 1
            assert re.fullmatch(r"[ABCD]", a) and f"\n{a}. " in q
        elif q.endswith(f"\n{SHORT_ANSWER}"):
            styles["pope"] += 1
            assert re.fullmatch(r"Is there a \w+ \w+ in the image\?", q.split("\n")[0]) and a in ("Yes", "No")
        elif q.endswith(f" {SHORT_ANSWER}"):
            styles["vqa"] += 1
            assert a == a.lower() and len(a.split()) <= 2
    assert min(styles[s] for s in ("caption", "mc", "pope", "vqa")) > 0


def test_mmbench_prompt_layout():
    text = mmbench_prompt("Q?", {"A": "x", "B": "y"}, "line one\nline two")
    assert text == "line one\nline two\nQ?\nA. x\nB. y\n" + MC_INSTRUCTION
    assert mmbench_prompt("Q?", {"A": "x"}) == "Q?\nA. x\n" + MC_INSTRUCTION


# ---------------------------------------------------------------------------------------------------------
# benchmark files


def test_mmbench_tsv_parses_like_the_real_file(demo):
    root, _ = demo
    raw = (root / MMBENCH_TSV).read_text(encoding="utf-8")
    assert raw.split("\n", 1)[0].split("\t") == list(MMBENCH_COLUMNS)
    assert '"' in raw  # multi-line hints are quoted
    df = pd.read_csv(root / MMBENCH_TSV, sep="\t")
    assert list(df.columns) == list(MMBENCH_COLUMNS)
    assert df["hint"].dropna().str.contains("\n").any()
    assert df["C"].isna().any() and df["D"].isna().any() and df["D"].notna().any()
    assert set(df["answer"]) <= set("ABCD")
    for _, row in df.iterrows():
        assert pd.notna(row[row["answer"]])
    base = df[df["index"] < 1_000_000]
    assert len(base) == SIZES.mmbench_questions and base["category"].nunique() == 4
    letters = Counter(base["answer"])
    assert letters["A"] > 0 and letters["B"] > 0 and abs(letters["A"] - letters["B"]) <= 2
    for _, row in df[df["index"] >= 1_000_000].iterrows():  # circular copies keep the same correct text
        orig = base[base["index"] == row["index"] % 1_000_000].iloc[0]
        assert row[row["answer"]] == orig[orig["answer"]] and row["question"] == orig["question"]
    img = Image.open(io.BytesIO(base64.b64decode(df["image"].iloc[0])))
    assert img.format == "JPEG" and img.size == (SIZES.image_size, SIZES.image_size)


def test_vqav2_files_have_the_official_structure(demo):
    root, _ = demo
    qs = json.loads((root / VQAV2_QUESTIONS).read_text())
    anns = json.loads((root / VQAV2_ANNOTATIONS).read_text())
    assert {"info", "license", "data_type", "data_subtype", "questions", "task_type"} == set(qs)
    assert {"info", "license", "data_type", "data_subtype", "annotations"} == set(anns)
    assert qs["data_subtype"] == "val2014" and not (root / VQAV2_QUESTIONS).read_bytes().endswith(b"\n")
    by_qid = {a["question_id"]: a for a in anns["annotations"]}
    qwen = {r["question_id"]: r for r in _jsonl(root / VQAV2_JSONL)}
    assert set(by_qid) == {q["question_id"] for q in qs["questions"]} == set(qwen)
    for q in qs["questions"]:
        a = by_qid[q["question_id"]]
        assert set(a) == {"question_type", "multiple_choice_answer", "answers", "image_id", "answer_type",
                          "question_id"}
        assert q["question_id"] // 1000 == q["image_id"] == a["image_id"]
        assert [x["answer_id"] for x in a["answers"]] == list(range(1, 11))
        assert all(set(x) == {"answer", "answer_confidence", "answer_id"} for x in a["answers"])
        counts = Counter(x["answer"] for x in a["answers"])
        assert counts[a["multiple_choice_answer"]] >= 6
        r = qwen[q["question_id"]]
        assert list(r) == ["image", "question", "question_id", "answer"]
        assert r["image"] == f"data/coco/val2014/COCO_val2014_{q['image_id']:012d}.jpg"
        assert (root / r["image"]).is_file()
        assert r["question"] == q["question"] and r["answer"] == a["multiple_choice_answer"]


def test_coco_karpathy_files(demo):
    root, _ = demo
    test = json.loads((root / COCO_TEST).read_text())
    gt = json.loads((root / COCO_TEST_GT).read_text())
    assert {"info", "licenses", "type", "images", "annotations"} == set(gt)
    gt_refs: dict[int, list[str]] = {}
    for ann in gt["annotations"]:
        assert set(ann) == {"image_id", "id", "caption"}
        gt_refs.setdefault(ann["image_id"], []).append(ann["caption"])
    assert len({a["id"] for a in gt["annotations"]}) == len(gt["annotations"])
    for rec in test:
        assert set(rec) == {"image", "caption"} and len(rec["caption"]) == 5
        assert rec["image"].startswith("val2014/") and COCO_NAME.fullmatch(rec["image"].split("/")[1])
        assert (root / "data/coco" / rec["image"]).is_file()
        image_id = int(rec["image"].rsplit("_", 1)[1][:-4])
        assert gt_refs[image_id] == rec["caption"]
    assert {i["id"] for i in gt["images"]} == set(gt_refs)


def test_pope_label_files_pair_with_the_llava_questions(demo):
    root, _ = demo
    questions = _jsonl(root / POPE_QUESTIONS)
    assert [q["category"] for q in questions] == [s for s in POPE_SPLITS for _ in range(6 * SIZES.pope_images)]
    labels = {}
    for split in POPE_SPLITS:
        path = root / f"data/pope/coco/coco_pope_{split}.json"
        raw = path.read_bytes()
        assert raw.count(b"\r\n") == raw.count(b"\n") > 0  # CRLF JSON lines, like the POPE repo
        labels[split] = _jsonl(path)
        mine = [q for q in questions if q["category"] == split]
        assert len(mine) == len(labels[split])
        for q, lab in zip(mine, labels[split], strict=True):  # the scorer pairs by order within a split
            assert set(lab) == {"question_id", "image", "text", "label"}
            assert q["image"] == lab["image"] and COCO_NAME.fullmatch(q["image"])
            assert q["text"] == lab["text"] + "\n" + SHORT_ANSWER
            assert q["question_id"] % 10_000_000 == lab["question_id"]
            assert (root / "data/pope/val2014" / q["image"]).is_file()
        assert Counter(lab["label"] for lab in labels[split]) == {"yes": 3 * SIZES.pope_images,
                                                                  "no": 3 * SIZES.pope_images}
    yes = {s: [(r["image"], r["text"]) for r in labels[s] if r["label"] == "yes"] for s in POPE_SPLITS}
    assert yes["random"] == yes["popular"] == yes["adversarial"]  # same images, same positives
    present = {}
    for img, text in yes["random"]:
        present.setdefault(img, set()).add(text)
    for split in POPE_SPLITS:
        for r in labels[split]:
            if r["label"] == "no":
                assert r["text"] not in present[r["image"]]


def test_corpus_texts_cover_the_sft_text(demo):
    root, _ = demo
    texts = corpus_texts(root)
    assert texts and not any("<image>" in t for t in texts)
    assert any(CAPTION_PROMPT in t for t in texts) and any(t.startswith("assistant\n") for t in texts)
