"""SFT training throughput of four ways of batching the same samples, through the recipe's Trainer path.

What is measured, and why: V1.2 padded every sample to ``max_seq_length`` (2048) at 0bfa5e7, so most of
its compute went into pad tokens. This bench trains one model on one realistic length mix four ways and
prints, in one run on one device, the throughput of each:

    a  padded to max_seq_length, as V1.2 at 0bfa5e7 (every sample right-padded to the limit)
    b  padded per batch (internvl.train.dataset.pad_collate, the recipe's default)
    c  grouped by length (group_by_length: LengthGroupedEpochSampler over SFTDataset.lengths) + b's padding
    d  packed (packing: packed_collate, padding-free rows, position_ids restarting per sample)

For each: tokens/s of real (non-pad) tokens, samples/s, seconds per optimizer step, computed tokens per real
token, MFU, and the tokens/s ratio against (a). Tokens, FLOPs and MFU come from the training meter
(internvl.train.monitor: FlopsModel + peak_flops), so they mean what the training logs mean; on a CPU the
peak is a measured fp32 matmul peak (printed as the MFU basis), on a known GPU the datasheet bf16 peak.

The training path: each mode is ``internvl.train.recipe.setup`` on an SFTConfig (the model loaded from an
original-format checkpoint, ``prepare_model``, SFTDataset over a parquet written by
``internvl.data.sft.normalize_sft``, the SFTTrainer with its meter), then ``trainer.train()`` for
``--warmup + --steps`` optimizer steps (forward, backward, AdamW step); the warm-up steps are left out of the
window. Mode (a) is setup's padded run with its collator replaced by one that pads every row to
``max_seq_length``. No checkpoint is saved. Every mode starts from the same weights and, except (c), draws
the same batches (same seed, same sampler).

The length mix: real LLaVA-format conversation records (default: those in ``shared/realdata``, see its
PROVENANCE.md -- LLaVA-Pretrain captions and ScienceQA in LLaVA format; the V1.2 mix's own annotation files
are not there; ``--sources`` takes any LLaVA-format .json/.jsonl, e.g. the real V1.2 annotations on a
cluster) are tokenized with the model's tokenizer (the demo tokenizer unless ``--tokenizer``) and encoded
as V1.2 sees them: Hermes-2 template, 256 image tokens when the record has an image. That length, times
``max_seq_length / 2048`` (1 at V1.2's 2048, the default), is each synthetic sample's target: a
conversation with the real record's turns, each filled with random single-token words in proportion to
the real turn's tokens, so that template + this model's image span + text reaches the target; an image
where the real record has one, text-only where not. Synthetic samples draw real records uniformly with
replacement. The printed quantiles compare the targets with the built samples' lengths.

    .venv/bin/python bench/train_throughput.py                       # CPU, tiny model, all four modes
    .venv/bin/python bench/train_throughput.py --steps 2 --warmup 1 --max-seq-length 256   # quick look
    python bench/train_throughput.py --model mid --device cuda --dtype bfloat16 --steps 20   # on a GPU

``--model mid`` is an InternViT-300M-like ViT (24 layers, hidden 1024, this project's InternViT-6B block:
RMSNorm, qk-norm, layer scale) with a ~1.6B Llama (hidden 2048, 22 layers, GQA 16/8, MLP 8192, Yi's 64009
vocabulary), 448 px / 256 image tokens as V1.2; it is meant for a GPU (``--count-only`` builds it on the
meta device and counts its parameters anywhere). Grouping works within transformers' mega-batches of
``min(samples / (4 * batch), 50)`` batches, so on the bench's one epoch of ``warmup + steps`` batches it
groups less than a real run does (mega-batches of 50 batches): (c)'s gain here is a lower bound.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INTERNVL_SHARED", REPO.parent / "shared"))
DEFAULT_SOURCES = (SHARED / "realdata" / "train_llava_format" / "blip_laion_cc_sbu_2k.json",
                   SHARED / "realdata" / "scienceqa" / "llava_test_CQM-A.json")
MODES = {
    "a": "padded to max length (V1.2)",
    "b": "padded per batch",
    "c": "grouped by length",
    "d": "packed",
}
V12_MAX_LENGTH = 2048  # V1.2's max_seq_length: the reference the real lengths are scaled from


def mid_config(vocab_size: int) -> dict[str, Any]:
    """InternViT-300M-like (24 x 1024, InternViT-6B block type) + a ~1.6B Llama, in the original format."""
    from internvl.model.config import preset

    cfg = preset("v1_2", vocab_size=max(64009, vocab_size))
    cfg["vision_config"].update(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                intermediate_size=4096)
    cfg["llm_config"].update(hidden_size=2048, num_hidden_layers=22, num_attention_heads=16, num_key_value_heads=8,
                             intermediate_size=8192, attn_implementation="sdpa")
    return cfg


def model_config(name: str, tok) -> dict[str, Any]:
    from internvl.model.config import preset

    cfg = preset("tiny", vocab_size=len(tok)) if name == "tiny" else mid_config(len(tok))
    cfg["llm_config"].update(bos_token_id=tok.bos_token_id, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                             pad_token_id=tok.pad_token_id)
    return cfg


def count_parameters(cfg: dict[str, Any], image_token_id: int) -> dict[str, int]:
    """Parameters of the built model (on the meta device: no memory) per part."""
    from internvl.model.checkpoint import build_model

    model = build_model(cfg, image_token_id=image_token_id, device="meta")
    parts = {"vit": 0, "projector": 0, "llm": 0}
    for name, p in model.named_parameters():
        part = ("vit" if ".vision_tower." in name else "projector" if ".multi_modal_projector." in name else "llm")
        parts[part] += p.numel()
    return {**parts, "total": sum(parts.values())}


# --- the length mix -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RealRecord:
    source: str
    turns: tuple[int, ...]  # tokens of each turn's text (the <image> tag left out), human first
    has_image: bool
    v12_length: int  # the encoded sample as V1.2 sees it: template + text + 256 image tokens if any


def read_records(path: Path) -> list[dict[str, Any]]:
    """A LLaVA-format annotation: a JSON list or JSON lines."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of LLaVA records")
    return data


