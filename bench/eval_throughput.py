"""Batch-1 ``generate`` loop (the original's evaluation) vs the batched runner, same model, same prompts.

Prints samples/s for both, the ratio, and whether every sample's greedy tokens are identical.

    python bench/eval_throughput.py                                  # CPU, tiny model
    python bench/eval_throughput.py --preset v1_2 --device cuda --dtype bfloat16 --n 256 --batch-sizes 16 32 64

Prompts are MMBench-like: the Hermes-2 system turn, one image (num_image_token context tokens) and a
question of ``--text-tokens`` +-25% random text tokens, left-padded in a batch; ``--new-tokens`` greedy
tokens each (min_new_tokens = max_new_tokens, so every sample does the same decoding work).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from internvl.demo.tokenizer import build_demo_tokenizer
from internvl.model.checkpoint import build_model, load_tokenizer
from internvl.model.config import preset
from internvl.model.conversation import IMG_CONTEXT_TOKEN


def make_prompts(model, tok, n: int, text_tokens: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    head = tok(model.build_prompt("").split("<|im_end|><|im_start|>assistant")[0], add_special_tokens=False).input_ids
    tail = tok("<|im_end|><|im_start|>assistant\n", add_special_tokens=False).input_ids
    lo, hi = 100, len(tok) - 20  # ordinary (non-special) token ids of the demo tokenizer
    prompts = []
    for _ in range(n):
        k = int(text_tokens * (0.75 + 0.5 * torch.rand(1, generator=g).item()))
        text = torch.randint(lo, hi, (k,), generator=g).tolist()
        prompts.append(torch.tensor(head + text + tail))
    return prompts


def left_pad(prompts: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), longest), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, longest - len(p):] = p
        mask[i, longest - len(p):] = 1
    return ids, mask


@torch.no_grad()
def run(model, prompts, pixels, batch_size: int, gen: dict, device: str, pad_id: int) -> tuple[list[list[int]], float]:
    outs: list[list[int]] = []
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    for i in range(0, len(prompts), batch_size):
        ids, mask = left_pad(prompts[i:i + batch_size], pad_id)
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                             pixel_values=pixels[i:i + batch_size].to(device), **gen)
        outs += out[:, ids.shape[1]:].tolist()
    sync()
    return outs, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny", choices=["tiny", "v1_2"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--n", type=int, default=64, help="samples in the batched run")
    ap.add_argument("--n-batch1", type=int, default=None, help="samples in the batch-1 run (default: n)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[16])
    ap.add_argument("--text-tokens", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()
    dtype = getattr(torch, a.dtype)
    torch.manual_seed(a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        words = [f"shape {c} {k} number {i}" for i, c in enumerate("red green blue yellow".split()) for k in range(9)]
        build_demo_tokenizer(words, Path(tmp))
        tok = load_tokenizer(tmp)
    cfg = preset(a.preset, vocab_size=None if a.preset == "v1_2" else len(tok))
    if a.preset == "v1_2":  # keep the real vocabulary size; our tokenizer only supplies the special ids
        cfg["llm_config"]["vocab_size"] = max(cfg["llm_config"]["vocab_size"], len(tok))
    t0 = time.perf_counter()
    with torch.device(a.device):
        torch.set_default_dtype(dtype)
        model = build_model(cfg, image_token_id=tok.convert_tokens_to_ids(IMG_CONTEXT_TOKEN), attn_implementation=a.attn,
                            device=a.device)
        torch.set_default_dtype(torch.float32)
    model = model.to(dtype).eval()
    build_s = time.perf_counter() - t0
    size = model.config.force_image_size
    prompts = make_prompts(model, tok, a.n, a.text_tokens, a.seed)
    pixels = torch.randn(a.n, 3, size, size, generator=torch.Generator().manual_seed(a.seed)).to(dtype)
    gen = {"max_new_tokens": a.new_tokens, "min_new_tokens": a.new_tokens, "do_sample": False, "num_beams": 1,
           "pad_token_id": tok.pad_token_id, "eos_token_id": tok.convert_tokens_to_ids("<|im_end|>")}
    n1 = a.n_batch1 or a.n
    run(model, prompts[:2], pixels[:2], 1, gen, a.device, tok.pad_token_id)  # warm-up
    base, t_base = run(model, prompts[:n1], pixels[:n1], 1, gen, a.device, tok.pad_token_id)
    report = {"device": torch.cuda.get_device_name() if a.device.startswith("cuda") else platform.processor() or "cpu",
              "preset": a.preset, "dtype": a.dtype, "attn": a.attn,
              "params_b": sum(p.numel() for p in model.parameters()) / 1e9,
              "image_tokens": model.num_image_token, "text_tokens": a.text_tokens, "new_tokens": a.new_tokens,
              "build_s": round(build_s, 1), "batch1": {"n": n1, "samples_per_s": n1 / t_base}, "batched": []}
    print(f"device={report['device']} preset={a.preset} dtype={a.dtype} params={report['params_b']:.3f}B")
    print(f"batch 1 (original loop): {n1 / t_base:.2f} samples/s over {n1}")
    for bs in a.batch_sizes:
        out, t = run(model, prompts, pixels, bs, gen, a.device, tok.pad_token_id)
        same = sum(o == b for o, b in zip(out[:n1], base, strict=True))
        rate = a.n / t
        report["batched"].append({"batch_size": bs, "samples_per_s": rate, "ratio": rate / (n1 / t_base),
                                  "identical_to_batch1": f"{same}/{n1}"})
        print(f"batch {bs}: {rate:.2f} samples/s = {rate / (n1 / t_base):.2f}x batch 1; "
              f"greedy tokens identical to batch 1: {same}/{n1}")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
