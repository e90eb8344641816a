#!/usr/bin/env bash
# A throw-away single-node Slurm cluster for tests and trying `--executor slurm`, without
# systemd and without touching /etc: everything (munge key and socket, slurm.conf, state,
# spool, logs, pid files) lives in one folder, and every Slurm command finds the cluster
# through the SLURM_CONF variable alone.
#
#   scripts/slurm-local.sh up DIR     start munged, slurmctld and slurmd; wait until the node
#                                     is idle; print `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm-local.sh down DIR   cancel every job, stop the daemons by their pid files
#
# Needs the Debian packages slurmctld slurmd slurm-client munge (scripts/setup.sh installs
# them) and root (slurmd runs jobs as their users). Daemons are stopped by pid file only,
# never by name, so other clusters on the machine are left alone.
set -Eeuo pipefail

usage() {
  echo "usage: $0 up|down DIR" >&2
  exit 2
}
[[ $# -eq 2 ]] || usage
cmd="$1"
dir="$2"
conf="$dir/slurm.conf"

# A TCP port nothing listens on (random in 20000-59999; checked by connecting).
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "slurm-local: no free port found" >&2
  return 1
}

# Whether the process in pid file $1 is alive (a zombie is not: check /proc/PID/stat).
alive() {
  local pid
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ -n "$pid" && -r "/proc/$pid/stat" ]] || return 1
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]]
}

# Stops the daemon of pid file $1: SIGTERM, then SIGKILL after 10 s.
stop_daemon() {
  local file="$1" pid
  alive "$file" || return 0
  pid="$(cat "$file")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    alive "$file" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

write_conf() {
  local host="$1" node_rest="$2" ctld_port="$3" d_port="$4" user
  user="$(id -un)"
  cat >"$conf" <<EOF
ClusterName=localtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
MinJobAge=600
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 $node_rest
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

# The ERR trap of `up`: show the logs, stop whatever was started, fail.
bringup_failed() {
  trap - ERR
  echo "slurm-local: bring-up failed; logs in $dir/log:" >&2
  tail -n 5 "$dir"/log/* >&2 2>/dev/null || true
  down || true
  exit 1
}

up() {
  for tool in munged mungekey munge unmunge slurmctld slurmd sinfo; do
    command -v "$tool" >/dev/null || {
      echo "slurm-local: $tool is missing; run scripts/setup.sh (Debian packages slurmctld slurmd slurm-client munge)" >&2
      exit 1
    }
  done
  mkdir -p "$dir"/{munge,state,spool,log,run}
  # Whatever fails below: show the logs and stop what was started already.
  trap bringup_failed ERR
  # munged refuses a socket folder that is not world-executable.
  chmod 755 "$dir" "$dir/munge"
  mungekey --create --keyfile="$dir/munge/munge.key" --force
  chmod 600 "$dir/munge/munge.key"
  # The daemons get no terminal or pipe of the caller's (a caller that reads our output to its
  # end would otherwise wait for them); their own logs are in DIR/log.
  munged --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
    --log-file="$dir/log/munged.log" --pid-file="$dir/run/munged.pid" \
    --seed-file="$dir/munge/munge.seed" </dev/null >>"$dir/log/munged.out" 2>&1
  munge -S "$dir/munge/munge.socket" -n | unmunge -S "$dir/munge/munge.socket" >/dev/null

  local host node
  host="$(hostname -s)"
  # A node whose declared CPUs or memory differ from what slurmd detects is drained.
  node="$(slurmd -C 2>/dev/null | sed -n 1p || true)"
  if [[ "$node" != NodeName=* ]]; then
    echo "slurm-local: slurmd -C printed no node line" >&2
    false
  fi
  write_conf "$host" "${node#NodeName=* }" "$(free_port)" "$(free_port)"
  export SLURM_CONF="$conf"
  slurmctld -i </dev/null >>"$dir/log/slurmctld.out" 2>&1
  slurmd -N "$host" </dev/null >>"$dir/log/slurmd.out" 2>&1
  local state=""
  for _ in $(seq 1 300); do
    state="$(sinfo -h -N -o %T 2>/dev/null | head -n 1)"
    [[ "$state" == "idle" ]] && break
    sleep 0.1
  done
  if [[ "$state" != "idle" ]]; then
    echo "slurm-local: the node is '$state', not idle, after 30 s" >&2
    false
  fi
  trap - ERR
  echo "export SLURM_CONF=$conf"
}

down() {
  export SLURM_CONF="$conf"
  if [[ -f "$conf" ]] && alive "$dir/run/slurmctld.pid"; then
    # Killing slurmd does not kill running jobs: cancel them first and wait for them.
    local jobs
    jobs="$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')"
    if [[ -n "${jobs// /}" ]]; then
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 1 150); do
        [[ -z "$(squeue -h -t running,completing -o %A 2>/dev/null)" ]] && break
        sleep 0.1
      done
    fi
  fi
  stop_daemon "$dir/run/slurmd.pid"
  stop_daemon "$dir/run/slurmctld.pid"
  stop_daemon "$dir/run/munged.pid"
}

case "$cmd" in
  up) up ;;
  down) down ;;
  *) usage ;;
esac
