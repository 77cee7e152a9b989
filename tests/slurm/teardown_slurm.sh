#!/usr/bin/env bash
# Stop the test cluster started by tests/slurm/setup_slurm.sh: slurmd, slurmctld, munged, each by the
# PID in its pid file (nothing else is killed). Idempotent: stopped daemons are skipped.
#   --purge   also remove what setup wrote (config, state, logs, fake GPU devices); packages stay.
set -euo pipefail

MARK="# written by internvl tests/slurm/setup_slurm.sh"
STATE=/var/lib/slurm-ci
LOGDIR=/var/log/slurm-ci
RUNDIR=/run/slurm-ci

log() { echo "[teardown_slurm] $*" >&2; }
[ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 2; }

stop() {  # stop <name> <pidfile>
    local pidfile=$2 pid
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "$1 ($pid) ignored SIGTERM for 10 s; SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $1 ($pid)"
    fi
    rm -f "$pidfile"
}

# Jobs still running would outlive slurmd (proctrack/linuxproc); cancel them first while slurmctld is up.
if [ -s "$RUNDIR/slurmctld.pid" ] && kill -0 "$(cat "$RUNDIR/slurmctld.pid")" 2>/dev/null \
        && command -v scancel >/dev/null; then
    if [ -n "$(timeout 5 squeue -h -t RUNNING,PENDING,COMPLETING -o %i 2>/dev/null)" ]; then
        timeout 10 scancel --full --state=RUNNING 2>/dev/null || true
        timeout 10 scancel --state=PENDING 2>/dev/null || true
        for _ in $(seq 100); do
            [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null | head -1)" ] && break
            [ -z "$(timeout 5 squeue -h -t RUNNING,PENDING,COMPLETING -o %i 2>/dev/null)" ] && break
            sleep 0.1
        done
    fi
fi

stop slurmd "$RUNDIR/slurmd.pid"
stop slurmctld "$RUNDIR/slurmctld.pid"
stop munged "$RUNDIR/munged.pid"

if [ "${1:-}" = "--purge" ]; then
    for f in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
        if [ -f "$f" ] && grep -qF "$MARK" "$f"; then rm -f "$f"; log "removed $f"; fi
    done
    rm -rf "$STATE" "$LOGDIR" "$RUNDIR"
    log "removed $STATE $LOGDIR $RUNDIR"
fi
