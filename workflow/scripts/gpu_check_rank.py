"""One rank of gpu_check (run by torchrun): joins the process group and writes what it sees.

    python gpu_check_rank.py OUT_DIR   ->  OUT_DIR/rank-<RANK>.json
"""
import json
import os
import socket
import sys
from pathlib import Path

import torch
import torch.distributed as dist

out = Path(sys.argv[1])
rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
cuda = torch.cuda.is_available()
if cuda:
    torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl", device_id=torch.device("cuda", local_rank))
else:
    dist.init_process_group("gloo")
one = torch.ones(1, device=f"cuda:{local_rank}" if cuda else "cpu")
dist.all_reduce(one)  # the rendezvous really connects all ranks: the sum is the world size
record = {
    "rank": rank, "local_rank": local_rank, "world_size": dist.get_world_size(), "all_reduce_sum": int(one.item()),
    "node_rank": int(os.environ.get("GROUP_RANK", -1)), "host": socket.gethostname(),
    "master": f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}",
    "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    "device_count": torch.cuda.device_count(),
    "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    "slurm": {k: os.environ[k] for k in ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_PROCID", "SLURM_NODEID",
                                         "SLURMD_NODENAME", "SLURM_STEP_GPUS", "SLURM_GPUS_ON_NODE", "SLURM_LOCALID")
              if k in os.environ},
}
out.mkdir(parents=True, exist_ok=True)
tmp = out / f".rank-{rank}.json.tmp"
tmp.write_text(json.dumps(record, indent=1) + "\n")
tmp.replace(out / f"rank-{rank}.json")
dist.barrier()
dist.destroy_process_group()
