"""Run the SFT recipe; write the checkpoint (original format) and its content hash."""
import torch

from internvl.logs import setup
from internvl.provenance import checkpoint_hash
from internvl.train.recipe import SFTConfig, train

setup(snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
torch.set_num_threads(snakemake.threads)  # noqa: F821
cfg = SFTConfig.from_dict({**p.recipe, "init": p.init_dir, "sft_dir": p.sft_dir, "base_dir": p.base_dir,
                           "output": snakemake.output.ckpt, "work_dir": p.work_dir})  # noqa: F821
train(cfg)
with open(snakemake.output.hash, "w") as fh:  # noqa: F821
    fh.write(checkpoint_hash(snakemake.output.ckpt) + "\n")  # noqa: F821
