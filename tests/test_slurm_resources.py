"""The Slurm profile on the full V1.2 config: each rule's resources and the sbatch line they make.

No Slurm needed: a dry run with ``--profile profiles/slurm`` prints the resources Snakemake resolves
for every planned job; the executor plugin's own functions turn them into the sbatch options (and the
jobstep plugin's into the srun options inside the job). Also the multi-node launcher's Slurm
arithmetic, and a two-"node" rendezvous on this host with a faked Slurm environment.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from internvl.train import launch

REPO = Path(__file__).resolve().parents[1]
SITE_ENV = {"INTERNVL_SLURM_ACCOUNT": "vlm_research", "INTERNVL_SLURM_PARTITION": "cpu",
            "INTERNVL_SLURM_GPU_PARTITION": "gpu"}
V1_2_TARGETS = ["all", "work/v1_2/checkpoints/internvl_chat_v1_2_sft.sha256", "work/v1_2/cluster/gpu_check.json"]
GPU_RULES = {"infer", "train_model", "gpu_check"}
CPU_RULES = {"download_model", "normalize_benchmark", "normalize_sft", "score", "paper_table",
             "result_for_configured_model"}


class _Resources(dict):
    """Attribute access like snakemake's Resources, for the plugin's submit-string functions."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def _value(v: str):
    return int(v) if re.fullmatch(r"-?\d+", v) else v


def _dry_run(tmp: Path, *args: str, env: dict[str, str] | None = None) -> str:
    if not (tmp / "config").exists():
        shutil.copytree(REPO / "config", tmp / "config")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("INTERNVL_SLURM_")} | (env or {})
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp), "-n", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=environ)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def _rule_resources(out: str) -> dict[str, dict]:
    """rule -> resources, from the dry run's job blocks; every job of a rule must resolve the same ones."""
    found: dict[str, dict] = {}
    for block in re.split(r"\n(?=\[\w{3} \w{3} )", out):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        if not rule or not res or rule.group(1) == "all":
            continue
        items = dict(kv.split("=", 1) for kv in res.group(1).split(", "))
        items = {k: _value(v) for k, v in items.items() if not k.startswith(("disk", "mem_mib", "tmpdir"))
                 and k != "mem"}
        assert found.setdefault(rule.group(1), items) == items, f"{rule.group(1)}: resources differ between jobs"
    return found


def _sbatch(rule: str, res: dict, settings=None) -> str:
    """The sbatch options the Slurm executor plugin builds from these resources."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    from snakemake_executor_plugin_slurm.validation import validate_slurm_extra

    job = SimpleNamespace(resources=_Resources(res), threads=1, name=rule, is_group=lambda: False)
    validate_slurm_extra(job)
    params = {"run_uuid": "uuid", "slurm_logfile": "log", "comment_str": f"rule_{rule}",
              "account": f"-A {res['slurm_account']}" if "slurm_account" in res else "",
              "partition": f"-p {res['slurm_partition']}" if "slurm_partition" in res else "", "workdir": "/w"}
    return " ".join((get_submit_command(job, params, settings) + set_gres_string(job)).split())


def _inner_launch(rule: str, res: dict) -> str:
    """What runs inside the allocation: the jobstep plugin's srun -n1 wrapper, or the rule's own srun."""
    from snakemake_executor_plugin_slurm_jobstep import get_gpu_setting, get_node_setting

    plan = launch.plan_from_resources(res)
    if plan is None:
        assert "mpi" not in res
        job = SimpleNamespace(resources=_Resources(res))
        return " ".join(f"srun -n1 {get_gpu_setting(job)} {get_node_setting(job)}".split())
    return " ".join(launch.srun_command(plan["nodes"], plan["tasks"], plan["cpus_per_task"], plan["nproc_per_node"]))


def _judged(tmp: Path, **inference) -> str:
    """config/config.yaml with a judge (`all` has the judge-scored splits) and inference settings changed."""
    if not (tmp / "config").exists():
        shutil.copytree(REPO / "config", tmp / "config")
    cfg = yaml.safe_load((tmp / "config" / "config.yaml").read_text())
    cfg["judge"] = {"base_url": "http://127.0.0.1:9/v1", "model": "judge"}
    cfg["inference"].update(inference)
    (tmp / "judged.yaml").write_text(yaml.safe_dump(cfg))
    return str(tmp / "judged.yaml")


@pytest.fixture(scope="module")
def v1_2_plan(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slurm_plan")
    out = _dry_run(tmp, "--profile", str(REPO / "profiles" / "slurm"), "--configfile", _judged(tmp), "--",
                   *V1_2_TARGETS, env=SITE_ENV)
    return _rule_resources(out)


def test_every_rule_of_the_v1_2_plan_has_slurm_resources(v1_2_plan):
    assert GPU_RULES | CPU_RULES <= set(v1_2_plan)
    for rule, res in v1_2_plan.items():  # other rules (e.g. downloads) get the CPU defaults
        assert res["runtime"] > 0 and res["mem_mb"] > 0 and res["cpus_per_task"] >= 1, (rule, res)
        assert res["slurm_account"] == "vlm_research", rule
        assert res["slurm_partition"] == ("gpu" if rule in GPU_RULES else "cpu"), rule
        line = _sbatch(rule, res)
        assert f"-t {res['runtime']}" in line and f"--mem {res['mem_mb']}" in line
        assert "-A vlm_research" in line and f"--cpus-per-task={res['cpus_per_task']}" in line
        if rule not in GPU_RULES:
            assert "--gpus" not in line and "--gres" not in line and "--ntasks=1" in line, line


class _Settings(SimpleNamespace):
    """The executor plugin's settings as the profile sets them (unset ones None)."""

    def __getattr__(self, key):
        return None


