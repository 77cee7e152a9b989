# Cluster checks. gpu_check launches ranks the way multi-node SFT does (internvl.train.launch: one
# Slurm task per node, torchrun in each) and records, per rank, the GPUs it sees; give it the same
# Slurm resources as train_model (profiles/slurm) to check an allocation before a long run:
#   snakemake --profile profiles/slurm work/v1_2/cluster/gpu_check.json


rule gpu_check:
    output:
        f"{WORK}/cluster/gpu_check.json",
    params:
        ranks_dir=f"{WORK}/cluster/gpu_check_ranks",
        rank_script=f"{workflow.basedir}/workflow/scripts/gpu_check_rank.py",
    log:
        f"{WORK}/logs/gpu_check.log",
    script:
        "../scripts/gpu_check.py"
