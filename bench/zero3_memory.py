"""Host memory per rank of the SFT's checkpoint load, under DeepSpeed ZeRO-3 and without it, at world sizes 1, 2, ...

What is measured, and why: at 40B parameters a plain load holds the whole model on every rank (80 GB of
bf16 weights per process, x8 per node). Under ZeRO-3 the recipe builds the model partitioned
(``zero.Init``) and fills it one tensor at a time (internvl.model.checkpoint.load_pretrained), so each
rank's memory for the weights should scale with 1/world_size. This bench checks that claim with a model
big enough that its weights dominate the process (default ~0.67B parameters, 1.3 GB in bf16): it writes a
randomly initialised original-format checkpoint (bf16, sharded at ``--max-shard-size``), then, for every
world size and for both ways, starts that many gloo ranks on the CPU (``internvl.train.launch``, i.e.
torchrun) which load it the way training does:

    zero3: TrainingArguments(deepspeed=<the shipped zero3 JSON>, use_cpu=True, bf16=True) first, then
           deepspeed.init_distributed("gloo"), then load_pretrained(path, dtype=torch.bfloat16)
    plain: load_pretrained(path, dtype=torch.bfloat16) on every rank (the contrast: the whole model each)

Each rank records its resident set size after the imports and process-group set-up (the baseline) and,
as increases over it: the peak during the load (the larger of ``ru_maxrss`` and a psutil sampler's
maximum); the RSS once every weight it holds has been read (a plain bf16 load leaves the tensors as views
of the memory-mapped safetensors files, resident only when read, as by the first forward); the RSS after
``malloc_trim(0)`` (glibc hands its free heap pages back: what the load really keeps); and the bytes of
parameters it holds (``p.ds_tensor`` under ZeRO-3, plus any parameter left whole). Printed: per rank, then
per way the ratio of world W to world 1 (mean over ranks and worst rank; ideal under ZeRO-3: 1/W, plain:
1), and one JSON line.

Why the trimmed column: on the CPU the ZeRO-3 gathers allocate and free a whole parameter per tensor on
every rank; glibc raises its mmap threshold after such frees (up to 32 MB), so later tensors below it come
from the heap, whose freed pages stay in the RSS. ``--malloc-mmap-threshold 65536`` fixes the threshold
in the ranks, so those buffers return to the OS as they are freed. (On GPU nodes, with the shipped JSON's
no parameter offload, the partitions and gathers live in GPU memory; host memory then holds rank 0's one
checkpoint tensor at a time.)

    .venv/bin/python bench/zero3_memory.py                              # worlds 1 and 2, ~0.67B parameters
    .venv/bin/python bench/zero3_memory.py --llm-layers 2 --llm-hidden 512 --vocab 4096 --worlds 1 2  # quick

Memory needed: the build holds the model once in fp32 (~4 bytes/parameter); the plain run at world W holds
a bit over W x the bf16 weights at its peak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MiB = 2**20
WAYS = ("zero3", "plain")
RATIO_KEYS = ("load_peak_increase", "resident_increase", "trimmed_increase", "param_bytes_held")


def model_config(vocab: int, llm_hidden: int, llm_layers: int, llm_mlp: int | None, vit_layers: int) -> dict[str, Any]:
    """The V1.2 architecture (InternViT blocks, MLP projector, Llama) at a size whose weights the LLM dominates."""
    from internvl.model.config import preset

    cfg = preset("tiny", vocab_size=vocab)
    cfg["vision_config"].update(hidden_size=512, num_hidden_layers=vit_layers, num_attention_heads=8,
                                intermediate_size=2048, image_size=224, patch_size=14)
    cfg["force_image_size"] = 224
    heads = max(1, llm_hidden // 128)
    cfg["llm_config"].update(hidden_size=llm_hidden, num_hidden_layers=llm_layers, num_attention_heads=heads,
                             num_key_value_heads=heads, intermediate_size=llm_mlp or int(llm_hidden * 11 / 4))
    cfg["torch_dtype"] = "bfloat16"
    return cfg


def build(out: Path, a: argparse.Namespace) -> None:
    """The demo tokenizer and a random-init checkpoint of the bench model, bf16, sharded (a child process:
    the fp32 model it builds would otherwise stay in the parent's memory)."""
    import torch

    from internvl.demo.tokenizer import build_demo_tokenizer
    from internvl.demo.writers import DemoSizes, build_demo, write_corpus
    from internvl.model.checkpoint import build_model, load_tokenizer, save_pretrained
    from internvl.model.conversation import IMG_CONTEXT_TOKEN

    with tempfile.TemporaryDirectory() as tmp:
        build_demo(Path(tmp) / "demo", seed=1, sizes=DemoSizes.tiny())
        build_demo_tokenizer(write_corpus(Path(tmp) / "demo"), Path(tmp) / "tok")
        tok = load_tokenizer(Path(tmp) / "tok")
    cfg = model_config(max(a.vocab, len(tok)), a.llm_hidden, a.llm_layers, a.llm_mlp, a.vit_layers)
    cfg["llm_config"].update(bos_token_id=tok.bos_token_id, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                             pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = build_model(cfg, image_token_id=tok.convert_tokens_to_ids(IMG_CONTEXT_TOKEN))
    n = sum(p.numel() for p in model.parameters())
    save_pretrained(model, out, tokenizer=tok, dtype=torch.bfloat16, max_shard_size=a.max_shard_size)
    (out / "bench_parameters.json").write_text(json.dumps({"parameters": n}) + "\n")


class PeakSampler:
    """The maximum RSS of this process, sampled every ``interval`` seconds in a thread (ru_maxrss alone
    cannot see a peak below an earlier one, e.g. the imports')."""

    def __init__(self, interval: float):
        import psutil

        self.proc, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def _ru_maxrss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def rank_child(way: str, ckpt: Path, out_dir: Path, interval: float) -> None:
    """One rank under torchrun: set up as the recipe does, measure the load, write rank<r>.json."""
    import ctypes
    import gc

    import psutil
    import torch
    import torch.distributed as dist

    from internvl.model.checkpoint import load_pretrained

    proc = psutil.Process()
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    if way == "zero3":
        import deepspeed
        from transformers import TrainingArguments

        from internvl.train.recipe import resolve_deepspeed

        args = TrainingArguments(output_dir=str(out_dir / "args"), deepspeed=resolve_deepspeed("zero3"), use_cpu=True,
                                 bf16=True, per_device_train_batch_size=1, report_to=[])
        deepspeed.init_distributed(dist_backend="gloo")
        assert args.world_size == world
    else:
        dist.init_process_group("gloo")
    dist.barrier()
    gc.collect()
    baseline = proc.memory_info().rss
    t0 = time.perf_counter()
    with PeakSampler(interval) as sampler:
        model, _ = load_pretrained(ckpt, dtype=torch.bfloat16)
        seconds = time.perf_counter() - t0
        gc.collect()
        after = proc.memory_info().rss
        # read every weight this rank holds once, as the first forward does: a plain bf16 load keeps the
        # tensors as views of the memory-mapped safetensors files, resident only once read
        held = persistent = full = 0
        with torch.no_grad():
            for p in model.parameters():
                local = [p.ds_tensor] if hasattr(p, "ds_tensor") else []
                if p.data.numel():  # not partitioned: plain, or a ZeRO-3 persistent parameter (held whole)
                    local.append(p.data)
                    persistent += p.data.numel() * p.element_size() if hasattr(p, "ds_tensor") else 0
                for t in local:
                    float(t.float().sum())
                    held += t.numel() * t.element_size()
                full += int(getattr(p, "ds_numel", p.numel())) * p.element_size()
        touched = proc.memory_info().rss
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand the allocator's free pages back: what the load really keeps
    trimmed = proc.memory_info().rss
    mem = proc.memory_full_info()
    peak = max(_ru_maxrss(), sampler.peak)
    rec = {"way": way, "world": world, "rank": rank, "baseline_rss": baseline, "peak_rss": peak,
           "load_peak_increase": peak - baseline, "after_load_increase": after - baseline,
           "resident_increase": touched - baseline, "trimmed_increase": trimmed - baseline,
           "uss": mem.uss, "rss_file_backed": mem.shared,
           "param_bytes_held": held, "persistent_bytes": persistent, "param_bytes_full": full, "load_s": seconds,
           "zero3_partitioned": any(hasattr(p, "ds_tensor") for p in model.parameters())}
    dist.barrier()
    (out_dir / f"rank{rank}.json").write_text(json.dumps(rec) + "\n")
    dist.destroy_process_group()


def run_world(way: str, world: int, ckpt: Path, out_dir: Path, interval: float,
              mmap_threshold: int | None = None) -> list[dict[str, Any]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "internvl.train.launch", f"--nproc-per-node={world}", "--",
           str(Path(__file__).resolve()), "--rank-child", way, str(ckpt), str(out_dir), "--sample-s", str(interval)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    if mmap_threshold is not None:  # glibc: a fixed threshold (no dynamic raise to 32 MB after a free)
        env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(REPO))
    if proc.returncode != 0:
        raise RuntimeError(f"{way} world {world} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return [json.loads((out_dir / f"rank{r}.json").read_text()) for r in range(world)]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--ways", nargs="+", default=list(WAYS), choices=WAYS)
    ap.add_argument("--llm-hidden", type=int, default=2048)
    ap.add_argument("--llm-layers", type=int, default=10)
    ap.add_argument("--llm-mlp", type=int, default=None, help="default: 11/4 x hidden (5632 at 2048)")
    ap.add_argument("--vit-layers", type=int, default=6)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--max-shard-size", default="200MB")
    ap.add_argument("--malloc-mmap-threshold", type=int, default=None, metavar="BYTES",
                    help="set glibc's MALLOC_MMAP_THRESHOLD_ in the ranks (e.g. 65536): freed tensors then go back "
                         "to the OS at once (default: glibc's dynamic threshold)")
    ap.add_argument("--sample-s", type=float, default=0.005, help="RSS sampling interval")
    ap.add_argument("--checkpoint", type=Path, default=None, help="use (or write, if absent) the checkpoint here")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json-out", type=Path, default=None)
    ap.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--rank-child", nargs=3, metavar=("WAY", "CKPT", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.build:
        build(a.build, a)
        return None
    if a.rank_child:
        way, ckpt, out = a.rank_child
        rank_child(way, Path(ckpt), Path(out), a.sample_s)
        return None
    if 1 not in a.worlds:
        ap.error("--worlds must include 1 (the ratios are against it)")

    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        root = Path(tmp)
        ckpt = a.checkpoint or root / "checkpoint"
        if not (ckpt / "config.json").is_file():
            t0 = time.perf_counter()
            cmd = [sys.executable, str(Path(__file__).resolve()), "--build", str(ckpt), "--llm-hidden", str(a.llm_hidden),
                   "--llm-layers", str(a.llm_layers), "--vit-layers", str(a.vit_layers), "--vocab", str(a.vocab),
                   "--max-shard-size", a.max_shard_size] + (["--llm-mlp", str(a.llm_mlp)] if a.llm_mlp else [])
            subprocess.run(cmd, check=True, cwd=str(REPO), env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
            print(f"# wrote {ckpt} in {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
        params_file = ckpt / "bench_parameters.json"
        n_params = json.loads(params_file.read_text())["parameters"] if params_file.is_file() else None
        shards = sorted(ckpt.glob("*.safetensors"))
        weight_bytes = sum(p.stat().st_size for p in shards)
        print(f"checkpoint: {n_params / 1e9 if n_params else float('nan'):.3f}B parameters, {len(shards)} bf16 shards, "
              f"{weight_bytes / MiB:,.0f} MiB of weights; gloo on the CPU, OMP_NUM_THREADS=1 per rank; glibc mmap threshold "
              f"{a.malloc_mmap_threshold if a.malloc_mmap_threshold is not None else 'dynamic (default)'}")
        rows: list[dict[str, Any]] = []
        for way in a.ways:
            for world in sorted(set(a.worlds)):
                t0 = time.perf_counter()
                rows += run_world(way, world, ckpt, root / f"{way}-{world}", a.sample_s, a.malloc_mmap_threshold)
                print(f"# {way} world {world}: {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
        print(f"{'way':<6} {'world':>5} {'rank':>4} {'baseline':>9} {'load peak +':>11} {'resident +':>10} "
              f"{'trimmed +':>9} {'params held':>11} {'of which whole':>14} {'load s':>7}   (MiB)")
        for r in rows:
            print(f"{r['way']:<6} {r['world']:>5} {r['rank']:>4} {r['baseline_rss'] / MiB:>9,.0f} "
                  f"{r['load_peak_increase'] / MiB:>11,.0f} {r['resident_increase'] / MiB:>10,.0f} "
                  f"{r['trimmed_increase'] / MiB:>9,.0f} {r['param_bytes_held'] / MiB:>11,.0f} "
                  f"{r['persistent_bytes'] / MiB:>14,.0f} {r['load_s']:>7.1f}")
        ratios = {}
        for way in a.ways:
            one = [r for r in rows if r["way"] == way and r["world"] == 1][0]
            for world in sorted(set(a.worlds) - {1}):
                ranks = [r for r in rows if r["way"] == way and r["world"] == world]
                ratios[f"{way}_world{world}_vs_1"] = {
                    key: _mean([r[key] for r in ranks]) / one[key] if one[key] > 0 else None for key in RATIO_KEYS
                } | {f"worst_rank_{key}": max(r[key] for r in ranks) / one[key]
                     for key in ("load_peak_increase", "resident_increase")} | {"one_over_world": 1 / world}
        for name, rt in ratios.items():
            print(f"{name} (mean of ranks; worst rank): load peak x{rt['load_peak_increase']:.3f} "
                  f"(x{rt['worst_rank_load_peak_increase']:.3f}), resident x{rt['resident_increase']:.3f} "
                  f"(x{rt['worst_rank_resident_increase']:.3f}), trimmed x{rt['trimmed_increase']:.3f}, "
                  f"parameter bytes held x{rt['param_bytes_held']:.3f}; 1/world = {rt['one_over_world']:.3f}")
        report = {"parameters": n_params, "weight_bytes": weight_bytes, "shards": len(shards),
                  "config": {"llm_hidden": a.llm_hidden, "llm_layers": a.llm_layers, "vit_layers": a.vit_layers,
                             "vocab": a.vocab, "max_shard_size": a.max_shard_size,
                             "malloc_mmap_threshold": a.malloc_mmap_threshold},
                  "ranks": rows, "ratios": ratios}
        print(json.dumps(report))
        if a.json_out:
            a.json_out.write_text(json.dumps(report, indent=1) + "\n")
        return report


if __name__ == "__main__":
    main()
