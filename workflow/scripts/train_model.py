"""Run the SFT recipe; write the checkpoint (original format) and its content hash.

In-process by default. A rule given an ``mpi`` resource with several nodes/tasks (the Slurm profile's
multi-node SFT) launches one Slurm task per node, each running torchrun (internvl.train.launch).
"""
import json
import subprocess
from pathlib import Path

import torch
import yaml

from internvl.logs import setup
from internvl.provenance import checkpoint_hash
from internvl.train import launch
from internvl.train.recipe import SFTConfig, train

setup(snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
torch.set_num_threads(snakemake.threads)  # noqa: F821
settings = {**json.loads(p.recipe), "init": p.init_dir, "sft_dir": p.sft_dir, "base_dir": p.base_dir,
            "output": snakemake.output.ckpt, "work_dir": p.work_dir}  # noqa: F821
cfg = SFTConfig.from_dict(settings)
plan = launch.plan_from_resources(dict(snakemake.resources.items()))  # noqa: F821
if plan is None:
    train(cfg)
else:
    Path(p.work_dir).mkdir(parents=True, exist_ok=True)
    recipe_yaml = f"{p.work_dir}/launch_recipe.yaml"
    with open(recipe_yaml, "w") as fh:
        yaml.safe_dump(settings, fh)
    cmd = launch.srun_command(plan["nodes"], plan["tasks"], plan["cpus_per_task"], plan["nproc_per_node"],
                              target=[*launch.DEFAULT_TARGET, recipe_yaml])
    with open(snakemake.log[0], "a") as log:  # noqa: F821
        log.write(f"launch: {' '.join(cmd)}\n")
        log.flush()
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
with open(snakemake.output.hash, "w") as fh:  # noqa: F821
    fh.write(checkpoint_hash(snakemake.output.ckpt) + "\n")  # noqa: F821
