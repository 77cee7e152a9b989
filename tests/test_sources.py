"""config/sources.yaml: the seed's full source list, each with a rule target or a documented manual step."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from internvl import download as dl

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "config" / "sources.yaml"

# Every download link of the seed README (OpenGVLab/InternVL internvl_chat/README.md @ 0bfa5e7):
# "Model Preparation", "Prepare Training Datasets" and the "Data Preparation" blocks of the evaluation
# section (evaluation-server and paper links left out), plus the released chat model.
SEED_URLS = """
https://huggingface.co/OpenGVLab/InternViT-6B-448px-V1-2
https://huggingface.co/NousResearch/Nous-Hermes-2-Yi-34B
https://huggingface.co/OpenGVLab/InternVL-Chat-V1-2
https://github.com/InternLM/InternLM-XComposer/blob/main/projects/ShareGPT4V/docs/Data.md#prepare-images
https://huggingface.co/datasets/openbmb/llava_zh
https://github.com/kushalkafle/DVQA_dataset
https://github.com/vis-nlp/ChartQA
https://allenai.org/data/diagrams
https://www.docvqa.org/datasets
https://github.com/SCNU203/GeoQA-Plus
https://huggingface.co/datasets/naver-clova-ix/synthdog-en
https://huggingface.co/OpenGVLab/InternVL/resolve/main/playground.zip
https://drive.google.com/file/d/1dqqa3MnrxMXaU_K9JA6C83je32ibwdOY/view?usp=sharing
https://huggingface.co/datasets/ahmed-masry/ChartQA/resolve/main/ChartQA%20Dataset.zip
http://images.cocodataset.org/zips/train2017.zip
https://datasets.cvc.uab.es/rrc/DocVQA/train.tar.gz
https://datasets.cvc.uab.es/rrc/DocVQA/val.tar.gz
https://datasets.cvc.uab.es/rrc/DocVQA/test.tar.gz
https://drive.google.com/file/d/1iKH2lTi1-QxtNUVRxTUWFvUvRHq6HAsZ/view
https://downloads.cs.stanford.edu/nlp/data/gqa/images.zip
https://huggingface.co/datasets/liuhaotian/LLaVA-Pretrain/resolve/main/images.zip
https://drive.google.com/drive/folders/1_GYPY5UkUy7HIcR0zq3ZCFgeZN7BAfm_?usp=sharing
https://drive.google.com/file/d/1dKumdOKSXtV7lIXdrG7jsIK_z2vZv2gs/view?usp=drive_link
https://dl.fbaipublicfiles.com/textvqa/images/train_val_images.zip
https://huggingface.co/OpenGVLab/InternVL/resolve/main/synthdog-en-images.zip
https://cs.stanford.edu/people/rak248/VG_100K_2/images.zip
https://cs.stanford.edu/people/rak248/VG_100K_2/images2.zip
https://drive.google.com/drive/folders/1tCUQ-sq6vdshZVkF0ZeF3K4eztkXJgax?usp=sharing
https://drive.google.com/file/d/1KL4_wIzr3p8XSKMkkLgYcYwCbb0TzZ9O/view
https://huggingface.co/OpenGVLab/InternVL/resolve/main/geoqa%2B_images.zip
http://images.cocodataset.org/zips/train2014.zip
http://images.cocodataset.org/zips/val2014.zip
http://images.cocodataset.org/zips/test2015.zip
https://github.com/OpenGVLab/InternVL/releases/download/data/coco_karpathy_test.json
https://github.com/OpenGVLab/InternVL/releases/download/data/coco_karpathy_test_gt.json
https://bryanplummer.com/Flickr30kEntities/
https://github.com/mehdidc/retrieval_annotations/releases/download/1.0.0/flickr30k_test_karpathy.txt
https://github.com/OpenGVLab/InternVL/releases/download/data/flickr30k_test_karpathy.json
https://nocaps.org/download
https://nocaps.s3.amazonaws.com/nocaps_val_4500_captions.json
https://s3.amazonaws.com/cvmlp/vqa/mscoco/vqa/v2_Annotations_Train_mscoco.zip
https://s3.amazonaws.com/cvmlp/vqa/mscoco/vqa/v2_Questions_Train_mscoco.zip
https://s3.amazonaws.com/cvmlp/vqa/mscoco/vqa/v2_Annotations_Val_mscoco.zip
https://s3.amazonaws.com/cvmlp/vqa/mscoco/vqa/v2_Questions_Val_mscoco.zip
https://s3.amazonaws.com/cvmlp/vqa/mscoco/vqa/v2_Questions_Test_mscoco.zip
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/vqav2/vqav2_train.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/vqav2/vqav2_val.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/vqav2/vqav2_testdev.jsonl
https://okvqa.allenai.org/static/data/mscoco_train2014_annotations.json.zip
https://okvqa.allenai.org/static/data/OpenEnded_mscoco_train2014_questions.json.zip
https://okvqa.allenai.org/static/data/mscoco_val2014_annotations.json.zip
https://okvqa.allenai.org/static/data/OpenEnded_mscoco_val2014_questions.json.zip
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/okvqa/okvqa_train.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/okvqa/okvqa_val.jsonl
https://dl.fbaipublicfiles.com/textvqa/data/TextVQA_0.5.1_train.json
https://dl.fbaipublicfiles.com/textvqa/data/TextVQA_0.5.1_val.json
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/textvqa/textvqa_train_annotations.json
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/textvqa/textvqa_train_questions.json
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/textvqa/textvqa_train.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/textvqa/textvqa_val_annotations.json
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/textvqa/textvqa_val_questions.json
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/textvqa/textvqa_val.jsonl
https://github.com/OpenGVLab/InternVL/releases/download/data/textvqa_val_llava.jsonl
https://vizwiz.cs.colorado.edu/VizWiz_final/images/train.zip
https://vizwiz.cs.colorado.edu/VizWiz_final/images/val.zip
https://vizwiz.cs.colorado.edu/VizWiz_final/images/test.zip
https://vizwiz.cs.colorado.edu/VizWiz_final/vqa_data/Annotations.zip
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/vizwiz/vizwiz_train_annotations.json
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/vizwiz/vizwiz_train_questions.json
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/vizwiz/vizwiz_train.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/vizwiz/vizwiz_val_annotations.json
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/vizwiz/vizwiz_val_questions.json
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/vizwiz/vizwiz_val.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/vizwiz/vizwiz_test.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/docvqa/train.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/docvqa/val.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/docvqa/test.jsonl
https://drive.google.com/file/d/1Lm_w6zeET1Hyl_9ks6w5nEsgpoyPHalV/view
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/chartqa/train_human.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/chartqa/train_augmented.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/chartqa/test_human.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/chartqa/test_augmented.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/gqa/testdev_balanced.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/gqa/train_balanced.jsonl
https://github.com/OpenGVLab/InternVL/releases/download/data/llava_gqa_testdev_balanced_qwen_format.jsonl
https://ocr-vqa.github.io/kvqa_ProjectFiles/README.txt
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/ocrvqa/ocrvqa_train.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/ocrvqa/ocrvqa_val.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/ocrvqa/ocrvqa_test.jsonl
https://huggingface.co/OpenGVLab/InternVL/raw/main/ai2d_test.jsonl
https://scienceqa.s3.us-west-1.amazonaws.com/images/test.zip
https://github.com/lupantech/ScienceQA/blob/main/data/scienceqa/problems.json
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/scienceqa/scienceqa_test_img.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/refcoco/refcoco_val.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/refcoco/refcoco_testA.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/refcoco/refcoco_testB.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/refcoco%2B/refcoco%2B_val.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/refcoco%2B/refcoco%2B_testA.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/refcoco%2B/refcoco%2B_testB.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/refcocog/refcocog_val.jsonl
https://ofasys-wlcb.oss-cn-wulanchabu.aliyuncs.com/Qwen-VL/evaluation/refcocog/refcocog_test.jsonl
https://github.com/BradyFU/Awesome-Multimodal-Large-Language-Models/blob/Evaluation/README.md
https://download.openmmlab.com/mmclassification/datasets/mmbench/mmbench_dev_20230712.tsv
https://download.openmmlab.com/mmclassification/datasets/mmbench/mmbench_dev_cn_20231003.tsv
https://download.openmmlab.com/mmclassification/datasets/mmbench/mmbench_dev_en_20231003.tsv
https://download.openmmlab.com/mmclassification/datasets/mmbench/mmbench_test_cn_20231003.tsv
https://download.openmmlab.com/mmclassification/datasets/mmbench/mmbench_test_en_20231003.tsv
https://github.com/OpenGVLab/InternVL/releases/download/data/llava_pope_test.jsonl
https://github.com/AoiDragon/POPE/raw/e3e39262c85a6a83f26cf5094022a782cb0df58d/output/coco/coco_pope_adversarial.json
https://github.com/AoiDragon/POPE/raw/e3e39262c85a6a83f26cf5094022a782cb0df58d/output/coco/coco_pope_popular.json
https://github.com/AoiDragon/POPE/raw/e3e39262c85a6a83f26cf5094022a782cb0df58d/output/coco/coco_pope_random.json
https://github.com/OpenGVLab/Multi-Modality-Arena/tree/main/tiny_lvlm_evaluation
https://drive.google.com/file/d/1PuFC612XzOmKwzRldtBb1CFZnIjiR7we/view
https://huggingface.co/datasets/liuhaotian/llava-bench-in-the-wild
https://huggingface.co/datasets/liuhaotian/llava-bench-in-the-wild/resolve/main/images/001.jpg
https://huggingface.co/datasets/liuhaotian/llava-bench-in-the-wild/resolve/main/images/024.jpg
https://github.com/yuweihao/MM-Vet/releases/download/v1/mm-vet.zip
https://huggingface.co/datasets/MMVP/MMVP
https://huggingface.co/datasets/MMVP/MMVP_VLM
https://huggingface.co/datasets/AI4Math/MathVista/raw/main/annot_testmini.json
https://github.com/AILab-CVC/SEED-Bench/blob/main/DATASET.md#data-preparation-for-seed-bench-1
""".split()


@pytest.fixture(scope="module")
def doc():
    return dl.load_sources(SOURCES)  # raises on a malformed entry


def _hub(e: dict) -> str:
    return "https://huggingface.co/" + ("datasets/" if e.get("repo_type") == "dataset" else "") + e["repo_id"]


def covered_urls(doc: dict) -> set[str]:
    out: set[str] = set()
    for e in doc["sources"].values():
        out.update(u for u in (e.get("url"), e.get("where")) if u)
        out.update(e.get("covers") or [])
        if e["kind"] == "hf":
            out.add(_hub(e))
        if e["kind"] == "hf_file":
            for how in ("resolve", "raw"):
                out.add(f"{_hub(e)}/{how}/main/{quote(e['filename'])}")
    return out


def test_every_seed_url_is_a_source(doc):
    assert len(SEED_URLS) > 100
    missing = [u for u in SEED_URLS if u not in covered_urls(doc)]
    assert not missing, f"seed README sources missing from config/sources.yaml: {missing}"


def test_manual_sources_are_documented(doc, tmp_path):
    roots = {k: str(tmp_path / k) for k in doc["roots"]}
    manual = {n: e for n, e in doc["sources"].items() if e["kind"] == "manual"}
    assert len(manual) >= 10
    for name, e in manual.items():
        assert len(e["instructions"]) > 40 and e.get("access"), name
        with pytest.raises(dl.ManualSourceError) as err:
            dl.fetch_source(name, e, roots)
        msg = str(err.value)
        assert name in msg and str((Path(roots[e["root"]]) / e["dest"]).resolve()) in msg and e["where"] in msg


def test_automatic_sources_are_well_formed(doc):
    names = doc["sources"]
    for name, e in names.items():
        assert re.fullmatch(r"[A-Za-z0-9_]+", name), name
        assert e.get("group") in {"weights", "sft", "sft_optional", "eval", "eval_train", "eval_extra"}, name
        assert isinstance(e.get("used_by", []), list), name
        if e["kind"] in ("hf", "hf_file"):
            assert re.fullmatch(r"[0-9a-f]{40}", str(e["revision"])) or e["revision"] == "main", name
        if e["kind"] == "url":
            assert e["url"].startswith(("http://", "https://")) and "drive.google.com" not in e["url"], name
        if e.get("sha256"):
            assert re.fullmatch(r"[0-9a-f]{64}", e["sha256"]) and isinstance(e.get("size"), int), name
    dests = [(e["root"], e["dest"]) for e in names.values()]
    assert len(dests) == len(set(dests)), "two sources write the same path"
    for w in ("internvit_6b_448px_v1_2", "nous_hermes_2_yi_34b", "internvl_chat_v1_2"):
        assert names[w]["kind"] == "hf" and names[w]["group"] == "weights"


def _dry_run(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--nolock", *args], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def _count(text: str, rule: str) -> int:
    m = re.search(rf"^{rule}\s+(\d+)\s*$", text, re.M)
    return int(m.group(1)) if m else 0


def test_every_source_has_a_rule_target(doc):
    text = _dry_run("--configfile", "config/config.yaml", "--", "download_everything")
    manual = sum(e["kind"] == "manual" for e in doc["sources"].values())
    assert _count(text, "place_manual_source") == manual > 10
    assert _count(text, "fetch_source") == len(doc["sources"]) - manual


def test_every_group_has_a_download_target(doc):
    """README "Real run": `snakemake download_<group>` fetches one group of sources."""
    rules = (REPO / "workflow" / "rules" / "download.smk").read_text()
    groups = {e["group"] for e in doc["sources"].values()}
    assert groups and all(f"rule download_{g}:" in rules for g in groups), groups
    text = _dry_run("--configfile", "config/config.yaml", "--", *(f"download_{g}" for g in sorted(groups)))
    assert _count(text, "fetch_source") + _count(text, "place_manual_source") == len(doc["sources"])


def test_every_file_a_normalizer_reads_comes_from_one_of_its_sources(doc, tmp_path):
    """Every file the normalizers open (in the demo writer's copy of the real layout) lies where one of the
    benchmark's own sources puts it: its destination, a folder destination, or an archive's `check` path.
    Otherwise the real run would download the data and then not find it."""
    import dataclasses

    from internvl.data.benchmarks import NORMALIZERS, normalize
    from internvl.demo.writers import DemoSizes, build_demo

    build_demo(tmp_path, seed=0, sizes=dataclasses.replace(DemoSizes.tiny(), all_benchmarks=True, bench_items=2))
    data = (tmp_path / "data").resolve()
    roots = dl.source_roots(doc, data)
    opened: list[str] = []
    active = [True]

    def hook(event, args):
        if active[0] and event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, os.PathLike)):
            if str(args[0]).startswith(str(data)):
                opened.append(str(args[0]))

    sys.addaudithook(hook)  # cannot be removed: it records nothing once `active` is cleared
    problems = []
    for bench in sorted(NORMALIZERS):
        opened.clear()
        normalize(bench, data)
        paths = sorted(set(opened))
        assert paths, bench
        own = {n for n, e in doc["sources"].items() if bench in (e.get("used_by") or [])}
        for path in paths:
            by = dl.sources_providing(path, doc, roots)
            if not set(by) & own:
                problems.append(f"{bench}: {Path(path).relative_to(data)} (provided by {by or 'no source'})")
    active[0] = False
    assert not problems, problems


def test_downloads_are_not_part_of_all():
    text = _dry_run("--configfile", "config/demo.yaml", "--", "all")
    assert _count(text, "fetch_source") == 0


def test_every_registered_benchmark_has_sources(doc):
    from internvl.eval import registry

    used = {u for e in doc["sources"].values() for u in e.get("used_by") or []}
    missing = [b for b in registry.BENCHMARKS if b not in used]
    assert not missing, f"benchmarks with no source in config/sources.yaml (add them to used_by): {missing}"
