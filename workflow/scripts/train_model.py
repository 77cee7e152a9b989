"""Run the SFT recipe; write the checkpoint (original format) and its content hash.

The job's optimisation settings and DeepSpeed config come from its params (a change reruns it); the
bookkeeping settings (logging, save interval, workers, ...) from the model's recipe as it is now, so
changing them never reruns a finished training (and a rerun resumes from its checkpoints anyway).

In-process for one process. With several (the recipe's ``gpus``, or an ``mpi`` resource with several
nodes, tasks or GPUs per node: the Slurm profile's multi-node SFT) it launches torchrun, through one
Slurm task per node (internvl.train.launch) inside an allocation, or on this host otherwise.
"""
import json
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from internvl.logs import setup
from internvl.provenance import checkpoint_hash
from internvl.train import launch
from internvl.train.recipe import BOOKKEEPING, Preempted, SFTConfig, load_recipe, train

sm = snakemake  # noqa: F821
setup(sm.log[0])
p = sm.params
torch.set_num_threads(sm.threads)
model = sm.config["models"][sm.wildcards.model]
current = load_recipe(model.get("recipe_file"), model.get("recipe"), repo=sm.params.repo)
settings = {**{k: v for k, v in current.items() if k in BOOKKEEPING}, **json.loads(p.recipe),
            "deepspeed": json.loads(p.deepspeed_config), "init": p.init_dir, "sft_dir": p.sft_dir,
            "base_dir": p.base_dir, "output": sm.output.ckpt, "work_dir": p.work_dir}
cfg = SFTConfig.from_dict(settings)
plan = launch.plan_from_resources(dict(sm.resources.items()))
if plan is None and (cfg.gpus or 1) <= 1:
    try:
        train(cfg)
    except Preempted as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(Preempted.exit_code)
else:
    Path(p.work_dir).mkdir(parents=True, exist_ok=True)
    recipe_yaml = f"{p.work_dir}/launch_recipe.yaml"
    with open(recipe_yaml, "w") as fh:
        yaml.safe_dump(settings, fh)
    target = [*launch.DEFAULT_TARGET, recipe_yaml]
    if plan is None:  # several GPUs, no Slurm step: torchrun on this host
        cmd = [sys.executable, "-m", "internvl.train.launch", f"--nproc-per-node={cfg.gpus}", "--", *target]
    else:
        cmd = launch.srun_command(plan["nodes"], plan["tasks"], plan["cpus_per_task"], plan["nproc_per_node"],
                                  target=target)
    with open(sm.log[0], "a") as log:
        log.write(f"launch: {' '.join(cmd)}\n")
        log.flush()
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc == Preempted.exit_code:
        print(f"error: training preempted; it saved a checkpoint in {p.work_dir} (see {sm.log[0]}); rerun to resume",
              file=sys.stderr)
        sys.exit(rc)
    if rc:
        sys.exit(f"error: training failed with exit code {rc}; see {sm.log[0]}")
with open(sm.output.hash, "w") as fh:
    fh.write(checkpoint_hash(sm.output.ckpt) + "\n")
