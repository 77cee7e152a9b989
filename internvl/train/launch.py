"""Multi-node launch under Slurm: one Slurm task per node, each running torchrun.

Inside a job allocation, the Snakemake rule runs (``srun_command``)::

    srun --nodes=N --ntasks=N --ntasks-per-node=1 --cpus-per-task=C --kill-on-bad-exit=1 \\
        python -m internvl.train.launch -- -m internvl.cli train recipe.yaml

and each task (``python -m internvl.train.launch``) derives the static torchrun rendezvous from its
Slurm environment and execs ``torchrun`` on the target:

* NNODES = ``SLURM_NTASKS`` of the step (one task per node), NODE_RANK = ``SLURM_PROCID``;
* MASTER_ADDR = the first host of ``SLURM_STEP_NODELIST`` (else ``SLURM_JOB_NODELIST``);
* MASTER_PORT = 10000 + ``SLURM_JOB_ID`` mod 20000, the same in every task of the job and different
  for jobs sharing a head node;
* nproc per node = the GPUs this task sees (``CUDA_VISIBLE_DEVICES``, else ``SLURM_GPUS_ON_NODE``, else
  torch's device count), 1 without GPUs; ``--nproc-per-node`` overrides.

``MASTER_ADDR``/``MASTER_PORT`` already in the environment win. Outside Slurm it is a single-node
torchrun on localhost. Two tasks on one host also work (each is one "node" of the rendezvous), which
is how the test suite exercises the multi-node path on a single-node CPU cluster.

Why the rule launches srun itself: the Snakemake Slurm jobstep plugin wraps ordinary jobs in
``srun -n1`` (one task on the first node only); a rule with an ``mpi`` resource is run unwrapped, and
the plugin strips the allocation's ``SLURM_*`` variables (except the job id) before running it, so
the step geometry has to be spelled out here (``srun_command``), not inherited.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_TARGET = ("-m", "internvl.cli", "train")


def expand_hostlist(hostlist: str) -> list[str]:
    """Expand a Slurm hostlist: ``"gpu[01-03,07],login1"`` -> gpu01, gpu02, gpu03, gpu07, login1."""
    hosts: list[str] = []
    for item in _split_top_level(hostlist.strip()):
        hosts.extend(_expand_one(item))
    return hosts


def _split_top_level(s: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return [p for p in parts if p]


def _expand_one(item: str) -> list[str]:
    m = re.search(r"\[([^\]]*)\]", item)
    if not m:
        return [item]
    head, tail = item[: m.start()], item[m.end():]
    out = []
    for rng in m.group(1).split(","):
        lo, _, hi = rng.partition("-")
        if hi:
            width = len(lo)
            values = [str(i).zfill(width) for i in range(int(lo), int(hi) + 1)]
        else:
            values = [lo]
        for v in values:
            out.extend(_expand_one(head + v + tail))
    return out


def _visible_gpus(env: Mapping[str, str]) -> int:
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        return len([d for d in cvd.split(",") if d.strip() and d.strip() != "-1"])
    gpus = env.get("SLURM_GPUS_ON_NODE", "")
    if gpus.isdigit():
        return int(gpus)
    try:  # no Slurm GPU binding: whatever this host has
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rendezvous(env: Mapping[str, str] | None = None, nproc_per_node: int | None = None) -> dict[str, Any]:
    """The torchrun rendezvous of this task, from its Slurm environment (or a single local node)."""
    env = os.environ if env is None else env
    in_slurm = "SLURM_PROCID" in env and "SLURM_JOB_ID" in env
    if in_slurm:
        nnodes = int(env.get("SLURM_NTASKS") or env.get("SLURM_NPROCS") or env.get("SLURM_NNODES") or 1)
        node_rank = int(env["SLURM_PROCID"])
        nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or "localhost"
        hosts = expand_hostlist(nodelist)
        master_addr = env.get("MASTER_ADDR") or hosts[0]
        master_port = int(env.get("MASTER_PORT") or 10000 + int(env["SLURM_JOB_ID"]) % 20000)
    else:
        nnodes, node_rank, hosts = 1, 0, ["localhost"]
        master_addr = env.get("MASTER_ADDR") or "127.0.0.1"
        master_port = int(env.get("MASTER_PORT") or _free_port())
    devices = _task_devices(env) if in_slurm else None
    if nproc_per_node is None:
        nproc_per_node = max(1, len(devices) if devices is not None else _visible_gpus(env))
    if not 0 <= node_rank < nnodes:
        raise ValueError(f"node rank {node_rank} outside 0..{nnodes - 1}")
    return {"nnodes": nnodes, "node_rank": node_rank, "nproc_per_node": nproc_per_node,
            "master_addr": master_addr, "master_port": master_port, "hosts": hosts,
            "world_size": nnodes * nproc_per_node, "slurm": in_slurm,
            "cuda_visible_devices": None if devices is None else ",".join(devices)}


def tasks_per_node(spec: str) -> list[int]:
    """Slurm's ``SLURM_STEP_TASKS_PER_NODE`` ("2(x3),1") -> [2, 2, 2, 1]."""
    out: list[int] = []
    for part in filter(None, spec.split(",")):
        m = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if not m:
            raise ValueError(f"cannot read tasks per node {spec!r}")
        out += [int(m.group(1))] * int(m.group(2) or 1)
    return out


