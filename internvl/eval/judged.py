"""The judge-scored protocols of the V1.2 evaluation: LLaVA-Bench review, MM-Vet grader, MathVista extractor.

Why here and not in the metric modules: these need a :class:`~internvl.eval.judge.JudgeClient`. The
prompt texts are protocol and are reproduced verbatim; the parsing reproduces the originals' quirks
(each is named where it is implemented). The final numbers come from the existing helpers
(:func:`~internvl.eval.metrics_family_b.llava_bench_from_reviews`, ``mmvet_from_grades``,
``score_mathvista``), so a judged result has the same shape as every other result, plus a ``judge``
entry (identity, returned model, cached/new calls, parse failures, per-item judgments).

Sources: InternVL ``eval/llava_bench/eval_gpt_review_bench.py`` + ``rule.json`` (V1.2),
``yuweihao/MM-Vet`` ``mm-vet_evaluator.py``, InternVL ``eval/mathvista/extract_answer.py`` +
``utilities.get_chat_response`` with MathVista's ``prompts/ext_ans.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from internvl.eval.judge import JudgeClient, JudgeError
from internvl.eval.metrics import _as_list, _require_columns, check_predictions
from internvl.eval.metrics_family_b import (
    llava_bench_from_reviews,
    mathvista_needs_extractor,
    mmvet_from_grades,
    score_mathvista,
)

# --- prompt texts (verbatim protocol) ------------------------------------------------------------------

LLAVA_BENCH_SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."
# rule.json's llava_bench_conv / _detail / _complex prompts are the same text (note the space before "\n").
_LLAVA_BENCH_RULE = (
    "We would like to request your feedback on the performance of two AI assistants in response to the user "
    "question displayed above. The user asks the question on observing an image. For your reference, the visual "
    "content in the image is represented with a few sentences describing the image. \nPlease rate the "
    "helpfulness, relevance, accuracy, level of details of their responses. Each assistant receives an overall "
    "score on a scale of 1 to 10, where a higher score indicates better overall performance.\nPlease first output "
    "a single line containing only two values indicating the scores for Assistant 1 and 2, respectively. The two "
    "scores are separated by a space.\nIn the subsequent line, please provide a comprehensive explanation of your "
    "evaluation, avoiding any potential bias and ensuring that the order in which the responses were presented "
    "does not affect your judgment."
)
LLAVA_BENCH_RULES: dict[str, str] = {f"llava_bench_{c}": _LLAVA_BENCH_RULE for c in ("conv", "detail", "complex")}
LLAVA_BENCH_ROLE = "Assistant"

MMVET_PROMPT = (
    "Compare the ground truth and prediction from AI models, to give a correctness score for the prediction. "
    "<AND> in the ground truth means it is totally right only when all elements in the ground truth are present "
    "in the prediction, and <OR> means it is totally right when any one element in the ground truth is present "
    "in the prediction. The correctness score is 0.0 (totally wrong), 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, "
    "0.9, or 1.0 (totally right). Just complete the last space of the correctness score.\n"
    "\n"
    "Question | Ground truth | Prediction | Correctness\n"
    "--- | --- | --- | ---\n"
    "What is x in the equation? | -1 <AND> -5 | x = 3 | 0.0\n"
    "What is x in the equation? | -1 <AND> -5 | x = -1 | 0.5\n"
    "What is x in the equation? | -1 <AND> -5 | x = -5 | 0.5\n"
    "What is x in the equation? | -1 <AND> -5 | x = -5 or 5 | 0.5\n"
    "What is x in the equation? | -1 <AND> -5 | x = -1 or x = -5 | 1.0\n"
    "Can you explain this meme? | This meme is poking fun at the fact that the names of the countries Iceland "
    "and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes, while "
    "Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues because the "
    "names of these countries do not accurately represent their landscapes. | The meme talks about Iceland and "
    "Greenland. It's pointing out that despite their names, Iceland is not very icy and Greenland isn't very "
    "green. | 0.4\n"
    "Can you explain this meme? | This meme is poking fun at the fact that the names of the countries Iceland "
    "and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes, while "
    "Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues because the "
    "names of these countries do not accurately represent their landscapes. | The meme is using humor to point "
    "out the misleading nature of Iceland's and Greenland's names. Iceland, despite its name, has lush green "
    "landscapes while Greenland is mostly covered in ice and snow. The text 'This is why I have trust issues' is a "
    "playful way to suggest that these contradictions can lead to distrust or confusion. The humor in this meme is "
    "derived from the unexpected contrast between the names of the countries and their actual physical "
    "characteristics. | 1.0\n"
)
MMVET_RETRY_SUFFIX = "\nPredict the correctness of the answer (digit): "
MMVET_MAX_TRIES = 5

# MathVista prompts/ext_ans.py ``demo_prompt`` (already stripped, as create_test_prompt strips it). The
# double space in "line  graph" is in the original.
MATHVISTA_DEMO_PROMPT = (
    "Please read the following example. Then extract the answer from the model response and type it at the end "
    "of the prompt.\n"
    "\n"
    "Hint: Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, at "
    "the end.\n"
    "Question: Which number is missing?\n"
    "\n"
    "Model response: The number missing in the sequence is 14.\n"
    "\n"
    "Extracted answer: 14\n"
    "\n"
    "Hint: Please answer the question requiring a floating-point number with one decimal place and provide the "
    "final value, e.g., 1.2, 1.3, 1.4, at the end.\n"
    "Question: What is the fraction of females facing the camera?\n"
    "\n"
    "Model response: The fraction of females facing the camera is 0.6, which means that six out of ten females "
    "in the group are facing the camera.\n"
    "\n"
    "Extracted answer: 0.6\n"
    "\n"
    "Hint: Please answer the question requiring a floating-point number with two decimal places and provide the "
    "final value, e.g., 1.23, 1.34, 1.45, at the end.\n"
    "Question: How much money does Luca need to buy a sour apple candy and a butterscotch candy? (Unit: $)\n"
    "\n"
    "Model response: Luca needs $1.45 to buy a sour apple candy and a butterscotch candy.\n"
    "\n"
    "Extracted answer: 1.45\n"
    "\n"
    "Hint: Please answer the question requiring a Python list as an answer and provide the final list, e.g., "
    "[1, 2, 3], [1.2, 1.3, 1.4], at the end.\n"
    "Question: Between which two years does the line  graph saw its maximum peak?\n"
    "\n"
    "Model response: The line graph saw its maximum peak between 2007 and 2008.\n"
    "\n"
    "Extracted answer: [2007, 2008]\n"
    "\n"
    "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.\n"
    "Question: What fraction of the shape is blue?\n"
    "Choices:\n"
    "(A) 3/11\n"
    "(B) 8/11\n"
    "(C) 6/11\n"
    "(D) 3/5\n"
    "\n"
    "Model response: The correct answer is (B) 8/11.\n"
    "\n"
    "Extracted answer: B"
)


@dataclass(frozen=True)
class JudgeProtocol:
    """One judged protocol: the original judge model and its decoding settings."""

    name: str
    original_model: str
    temperature: float
    max_tokens: int
    source: str

    def fingerprint(self) -> dict[str, Any]:
        """Settings + a hash of the prompt texts: part of the score rule's judge params, so editing a
        prompt here reruns exactly the judged scoring."""
        texts = {"llava-bench": [LLAVA_BENCH_SYSTEM, json.dumps(LLAVA_BENCH_RULES, sort_keys=True)],
                 "mmvet": [MMVET_PROMPT, MMVET_RETRY_SUFFIX, str(MMVET_MAX_TRIES)],
                 "mathvista-testmini": [MATHVISTA_DEMO_PROMPT]}[self.name]
        digest = hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()
        return {**asdict(self), "prompts_sha256": digest}


PROTOCOLS: dict[str, JudgeProtocol] = {p.name: p for p in [
    JudgeProtocol("llava-bench", "gpt-4-0613", 0.2, 1024, "InternVL eval/llava_bench/eval_gpt_review_bench.py (V1.2)"),
    JudgeProtocol("mmvet", "gpt-4-0613", 0.0, 3, "yuweihao/MM-Vet mm-vet_evaluator.py"),
    JudgeProtocol("mathvista-testmini", "gpt-3.5-turbo", 0.0, 256,
                  "InternVL eval/mathvista/extract_answer.py + utilities.get_chat_response (V1.2)"),
]}


def protocol(name: str) -> JudgeProtocol:
    if name not in PROTOCOLS:
        raise KeyError(f"unknown judge protocol {name!r}; known: {sorted(PROTOCOLS)}")
    return PROTOCOLS[name]


# --- prompt builders and parsers ---------------------------------------------------------------------


def llava_bench_messages(caption: str, question: str, reference: str, answer: str, category: str) -> list[dict]:
    """System + user message of ``eval_gpt_review_bench.py``: Assistant 1 = GPT-4 reference, 2 = the model.

    ``question`` is the raw question text (without the " Please give a detailed answer." the model saw).
    """
    key = f"llava_bench_{category}"
    if key not in LLAVA_BENCH_RULES:
        raise ValueError(f"llava-bench: category {category!r} has no rule ({sorted(LLAVA_BENCH_RULES)})")
    role = LLAVA_BENCH_ROLE
    content = (f"[Context]\n{caption}\n\n"
               f"[Question]\n{question}\n\n"
               f"[{role} 1]\n{reference}\n\n[End of {role} 1]\n\n"
               f"[{role} 2]\n{answer}\n\n[End of {role} 2]\n\n"
               f"[System]\n{LLAVA_BENCH_RULES[key]}\n\n")
    return [{"role": "system", "content": LLAVA_BENCH_SYSTEM}, {"role": "user", "content": content}]


def parse_llava_review(review: str) -> list[float]:
    """``parse_score``: the first line, "," -> " ", split on single spaces; exactly two floats, else [-1, -1].

    So "8 6" and "8,6" parse, but "8, 6" (three parts) and "Scores: 8 6" do not: the original's quirk.
    """
    parts = review.split("\n")[0].replace(",", " ").split(" ")
    if len(parts) != 2:
        return [-1.0, -1.0]
    try:
        return [float(parts[0]), float(parts[1])]
    except ValueError:
        return [-1.0, -1.0]


def mmvet_question(question: str, gold: str, prediction: str, retry: bool = False) -> str:
    """The grader's user message: PROMPT + "\\n" + "question | gold | prediction | " (+ the retry suffix)."""
    gold = gold.replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")
    text = MMVET_PROMPT + "\n" + " | ".join([question, gold, prediction, ""])
    return text + MMVET_RETRY_SUFFIX if retry else text


