#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for testing the pipeline's SLURM path
# (make slurm-check): munged, slurmctld and slurmd from Debian's packages (slurmctld, slurmd,
# munge, slurm-client), a minimal slurm.conf with this host as controller and only node.
# Needs root.  scripts/slurm-local.sh install | start | stop | status
# The generated /etc/slurm/slurm.conf carries a marker line; an existing slurm.conf without
# it is never overwritten (this script is for a machine without a real cluster).
set -euo pipefail
CONF=/etc/slurm/slurm.conf
MARK="# written by mbrl-bench scripts/slurm-local.sh"
STATE=/var/spool/slurm-local
HOST=$(hostname -s)

install() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && command -v sbatch >/dev/null \
    && return 0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurmctld slurmd munge slurm-client
}

write_conf() {
  if [[ -f $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
    echo "slurm-local: $CONF exists and was not written by this script; not touching it" >&2
    exit 2
  fi
  local cpus mem
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" /var/log/slurm
  cat > "$CONF" <<CONF
$MARK
ClusterName=local
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# process groups: a job's processes stay tracked (and are killed at its limit) even when
# the Snakemake step above them exits first
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# squeue must still see finished jobs when Snakemake asks (no accounting, so no sacct)
MinJobAge=3600
# seconds between SIGTERM and SIGKILL at a time limit (SLURM's default)
KillWait=30
OverTimeLimit=0
InactiveLimit=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
  install
  write_conf
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  [[ -s /etc/munge/munge.key ]] || mungekey --create --force
  if ! pgrep -x munged >/dev/null; then munged --force; fi
  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd
  for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qE "^(idle|mixed|allocated)"; then
      sinfo; return 0
    fi
    sleep 1
  done
  echo "slurm-local: the node did not come up; see /var/log/slurm/" >&2
  exit 1
}

stop() {
  for daemon in slurmd slurmctld; do
    pid=$(cat "/run/$daemon.pid" 2>/dev/null || true)
    [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  done
  pid=$(cat /run/munge/munged.pid 2>/dev/null || true)
  [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  sleep 1
  echo "slurm-local: stopped slurmd, slurmctld and munged" >&2
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) sinfo && squeue ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