def _profile_settings() -> _Settings:
    import yaml

    prof = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    return _Settings(requeue=bool(prof.get("slurm-requeue")), no_requeue=bool(prof.get("slurm-no-requeue")))


def test_multi_node_sft_requests_8_nodes_of_8_gpus_with_one_launcher_task_each(v1_2_plan):
    """The V1.2 SFT from parts, as its recipe says (64 GPUs, 8 a node): the geometry, the preemption signal
    10 min before the time limit, and Slurm's requeue."""
    res = v1_2_plan["train_model"]
    assert {k: res[k] for k in ("nodes", "tasks", "gres", "cpus_per_task", "mem_mb", "runtime", "mpi", "slurm_extra")} == {
        "nodes": 8, "tasks": 8, "gres": "gpu:8", "cpus_per_task": 64, "mem_mb": 900000, "runtime": 4320, "mpi": "srun",
        "slurm_extra": "--signal=USR1@600"}
    line = _sbatch("train_model", res, _profile_settings())
    for flag in ("-p gpu", "--nodes=8", "--ntasks=8", "--gres=gpu:8", "--cpus-per-task=64", "--mem 900000",
                 "-t 4320", "--signal=USR1@600", "--requeue"):
        assert flag in line, (flag, line)
    # gpu: N would be N GPUs for the whole job, and tasks would become --ntasks-per-gpu (one rank per GPU)
    assert "--gpus" not in line and "--ntasks-per-gpu" not in line, line
    assert _inner_launch("train_model", res).startswith(
        "srun --nodes=8 --ntasks=8 --ntasks-per-node=1 --cpus-per-task=64 --kill-on-bad-exit=1 ")
    check = v1_2_plan["gpu_check"]
    assert {k: check[k] for k in ("nodes", "tasks", "gres", "mpi")} == {k: res[k] for k in ("nodes", "tasks", "gres", "mpi")}
    assert "--nodes=8 --ntasks=8" in _sbatch("gpu_check", check)