def _turns(rec: dict[str, Any]) -> list[dict[str, str]]:
    conv = list(rec["conversations"])
    if conv and conv[0]["from"] != "human":  # the original drops a leading non-human turn
        conv = conv[1:]
    return conv


def real_records(paths: list[Path], tok, template) -> list[RealRecord]:
    from internvl.model.config import num_image_token, preset
    from internvl.train.preprocess import encode

    v12_image_tokens = num_image_token(preset("v1_2"))
    out = []
    for path in paths:
        for rec in read_records(path):
            conv = _turns(rec)
            has_image = bool(rec.get("image"))
            enc = encode(conv, tok, template, v12_image_tokens, has_image, max_length=10**7)
            turns = tuple(len(tok(t["value"].replace("<image>\n", "").replace("\n<image>", "").replace("<image>", ""),
                                  add_special_tokens=False).input_ids) for t in conv)
            out.append(RealRecord(path.name, turns, has_image, len(enc.input_ids)))
    if not out:
        raise ValueError(f"no records in {[str(p) for p in paths]}")
    return out


def word_pool(tok) -> list[str]:
    """Words that are one token each with a leading space, so n of them joined are n tokens."""
    pool = []
    for i in range(len(tok)):
        s = tok.decode([i])
        if len(s) > 2 and s[0] == " " and s[1:].isalpha() and len(tok(s, add_special_tokens=False).input_ids) == 1:
            pool.append(s)
    if len(pool) < 20:
        raise ValueError(f"the tokenizer has only {len(pool)} single-token words; give another --tokenizer")
    return pool


def _split(total: int, weights: tuple[int, ...]) -> list[int]:
    """``total`` tokens over the turns in proportion to ``weights``, at least one each (largest remainder)."""
    n = len(weights)
    total = max(total, n)
    w = [max(1, x) for x in weights]
    raw = [(total - n) * x / sum(w) for x in w]
    parts = [1 + math.floor(r) for r in raw]
    for i in sorted(range(n), key=lambda i: raw[i] - math.floor(raw[i]), reverse=True)[:total - sum(parts)]:
        parts[i] += 1
    return parts