def _task_devices(env: Mapping[str, str]) -> list[str] | None:
    """This task's share of the node's GPUs when several launcher tasks share a node (one per GPU, as
    upstream's srun launch): the node's visible GPUs split evenly by ``SLURM_LOCALID``. None when the
    task is alone on its node (it keeps every GPU it sees)."""
    here = tasks_per_node(env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE") or "1")
    node = int(env.get("SLURM_NODEID", "0"))
    count = here[node] if node < len(here) else here[-1]
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    if count <= 1 or not cvd:
        return None
    gpus = [d.strip() for d in cvd.split(",") if d.strip() and d.strip() != "-1"]
    if len(gpus) % count:
        raise ValueError(f"{len(gpus)} GPUs ({cvd}) do not split evenly over the {count} tasks of this node")
    share, local = len(gpus) // count, int(env.get("SLURM_LOCALID", "0"))
    return gpus[local * share:(local + 1) * share]


def torchrun_argv(rdzv: Mapping[str, Any], target: Sequence[str]) -> list[str]:
    """``python -m torch.distributed.run`` with a static rendezvous, then the target (``-m mod args`` or a script)."""
    return [sys.executable, "-m", "torch.distributed.run",
            f"--nnodes={rdzv['nnodes']}", f"--node-rank={rdzv['node_rank']}",
            f"--nproc-per-node={rdzv['nproc_per_node']}",
            f"--master-addr={rdzv['master_addr']}", f"--master-port={rdzv['master_port']}",
            "--max-restarts=0", *target]


def srun_command(nodes: int, tasks: int | None = None, cpus_per_task: int | None = None,
                 nproc_per_node: int | None = None, target: Sequence[str] = DEFAULT_TARGET) -> list[str]:
    """The srun line a rule runs inside its allocation: ``tasks`` launchers (default one per node)."""
    tasks = tasks or nodes
    cmd = ["srun", f"--nodes={nodes}", f"--ntasks={tasks}"]
    if tasks == nodes:
        cmd.append("--ntasks-per-node=1")
    if cpus_per_task and cpus_per_task > 0:
        cmd.append(f"--cpus-per-task={cpus_per_task}")
    cmd += ["--kill-on-bad-exit=1", sys.executable, "-m", "internvl.train.launch"]
    if nproc_per_node:
        cmd.append(f"--nproc-per-node={nproc_per_node}")
    return [*cmd, "--", *target]


def plan_from_resources(resources: Mapping[str, Any]) -> dict[str, int] | None:
    """How a rule with these Snakemake resources launches: None = in-process, else the srun geometry.

    The srun launcher is used for a rule given an ``mpi`` resource (the jobstep plugin then leaves the
    launch to the rule) with more than one node, task or GPU per node (``gres: gpu:N``); ``nproc_per_node``
    is optional (default: the GPUs each task sees).
    """
    def _int(key: str, default: int = 0) -> int:
        value = resources.get(key, default)
        try:
            return int(value)
        except (TypeError, ValueError):
            return default

    if not resources.get("mpi"):
        return None
    nodes, tasks = _int("nodes", 1) or 1, _int("tasks", 0)
    gres = re.search(r"gpu(?::[^:,]+)?:(\d+)", str(resources.get("gres") or ""))
    per_node = max(_int("nproc_per_node", 0), int(gres.group(1)) if gres else 0)
    if nodes <= 1 and tasks <= 1 and per_node <= 1:
        return None
    return {"nodes": nodes, "tasks": tasks or nodes, "cpus_per_task": _int("cpus_per_task", 0),
            "nproc_per_node": _int("nproc_per_node", 0)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m internvl.train.launch", description=__doc__.split("\n\n")[0])
    ap.add_argument("--nproc-per-node", type=int, default=None, help="processes per node (default: visible GPUs, or 1)")
    ap.add_argument("--print", action="store_true", help="print the rendezvous and the torchrun line, run nothing")
    ap.add_argument("target", nargs=argparse.REMAINDER,
                    help="after '--': '-m module args' or 'script.py args' (default: -m internvl.cli train)")
    a = ap.parse_args(argv)
    target = list(a.target)
    if target and target[0] == "--":
        target = target[1:]
    if not target:
        ap.error("nothing to launch: give '-- -m internvl.cli train RECIPE.yaml' or a script")
    rdzv = rendezvous(nproc_per_node=a.nproc_per_node)
    if rdzv["cuda_visible_devices"] is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = rdzv["cuda_visible_devices"]
    argv_out = torchrun_argv(rdzv, target)
    info = {k: v for k, v in rdzv.items() if k != "hosts"} | {"host": socket.gethostname(),
                                                              "hosts": rdzv["hosts"][:8]}
    print(f"[launch] {json.dumps(info)}", file=sys.stderr, flush=True)
    print(f"[launch] {shlex.join(argv_out)}", file=sys.stderr, flush=True)
    if a.print:
        return 0
    return run_forwarding_signals(argv_out)


# Signals that ask the training ranks for a checkpoint and a clean stop (internvl.train.trainer.Preemption).
FORWARDED = ("SIGUSR1", "SIGTERM")
PREEMPTED_EXIT = 75  # internvl.train.recipe.Preempted.exit_code
PREEMPTED_MARKER = "INTERNVL_PREEMPTED_MARKER"  # where a rank notes that it stopped on a preemption signal


def run_forwarding_signals(argv: Sequence[str]) -> int:
    """Run torchrun with SIGUSR1/SIGTERM ignored in it, and pass those signals on to its workers.

    Why: Slurm's ``--signal=USR1@<s>`` (and a preemption's SIGTERM) reaches every process of the step.
    torchrun's agent would die of SIGUSR1 (the default action) or, on SIGTERM, kill its workers after a
    short grace period; the workers instead need the signal to save a checkpoint at the end of the step.
    So the agent ignores both (inherited through exec; ``TORCHELASTIC_SIGNALS_TO_HANDLE`` keeps torch
    elastic from re-installing its SIGTERM handler), and this launcher forwards them to the workers,
    whoever sent them (Slurm, scancel, a user's kill).
    """
    import signal
    import subprocess

    def ignore() -> None:
        for name in FORWARDED:
            signal.signal(getattr(signal, name), signal.SIG_IGN)

    import tempfile

    # torch elastic re-installs handlers for the signals this names (default SIGTERM,SIGINT,SIGHUP,SIGQUIT);
    # a rank that stops on a preemption signal leaves a note in PREEMPTED_MARKER (torchrun reports its exit
    # code 75 as 1), whoever the signal reached
    marker = Path(tempfile.mkdtemp(prefix="internvl-launch-")) / "preempted"
    env = {**os.environ, "TORCHELASTIC_SIGNALS_TO_HANDLE": "SIGINT,SIGHUP,SIGQUIT", PREEMPTED_MARKER: str(marker)}
    proc = subprocess.Popen(list(argv), preexec_fn=ignore, env=env)  # noqa: PLW1509 - only signal dispositions

    forwarded: list[int] = []

    def forward(signum, frame) -> None:  # noqa: ARG001
        forwarded.append(signum)
        for pid in _descendants(proc.pid):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
        print(f"[launch] {signal.Signals(signum).name}: forwarded to the training ranks", file=sys.stderr, flush=True)

    for name in FORWARDED:
        signal.signal(getattr(signal, name), forward)
    rc = proc.wait()
    preempted = marker.exists()
    shutil.rmtree(marker.parent, ignore_errors=True)
    if rc and (preempted or forwarded):
        # the ranks stopped on the signal (exit 75 after saving; torchrun itself reports 1): a retry resumes
        return PREEMPTED_EXIT
    return rc


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


if __name__ == "__main__":
    raise SystemExit(main())
