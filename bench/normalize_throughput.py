"""SFT normalization throughput and peak memory, on one core, at several input sizes.

Generates a synthetic copy of the V1.2 mix in LLaVA format -- the nine sources of
``shell/data/data_yi34b_finetune.json`` with their relative sizes scaled to N records, each with
conversations shaped like its original (long GPT-4V captions, multi-turn LLaVA instruct data in
English and Chinese, multi-question VQA, single short-answer chart/doc/diagram VQA, GeoQA, OCR
transcripts, text-only ShareGPT chats) -- with images taken from a small pool of real JPEG files in a
temporary data tree, and runs :func:`internvl.data.sft.normalize_sft` on it with its default checks
(every image ``lstat``-ed, every record validated), each size in a fresh subprocess pinned to one CPU
(``sched_setaffinity``, Arrow thread pools of 1), so that peak RSS is per run.

    .venv/bin/python bench/normalize_throughput.py                 # 300k and 1.2M records
    .venv/bin/python bench/normalize_throughput.py --sizes 50000   # quick look

Prints one line per size: records, annotation MiB, wall seconds and records/s, CPU seconds (user +
system of the run) and records per CPU-second, peak RSS (``ru_maxrss`` of the child, which includes
the interpreter and pyarrow). Acceptance: >= 50k records/s on one core and < 1 GiB. On a shared
machine the wall-clock rate also counts time the core spent on other processes; records per
CPU-second is the one-core figure then (the load average is printed alongside).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

# name -> (records in the V1.2 mix, image root under playground/data, profile)
MIX = {
    "sharegpt4v_instruct_gpt4-vision_cap100k": (102_025, "", "caption"),
    "llava_instruct_150k_zh": (157_712, "coco/", "llava_zh"),
    "sharegpt4v_mix665k_cap23k_coco-ap9k_lcs3k_sam9k_div2k": (665_058, "", "mix665k"),
    "dvqa_train_200k": (200_000, "dvqa/", "vqa1"),
    "chartqa_train_18k": (18_317, "chartqa/", "vqa1"),
    "ai2d_train_12k": (12_413, "ai2d/", "vqa1"),
    "docvqa_train_10k": (10_211, "docvqa/", "vqa1"),
    "geoqa+": (72_318, "geoqa+/", "geoqa"),
    "synthdog_en": (29_765, "synthdog-en/", "ocr"),
}
TOTAL = sum(n for n, _, _ in MIX.values())
IMAGE_DIRS = ["coco/train2017", "gqa/images", "ocr_vqa/images", "textvqa/train_images", "vg/VG_100K",
              "sam/images", "dvqa/images", "chartqa/train/png", "ai2d/images", "docvqa/train/documents",
              "geoqa+/images", "synthdog-en/images", "share_textvqa/images", "web-celebrity/images"]
WORDS = ("the a of and in on with is are to image shows there this that which person people man woman table "
         "chart bar value year red blue green large small left right top bottom background foreground street car "
         "building sky tree water sign text number title axis label shape angle triangle circle line segment "
         "length degree area point figure what how many where why does color describe detail scene").split()
ZH = "图片中有一个人正在桌子旁边坐着看书天空是蓝色的背景里有树木和建筑物这张照片展示了城市街道上的汽车与行人"
rng = random.Random(0)


def _sentence(lo: int, hi: int, zh: bool = False) -> str:
    if zh:
        return "".join(rng.choice(ZH) for _ in range(rng.randint(lo // 3, hi // 3))) + "。"
    words = []
    while sum(len(w) + 1 for w in words) < rng.randint(lo, hi):
        words.append(rng.choice(WORDS))
    return " ".join(words).capitalize() + "."


# pools of JSON-escaped text (json.dumps without the quotes), composed per record
POOL = {
    "q_short": [_sentence(20, 70) for _ in range(400)],
    "q_long": [_sentence(80, 240) for _ in range(400)],
    "a_word": [rng.choice(WORDS) for _ in range(200)] + [str(i) for i in range(200)],
    "a_sent": [_sentence(40, 200) for _ in range(2000)],
    "a_para": [_sentence(200, 700) for _ in range(2000)],
    "zh_q": [_sentence(20, 60, zh=True) for _ in range(300)],
    "zh_a": [_sentence(60, 300, zh=True) for _ in range(1000)],
}
POOL = {k: [json.dumps(s, ensure_ascii=False)[1:-1] for s in v] for k, v in POOL.items()}
VQA_SUFFIX = "\\nAnswer the question using a single word or phrase."


def _turns(profile: str) -> tuple[list[tuple[str, str]], bool]:
    """(question, answer) pairs and whether the sample has an image."""
    c = rng.choice
    if profile == "mix665k":
        profile = rng.choices(["llava", "vqa_multi", "caption", "text", "ocr"], [35, 40, 10, 7, 8])[0]
    if profile == "caption":
        return [(c(POOL["q_short"]), " ".join(c(POOL["a_para"]) for _ in range(rng.randint(1, 3))))], True
    if profile == "llava":
        return [(c(POOL["q_short"]), " ".join(c(POOL["a_sent"]) for _ in range(rng.randint(1, 4))))
                for _ in range(rng.randint(1, 5))], True
    if profile == "llava_zh":
        return [(c(POOL["zh_q"]), c(POOL["zh_a"])) for _ in range(rng.randint(1, 5))], True
    if profile == "vqa_multi":
        return [(c(POOL["q_short"]) + VQA_SUFFIX, c(POOL["a_word"])) for _ in range(rng.randint(2, 10))], True
    if profile == "vqa1":
        return [(c(POOL["q_short"]) + VQA_SUFFIX, c(POOL["a_word"]))], True
    if profile == "geoqa":
        return [(c(POOL["q_long"]), c(POOL["a_sent"]) + " " + c(POOL["a_sent"]))], True
    if profile == "ocr":
        return [("Read all the text in the image.", " ".join(c(POOL["a_sent"]) for _ in range(rng.randint(2, 6))))], True
    # text-only ShareGPT chat
    return [(c(POOL["q_long"]), " ".join(c(POOL["a_para"]) for _ in range(rng.randint(1, 4))))
            for _ in range(rng.randint(1, 4))], False


def generate(base: Path, n: int, pool_size: int = 64) -> Path:
    """Write the data tree and meta JSON for ``n`` records under ``base``; returns the meta path."""
    data = base / "playground" / "data"
    images = []
    for i in range(pool_size):
        rel = f"{IMAGE_DIRS[i % len(IMAGE_DIRS)]}/{i:012d}.jpg"
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32 + i, 24 + i), (i * 3 % 256, 80, 160)).save(data / rel, quality=80)
        images.append(rel)
    meta = {}
    for name, (length, root, profile) in MIX.items():
        count = max(1, round(n * length / TOTAL))
        under = [p[len(root):] for p in images if p.startswith(root)] or None
        ann = base / "playground" / f"{name}.jsonl"
        with ann.open("w", encoding="utf-8") as fh:
            for i in range(count):
                pairs, has_image = _turns(profile)
                tag = ("<image>\\n" if rng.random() < 0.8 else "") if has_image else ""
                turns = []
                for j, (q, a) in enumerate(pairs):
                    if j == 0 and has_image:
                        q = tag + q + ("" if tag else "\\n<image>")
                    turns.append(f'{{"from": "human", "value": "{q}"}}, {{"from": "gpt", "value": "{a}"}}')
                img = ""
                if has_image:
                    img = f'"image": "{rng.choice(under) if under else rng.choice(images)}", '
                fh.write(f'{{"id": "{name[:8]}-{i:09d}", {img}"conversations": [{", ".join(turns)}]}}\n')
        meta[name] = {"root": f"playground/data/{root}" if under else "playground/data/",
                      "annotation": f"playground/{name}.jsonl", "data_augment": False, "repeat_time": 1,
                      "length": count}
    path = base / "meta.json"
    path.write_text(json.dumps(meta, indent=1))
    return path


def child(meta: str, base: str, out: str, cpu: int, verify: bool) -> None:
    """One normalization, measured; prints a JSON line."""
    os.sched_setaffinity(0, {cpu})
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    from internvl.data.sft import normalize_sft

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    m = normalize_sft(meta, base, out, progress=False, verify_images=verify)
    wall, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"samples": m["total_samples"], "seconds": wall, "cpu_seconds": cpu_s, "peak_rss": peak,
                      "shards": len(m["shards"])}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[300_000, 1_200_000])
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin the run to (default: the first allowed)")
    ap.add_argument("--verify-images", action="store_true", help="also decode every image (slow by design)")
    ap.add_argument("--workdir", help="keep the generated data here instead of a temp dir")
    ap.add_argument("--child", nargs=3, metavar=("META", "BASE", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    cpu = a.cpu if a.cpu is not None else min(os.sched_getaffinity(0))
    if a.child:
        child(*a.child, cpu=cpu, verify=a.verify_images)
        return
    print(f"{'records':>10} {'MiB':>6} {'wall s':>7} {'records/s':>10} {'cpu s':>7} {'records/cpu-s':>13} "
          f"{'peak RSS':>10}   (pinned to cpu {cpu}; load average {os.getloadavg()[0]:.1f})")
    for n in a.sizes:
        with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
            base = Path(tmp)
            t0 = time.perf_counter()
            meta = generate(base, n)
            size = sum(p.stat().st_size for p in (base / "playground").glob("*.jsonl"))
            print(f"# generated {n} records ({size / 2**20:.0f} MiB, {size / n:.0f} B/record) "
                  f"in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            cmd = [sys.executable, __file__, "--cpu", str(cpu), "--child", str(meta), str(base), str(base / "out")]
            if a.verify_images:
                cmd.append("--verify-images")
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            print(f"{res['samples']:>10} {size / 2**20:>6.0f} {res['seconds']:>7.2f} "
                  f"{res['samples'] / res['seconds']:>10,.0f} {res['cpu_seconds']:>7.2f} "
                  f"{res['samples'] / res['cpu_seconds']:>13,.0f} {res['peak_rss'] / 2**20:>6.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
