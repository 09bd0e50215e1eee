#!/bin/bash
# A Slurm cluster of one node, this machine, for trying the templates and for the project's
# tests: munged, slurmctld and slurmd, as root, with every file they write in one folder.
#   ci-templates/slurm/local-cluster.sh up [DIR]     # then: export SLURM_CONF=DIR/slurm.conf
#   ci-templates/slurm/local-cluster.sh down [DIR]   # stops them; safe to run twice
# DIR defaults to $DEEPGRADE_SLURM_DIR, else ${TMPDIR:-/tmp}/deepgrade-slurm. Needs the Debian
# packages slurm-wlm and munge (apt-get install -y slurm-wlm munge); starts no system service
# and writes nothing outside DIR. No accounting database: sacct has nothing to show; squeue
# and `scontrol show job` do.
# Environment: SLURM_UP_TIMEOUT (seconds `up` waits for the node to be idle, 60),
# SLURMCTLD_PORT and SLURMD_PORT (6817, 6818).
set -euo pipefail

usage() {
    echo "usage: $0 up|down [DIR]" >&2
    exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
action="$1"
dir="${2:-${DEEPGRADE_SLURM_DIR:-${TMPDIR:-/tmp}/deepgrade-slurm}}"
conf="$dir/slurm.conf"
export SLURM_CONF="$conf"

# Stop the daemons named (slurmd, ...) whose pid files are in $dir/run: SIGTERM to all at
# once, then wait up to 20 s for them to end, then SIGKILL. A pid file whose daemon is gone (or
# whose number is now another process's) is only removed.
stop_daemons() {
    local name pid pids=()
    for name in "$@"; do
        [[ -s $dir/run/$name.pid ]] || continue
        pid="$(cat "$dir/run/$name.pid")"
        if [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name" ]]; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    for _ in $(seq 200); do
        for i in "${!pids[@]}"; do
            [[ -d /proc/${pids[i]} ]] || unset "pids[i]"
        done
        [[ ${#pids[@]} -eq 0 ]] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        echo "local-cluster: process $pid did not stop within 20 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    done
    for name in "$@"; do
        rm -f "$dir/run/$name.pid"
    done
}

# A daemon writes its pid file once it has forked into the background; until then `down`
# could not find it to stop it.
wait_for_pid_file() {
    for _ in $(seq 100); do
        [[ -s $dir/run/$1.pid ]] && return 0
        sleep 0.1
    done
    echo "local-cluster: $1 wrote no pid file within 10 s; see $dir/log/$1.log" >&2
    down >&2
    exit 1
}

down() {
    # munged last: the Slurm daemons authenticate with it until they are gone.
    stop_daemons slurmd slurmctld
    stop_daemons munged
    echo "local-cluster: stopped (logs in $dir/log)"
}

# The node's line of slurm.conf: this machine's CPUs, cores and memory as slurmd sees them,
# with its address pinned to the loopback so that no name lookup is needed.
node_line() {
    local line
    line="$(slurmd -C | head -n 1)"
    [[ $line == NodeName=* ]] || { echo "local-cluster: slurmd -C printed no node line: $line" >&2; exit 1; }
    echo "$line NodeAddr=127.0.0.1 State=UNKNOWN"
}

write_config() {
    local node host
    node="$(node_line)"
    host="${node#NodeName=}"
    host="${host%% *}"
    cat >"$conf" <<EOF
# Written by local-cluster.sh: one node, this machine; no accounting.
ClusterName=deepgrade-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/run/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
# No cgroups: processes are tracked by their parent ids, and tasks are not bound to cores.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
# Cores and memory are what jobs ask for and are given; a job that names no memory gets 1 GB
# a core, not the whole node.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
$node
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

up() {
    local missing=()
    for cmd in munged slurmctld slurmd sinfo sbatch; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "local-cluster: ${missing[*]} not found; install them: apt-get install -y slurm-wlm munge" >&2
        exit 1
    fi
    if [[ $(id -u) -ne 0 ]]; then
        echo "local-cluster: run it as root (slurmd starts jobs as their user)" >&2
        exit 1
    fi
    down >/dev/null  # a cluster left running on DIR by an earlier `up` is replaced
    mkdir -p "$dir"/{munge,state,spool,run,log}
    # munged refuses a key that others can read, and a socket folder that others can write
    # or cannot enter.
    chmod 0700 "$dir/munge"
    chmod 0755 "$dir" "$dir/run"
    # ... and munged checks every folder above the socket too (mktemp -d makes 0700 ones).
    local up_dir
    up_dir="$(cd "$dir" && pwd)"
    while [[ $up_dir != / ]]; do
        up_dir="$(dirname "$up_dir")"
        if [[ $(( 0$(stat -c %a "$up_dir") & 1 )) -eq 0 ]]; then
            echo "local-cluster: munged needs every folder above $dir to be enterable by all;" \
                "$up_dir is not (chmod o+x $up_dir, or choose another DIR)" >&2
            exit 1
        fi
    done
    if [[ ! -s $dir/munge/munge.key ]]; then
        dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
        chmod 0400 "$dir/munge/munge.key"
    fi
    write_config
    munged --key-file="$dir/munge/munge.key" --socket="$dir/run/munge.socket" \
        --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"
    wait_for_pid_file munged
    # -c: no state from an earlier cluster on DIR (its jobs are gone with it).
    slurmctld -c -f "$conf"
    wait_for_pid_file slurmctld
    slurmd -f "$conf"
    wait_for_pid_file slurmd
    local timeout="${SLURM_UP_TIMEOUT:-60}" state="" start=$SECONDS
    while ((SECONDS - start < timeout)); do
        state="$(sinfo -h -N -o '%T' 2>/dev/null | head -n 1 || true)"
        if [[ $state == idle ]]; then
            echo "local-cluster: up in $((SECONDS - start)) s: $(sinfo -h -N -o '%N %c CPUs %m MB %T')"
            echo "export SLURM_CONF=$conf"
            return 0
        fi
        sleep 0.5
    done
    echo "local-cluster: the node is not idle after $timeout s (state: ${state:-no answer from slurmctld});" \
        "see $dir/log/slurmctld.log and $dir/log/slurmd.log" >&2
    tail -n 5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 2>/dev/null || true
    down >&2
    exit 1
}

case "$action" in
    up) up ;;
    down) down ;;
    *) usage ;;
esac