def test_the_sft_job_runs_the_v1_2_recipe_under_zero3_and_is_planned_first(tmp_path):
    """The SFT's params carry the recipe file's optimisation settings and ZeRO-3's JSON; its plan runs on the
    submitting host (a local rule) before it."""
    import yaml

    from internvl.train.recipe import load_recipe

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    sft = cfg["models"]["internvl_chat_v1_2_sft"]
    assert sft["init"] == "v1_2_parts" and cfg["models"]["v1_2_parts"]["kind"] == "parts"
    recipe = load_recipe(sft["recipe_file"], sft.get("recipe"))
    assert (recipe["deepspeed"], recipe["gpus"], recipe["global_batch_size"], recipe["drop_path_rate"]) == (
        "zero3", 64, 512, 0.4)
    out = _dry_run(tmp_path, "--profile", str(REPO / "profiles" / "slurm"), "--",
                   "work/v1_2/checkpoints/internvl_chat_v1_2_sft.sha256", env=SITE_ENV)
    assert "work/v1_2/train_plan/internvl_chat_v1_2_sft.json" in out
    assert {"fetch_source", "build_parts_model", "train_plan", "train_model"} <= set(_rule_resources(out))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                           "--cores", "1", "--", "work/v1_2/train_plan/internvl_chat_v1_2_sft.json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plan = json.loads((tmp_path / "work/v1_2/train_plan/internvl_chat_v1_2_sft.json").read_text())
    assert plan["deepspeed"]["stage"] == 3 and (plan["gpus"], plan["nodes"]) == (64, 8)
    assert (plan["gradient_accumulation_steps"], plan["global_batch_size"]) == (1, 512)


def test_inference_gets_one_gpu_and_cpu_rules_none(v1_2_plan):
    infer = _sbatch("infer", v1_2_plan["infer"])
    assert "--gpus=1" in infer and "-p gpu" in infer and "--cpus-per-task=8" in infer and "--mem 160000" in infer
    assert "--ntasks" not in infer  # a GPU job gets no task geometry unless asked
    assert _inner_launch("infer", v1_2_plan["infer"]) == "srun -n1 --gpus=1 --nodes=1"
    expected = {"download_model": (360, 16000, 4), "normalize_benchmark": (120, 16000, 2),
                "normalize_sft": (480, 32000, 8), "score": (60, 16000, 2), "paper_table": (10, 2000, 1),
                "result_for_configured_model": (10, 1000, 1)}
    for rule, (runtime, mem, cpus) in expected.items():
        res = v1_2_plan[rule]
        assert (res["runtime"], res["mem_mb"], res["cpus_per_task"]) == (runtime, mem, cpus), rule
        line = _sbatch(rule, res)
        assert "--ntasks=1" in line and "-p cpu" in line and "--gpus" not in line and "--gres" not in line, line
        assert _inner_launch(rule, res) == "srun -n1 --nodes=1"


def test_data_parallel_inference_asks_for_one_gpu_per_worker(tmp_path):
    plan = _rule_resources(_dry_run(tmp_path, "--profile", str(REPO / "profiles" / "slurm"), "--configfile",
                                    _judged(tmp_path, workers=4), "--", "all", env=SITE_ENV))
    infer = _sbatch("infer", plan["infer"])
    assert "--gpus=4" in infer and "-p gpu" in infer, infer
    assert _inner_launch("infer", plan["infer"]) == "srun -n1 --gpus=4 --nodes=1"


def test_without_site_settings_no_partition_or_account_is_forced(tmp_path):
    plan = _rule_resources(_dry_run(tmp_path, "--profile", str(REPO / "profiles" / "slurm"), "--configfile",
                                    _judged(tmp_path), "--", *V1_2_TARGETS))
    for rule, res in plan.items():
        assert "slurm_partition" not in res and "slurm_account" not in res, (rule, res)
        assert " -p " not in _sbatch(rule, res) and " -A " not in _sbatch(rule, res)


def test_test_profile_makes_the_demo_cpu_only_on_partition_debug(tmp_path):
    shutil.copytree(REPO / "config", tmp_path / "config")
    out = _dry_run(tmp_path, "--profile", str(REPO / "profiles" / "slurm"), "--workflow-profile",
                   str(REPO / "profiles" / "slurm-test"), "--configfile", str(REPO / "config" / "demo.yaml"),
                   "--", "results/mmbench_dev.json", "work/demo/cluster/gpu_check.json")
    plan = _rule_resources(out)
    assert {"demo_data", "train_model", "infer", "gpu_check"} <= set(plan)
    for rule, res in plan.items():
        assert res["slurm_partition"] == "debug" and res["runtime"] <= 15, rule
        line = _sbatch(rule, res)
        assert "--gpus" not in line and ("--gres" not in line or rule == "gpu_check"), line
    assert "--nodes=1 --ntasks=2" in _sbatch("train_model", plan["train_model"])
    assert _inner_launch("train_model", plan["train_model"]).startswith("srun --nodes=1 --ntasks=2 --cpus-per-task=1")


