"""Plan a GPU recipe (internvl.train.plan): per-GPU memory, accumulation, steps. A plan that cannot fit
fails this local job, so the training job that depends on it is never submitted."""
import json
import sys

from internvl.data.io import write_json_atomic
from internvl.logs import setup
from internvl.train.plan import PlanError, model_config, plan

sm = snakemake  # noqa: F821
setup(sm.log[0])
recipe = json.loads(sm.params.recipe)
spec = recipe.get("plan_model")
if not spec:
    sys.exit(f"error: model {sm.wildcards.model}: its recipe names gpus but no plan_model (a preset such as v1_2, "
             "or a checkpoint folder) to plan the memory for")
model_cfg, label = model_config(spec)
try:
    p = plan(model_cfg, recipe, gpus=int(recipe["gpus"]), gpus_per_node=int(recipe.get("gpus_per_node") or 8),
             gpu_memory_gib=float(recipe.get("gpu_memory_gib") or 80), num_samples=sm.params.samples,
             model_name=f"{sm.wildcards.model} ({label})")
except PlanError as exc:
    sys.exit(f"error: {exc}")
print(p.format(), file=sys.stderr)
write_json_atomic(sm.output[0], p.to_dict())
