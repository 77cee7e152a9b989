"""Batched, resumable inference of one model on one benchmark split."""
import json
import logging

import torch

from internvl.data.io import write_json_atomic
from internvl.eval import registry
from internvl.eval.infer import run_inference
from internvl.logs import setup

sm = snakemake  # noqa: F821
setup(sm.log[0])
p = sm.params
torch.set_num_threads(sm.threads)
bench = registry.get(sm.wildcards.bench, sm.config.get("benchmark_overrides"))
stats = run_inference(p.ckpt_dir, sm.input.data, p.data_root, bench, sm.output.predictions, p.cache,
                      batch_size=p.batch_size, shard_size=p.shard_size, dtype=p.dtype, device=p.device,
                      workers=p.workers, threads_per_worker=max(1, sm.threads // p.workers))
write_json_atomic(sm.output.stats, stats)
logging.getLogger("infer").info("done: %s", json.dumps(stats))