# --- the launcher's Slurm arithmetic ------------------------------------------------------------------

def test_expand_hostlist():
    assert launch.expand_hostlist("gpu[01-03,07],login1") == ["gpu01", "gpu02", "gpu03", "gpu07", "login1"]
    assert launch.expand_hostlist("n[9-11]") == ["n9", "n10", "n11"]
    assert launch.expand_hostlist("r[1-2]-n[1-2]") == ["r1-n1", "r1-n2", "r2-n1", "r2-n2"]
    assert launch.expand_hostlist("localhost") == ["localhost"]


def test_rendezvous_from_slurm_environment():
    env = {"SLURM_JOB_ID": "48213", "SLURM_PROCID": "3", "SLURM_NTASKS": "8", "SLURM_NNODES": "8",
           "SLURM_STEP_NODELIST": "gpu[101-108]", "SLURM_JOB_NODELIST": "gpu[101-108]",
           "CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7"}
    r = launch.rendezvous(env)
    assert (r["nnodes"], r["node_rank"], r["nproc_per_node"], r["world_size"]) == (8, 3, 8, 64)
    assert (r["master_addr"], r["master_port"]) == ("gpu101", 10000 + 48213 % 20000)
    argv = launch.torchrun_argv(r, ["-m", "internvl.cli", "train", "r.yaml"])
    assert argv[1:3] == ["-m", "torch.distributed.run"] and argv[-4:] == ["-m", "internvl.cli", "train", "r.yaml"]
    assert "--nnodes=8" in argv and "--node-rank=3" in argv and "--master-addr=gpu101" in argv
    # MASTER_* from the environment win; no GPUs -> one process per node
    r = launch.rendezvous({**env, "MASTER_ADDR": "head", "MASTER_PORT": "29400", "CUDA_VISIBLE_DEVICES": ""})
    assert (r["master_addr"], r["master_port"], r["nproc_per_node"]) == ("head", 29400, 1)
    assert launch.rendezvous({**env, "CUDA_VISIBLE_DEVICES": "0,1"}, nproc_per_node=1)["world_size"] == 8
    with pytest.raises(ValueError):
        launch.rendezvous({**env, "SLURM_PROCID": "8"})


def test_plan_from_resources():
    assert launch.plan_from_resources({"gpu": 1, "cpus_per_task": 8}) is None  # the jobstep's srun -n1
    assert launch.plan_from_resources({"mpi": "srun", "nodes": 1}) is None
    assert launch.plan_from_resources({"mpi": "srun", "nodes": 8, "tasks": 8, "cpus_per_task": 64}) == {
        "nodes": 8, "tasks": 8, "cpus_per_task": 64, "nproc_per_node": 0}
    assert launch.srun_command(2, 4)[:3] == ["srun", "--nodes=2", "--ntasks=4"]


def test_two_launcher_tasks_form_one_process_group(tmp_path):
    """Two launchers with the environment srun gives two tasks: one rendezvous, world size 2 (gloo)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MASTER_"))}
    base |= {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "2", "SLURM_STEP_NODELIST": "localhost", "MASTER_PORT": str(port),
             "CUDA_VISIBLE_DEVICES": ""}
    rank_script = REPO / "workflow" / "scripts" / "gpu_check_rank.py"
    procs = [subprocess.Popen([sys.executable, "-m", "internvl.train.launch", "--", str(rank_script), str(tmp_path)],
                              env=base | {"SLURM_PROCID": str(i)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outs)
    ranks = [json.loads((tmp_path / f"rank-{i}.json").read_text()) for i in range(2)]
    assert [(r["rank"], r["node_rank"], r["world_size"], r["all_reduce_sum"]) for r in ranks] == [(0, 0, 2, 2), (1, 1, 2, 2)]
    assert all(r["master"] == f"localhost:{port}" for r in ranks)
