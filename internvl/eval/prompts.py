"""Build the question string the original scripts passed to ``chat()``, from a normalized row."""

from __future__ import annotations

from typing import Any

from internvl.data.schema import parse_options
from internvl.eval.registry import Benchmark


def _present(value: Any) -> bool:
    return value is not None and value == value and str(value) != ""  # value == value filters NaN


def build_question(row: dict[str, Any], bench: Benchmark) -> str:
    style = bench.prompt_style
    if style == "fixed":  # captioning: the question column is not used
        return bench.prompt
    if style == "question_suffix":  # "<question> <prompt>", as eval/vqa and eval/pope build it
        return row["question"] + " " + bench.prompt
    if style == "as_is":
        return row["question"]
    if style == "multiple_choice":  # [hint\n] question \nA. x\nB. y ... \n<prompt>
        question = row["question"]
        if _present(row.get("hint")):
            question = row["hint"] + "\n" + question
        for key, text in parse_options(row["options"]).items():
            question += f"\n{key}. {text}"
        return question + "\n" + bench.prompt
    if style == "refcoco":  # the referring expression fills the grounding template: "... <ref>{}</ref>"
        return bench.prompt.format(row["question"])
    if style == "mmmu":  # "<image 1>" dropped, "\nA. x..." if options, "\n" + MC prompt or (open) VQA prompt
        from internvl.eval.registry import VQA_PROMPT

        question = row["question"].replace("<image 1>", "")
        options = parse_options(row["options"])
        if options:
            question += "\n" + "\n".join(f"{key}. {text}" for key, text in options.items())
        by_type = {"multiple-choice": bench.prompt, "open": VQA_PROMPT}
        if row.get("question_type") not in by_type:
            raise ValueError(f"{bench.name}: question_type {row.get('question_type')!r} is not in {sorted(by_type)}")
        return question + "\n" + by_type[row["question_type"]]
    raise ValueError(f"{bench.name}: unknown prompt_style {style!r}")
