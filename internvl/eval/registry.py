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
    # the LLM-judge protocol that scores the split (internvl.eval.judged.PROTOCOLS), or None. Not part of
    # score_params(): that also keys inference, and a judge never changes the predictions.
    judge: str | None = None

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
    Benchmark(
        name="caption-flickr30k", prompt_style="fixed", prompt=CAPTION_PROMPT,
        generation=Generation(max_new_tokens=30, min_new_tokens=8), metric="caption-flickr30k",
        headline="CIDEr_x100", table="caption_vqa", column="Flickr30K (test)", paper_value=92.4,
        aliases=("flickr30k", "caption_flickr30k"),
        notes=("images and references both from flickr30k_test_karpathy.json (COCO format, 1,000 images)",),
    ),
    Benchmark(
        name="caption-nocaps", prompt_style="fixed", prompt=CAPTION_PROMPT,
        generation=Generation(max_new_tokens=30, min_new_tokens=8), metric="caption-nocaps",
        headline="CIDEr_x100", table="caption_vqa", column="NoCaps (val)", paper_value=112.5,
        aliases=("nocaps", "caption_nocaps"),
        notes=("local COCOEvalCap on nocaps_val_4500_captions.json (overall, not the per-domain server split)",),
    ),
    Benchmark(
        name="vqa-vqav2-testdev", prompt_style="question_suffix", prompt=VQA_PROMPT,
        generation=Generation(max_new_tokens=10), metric="vqa-vqav2-testdev", headline="accuracy",
        table="caption_vqa", column="VQAv2 (testdev)", paper_value=None, aliases=("vqav2_testdev",),
        notes=("server-scored (EvalAI challenge 830): no local score",),
    ),
    Benchmark(
        name="vqa-okvqa-val", prompt_style="question_suffix", prompt=VQA_PROMPT,
        generation=Generation(max_new_tokens=10), metric="vqa-okvqa-val", headline="accuracy",
        table="caption_vqa", column="OKVQA (val)", paper_value=62.5, aliases=("okvqa_val",),
        notes=("V1.2 saw the OK-VQA training set (paper value marked *)",),
    ),
    Benchmark(
        name="vqa-textvqa-val", prompt_style="question_suffix", prompt=VQA_PROMPT,
        generation=Generation(max_new_tokens=10), metric="vqa-textvqa-val", headline="accuracy",
        table="caption_vqa", column="TextVQA (val)", paper_value=69.7, aliases=("textvqa_val", "textvqa_val_ocr"),
        notes=("dataset key textvqa_val_ocr: the LLaVA-derived textvqa_val_llava.jsonl, whose questions embed "
               "'Reference OCR token: ...'; scored with the VQAEval copy (not the later m4c TextVQA evaluator)",),
    ),
    Benchmark(
        name="vqa-vizwiz-val", prompt_style="question_suffix",
        prompt="When the provided information is insufficient, respond with 'Unanswerable'. " + VQA_PROMPT,
        generation=Generation(max_new_tokens=10), metric="vqa-vizwiz-val", headline="accuracy",
        table="caption_vqa", column="VizWiz (val)", paper_value=61.9, aliases=("vizwiz_val",),
    ),
    Benchmark(
        name="vqa-vizwiz-test", prompt_style="question_suffix",
        prompt="When the provided information is insufficient, respond with 'Unanswerable'. " + VQA_PROMPT,
        generation=Generation(max_new_tokens=10), metric="vqa-vizwiz-test", headline="accuracy",
        table="caption_vqa", column="VizWiz (test)", paper_value=60.0, aliases=("vizwiz_test",),
        notes=("server-scored (EvalAI challenge 1911): no local score",),
    ),
    Benchmark(
        name="vqa-docvqa-val", prompt_style="question_suffix", prompt=VQA_PROMPT,
        generation=Generation(max_new_tokens=100), metric="vqa-docvqa-val", headline="anls",
        table="caption_vqa", column="DocVQA (val)", paper_value=None, aliases=("docvqa_val",),
    ),
    Benchmark(
        name="vqa-docvqa-test", prompt_style="question_suffix", prompt=VQA_PROMPT,
        generation=Generation(max_new_tokens=100), metric="vqa-docvqa-test", headline="anls",
        table="caption_vqa", column="DocVQA (test)", paper_value=None, aliases=("docvqa_test",),
        notes=("server-scored (RRC DocVQA, ch=17): no local score",),
    ),
    Benchmark(
        name="vqa-chartqa-test-human", prompt_style="question_suffix", prompt=VQA_PROMPT,
        generation=Generation(max_new_tokens=100), metric="vqa-chartqa-test-human", headline="relaxed_accuracy",
        table="caption_vqa", column="ChartQA (test human)", paper_value=None, aliases=("chartqa_test_human",),
        notes=("relaxed accuracy with V1.2's swapped arguments (error relative to the prediction); opt into the "
               "published rule with metric='chartqa-relaxed-fixed', headline='relaxed_accuracy_fixed'",),
    ),
    Benchmark(
        name="vqa-chartqa-test-augmented", prompt_style="question_suffix", prompt=VQA_PROMPT,
        generation=Generation(max_new_tokens=100), metric="vqa-chartqa-test-augmented", headline="relaxed_accuracy",
        table="caption_vqa", column="ChartQA (test augmented)", paper_value=None,
        aliases=("chartqa_test_augmented",),
        notes=("relaxed accuracy with V1.2's swapped arguments (error relative to the prediction); opt into the "
               "published rule with metric='chartqa-relaxed-fixed', headline='relaxed_accuracy_fixed'",),
    ),
    Benchmark(
        name="vqa-gqa-testdev", prompt_style="question_suffix", prompt=VQA_PROMPT,
        generation=Generation(max_new_tokens=10), metric="vqa-gqa-testdev", headline="accuracy",
        table="caption_vqa", column="GQA (test)", paper_value=64.0, aliases=("gqa_testdev", "gqa_testdev_llava"),
        notes=("dataset key gqa_testdev_llava (llava_gqa_testdev_balanced_qwen_format.jsonl); V1.2 saw the GQA "
               "training set (paper value marked *)",),
    ),
    Benchmark(
        name="vqa-ocrvqa-val", prompt_style="question_suffix", prompt=VQA_PROMPT,
        generation=Generation(max_new_tokens=100), metric="vqa-ocrvqa-val", headline="accuracy",
        table="caption_vqa", column="OCR-VQA (val)", paper_value=None, aliases=("ocrvqa_val",),
    ),
    Benchmark(
        name="vqa-ocrvqa-test", prompt_style="question_suffix", prompt=VQA_PROMPT,
        generation=Generation(max_new_tokens=100), metric="vqa-ocrvqa-test", headline="accuracy",
        table="caption_vqa", column="OCR-VQA (test)", paper_value=None, aliases=("ocrvqa_test",),
    ),
    Benchmark(
        name="vqa-ai2d-test", prompt_style="as_is", prompt="",
        generation=Generation(max_new_tokens=10), metric="vqa-ai2d-test", headline="accuracy",
        table="caption_vqa", column="AI2D (test)", paper_value=77.1, aliases=("ai2d_test", "ai2diagram_test"),
        notes=("the question carries options and instruction as shipped; the ai2d prompt is empty",
               "V1.2 saw the AI2D training set (paper value marked *); the README says abc_images were at first "
               "not used, and the corrected test images may lower the score"),
    ),
    *[
        Benchmark(
            name=name, prompt_style="refcoco",
            prompt="Please provide the bounding box coordinate of the region this sentence describes: <ref>{}</ref>",
            generation=Generation(max_new_tokens=100), metric=name, headline="precision_at_1",
            table="grounding", column=column, paper_value=value, aliases=(name.replace("-", "_"),),
        )
        for name, column, value in (
            ("refcoco-val", "RefCOCO (val)", 74.4),
            ("refcoco-testA", "RefCOCO (testA)", 80.3),
            ("refcoco-testB", "RefCOCO (testB)", 66.5),
            ("refcoco+-val", "RefCOCO+ (val)", 70.7),
            ("refcoco+-testA", "RefCOCO+ (testA)", 77.6),
            ("refcoco+-testB", "RefCOCO+ (testB)", 62.0),
            ("refcocog-val", "RefCOCOg (val)", 69.2),
            ("refcocog-test", "RefCOCOg (test)", 70.0),
        )
    ],
    # --- multimodal benchmarks (family B) ---
    Benchmark(
        name="mme", prompt_style="question_suffix", prompt=VQA_PROMPT,
        generation=Generation(max_new_tokens=20, min_new_tokens=0, num_beams=5, do_sample=True, top_k=50,
                              top_p=0.9, length_penalty=1.0),
        metric="mme", headline="perception", table="multimodal", column="MME", paper_value=1672.1,
        notes=("decoding reproduces eval/mme/eval.py at 0bfa5e7: sampling beam search (do_sample=True, 5 beams, "
               "top_k 50, top_p 0.9, 20 new tokens, no min_new_tokens), because the >30B greedy override sets "
               "args.num_beams, which the script never reads (it uses --beam-num); later versions decode "
               "greedily; override generation (num_beams=1, do_sample=False) for that",
               "sampled decoding is not deterministic across runs unless the generator is seeded",
               "paper: perception 1672.1 / cognition 509.3 (metric 'cognition')"),
    ),
    Benchmark(
        name="mmbench-dev-cn", prompt_style="multiple_choice", prompt=MC_PROMPT_CN,
        generation=Generation(max_new_tokens=100), metric="mmbench-dev-cn", headline="circular_accuracy",
        table="multimodal", column="MMB-CN dev", paper_value=79.5, aliases=("mmbench_dev_cn_20231003",),
        notes=("local CircularEval over the rotated copies in the TSV; the official number is the server's",),
    ),
    Benchmark(
        name="mmbench-test-en", prompt_style="multiple_choice", prompt=MC_PROMPT_EN,
        generation=Generation(max_new_tokens=100), metric="mmbench-test-en", headline="circular_accuracy",
        table="multimodal", column="MMB-EN test", paper_value=82.2, aliases=("mmbench_test_en_20231003",),
        notes=("server-scored (MMBench CircularEval): no local score",),
    ),
    Benchmark(
        name="mmbench-test-cn", prompt_style="multiple_choice", prompt=MC_PROMPT_CN,
        generation=Generation(max_new_tokens=100), metric="mmbench-test-cn", headline="circular_accuracy",
        table="multimodal", column="MMB-CN test", paper_value=81.2, aliases=("mmbench_test_cn_20231003",),
        notes=("server-scored (MMBench CircularEval): no local score",),
    ),
    *[
        Benchmark(
            name=name, prompt_style="mmmu", prompt=MC_PROMPT_EN,
            generation=Generation(max_new_tokens=100), metric=name, headline="accuracy",
            table="multimodal", column=column, paper_value=value, aliases=(alias,),
            notes=("only image_1 is fed to the model; open questions get the VQA prompt", *extra),
        )
        for name, column, value, alias, extra in (
            ("mmmu-dev", "MMMU (dev)", None, "MMMU_dev", ("the original does not score dev; scored here like val",)),
            ("mmmu-val", "MMMU (val)", 51.6, "MMMU_validation", ()),
            ("mmmu-test", "MMMU (test)", 46.2, "MMMU_test", ("server-scored (EvalAI challenge 2179): no local score",)),
        )
    ],
    Benchmark(
        name="scienceqa", prompt_style="multiple_choice", prompt=MC_PROMPT_EN,
        generation=Generation(max_new_tokens=100), metric="scienceqa", headline="accuracy",
        table="caption_vqa", column="ScienceQA (image)", paper_value=83.3, aliases=("sqa_test", "scienceqa_test_img"),
        notes=("the seed README lists ScienceQA (image) in the captioning & VQA table",),
    ),
    Benchmark(
        name="tiny_lvlm", prompt_style="question_suffix", prompt=VQA_PROMPT,
        generation=Generation(max_new_tokens=30), metric="tiny_lvlm", headline="overall",
        table="multimodal", column="Tiny LVLM", paper_value=350.3, aliases=("tiny-lvlm", "updated_datasets"),
        notes=("overall = sum over the 5 categories of accuracy x100 (max 500)",),
    ),
    Benchmark(
        name="llava-bench", prompt_style="question_suffix", prompt="Please give a detailed answer.",
        generation=Generation(max_new_tokens=1000), metric="llava-bench", headline="relative_score",
        table="multimodal", column="LLaVA Wild", paper_value=85.0, aliases=("llava_bench",),
        notes=("judge-scored: GPT-4-0613 (T 0.2, 1024 tokens) reviews the GPT-4 reference vs the model with "
               "rule.json (internvl.eval.judged, config 'judge:'); final numbers via "
               "metrics_family_b.llava_bench_from_reviews",),
        judge="llava-bench",
    ),
    Benchmark(
        name="mmvet", prompt_style="question_suffix", prompt="",
        generation=Generation(max_new_tokens=1000), metric="mmvet", headline="total",
        table="multimodal", column="MM-Vet", paper_value=48.9, aliases=("mm-vet",),
        notes=("the script appends ' ' + '' to the question",
               "judge-scored: the official MM-Vet GPT-4 grader on {'v1_<id>': answer} (internvl.eval.judged, "
               "config 'judge:'); final numbers via metrics_family_b.mmvet_from_grades"),
        judge="mmvet",
    ),
    Benchmark(
        name="mmvp", prompt_style="multiple_choice", prompt=MC_PROMPT_EN,
        generation=Generation(max_new_tokens=100), metric="mmvp", headline="pair_accuracy",
        table="multimodal", column="MMVP", paper_value=56.7, aliases=("MMVP",),
        notes=("a pair (rows 1-2, 3-4, ... in file order) counts only if both answers are right",),
    ),
    Benchmark(
        name="mathvista-testmini", prompt_style="as_is", prompt="",
        generation=Generation(max_new_tokens=1000), metric="mathvista-testmini", headline="accuracy",
        table="multimodal", column="MathVista (testmini)", paper_value=47.7, aliases=("MathVista_testmini",),
        notes=("responses the rules cannot parse need the LLM answer extractor (gpt-3.5-turbo in V1.2; "
               "internvl.eval.judged, config 'judge:'); score() without a judge raises until extractions are "
               "supplied",),
        judge="mathvista-testmini",
    ),
    Benchmark(
        name="mathvista-test", prompt_style="as_is", prompt="",
        generation=Generation(max_new_tokens=1000), metric="mathvista-test", headline="accuracy",
        table="multimodal", column="MathVista (test)", paper_value=None, aliases=("MathVista_test",),
        notes=("server-scored: no local score",),
    ),
    Benchmark(
        name="seed", prompt_style="as_is", prompt="",
        generation=Generation(max_new_tokens=100), metric="seed", headline="image_accuracy",
        table="multimodal", column="SEEDv1 (image)", paper_value=75.6, aliases=("SEEDv1", "seed-bench"),
        notes=("all seed.jsonl questions are run (video ones on their middle frame); the headline is types 1-9",),
    ),
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
