"""One declarative entry per benchmark split: data, prompt, decoding, post-processing, metric.

Defaults reproduce the V1.2 protocol (``evaluate.sh@0bfa5e7``, see internvl_eval_table.md). Adding a
benchmark means adding one ``Benchmark`` row here plus, for a new raw format, one normalizer and one
scorer keyed by the same name. Every field that can change a score is in ``score_params()``, which
the Snakemake rules put in ``params`` (so a change reruns exactly that benchmark) and the result
provenance records.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

VQA_PROMPT = "Answer the question using a single word or phrase."
MC_PROMPT_EN = "Answer with the option's letter from the given choices directly."
MC_PROMPT_CN = "请直接回答选项字母。"
CAPTION_PROMPT = "Provide a one-sentence caption for the provided image."


@dataclass(frozen=True)
class Generation:
    """Decoding settings passed to ``generate``; V1.2 scripts force greedy for models above 30B."""

    max_new_tokens: int = 10
    min_new_tokens: int = 1
    num_beams: int = 1
    do_sample: bool = False
    length_penalty: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def as_kwargs(self) -> dict[str, Any]:
        kw = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        if not self.do_sample:
            kw.pop("top_k", None)
            kw.pop("top_p", None)
        return kw


@dataclass(frozen=True)
class Benchmark:
    name: str  # the seed's evaluate.sh task name
    prompt_style: str  # how the question sent to chat() is built (see internvl.eval.prompts)
    prompt: str  # the instruction appended by that style
    generation: Generation
    metric: str  # key into internvl.eval.metrics.SCORERS
    headline: str  # the metric shown in the paper table
    table: str  # which paper table the headline goes to
    column: str  # the column name in that table
    paper_value: float | None = None  # V1.2's reported number (seed README)
    aliases: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def score_params(self) -> dict[str, Any]:
        return {"prompt_style": self.prompt_style, "prompt": self.prompt,
                "generation": dataclasses.asdict(self.generation), "metric": self.metric}

    def with_overrides(self, overrides: dict[str, Any]) -> Benchmark:
        gen = dict(overrides.get("generation", {}))
        top = {k: v for k, v in overrides.items() if k != "generation"}
        return dataclasses.replace(self, generation=dataclasses.replace(self.generation, **gen), **top)


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in [
    Benchmark(
        name="mmbench-dev-en", prompt_style="multiple_choice", prompt=MC_PROMPT_EN,
        generation=Generation(max_new_tokens=100), metric="mmbench-dev-en", headline="circular_accuracy",
        table="multimodal", column="MMB-EN dev", paper_value=81.4, aliases=("mmbench_dev", "mmbench_dev_en"),
        notes=("reads mmbench_dev_20230712.tsv, the older dev file, as the V1.2 script does",),
    ),
    Benchmark(
        name="vqa-vqav2-val", prompt_style="question_suffix", prompt=VQA_PROMPT,
        generation=Generation(max_new_tokens=10), metric="vqa-vqav2-val", headline="accuracy",
        table="caption_vqa", column="VQAv2 val", paper_value=None, aliases=("vqav2_val",),
    ),
    Benchmark(
        name="caption-coco", prompt_style="fixed", prompt=CAPTION_PROMPT,
        generation=Generation(max_new_tokens=30, min_new_tokens=8), metric="caption-coco", headline="CIDEr_x100",
        table="caption_vqa", column="COCO (test)", paper_value=113.9, aliases=("coco_caption", "caption_coco"),
    ),
    Benchmark(
        name="pope", prompt_style="question_suffix", prompt="",
        generation=Generation(max_new_tokens=100), metric="pope", headline="f1_mean",
        table="multimodal", column="POPE", paper_value=88.0,
        notes=("the question already ends with the VQA instruction; the script appends ' ' + ''",),
    ),
    # --- captioning, VQA and grounding splits (family A) ---
    # --- multimodal benchmarks (family B) ---
]}


def resolve(name: str) -> Benchmark:
    if name in BENCHMARKS:
        return BENCHMARKS[name]
    for b in BENCHMARKS.values():
        if name in b.aliases:
            return b
    raise KeyError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)} (+ aliases)")


def get(name: str, overrides: dict[str, dict[str, Any]] | None = None) -> Benchmark:
    """The registry entry with any config overrides (opt-in deviations from the V1.2 protocol)."""
    bench = resolve(name)
    over = (overrides or {}).get(bench.name) or {}
    return bench.with_overrides(over) if over else bench
