"""The per-skill diagnostic scores what it asks: an oracle reading the scene gets everything, guessers get chance."""

from __future__ import annotations

import re

import pytest

from internvl.demo import diagnose, world
from internvl.model.checkpoint import load_pretrained


@pytest.fixture(scope="module")
def tiny_checkpoint(tiny_demo):
    return tiny_demo / "ckpt"


def _oracle(p: diagnose.Probe, with_image: bool) -> str:
    """Answers from the scene itself, by reading the question the way a perfect model would."""
    q = p.question
    if p.skill == "color_at":
        pos = re.search(r"in the (top left|top right|bottom left|bottom right)\?", q).group(1)
        return next(s.color for s in p.scene.shapes if s.position == pos)
    if p.skill == "exists":
        obj = re.search(r"Is there a (\w+ \w+) in the image\?", q).group(1)
        return "Yes" if obj in p.scene.objects else "No"
    options = dict(re.findall(r"^([A-D])\. (.+)$", q, flags=re.M))
    if p.skill == "mc_where":
        name = re.search(r"Where is the (\w+ \w+) located", q).group(1)
        truth = next(s.position for s in p.scene.shapes if s.name == name)
    else:
        ref = re.search(r"What color is the (.+)\?", q).group(1)
        m = re.match(r"shape in the (.+)", ref)
        truth = next(s.color for s in p.scene.shapes if (s.position == m.group(1) if m else s.kind == ref))
    return next(k for k, v in options.items() if v == truth)


def test_probes_are_deterministic_balanced_and_use_benchmark_prompts():
    a, b = diagnose.make_probes(20, seed=3), diagnose.make_probes(20, seed=3)
    assert a == b and len(a) == 20 * len(diagnose.SKILLS)
    exists = [p for p in a if p.skill == "exists"]
    assert sum(p.answer == "Yes" for p in exists) == 10
    mc = [p for p in a if p.skill.startswith("mc_")]
    assert all("Answer with the option's letter from the given choices directly." in p.question for p in mc)
    assert all(p.answer in world.COLOR_NAMES for p in a if p.skill == "color_at")
    assert diagnose.make_probes(20, seed=4) != a


def test_oracle_scores_one_and_constant_guesses_score_chance():
    probes = diagnose.make_probes(60, seed=0)
    perfect = diagnose.score(probes, _oracle, with_image=True)
    assert all(r["accuracy"] == 1.0 for r in perfect.values()), perfect
    always_yes_a = diagnose.score(probes, lambda p, img: "Yes" if p.skill == "exists" else "A", with_image=False)
    assert always_yes_a["exists"]["accuracy"] == 0.5 == always_yes_a["exists"]["majority"]
    red = diagnose.score(probes, lambda p, img: "red", with_image=True)["color_at"]
    assert red["accuracy"] <= red["majority"] and red["majority"] > red["chance"] == 0.2
    assert always_yes_a["color_at"]["accuracy"] == 0.0
    # a constant letter lands near the mean chance, far from an oracle
    for skill in ("mc_color", "mc_where"):
        assert always_yes_a[skill]["accuracy"] < 0.6
        assert 0.25 <= always_yes_a[skill]["chance"] <= 0.5


def test_whitespace_around_answers_is_ignored_but_case_is_not():
    probes = [p for p in diagnose.make_probes(10) if p.skill == "exists"]
    padded = diagnose.score(probes, lambda p, img: f" {p.answer}\n", with_image=True)
    assert padded["exists"]["accuracy"] == 1.0
    lower = diagnose.score(probes, lambda p, img: p.answer.lower(), with_image=True)
    assert lower["exists"]["accuracy"] == 0.0


@pytest.mark.parametrize("with_image", [True, False])
def test_chat_answerer_runs_a_real_tiny_checkpoint(tiny_checkpoint, with_image):
    model, tok = load_pretrained(tiny_checkpoint)
    probes = diagnose.make_probes(2)
    report = diagnose.score(probes, diagnose.chat_answerer(model, tok), with_image=with_image)
    assert set(report) == set(diagnose.SKILLS)
    assert all(r["n"] == 2 and 0.0 <= r["accuracy"] <= 1.0 for r in report.values())
