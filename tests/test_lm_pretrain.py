"""Text-only LLM pretraining (internvl.train.lm_pretrain) and the demo corpus it reads."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from internvl.demo import world
from internvl.demo.tokenizer import build_demo_tokenizer
from internvl.demo.writers import LM_CORPUS, LOOKUP_CORPUS, DemoSizes, build_demo, corpus_texts
from internvl.errors import DataError
from internvl.model.init import init_checkpoint
from internvl.train.lm_pretrain import LMPretrainConfig, pretrain_llm, read_corpus


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    summary = build_demo(root, seed=0, sizes=DemoSizes.tiny())
    return root, summary


def test_describe_names_every_shape_with_its_cell():
    scene = world.sample_scene(random.Random(3), 3)
    text = world.describe(scene)
    assert text.startswith("Picture: ") and text.endswith(".")
    for s in scene.shapes:
        assert f"a {s.size} {s.color} {s.kind} in the {s.position}" in text


def test_demo_corpus_is_text_only_and_deterministic(demo, tmp_path):
    root, summary = demo
    convs = read_corpus(root / LM_CORPUS)
    assert len(convs) == summary[LM_CORPUS] == DemoSizes.tiny().lm_docs
    assert all(c[0]["value"].startswith("Picture: ") for c in convs)
    assert all(len(c) == 2 * DemoSizes.tiny().lm_turns for c in convs)
    answers = [t["value"] for c in convs for t in c[1::2]]
    assert {"Yes", "No"} & set(answers) and any(a in ("A", "B", "C", "D") for a in answers)
    build_demo(tmp_path, seed=0, sizes=DemoSizes.tiny())
    assert (tmp_path / LM_CORPUS).read_bytes() == (root / LM_CORPUS).read_bytes()


def test_lookup_corpus_is_opt_in_and_asks_only_lookups_with_true_answers(demo, tmp_path):
    root, summary = demo
    assert LOOKUP_CORPUS not in summary and not (root / LOOKUP_CORPUS).exists()
    sizes = DemoSizes(**{**DemoSizes.tiny().__dict__, "lookup_docs": 30, "lookup_turns": 6})
    built = build_demo(tmp_path, seed=0, sizes=sizes)
    assert built[LOOKUP_CORPUS] == 30
    for name in (LM_CORPUS, "playground/demo_shapes_vqa.jsonl"):  # the rest of the demo does not move
        assert (tmp_path / name).read_bytes() == (root / name).read_bytes()
    families = set()
    for conv in read_corpus(tmp_path / LOOKUP_CORPUS):
        assert len(conv) == 12 and conv[0]["value"].startswith("Picture: ")
        scene_text = conv[0]["value"].split("\n", 1)[0]
        for q, a in zip(conv[0::2], conv[1::2], strict=True):
            question, answer = q["value"], a["value"]
            if "Is there a " in question:
                families.add("exists")
                obj = question.split("Is there a ", 1)[1].split(" in the image?")[0]
                assert answer == ("Yes" if f" {obj} in the " in scene_text else "No"), (scene_text, question)
            elif "from the given choices" in question:
                families.add("mc_where" if "located" in question else "mc_attr")
                assert answer in "ABCD" and f"\n{answer}. " in question
            else:
                families.add("color_at")
                cell = question.split("shape in the ", 1)[1].split("?")[0]
                assert f" {answer} " in scene_text.split(f" in the {cell}")[0].rsplit(", ", 1)[-1] + " "
    assert families == {"exists", "mc_where", "mc_attr", "color_at"}


@pytest.mark.parametrize("line, field", [
    ('{"id": 1, "conversations": []}', "conversations"),
    ('{"id": 1, "image": "x.jpg", "conversations": [{"from": "human", "value": "<image>\\nhi"}, '
     '{"from": "gpt", "value": "yo"}]}', "image"),
    ('{"id": 1, "conversations": [{"from": "human", "value": "hi"}, {"from": "human", "value": "yo"}]}',
     "conversations[1].from"),
    ('{"id": 1, "conversations": [{"from": "human", "value": "<image>\\nhi"}, {"from": "gpt", "value": "yo"}]}',
     "image"),
    ('{"id": 1, "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": " "}]}',
     "conversations[1].value"),
])
def test_bad_corpus_record_names_file_line_and_field(tmp_path, line, field):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": 0, "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}\n'
                    + line + "\n")
    with pytest.raises(DataError) as err:
        read_corpus(path)
    assert f"{path}:2" in str(err.value) and repr(field) in str(err.value)


def test_malformed_json_line_is_an_error(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": 0, "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}\n'
                    '{"id": 1,\n')
    with pytest.raises(DataError, match=r"corpus.jsonl:2"):
        read_corpus(path)


def test_pretraining_trains_only_the_llm_and_lowers_the_loss(demo, tmp_path):
    root, _ = demo
    build_demo_tokenizer(corpus_texts(root), tmp_path / "tok")
    init_checkpoint("tiny", tmp_path / "tok", tmp_path / "init", seed=0)
    cfg = LMPretrainConfig(init=str(tmp_path / "init"), corpus=str(root / LM_CORPUS), output=str(tmp_path / "out"),
                           work_dir=str(tmp_path / "state"), max_steps=12, per_device_train_batch_size=4,
                           warmup_steps=2, save_steps=6, logging_steps=1)
    summary = pretrain_llm(cfg)
    assert summary["global_steps"] == 12 and not summary["resumed"]
    assert summary["last_logged_loss"] < summary["first_logged_loss"]
    before, after = load_file(tmp_path / "init" / "model.safetensors"), load_file(tmp_path / "out" / "model.safetensors")
    assert before.keys() == after.keys()
    for key in before:
        same = torch.equal(before[key], after[key])
        if key.startswith(("vision_model.", "mlp1.")):
            assert same, key  # frozen: byte-identical
    assert not torch.equal(before["language_model.lm_head.weight"], after["language_model.lm_head.weight"])
    assert json.loads((Path(cfg.output) / "lm_pretrain_summary.json").read_text())["global_steps"] == 12
    # a rerun of the same run resumes from its last step checkpoint instead of starting over
    assert pretrain_llm(cfg)["resumed"]