def parse_mmvet_grade(content: str) -> float | None:
    """``content.split(" ")[0].strip()`` as a float in [0, 1], else None (NaN counts as unparsable)."""
    try:
        score = float(content.split(" ")[0].strip())
    except ValueError:
        return None
    return score if 0.0 <= score <= 1.0 else None


def mathvista_extraction_prompt(query: str, response: str) -> str:
    """``create_test_prompt``: demo prompt (stripped), the query and the response, then "Extracted answer: "."""
    return f"{MATHVISTA_DEMO_PROMPT.strip()}\n\n{query}\n\n{response}\n\nExtracted answer: "


# --- per-protocol judging ----------------------------------------------------------------------------


def _call(client: JudgeClient, split: str, rid: str, messages: list[dict], temperature: float,
          max_tokens: int) -> Any:
    try:
        return client.chat(messages, temperature=temperature, max_tokens=max_tokens)
    except JudgeError as e:
        raise JudgeError(f"{split}: judge call for id {rid} failed: {e}") from e


def _judge_llava_bench(split: str, data: pd.DataFrame, predictions: Mapping[str, str], client: JudgeClient,
                       proto: JudgeProtocol) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    ids = check_predictions(split, data, predictions)
    _require_columns(split, data, ["question", "answers", "caption", "category"])
    model_scores: dict[str, float] = {}
    reference_scores: dict[str, float] = {}
    items: dict[str, Any] = {}
    failed: list[str] = []
    for rid, question, answers, caption, category in zip(ids, data["question"], data["answers"], data["caption"],
                                                         data["category"], strict=True):
        refs = _as_list(answers)
        if len(refs) != 1:
            raise ValueError(f"{split}: id {rid} needs exactly one GPT-4 reference answer, has {len(refs)}")
        msgs = llava_bench_messages(str(caption), str(question), refs[0], predictions[rid], str(category))
        reply = _call(client, split, rid, msgs, proto.temperature, proto.max_tokens)
        pair = parse_llava_review(reply.content)
        if pair == [-1.0, -1.0]:
            failed.append(rid)
        reference_scores[rid], model_scores[rid] = pair
        items[rid] = {"content": reply.content, "tuple": pair, "model": reply.model, "cached": reply.cached}
    scored = llava_bench_from_reviews(data, model_scores=model_scores, reference_scores=reference_scores)
    notes = []
    if failed:
        notes.append(f"judge: {len(failed)} reviews did not parse (first line not exactly two numbers) and count "
                     f"as [-1, -1] as in the original: ids {failed[:10]}")
    return scored, {"items": items, "parse_failures": failed}, notes


