"""Per-skill accuracy of a demo checkpoint, each skill asked once about the image and once about the scene in words.

Why: the benchmark scores mix skills, and the demo's open question is *which* one the tiny model lacks:
reading an attribute off the image, or matching something in the prompt (an option, a named object)
against the scene. Asking the same question with the image and with ``world.describe(scene)`` in its
place (no image) separates the two, and chance levels come with each number.

Answers are whole greedy decodes through ``model.chat`` (the V1.2 call), compared after stripping; an
earlier ad-hoc probe compared the first answer *token*, which for " Yes"/" A" is a space and so read
100% for a model at chance. Scenes come from their own seeded stream, so they are fresh demo scenes.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from internvl.demo import world
from internvl.demo.writers import _arrange, mmbench_prompt, pope_text, vqa_prompt

SKILLS: tuple[str, ...] = ("color_at", "exists", "mc_color", "mc_where")


@dataclass(frozen=True)
class Probe:
    """One question about one scene, with its answer and the chance of guessing it among its choices."""

    skill: str
    scene: world.Scene
    question: str
    answer: str
    chance: float


def _mc(scene: world.Scene, rng: random.Random, category: str, skill: str) -> Probe:
    while True:
        mcq = world.sample_mcq(scene, rng, category)
        # "what colour" only: the attribute category also asks for kinds, a different skill
        if mcq is not None and (skill != "mc_color" or mcq.options[0] in world.COLOR_NAMES):
            break
    options, letter = _arrange(mcq, rng, rng.randrange(len(mcq.options)))
    return Probe(skill, scene, mmbench_prompt(mcq.question, options), letter, 1 / len(options))


def make_probes(n_per_skill: int, seed: int = 0) -> list[Probe]:
    """``n_per_skill`` questions of every skill; existence questions are half present, half absent objects."""
    rng = random.Random(f"diagnose-{seed}")
    probes: list[Probe] = []
    for skill in SKILLS:
        for i in range(n_per_skill):
            scene = world.sample_scene(rng)
            if skill == "color_at":
                s = rng.choice(scene.shapes)
                q = vqa_prompt(f"What color is the shape in the {s.position}?")
                probes.append(Probe(skill, scene, q, s.color, 1 / len(world.COLOR_NAMES)))
            elif skill == "exists":
                present = i % 2 == 0
                obj = rng.choice(scene.objects) if present else world.negative_object(scene, rng)
                probes.append(Probe(skill, scene, pope_text(world.pope_question(obj)), "Yes" if present else "No", 0.5))
            elif skill == "mc_color":
                probes.append(_mc(scene, rng, "attribute_recognition", skill))
            else:
                probes.append(_mc(scene, rng, "object_localization", skill))
    return probes


Answerer = Callable[[Probe, bool], str]


def score(probes: list[Probe], answer: Answerer, with_image: bool) -> dict[str, dict[str, float]]:
    """Per skill: accuracy, mean chance of a uniform guess, and ``majority`` (what always giving the most
    common answer scores; the world's colour prior is skewed, so this is the bar a blind model can reach).
    ``answer(probe, with_image)`` returns the model's text."""
    out: dict[str, dict[str, float]] = {}
    for skill in SKILLS:
        mine = [p for p in probes if p.skill == skill]
        if not mine:
            continue
        right = sum(answer(p, with_image).strip() == p.answer for p in mine)
        majority = Counter(p.answer for p in mine).most_common(1)[0][1]
        out[skill] = {"accuracy": round(right / len(mine), 4),
                      "chance": round(sum(p.chance for p in mine) / len(mine), 4),
                      "majority": round(majority / len(mine), 4), "n": len(mine)}
    return out


def chat_answerer(model, tokenizer, image_size: int = 224) -> Answerer:
    """Answer through ``model.chat``: with the rendered image, or with the scene in words and no image."""
    from internvl.model.preprocess import image_to_tensor

    size = int(model.config.force_image_size)
    gen = {"max_new_tokens": 10, "do_sample": False, "num_beams": 1}

    def answer(p: Probe, with_image: bool) -> str:
        if with_image:
            img: Image.Image = world.render(p.scene, image_size)
            pixels = image_to_tensor(img, size, bool(model.config.pad2square)).unsqueeze(0).to(model.dtype)
            return model.chat(tokenizer, pixels, p.question, gen)
        return model.chat(tokenizer, None, f"{world.describe(p.scene)}\n{p.question}", gen)

    return answer


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--n", type=int, default=100, help="questions per skill")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from internvl.model.checkpoint import load_pretrained

    model, tok = load_pretrained(args.checkpoint)
    model.eval()
    probes = make_probes(args.n, args.seed)
    answer = chat_answerer(model, tok)
    report = {"checkpoint": args.checkpoint, "image": score(probes, answer, True),
              "text": score(probes, answer, False)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
