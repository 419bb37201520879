#!/usr/bin/env bash
# A single-node Slurm on this machine, for tests: `scripts/slurm-local.sh up` installs Slurm and munge from
# the distribution's packages when they are missing, writes a slurm.conf sized to this machine, starts munged,
# slurmctld and slurmd, and waits until the node is idle; `scripts/slurm-local.sh down` stops them and removes
# everything `up` wrote. Everything lives under $SLURM_LOCAL_DIR (default /tmp/bench-slurm): the config, the
# state, the pid files, the logs, munge's socket. Slurm's commands find the config through SLURM_CONF:
#   eval "$(scripts/slurm-local.sh env)"   # or: export SLURM_CONF=/tmp/bench-slurm/slurm.conf
# Exit status of `up`: 0 when the node is idle; 3 when Slurm cannot be installed here (not root, no apt-get,
# no packages): the caller may skip; anything else is a failure. Needs root (the daemons run as root).
# What worked on Debian 12 (Slurm 22.05): proctrack/linuxproc and task/none (no cgroups in a container),
# select/cons_tres with CR_Core, no accounting storage (job states come from squeue), MailProg=/bin/true.
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/bench-slurm}
CONF=$DIR/slurm.conf
PARTITION=${SLURM_LOCAL_PARTITION:-debug}
WAIT_S=${SLURM_LOCAL_WAIT_S:-60}

say() { echo "slurm-local: $*" >&2; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        say "cannot install slurm-wlm and munge here (needs root and apt-get)"
        return 3
    fi
    say "installing slurm-wlm and munge (Debian packages) ..."
    if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >"$DIR/apt.log" 2>&1 \
        || { apt-get update -qq >>"$DIR/apt.log" 2>&1 \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >>"$DIR/apt.log" 2>&1; }; }; then
        say "apt-get could not install slurm-wlm and munge (see $DIR/apt.log)"
        return 3
    fi
}

write_conf() {
    local host node
    host=$(hostname -s)
    # slurmd -C: this machine's CPUs, sockets, cores, threads and memory, as slurmd itself will see them (a
    # node configured with more than it has is drained)
    node=$(slurmd -C | head -1 | sed "s/^NodeName=[^ ]*/NodeName=$host/")
    cat >"$CONF" <<EOF
# written by scripts/slurm-local.sh: a single-node cluster for tests
ClusterName=bench-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket.2
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MailProg=/bin/true
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldPort=${SLURM_LOCAL_CTLD_PORT:-6817}
SlurmdPort=${SLURM_LOCAL_SLURMD_PORT:-6818}
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    mkdir -p "$DIR/munge"
    chown munge:munge "$DIR/munge" 2>/dev/null || true
    chmod 0755 "$DIR/munge"
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
            || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    runuser -u munge -- munged --socket="$DIR/munge/munge.socket.2" --pid-file="$DIR/munge/munged.pid" \
        --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed"
}

up() {
    mkdir -p "$DIR"
    local rc=0
    install_packages || rc=$?
    [ "$rc" = 0 ] || exit "$rc"
    if [ -f "$DIR/slurmctld.pid" ] && kill -0 "$(cat "$DIR/slurmctld.pid")" 2>/dev/null; then
        say "already up ($CONF)"
    else
        mkdir -p "$DIR/state" "$DIR/spool"
        write_conf
        start_munge
        export SLURM_CONF=$CONF
        slurmctld -c     # -c: a clean start, no jobs left from an earlier run; daemonizes itself
        slurmd           # daemonizes itself
    fi
    export SLURM_CONF=$CONF
    local waited=0 state=""
    while [ "$waited" -lt "$WAIT_S" ]; do
        state=$(sinfo -h -o %T 2>/dev/null | head -1 || true)
        if [ "$state" = idle ]; then
            say "up: partition $PARTITION, $(sinfo -h -o '%c CPUs, %m MB' | head -1), node idle; SLURM_CONF=$CONF"
            return 0
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "the node is not idle after ${WAIT_S}s (state: ${state:-no answer}); logs in $DIR"
    tail -5 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 || true
    exit 1
}

stop_pid() {  # the pid in file $1, if that process is alive: TERM, then KILL after 10 s
    local pid
    [ -f "$1" ] || return 0
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 20); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    kill -9 "$pid" 2>/dev/null || true
}

down() {
    if [ -f "$CONF" ]; then
        SLURM_CONF=$CONF scancel --full --quiet --partition="$PARTITION" 2>/dev/null || true
    fi
    stop_pid "$DIR/slurmd.pid"
    stop_pid "$DIR/slurmctld.pid"
    stop_pid "$DIR/munge/munged.pid"
    rm -rf "$DIR"
    say "down"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *)
        echo "usage: $0 up|down|env" >&2
        exit 2
        ;;
esac
