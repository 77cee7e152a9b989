"""Launch gpu_check ranks like multi-node SFT, then merge their records into one JSON."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

from internvl.data.io import write_json_atomic
from internvl.train import launch

sm = snakemake  # noqa: F821
ranks_dir = Path(sm.params.ranks_dir)
shutil.rmtree(ranks_dir, ignore_errors=True)
target = [sm.params.rank_script, str(ranks_dir)]
plan = launch.plan_from_resources(dict(sm.resources.items()))
if plan is None:  # one node, no Slurm step: the launcher on this host
    cmd = [sys.executable, "-m", "internvl.train.launch", "--", *target]
else:
    cmd = launch.srun_command(plan["nodes"], plan["tasks"], plan["cpus_per_task"], plan["nproc_per_node"], target)
Path(sm.log[0]).parent.mkdir(parents=True, exist_ok=True)
with open(sm.log[0], "w") as log:
    log.write(f"launch: {' '.join(cmd)}\n")
    log.flush()
    subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
ranks = sorted((json.loads(f.read_text()) for f in ranks_dir.glob("rank-*.json")), key=lambda r: r["rank"])
world = ranks[0]["world_size"] if ranks else 0
if not ranks or len(ranks) != world or any(r["all_reduce_sum"] != world for r in ranks):
    raise RuntimeError(f"gpu_check: {len(ranks)} rank records for world size {world}; see {sm.log[0]}")
resources = {k: v for k, v in sm.resources.items() if not k.startswith("_")}
write_json_atomic(sm.output[0], {"world_size": world, "nodes": len({r["node_rank"] for r in ranks}),
                                 "hosts": sorted({r["host"] for r in ranks}), "launch": cmd, "resources": resources,
                                 "ranks": ranks})
