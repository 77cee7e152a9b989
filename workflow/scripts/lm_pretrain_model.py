"""Pretrain a checkpoint's LLM on a text corpus; write the checkpoint (original format) and its content hash."""
import json

import torch

from internvl.logs import setup
from internvl.provenance import checkpoint_hash
from internvl.train.lm_pretrain import LMPretrainConfig, pretrain_llm

setup(snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
torch.set_num_threads(snakemake.threads)  # noqa: F821
cfg = LMPretrainConfig.from_dict({**json.loads(p.recipe), "init": p.init_dir, "corpus": p.corpus,
                                  "output": snakemake.output.ckpt, "work_dir": p.work_dir})  # noqa: F821
pretrain_llm(cfg)
with open(snakemake.output.hash, "w") as fh:  # noqa: F821
    fh.write(checkpoint_hash(snakemake.output.ckpt) + "\n")  # noqa: F821
