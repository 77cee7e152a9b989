#!/usr/bin/env bash
# A real, single-node Slurm for the test suite (Debian's slurm-wlm + munge), started as root.
#
#   tests/slurm/setup_slurm.sh          install if missing, write the config, start the daemons, wait for idle
#   tests/slurm/teardown_slurm.sh       stop them again (--purge also removes what this script wrote)
#
# Idempotent: a second call with the daemons up and the node idle does nothing. It never touches a
# slurm.conf it did not write (a real cluster's): it stops with exit code 3 instead.
#
# Facts this relies on (see shared/reference/env_feasibility.md §5):
# * /etc/slurm/slurm.conf must be the config path: the Snakemake jobstep plugin strips SLURM_CONF
#   before its nested srun, which then fails with "Could not establish a configuration source".
# * no accounting database: sacct does not work, so callers use `slurm-status-command: squeue`, which
#   needs finished jobs to stay visible for a while (MinJobAge). Finished jobs are also appended to a
#   jobcomp text file (JOBCOMP below; `sacct -c` reads it too).
# * no systemd/cgroups here (gVisor): proctrack/linuxproc, task/none.
# * fake GPUs: gres.conf File= must name character devices (mknod), regular files are rejected.
#
# Environment: SLURM_CI_GPUS (fake GPUs on the node, default 2; 0 = none), SLURM_CI_CPUS (default nproc),
# SLURM_CI_MEM_MB (default 80% of MemTotal).
set -euo pipefail

MARK="# written by internvl tests/slurm/setup_slurm.sh"
CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
STATE=/var/lib/slurm-ci
LOGDIR=/var/log/slurm-ci
RUNDIR=/run/slurm-ci
JOBCOMP=$LOGDIR/jobcomp.txt
NODE=localhost
GPUS=${SLURM_CI_GPUS:-2}
CPUS=${SLURM_CI_CPUS:-$(nproc)}
MEM_MB=${SLURM_CI_MEM_MB:-$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)}

log() { echo "[setup_slurm] $*" >&2; }
die() { echo "[setup_slurm] ERROR: $*" >&2; exit "${2:-1}"; }

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages, writes /etc/slurm, starts daemons)" 2

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_idle() {
    # the node is up and schedulable: idle, or already running jobs (mixed/allocated)
    local st
    st=$(timeout 5 sinfo -h -N -n "$NODE" -o %t 2>/dev/null | head -1) || return 1
    case "$st" in idle|mix|mixed|alloc|allocated) return 0 ;; *) return 1 ;; esac
}

# --- already up? --------------------------------------------------------------------------------
if [ -f "$CONF" ] && grep -qF "$MARK" "$CONF" && alive "$RUNDIR/slurmctld.pid" && alive "$RUNDIR/slurmd.pid" \
        && node_idle; then
    log "already running: $(sinfo -h -o '%P %a %D %t %N' | head -1)"
    exit 0
fi
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script (a real cluster?); not touching it" 3
fi

# --- packages -----------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
        || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "slurm-wlm/munge missing and apt-get unavailable" 2
    log "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends slurm-wlm munge >/tmp/slurm-ci-apt.log 2>&1; then
        apt-get update -q >>/tmp/slurm-ci-apt.log 2>&1
        apt-get install -y -q --no-install-recommends slurm-wlm munge >>/tmp/slurm-ci-apt.log 2>&1 \
            || { tail -20 /tmp/slurm-ci-apt.log >&2; die "apt-get install slurm-wlm munge failed"; }
    fi
fi

# --- stop leftovers of an earlier, half-started run (only our own pid files) ---------------------
for d in slurmd slurmctld; do
    if alive "$RUNDIR/$d.pid"; then
        kill "$(cat "$RUNDIR/$d.pid")" 2>/dev/null || true
        for _ in $(seq 50); do alive "$RUNDIR/$d.pid" || break; sleep 0.1; done
    fi
done

mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$LOGDIR" "$RUNDIR"

# --- munge ----------------------------------------------------------------------------------------
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key
# start munged unless one already answers (ours from an earlier call, or the system's)
if ! alive "$RUNDIR/munged.pid" && ! (munge -n | unmunge) >/dev/null 2>&1; then
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
    cp /run/munge/munged.pid "$RUNDIR/munged.pid"   # teardown stops only a munged started here
fi
munge -n | unmunge >/dev/null || die "munge does not work (see /var/log/munge/munged.log)"

# --- fake GPUs: character devices, as gres.conf requires -----------------------------------------
GRES_NODE=""
if [ "$GPUS" -gt 0 ]; then
    mkdir -p "$STATE/dev"
    : >"$GRES_CONF.tmp"
    echo "$MARK" >>"$GRES_CONF.tmp"
    for i in $(seq 0 $((GPUS - 1))); do
        dev="$STATE/dev/fakegpu$i"
        [ -c "$dev" ] || { rm -f "$dev"; mknod "$dev" c 1 3; }   # 1:3 is /dev/null's device number
        echo "NodeName=$NODE Name=gpu File=$dev" >>"$GRES_CONF.tmp"
    done
    mv "$GRES_CONF.tmp" "$GRES_CONF"
    GRES_NODE="Gres=gpu:$GPUS"
else
    rm -f "$GRES_CONF"
fi

# --- slurm.conf -------------------------------------------------------------------------------------
cat >"$CONF.tmp" <<EOF
$MARK
# Single-node test cluster; remove with tests/slurm/teardown_slurm.sh --purge.
ClusterName=internvl-ci
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$RUNDIR/slurmctld.pid
SlurmdPidFile=$RUNDIR/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1000
SchedulerType=sched/backfill
ReturnToService=2
# finished jobs stay visible to squeue/scontrol for 5 min (the workflow's status command is squeue)
MinJobAge=300
KillWait=5
InactiveLimit=0
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$JOBCOMP
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB $GRES_NODE State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
mv "$CONF.tmp" "$CONF"

# --- daemons ----------------------------------------------------------------------------------------
log "starting slurmctld and slurmd ($CPUS CPUs, $MEM_MB MB, $GPUS fake GPUs)"
slurmctld
for _ in $(seq 100); do timeout 5 scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.1; done
slurmd -N "$NODE"
ok=""
for i in $(seq 300); do
    if node_idle; then ok=1; break; fi
    # a node left down/drained by an earlier run comes back with resume
    if [ $((i % 20)) -eq 0 ]; then scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true; fi
    sleep 0.1
done
if [ -z "$ok" ]; then
    sinfo -N -l >&2 || true
    tail -20 "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log" >&2 || true
    die "node $NODE did not become idle"
fi
log "up: $(sinfo -h -o '%P %a %D %t %N' | head -1)"