def _judge_mmvet(split: str, data: pd.DataFrame, predictions: Mapping[str, str], client: JudgeClient,
                 proto: JudgeProtocol) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The grader loop of ``mm-vet_evaluator.py``: call at T=0; while the reply does not parse, re-ask with
    the "(digit)" suffix at the current temperature and then raise it by 0.5. After 5 tries the score is
    0.0 *without parsing the last reply* (the original sets it once ``try_time > 5``): calls are at
    T 0.0 (plain), then 0.0, 0.5, 1.0, 1.5, 2.0 (with the suffix). One run (``num_run`` 1, the default)."""
    ids = check_predictions(split, data, predictions)
    _require_columns(split, data, ["question", "answers"])
    grades: dict[str, float] = {}
    items: dict[str, Any] = {}
    gave_up: list[str] = []
    retried: list[str] = []
    for rid, question, answers in zip(ids, data["question"], data["answers"], strict=True):
        gold = _as_list(answers)
        if len(gold) != 1:
            raise ValueError(f"{split}: id {rid} needs exactly one gold answer, has {gold}")
        plain = [{"role": "user", "content": mmvet_question(str(question), gold[0], predictions[rid])}]
        temperature = proto.temperature
        reply = _call(client, split, rid, plain, temperature, proto.max_tokens)
        contents = [reply.content]
        score = parse_mmvet_grade(reply.content)
        tries = 1
        suffixed = [{"role": "user", "content": mmvet_question(str(question), gold[0], predictions[rid], retry=True)}]
        while score is None:
            reply = _call(client, split, rid, suffixed, temperature, proto.max_tokens)
            contents.append(reply.content)
            tries += 1
            temperature += 0.5
            if tries > MMVET_MAX_TRIES:
                score = 0.0
                gave_up.append(rid)
                break
            score = parse_mmvet_grade(reply.content)
        if tries > 1:
            retried.append(rid)
        grades[rid] = score
        items[rid] = {"content": contents[-1], "contents": contents, "score": score, "model": reply.model,
                      "tries": tries}
    scored = mmvet_from_grades(data, grades)
    notes = []
    if retried:
        notes.append(f"judge: {len(retried)} grades needed the '(digit)' re-ask with raised temperature")
    if gave_up:
        notes.append(f"judge: {len(gave_up)} grades unparsable after {MMVET_MAX_TRIES} tries scored 0.0 as the "
                     f"original does: ids {gave_up[:10]}")
    return scored, {"items": items, "parse_failures": gave_up}, notes


def _judge_mathvista(split: str, data: pd.DataFrame, predictions: Mapping[str, str], client: JudgeClient,
                     proto: JudgeProtocol, hf_precision_quirk: bool) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """LLM extraction only where the rules give nothing (``mathvista_needs_extractor``), then the usual
    scoring. The extraction is the stripped reply, as ``get_chat_response`` returns it."""
    need = mathvista_needs_extractor(split, data, predictions)
    _require_columns(split, data, ["question"])
    queries = {str(i): str(q) for i, q in zip(data["id"], data["question"], strict=True)}
    extractions: dict[str, str] = {}
    items: dict[str, Any] = {}
    empty: list[str] = []
    for rid in need:
        msgs = [{"role": "user", "content": mathvista_extraction_prompt(queries[rid], predictions[rid])}]
        reply = _call(client, split, rid, msgs, proto.temperature, proto.max_tokens)
        extraction = reply.content.strip()
        if not extraction:
            empty.append(rid)
        extractions[rid] = extraction
        items[rid] = {"content": reply.content, "extraction": extraction, "model": reply.model}
    scored = score_mathvista(split, data, predictions, extractions=extractions, hf_precision_quirk=hf_precision_quirk)
    notes = ["judge: a failed extractor call stops the scoring with an error (the original silently used an "
             "empty extraction)"]
    if empty:
        notes.append(f"judge: {len(empty)} extractions are empty and are scored as such; the original re-asks an "
                     "empty reply up to 5 times, which at temperature 0 is the same (cached) request: ids "
                     f"{empty[:10]}")
    return scored, {"items": items, "parse_failures": empty}, notes


def score_judged(split: str, judge_protocol: str, data: pd.DataFrame, predictions: Mapping[str, str],
                 client: JudgeClient, hf_precision_quirk: bool = True) -> dict[str, Any]:
    """Score one judged split; the result dict of the other scorers plus ``judge`` (for provenance).

    ``judge_protocol`` is the registry's ``Benchmark.judge`` (llava-bench, mmvet, mathvista-testmini).
    """
    proto = protocol(judge_protocol)
    before = client.stats()
    if proto.name == "llava-bench":
        scored, extra, notes = _judge_llava_bench(split, data, predictions, client, proto)
    elif proto.name == "mmvet":
        scored, extra, notes = _judge_mmvet(split, data, predictions, client, proto)
    else:
        scored, extra, notes = _judge_mathvista(split, data, predictions, client, proto, hf_precision_quirk)
    after = client.stats()
    calls = {"cached": after["cached"] - before["cached"], "new": after["new"] - before["new"]}
    returned: dict[str, int] = {}
    for m, n in after["returned_models"].items():
        delta = n - before["returned_models"].get(m, 0)
        if delta:
            returned[m] = delta
    cfg = client.config
    notes = [f"judge {cfg.identity} (returned model {sorted(returned) or 'none: no call needed'}); "
             f"{calls['cached'] + calls['new']} calls: {calls['cached']} cached, {calls['new']} new", *notes]
    if cfg.model != proto.original_model:
        notes.append(f"judge model {cfg.model!r} differs from the original protocol's {proto.original_model!r}; "
                     "scores are not directly comparable with the paper")
    judge_info = {
        "protocol": proto.fingerprint(),
        "identity": cfg.identity,
        "slug": cfg.slug,
        "base_url": cfg.base_url,
        "model": cfg.model,
        "returned_models": returned,
        "calls": calls,
        "parse_failures": len(extra["parse_failures"]),
        "parse_failure_ids": extra["parse_failures"],
        "items": extra["items"],
    }
    return {**scored, "notes": list(scored.get("notes", [])) + notes, "judge": judge_info}
