"""``internvl`` command line: normalize | normalize-sft | score | submit | infer | train | train-plan | chat |
convert | build-parts | demo.

A known error (:func:`internvl.errors.is_known`: bad input, a wrong setting, a failed download,
predictions that do not fit the data, a missing file) is one ``error:`` line and exit code 2; anything
else is a bug and keeps its traceback. Benchmark names are the registry's names or any of their
aliases, for every subcommand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from internvl.errors import ConfigError, DataError, error_line, is_known

REPO = Path(__file__).resolve().parents[1]


def _bench(name: str):
    """The registry entry of a benchmark name or alias; an unknown name is a usage error, not a KeyError."""
    from internvl.eval import registry

    try:
        return registry.resolve(name)
    except KeyError:
        raise ConfigError(f"unknown benchmark {name!r}; known: {', '.join(sorted(registry.BENCHMARKS))} "
                          "(or one of their aliases, internvl/eval/registry.py)") from None


def _normalize(a: argparse.Namespace) -> None:
    from internvl.data.benchmarks import NORMALIZERS, normalize, write_parquet
    from internvl.download import explain_missing

    bench = _bench(a.split)
    if bench.name not in NORMALIZERS:
        raise ConfigError(f"benchmark {bench.name!r} has no normalizer")
    try:
        table = normalize(bench.name, Path(a.data_root))
    except DataError as exc:
        sources = Path(a.sources) if a.sources else REPO / "config" / "sources.yaml"
        if not sources.is_file():
            raise
        raise explain_missing(exc, {"data_root": a.data_root, "sources_file": str(sources)}, REPO) from None
    write_parquet(table, a.out)
    print(f"{bench.name}: {table.num_rows} rows -> {a.out}")


def _normalize_sft(a: argparse.Namespace) -> None:
    from internvl.data.sft import normalize_sft

    m = normalize_sft(a.meta, a.base_dir, a.out, seed=a.seed, on_error=a.on_error, verify_images=a.verify_images,
                      embed_images=a.embed_images)
    print(json.dumps({"total_samples": m["total_samples"], "skipped": m["skipped"]}))


def _score(a: argparse.Namespace) -> None:
    from internvl.data.io import write_json_atomic
    from internvl.eval.metrics import PredictionMismatchError
    from internvl.eval.results import score_file

    bench = _bench(a.split)
    judge = None
    if a.judge_base_url or a.judge_model:
        from internvl.eval.judge import JudgeClient, JudgeConfig

        if not (a.judge_base_url and a.judge_model):
            raise SystemExit("error: --judge-base-url and --judge-model go together")
        cfg = JudgeConfig(base_url=a.judge_base_url, model=a.judge_model, api_key_env=a.judge_api_key_env)
        judge = JudgeClient(cfg, Path(a.judge_cache) / f"{cfg.slug}.jsonl")
    try:
        result = score_file(bench, a.data, a.predictions, judge=judge)
    except PredictionMismatchError as exc:  # predictions of another data file (or an unfinished run)
        raise DataError(a.predictions, f"{exc}; the predictions do not fit {a.data}: run inference on it again "
                        "(internvl infer)") from None
    write_json_atomic(a.out, result)
    print(json.dumps(result["metrics"], indent=1))


def _submit(a: argparse.Namespace) -> None:
    from internvl.eval.metrics import PredictionMismatchError
    from internvl.eval.submission import write_submission

    bench = _bench(a.split)
    try:
        summary = write_submission(bench, a.data, a.predictions, a.out)
    except DataError:
        raise
    except PredictionMismatchError as exc:  # unknown or missing ids: a server would score them as wrong
        raise DataError(a.predictions, str(exc)) from None
    except (KeyError, ValueError) as exc:  # unknown / locally scored split, wrong extension, missing column
        raise DataError(a.out, exc.args[0] if exc.args else str(exc)) from None
    print(json.dumps(summary))


def _infer(a: argparse.Namespace) -> None:
    from internvl.eval.infer import run_inference

    stats = run_inference(a.checkpoint, a.data, a.data_root, _bench(a.split), a.out, a.cache,
                          batch_size=a.batch_size, shard_size=a.shard_size, dtype=a.dtype, device=a.device,
                          workers=a.workers)
    print(json.dumps(stats))


def _train(a: argparse.Namespace) -> None:
    import yaml

    from internvl.train.recipe import Preempted, SFTConfig, train

    try:
        summary = train(SFTConfig.from_dict(yaml.safe_load(Path(a.config).read_text())))
    except Preempted as exc:
        import os

        from internvl.train.launch import PREEMPTED_MARKER

        if os.environ.get(PREEMPTED_MARKER):  # tell the launcher: torchrun reports only "failed"
            Path(os.environ[PREEMPTED_MARKER]).write_text(str(exc) + "\n")
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(Preempted.exit_code) from None
    print(json.dumps(summary, indent=1, default=str))


def _train_plan(a: argparse.Namespace) -> None:
    from internvl.train.plan import PlanError, plan_recipe

    try:
        over = {k: v for k, v in (("deepspeed", a.deepspeed), ("per_device_train_batch_size", a.per_device)) if v}
        p = plan_recipe(a.recipe, gpus=a.gpus, gpus_per_node=a.gpus_per_node, gpu_memory_gib=a.gpu_memory_gib,
                        model=a.model, num_samples=a.samples, overrides=over)
    except PlanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(p.to_dict(), indent=1) if a.json else p.format())


def _chat(a: argparse.Namespace) -> None:
    from internvl.model.checkpoint import load_pretrained
    from internvl.model.preprocess import image_to_tensor, load_image

    model, tok = load_pretrained(a.checkpoint)
    pixels = image_to_tensor(load_image(a.image), model.config.force_image_size).unsqueeze(0) if a.image else None
    print(model.chat(tok, pixels, a.question, {"max_new_tokens": a.max_new_tokens, "do_sample": False}))


def _convert(a: argparse.Namespace) -> None:
    from internvl.convert import convert

    print(json.dumps(convert(a.src, a.dst, to=a.to, layout=a.layout, remote_code_from=a.remote_code_from), indent=1))


def _build_parts(a: argparse.Namespace) -> None:
    from internvl.model.parts import build_from_parts

    print(json.dumps(build_from_parts(a.vision_dir, a.llm_dir, a.mlp_pth, a.out, template=a.template, seed=a.seed,
                                      max_shard_size=a.max_shard_size), indent=1))


def _demo(a: argparse.Namespace) -> None:
    from internvl.demo.writers import build_demo

    print(json.dumps(build_demo(Path(a.root), seed=a.seed), indent=1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="internvl")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("normalize", help="raw benchmark split -> parquet")
    p.add_argument("split", help="a benchmark name or alias (e.g. mmbench-dev-en or mmbench_dev)")
    p.add_argument("--data-root", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--sources", help="sources file naming where missing files come from (default: this "
                                     "repository's config/sources.yaml)")
    p.set_defaults(fn=_normalize)
    p = sub.add_parser("normalize-sft", help="meta JSON + annotations -> parquet shards")
    p.add_argument("meta")
    p.add_argument("--base-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise")
    p.add_argument("--verify-images", action="store_true",
                   help="decode every image to catch truncated/corrupt files (ms per image; default: existence)")
    p.add_argument("--embed-images", action="store_true", help="store image bytes in the parquet (image_bytes)")
    p.set_defaults(fn=_normalize_sft)
    p = sub.add_parser("score", help="score predictions JSONL ({id, prediction}) against normalized data")
    p.add_argument("split")
    p.add_argument("--data", required=True)
    p.add_argument("--predictions", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--judge-base-url", help="OpenAI-compatible endpoint for llava-bench, mmvet, mathvista-testmini")
    p.add_argument("--judge-model", help="judge model name, e.g. gpt-4-0613")
    p.add_argument("--judge-api-key-env", default=None, help="NAME of the env variable holding the key")
    p.add_argument("--judge-cache", default=".cache/internvl-judge", help="folder of the judge-call cache")
    p.set_defaults(fn=_score)
    p = sub.add_parser("submit", help="write a server-scored split's submission file (.json / .xlsx) from predictions")
    p.add_argument("split")
    p.add_argument("--data", required=True)
    p.add_argument("--predictions", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=_submit)
    p = sub.add_parser("infer", help="batched, resumable inference on a normalized split")
    p.add_argument("split")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--data-root", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--cache", default=".cache/internvl-infer")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--shard-size", type=int, default=64,
                   help="questions per cached shard (a resumed run reuses finished shards of the same size)")
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16 (or fp32, bf16, fp16)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=1, help="data-parallel processes (one per GPU with --device cuda)")
    p.set_defaults(fn=_infer)
    p = sub.add_parser("train", help="run the SFT recipe from a YAML of SFTConfig fields")
    p.add_argument("config")
    p.set_defaults(fn=_train)
    p = sub.add_parser("train-plan", help="per-GPU memory, accumulation and steps of an SFT recipe on N GPUs")
    p.add_argument("recipe", help="recipe YAML (flat SFT settings)")
    p.add_argument("--gpus", type=int, required=True)
    p.add_argument("--gpus-per-node", type=int, default=8)
    p.add_argument("--gpu-memory-gib", type=float, default=80.0)
    p.add_argument("--model", help="preset (v1_2, tiny) or checkpoint folder; default: the recipe's plan_model / init")
    p.add_argument("--samples", type=int, help="SFT sample count; default: the recipe's num_samples / sft_dir")
    p.add_argument("--deepspeed", help="instead of the recipe's: zero1 | zero2 | zero3 | zero3_34b | a JSON path")
    p.add_argument("--per-device", type=int, help="instead of the recipe's per_device_train_batch_size")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(fn=_train_plan)
    p = sub.add_parser("chat", help="ask one question about one image")
    p.add_argument("checkpoint")
    p.add_argument("question")
    p.add_argument("--image")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.set_defaults(fn=_chat)
    p = sub.add_parser("convert", help="original InternVL-Chat format <-> transformers-native InternVL directory")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--to", choices=["native", "original"], help="default: the other format than src's")
    p.add_argument("--layout", choices=["v1", "transposed-input"], default="v1",
                   help="native side: keep ps_version v1 (exact with internvl.convert.load_native) or permute "
                        "weights for stock transformers fed transposed pixel_values (see internvl/convert.py)")
    p.add_argument("--remote-code-from", help="--to original: copy the released *.py (auto_map) from this folder")
    p.set_defaults(fn=_convert)
    p = sub.add_parser("build-parts", help="InternViT repo + Llama repo + mlp1 .pth -> original-layout checkpoint "
                       "(the V1.2 SFT's starting point, see internvl/model/parts.py)")
    p.add_argument("vision_dir")
    p.add_argument("llm_dir")
    p.add_argument("mlp_pth")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0, help="seeds the normal draw of the new input-embedding rows")
    p.add_argument("--template", default="Hermes-2")
    p.add_argument("--max-shard-size", default="5GB")
    p.set_defaults(fn=_build_parts)
    p = sub.add_parser("demo", help="write the embedded demo data")
    p.add_argument("root")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=_demo)
    args = ap.parse_args(argv)
    try:
        args.fn(args)
    except Exception as exc:  # noqa: BLE001 - known errors become one line; bugs keep their traceback
        if not is_known(exc):
            raise
        print(error_line(exc), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