def synthetic_sample(rec: RealRecord, target: int, overhead: int, words: list[str], rng: random.Random,
                     image: str | None, sid: str) -> dict[str, Any]:
    """A LLaVA record with ``rec``'s turns whose encoded length is about ``target`` (``overhead`` = the
    template and image span of one word per turn, minus those words)."""
    counts = _split(target - overhead, rec.turns)
    conv = []
    for j, k in enumerate(counts):
        text = "".join(rng.choice(words) for _ in range(k)).lstrip()
        if j == 0 and image is not None:
            text = "<image>\n" + text
        conv.append({"from": "gpt" if j % 2 else "human", "value": text})
    out: dict[str, Any] = {"id": sid, "conversations": conv}
    if image is not None:
        out["image"] = image
    return out


def overhead(rec: RealRecord, tok, template, image_tokens: int, word: str) -> int:
    from internvl.train.preprocess import encode

    conv = [{"from": "gpt" if j % 2 else "human", "value": word.strip()} for j in range(len(rec.turns))]
    return len(encode(conv, tok, template, image_tokens, rec.has_image, max_length=10**7).input_ids) - len(rec.turns)


def write_sft_set(root: Path, records: list[RealRecord], n: int, max_length: int, cfg: dict[str, Any], tok,
                  template, seed: int) -> tuple[Path, Path, list[int]]:
    """Images, one LLaVA-format .jsonl per real source, the V1.2-format meta, and the normalized parquet.
    Returns (sft_dir, base_dir, target lengths)."""
    from PIL import Image, ImageDraw

    from internvl.data.sft import normalize_sft
    from internvl.model.config import num_image_token

    rng = random.Random(seed)
    base = root / "data"
    images = base / "playground" / "data" / "bench_images"
    images.mkdir(parents=True, exist_ok=True)
    size = cfg["force_image_size"]
    pool = []
    for i in range(8):
        img = Image.new("RGB", (size, size), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        draw = ImageDraw.Draw(img)
        for _ in range(6):
            x, y = rng.randrange(size), rng.randrange(size)
            draw.rectangle([x, y, x + size // 4, y + size // 5], fill=(rng.randrange(256), 0, rng.randrange(256)))
        img.save(images / f"{i:03d}.jpg", quality=90)
        pool.append(f"bench_images/{i:03d}.jpg")
    words = word_pool(tok)
    image_tokens = num_image_token(cfg)
    scale = max_length / V12_MAX_LENGTH
    by_source: dict[str, list[str]] = {}
    targets = []
    for i in range(n):
        rec = rng.choice(records)
        target = min(max_length, max(1, round(rec.v12_length * scale)))
        over = overhead(rec, tok, template, image_tokens, words[0])
        sample = synthetic_sample(rec, target, over, words, rng, rng.choice(pool) if rec.has_image else None,
                                  f"{Path(rec.source).stem}-{i:06d}")
        by_source.setdefault(rec.source, []).append(json.dumps(sample, ensure_ascii=False))
        targets.append(target)
    meta = {}
    for src, lines in by_source.items():
        name = f"synthetic_{Path(src).stem}"
        (base / "playground" / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        meta[name] = {"root": "playground/data/", "annotation": f"playground/{name}.jsonl", "data_augment": False,
                      "repeat_time": 1, "length": len(lines)}
    meta_path = root / "meta.json"
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    normalize_sft(meta_path, base, root / "sft", progress=False)
    return root / "sft", base, targets


def quantiles(xs: list[int]) -> dict[str, float]:
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=10, method="inclusive") if len(xs) > 1 else [xs[0]] * 9
    return {"min": xs[0], "p10": q[0], "p50": q[4], "p90": q[8], "max": xs[-1], "mean": statistics.fmean(xs)}


def _fmt_q(q: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.0f}" for k, v in q.items())


# --- the four runs ------------------------------------------------------------------------------------------


def max_length_collate(batch, pad_token_id: int, image_size: int | None, max_length: int):
    """V1.2 at 0bfa5e7: every sample right-padded to ``max_length`` (pad ids, labels -100, mask 0)."""
    import torch.nn.functional as F

    from internvl.train.dataset import pad_collate
    from internvl.train.preprocess import IGNORE_INDEX

    out = pad_collate(batch, pad_token_id, image_size)
    extra = max_length - out["input_ids"].shape[1]
    if extra > 0:
        out["input_ids"] = F.pad(out["input_ids"], (0, extra), value=pad_token_id)
        out["labels"] = F.pad(out["labels"], (0, extra), value=IGNORE_INDEX)
        out["attention_mask"] = F.pad(out["attention_mask"], (0, extra), value=0)
    return out


def device_name(device: str) -> str:
    import torch

    if device == "cuda":
        return torch.cuda.get_device_name()
    model = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {torch.get_num_threads()} threads"


class Window:
    """A Trainer callback around the run's ThroughputMeter: it discards the warm-up window at step ``first``,
    keeps the meter's window that ends at step ``last``, and counts the positions the model computes (pad
    included) beside the meter's real tokens."""

    def __init__(self, meter, first: int, last: int):
        self.meter, self.first, self.last = meter, first, last
        self.result: dict[str, Any] = {}
        self.computed = self._computed = 0
        add_inputs = meter.add_inputs

        def counting(inputs) -> None:
            self._computed += int(inputs["input_ids"].numel())
            add_inputs(inputs)

        meter.add_inputs = counting

    def callback(self):
        from transformers import TrainerCallback

        window = self

        class WindowCallback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                window.step_end(state.global_step)
                return control

        return WindowCallback()

    def step_end(self, step: int) -> None:
        if step == self.first:
            self.meter.metrics()
            self._computed = 0
        if step == self.last:
            self.result = self.meter.metrics()
            self.computed = self._computed


def run_mode(mode: str, a: argparse.Namespace, paths: dict[str, str], workdir: Path) -> dict[str, Any]:
    """One mode through recipe.setup + Trainer.train; the meter's window over the steps after warm-up."""
    import torch

    from internvl.train.recipe import SFTConfig, setup

    cfg = SFTConfig(
        **paths, output=str(workdir / mode / "model"), work_dir=str(workdir / mode / "state"),
        max_steps=a.warmup + a.steps, per_device_train_batch_size=a.batch_size, max_seq_length=a.max_seq_length,
        learning_rate=1e-5, warmup_ratio=0.0, bf16=a.dtype == "bfloat16", seed=a.seed,
        attn_implementation=a.attn, grad_checkpoint=a.grad_checkpoint,
        deepspeed=None if a.deepspeed == "none" else a.deepspeed,
        group_by_length=mode == "c", packing=mode == "d", save_steps=10**9, logging_steps=10**9,
        dataloader_num_workers=a.workers, mismatch_threshold=None,
    )
    run = setup(cfg)
    trainer, meter = run.trainer, run.trainer.meter
    if mode == "a":
        pad_id, size, limit = run.tokenizer.pad_token_id, run.model.config.force_image_size, a.max_seq_length
        trainer.data_collator = lambda b: max_length_collate(b, pad_id, size, limit)
    window = Window(meter, a.warmup, a.warmup + a.steps)
    trainer.add_callback(window.callback())
    trainer.train()
    m = dict(window.result)
    tokens = m["tokens_per_s"] * m["step_time_s"] * a.steps
    computed = window.computed
    out = {"mode": mode, "what": MODES[mode], "tokens_per_s": m["tokens_per_s"], "samples_per_s": m["samples_per_s"],
           "step_time_s": m["step_time_s"], "mfu": m["mfu"], "mfu_basis": m["mfu_basis"],
           "peak_memory_gib": m["peak_memory_gib"], "computed_per_real_token": computed / max(1.0, tokens),
           "tokenization_mismatches": trainer.counts()["mismatches"]}
    del run, trainer, meter, window
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", choices=["tiny", "mid"])
    ap.add_argument("--device", default=None, choices=["cpu", "cuda"], help="default: cuda if available")
    ap.add_argument("--dtype", default=None, choices=["float32", "bfloat16"],
                    help="float32, or bfloat16 (the recipe's bf16: autocast, bf16 weights under DeepSpeed); "
                         "default: bfloat16 on cuda, float32 on cpu")
    ap.add_argument("--steps", type=int, default=10, help="measured optimizer steps per mode")
    ap.add_argument("--warmup", type=int, default=2, help="optimizer steps before the window")
    ap.add_argument("--max-seq-length", type=int, default=V12_MAX_LENGTH)
    ap.add_argument("--batch-size", type=int, default=4, help="per device (V1.2: 4)")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--sources", nargs="+", type=Path, default=list(DEFAULT_SOURCES),
                    help="LLaVA-format .json/.jsonl records whose lengths the mix follows")
    ap.add_argument("--tokenizer", type=Path, default=None, help="a tokenizer folder with the InternVL tokens "
                    "(default: the demo tokenizer, built here)")
    ap.add_argument("--attn", default="sdpa", help="sdpa | eager | flash_attention_2")
    ap.add_argument("--grad-checkpoint", action="store_true", help="also checkpoint the LLM (the ViT always is)")
    ap.add_argument("--deepspeed", default="none", help="none | zero1 | zero2 | zero3 | a JSON path")
    ap.add_argument("--workers", type=int, default=None, help="dataloader workers (default: 4 on cuda, 0 on cpu)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="run the modes this many times, alternating, and keep each mode's best (a shared machine)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the data and checkpoint here")
    ap.add_argument("--count-only", action="store_true", help="build the model on the meta device, count, exit")
    ap.add_argument("--json-out", type=Path, default=None)
    a = ap.parse_args(argv)
    if a.device is None:
        import torch

        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    if a.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the recipe picks the GPU whenever one is visible
    a.dtype = a.dtype or ("bfloat16" if a.device == "cuda" else "float32")
    a.workers = a.workers if a.workers is not None else (4 if a.device == "cuda" else 0)
    if a.steps < 1 or a.warmup < 0 or a.repeats < 1:
        ap.error("--steps and --repeats must be >= 1, --warmup >= 0")

    import torch

    if a.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no GPU visible")
    from internvl.model.checkpoint import build_model, load_tokenizer, save_pretrained
    from internvl.model.config import num_image_token
    from internvl.model.conversation import IMG_CONTEXT_TOKEN, get_template
    from internvl.train.monitor import FlopsModel

    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        root = Path(tmp)
        if a.tokenizer is None:
            from internvl.demo.tokenizer import build_demo_tokenizer
            from internvl.demo.writers import DemoSizes, build_demo, write_corpus

            build_demo(root / "demo", seed=1, sizes=DemoSizes.tiny())
            build_demo_tokenizer(write_corpus(root / "demo"), root / "tokenizer")
            a.tokenizer = root / "tokenizer"
        tok = load_tokenizer(a.tokenizer)
        cfg = model_config(a.model, tok)
        image_token_id = tok.convert_tokens_to_ids(IMG_CONTEXT_TOKEN)
        counts = count_parameters(cfg, image_token_id)
        head = {"model": a.model, "parameters": counts, "vision": {k: cfg["vision_config"][k] for k in (
                    "hidden_size", "num_hidden_layers", "intermediate_size", "image_size")},
                "llm": {k: cfg["llm_config"][k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                          "num_key_value_heads", "intermediate_size", "vocab_size")},
                "image_tokens": num_image_token(cfg)}
        print(f"model {a.model}: {counts['total'] / 1e9:.3f}B parameters (ViT {counts['vit'] / 1e6:.1f}M, projector "
              f"{counts['projector'] / 1e6:.1f}M, LLM {counts['llm'] / 1e6:.1f}M); {head['image_tokens']} image tokens")
        if a.count_only:
            print(json.dumps(head))
            if a.json_out:
                a.json_out.write_text(json.dumps(head, indent=1) + "\n")
            return head
        if a.model == "mid" and a.device == "cpu":
            ap.error("--model mid is meant for a GPU (--count-only checks its shape here)")

        template = get_template(cfg["template"])
        records = real_records(a.sources, tok, template)
        n = (a.warmup + a.steps) * a.batch_size
        sft_dir, base_dir, targets = write_sft_set(root, records, n, a.max_seq_length, cfg, tok, template, a.seed)
        torch.manual_seed(a.seed)
        model = build_model(cfg, image_token_id=image_token_id, device=a.device)  # random init, on the device: fast
        save_pretrained(model, root / "init", tokenizer=tok, dtype=torch.bfloat16 if a.model == "mid" else None)
        del model
        gc.collect()
        if a.device == "cuda":
            torch.cuda.empty_cache()
        paths = {"init": str(root / "init"), "sft_dir": str(sft_dir), "base_dir": str(base_dir)}

        from internvl.train.dataset import SFTDataset

        data = SFTDataset(sft_dir, base_dir, tok, template, num_image_token(cfg), cfg["force_image_size"],
                          a.max_seq_length)
        built = [len(data.build(i)["input_ids"]) for i in range(len(data))]
        real_v12 = [r.v12_length for r in records]
        bytes_per_token = (sum(len(t["value"].encode()) for p in a.sources for rec in read_records(p)
                               for t in _turns(rec)) / max(1, sum(sum(r.turns) for r in records)))
        mix = {"sources": [str(p) for p in a.sources], "records": len(records),
               "with_image": sum(r.has_image for r in records), "text_bytes_per_token": bytes_per_token,
               "real_v12_length": quantiles(real_v12), "scale": a.max_seq_length / V12_MAX_LENGTH,
               "target_length": quantiles(targets), "built_length": quantiles(built), "samples": n}
        flops = FlopsModel.from_config(cfg)
        dev = device_name(a.device)
        print(f"device {dev}; dtype {a.dtype}; attn {a.attn}; DeepSpeed {a.deepspeed}; batch {a.batch_size} per device; "
              f"max_seq_length {a.max_seq_length}; {a.warmup} warm-up + {a.steps} measured steps per mode")
        print(f"length mix: {len(records)} real records ({mix['with_image']} with an image) from "
              f"{', '.join(p.name for p in a.sources)}; {bytes_per_token:.2f} text bytes per token")
        print(f"  as V1.2 sees them (256 image tokens): {_fmt_q(mix['real_v12_length'])}")
        print(f"  x {mix['scale']:g} -> targets: {_fmt_q(mix['target_length'])}")
        print(f"  built samples ({n}):     {_fmt_q(mix['built_length'])}")
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in a.modes}
        for rep in range(a.repeats):  # the modes alternate, so a burst of load on a shared machine hits all
            for mode in a.modes:
                t0 = time.perf_counter()
                r = run_mode(mode, a, paths, root / "runs" / str(rep))
                r["wall_s"] = time.perf_counter() - t0
                runs[mode].append(r)
                print(f"# mode {mode} (repeat {rep + 1}/{a.repeats}): {r['tokens_per_s']:,.0f} tokens/s, "
                      f"{r['wall_s']:.1f}s", file=sys.stderr, flush=True)
        results = []
        for mode in a.modes:
            best = dict(max(runs[mode], key=lambda r: r["tokens_per_s"]))
            best["repeats_tokens_per_s"] = [r["tokens_per_s"] for r in runs[mode]]
            results.append(best)
        base = next((r for r in results if r["mode"] == "a"), None)
        print(f"MFU basis: {results[0]['mfu_basis']}" + (f"; best of {a.repeats} runs per mode" if a.repeats > 1 else ""))
        print(f"{'mode':<32} {'tokens/s':>10} {'samples/s':>10} {'s/step':>8} {'computed/real':>13} {'MFU':>7} "
              f"{'x (a)':>6}")
        for r in results:
            r["ratio_vs_a"] = r["tokens_per_s"] / base["tokens_per_s"] if base else None
            ratio = f"{r['ratio_vs_a']:.2f}" if base else "-"
            print(f"{r['mode'] + ') ' + r['what']:<32} {r['tokens_per_s']:>10,.0f} {r['samples_per_s']:>10.2f} "
                  f"{r['step_time_s']:>8.3f} {r['computed_per_real_token']:>13.2f} {100 * r['mfu']:>6.2f}% {ratio:>6}")
        report = {"device": dev, "dtype": a.dtype, "attn": a.attn, "deepspeed": a.deepspeed, **head,
                  "batch_size": a.batch_size, "max_seq_length": a.max_seq_length, "steps": a.steps,
                  "warmup": a.warmup, "repeats": a.repeats, "flops_per_llm_token": flops.llm_per_token,
                  "flops_per_image": flops.per_image, "mix": mix, "modes": results}
        print(json.dumps(report))
        if a.json_out:
            a.json_out.write_text(json.dumps(report, indent=1) + "\n")
        return report


if __name__ == "__main__":
    main()
