#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for tests/test_slurm.py (root only).
#   tests/slurm/cluster.sh start   install slurm-wlm + munge if missing, configure, start, wait for idle
#   tests/slurm/cluster.sh stop    stop slurmd, slurmctld and munged
# While no controller runs, client commands wait MessageTimeout (10 s) for one. The Snakemake
# SLURM plugin runs `scontrol show config` whenever snakemake starts, so after `stop` the
# config says MessageTimeout=1: later local snakemake runs then start at once, not 9 s later.
# No accounting daemon: status queries go through squeue (--slurm-status-command squeue).
set -euo pipefail
ACTION=${1:?usage: cluster.sh start|stop}
HOST=$(hostname -s)

DAEMONS="slurmd slurmctld munged"

running() {
  local daemon
  for daemon in $DAEMONS; do
    pgrep -x "$daemon" >/dev/null && return 0
  done
  return 1
}

stop() {
  local daemon
  for daemon in $DAEMONS; do
    pkill -x "$daemon" 2>/dev/null || true
  done
  for _ in $(seq 20); do
    running || { quiet_clients; return 0; }
    sleep 0.5
  done
  for daemon in $DAEMONS; do
    pkill -9 -x "$daemon" 2>/dev/null || true
  done
  quiet_clients
}

quiet_clients() {
  local conf=/etc/slurm/slurm.conf
  if [ -f "$conf" ] && ! grep -q '^MessageTimeout=' "$conf"; then
    echo "MessageTimeout=1" >> "$conf"
  fi
}

start() {
  if [ "$(id -u)" != 0 ]; then
    echo "cluster.sh: needs root (installs packages, starts daemons)" >&2
    exit 2
  fi
  # procps gives pgrep/pkill, which minimal images may lack.
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v pkill >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge procps >/dev/null
  fi
  stop
  local cpus mem
  cpus=$(nproc)
  mem=$(( $(awk '/^MemTotal:/{print $2}' /proc/meminfo) / 1024 * 8 / 10 ))  # MB, 80 % of RAM
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
  chown munge:munge /run/munge
  [ -s /etc/munge/munge.key ] || /usr/sbin/mungekey --create >/dev/null 2>&1 || \
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  # Fresh state: no jobs or node state from an earlier run.
  rm -rf /var/spool/slurmctld/* /var/spool/slurmd/*
  cat > /etc/slurm/slurm.conf <<CONF
ClusterName=grids-test
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=main Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
CONF
  # Debian's slurmd needs these without systemd (cgroup v1 API, no systemd scope).
  cat > /etc/slurm/cgroup.conf <<CONF
CgroupPlugin=cgroup/v1
IgnoreSystemd=yes
CONF
  runuser -u munge -- /usr/sbin/munged
  /usr/sbin/slurmctld
  /usr/sbin/slurmd -N "$HOST"
  for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -q '^idle'; then
      sinfo
      return 0
    fi
    sleep 1
  done
  echo "cluster.sh: the node did not become idle in 60 s" >&2
  tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
  stop
  exit 1
}

case "$ACTION" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: cluster.sh start|stop" >&2; exit 2 ;;
esac
