#!/usr/bin/env bash
# A single-node Slurm cluster from Debian's packages (slurmctld, slurmd, slurm-client,
# munge), for the Slurm tests and for trying `vislaw slurm` on one machine. No systemd:
# munged and both Slurm daemons run from a private directory, on their own ports.
#
#   scripts/slurm-local.sh start [DIR]   start it (a few seconds), then print `export SLURM_CONF=…`
#   scripts/slurm-local.sh stop [DIR]    cancel its jobs, stop every daemon, end leftover job
#                                        processes; leaves nothing running
#   scripts/slurm-local.sh status [DIR]  whether it runs
#
# DIR defaults to $VISLAW_SLURM_DIR, else /tmp/vislaw-slurm. The controller listens on
# $SLURM_LOCAL_PORT (default 6817), slurmd on the next port. Needs root (slurmd switches to
# the job's user); with apt and root, installs the packages when missing.
set -euo pipefail

cmd=${1:-}
dir=${2:-${VISLAW_SLURM_DIR:-/tmp/vislaw-slurm}}
port=${SLURM_LOCAL_PORT:-6817}
conf="$dir/slurm.conf"

say() { echo "slurm-local: $*" >&2; }
die() { say "$*"; exit 1; }

# Whether process $1 is alive (a zombie is not: this machine's PID 1 may reap late).
alive() {
  local stat
  stat=$(cat 2>/dev/null "/proc/$1/stat") || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

pid_of() { [[ -s $1 ]] && cat "$1" || true; }

# Processes whose environment holds this cluster's SLURM_CONF: the daemons (started with it
# exported), slurmstepd (which inherits it from slurmd), the jobs and their children.
job_processes() {
  local p env comm
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ $p == "$$" || $p == "$BASHPID" ]] && continue
    env=$(tr '\0' '\n' 2>/dev/null <"/proc/$p/environ") || continue
    grep -qxF "SLURM_CONF=$conf" <<<"$env" || continue
    comm=$(cat 2>/dev/null "/proc/$p/comm") || continue
    # Only the cluster's own processes and its jobs, never a shell that merely uses it.
    if [[ $comm == slurmstepd || $comm == slurmd || $comm == slurmctld ]] || grep -q "^SLURM_JOB_ID=" <<<"$env"; then
      alive "$p" && echo "$p"
    fi
  done
  return 0
}

ensure_packages() {
  local missing=()
  for b in slurmctld slurmd sbatch munged mungekey; do command -v "$b" >/dev/null || missing+=("$b"); done
  ((${#missing[@]} == 0)) && return
  [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null || die "missing ${missing[*]}, and cannot install them (needs root and apt-get)"
  say "installing slurmctld slurmd slurm-client munge"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null ||
    { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; }
}

running() {
  local p
  p=$(pid_of "$dir/run/slurmctld.pid")
  [[ -n $p ]] && alive "$p"
}

start() {
  [[ $(id -u) == 0 ]] || die "must run as root (slurmd switches to the job's user): cannot start a cluster here"
  ensure_packages
  if running; then
    say "already running in $dir"
    echo "export SLURM_CONF=$conf"
    return
  fi
  mkdir -p "$dir"/{munge,state,spool,log,run}
  chmod 0755 "$dir" "$dir/munge"
  local key="$dir/munge/munge.key" sock="$dir/munge/socket"
  [[ -s $key ]] || mungekey -c -k "$key"
  chmod 0600 "$key"
  munged -S "$sock" --key-file="$key" --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/seed" --log-file="$dir/log/munged.log" ||
    die "munged did not start (see $dir/log/munged.log)"
  local host layout
  host=$(hostname -s)
  # The node's layout as slurmd sees it (CPUs alone make Slurm assume sockets).
  layout=$(slurmd -C | head -1 | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')
  cat >"$conf" <<CONF
ClusterName=vislaw-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock,cred_expire=10
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
SchedulerParameters=sched_interval=1
MinJobAge=600
MaxArraySize=10001
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 ${layout}RealMemory=1024 State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$conf
  setsid slurmctld -D -f "$conf" >>"$dir/log/slurmctld.out" 2>&1 </dev/null &
  echo $! >"$dir/run/slurmctld.pid"
  setsid slurmd -D -f "$conf" >>"$dir/log/slurmd.out" 2>&1 </dev/null &
  echo $! >"$dir/run/slurmd.pid"
  local i state
  for ((i = 0; i < 300; i++)); do
    state=$(sinfo -h -o %t 2>/dev/null || true)
    [[ $state == idle* ]] && break
    sleep 0.1
  done
  [[ ${state:-} == idle* ]] || { stop >/dev/null 2>&1 || true; die "the node did not come up (state '${state:-none}'; see $dir/log/)"; }
  say "running in $dir (node $host idle)"
  echo "export SLURM_CONF=$conf"
}

stop() {
  [[ -f $conf ]] || { say "nothing to stop in $dir"; return; }
  export SLURM_CONF=$conf
  local i p pids
  if running; then
    # Cancel the jobs while slurmd is up, so that their epilogs complete.
    scancel --full --quiet $(squeue -h -o %A 2>/dev/null | sort -u) 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      [[ -z $(squeue -h -t running,completing,configuring -o %A 2>/dev/null) ]] && break
      sleep 0.1
    done
    scontrol shutdown >/dev/null 2>&1 || true
  fi
  for f in "$dir/run/slurmctld.pid" "$dir/run/slurmd.pid" "$dir/munge/munged.pid"; do
    p=$(pid_of "$f")
    [[ -n $p ]] || continue
    [[ $f == */munged.pid ]] && kill "$p" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do alive "$p" || break; sleep 0.1; done
    alive "$p" && kill -9 "$p" 2>/dev/null || true
    rm -f "$f"
  done
  # Job processes outlive daemons killed hard: end them with their children.
  for ((i = 0; i < 3; i++)); do
    pids=$(job_processes)
    [[ -z $pids ]] && break
    for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
    sleep 0.2
  done
  pids=$(job_processes)
  [[ -z $pids ]] || die "processes still running: $pids"
  say "stopped ($dir)"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status) if running; then say "running in $dir"; echo "export SLURM_CONF=$conf"; else say "not running ($dir)"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status [DIR]" >&2; exit 2 ;;
esac
