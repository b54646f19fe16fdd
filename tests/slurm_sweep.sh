#!/bin/sh
# slurm_sweep.sh: `sinklab sweep --submit` against a real single-node SLURM cluster.
# Starts munged, slurmctld and slurmd on this host (as root, Debian's slurm-wlm and munge, a
# generated slurm.conf in a temporary folder), submits the job array of a 4-run micro sweep, waits
# for it, and checks that every run completed and that each run's losses equal the same run made
# locally by `sinklab sweep --jobs 2`. Stops the daemons it started, by pid.
# Exit 77 (CTest SKIP_RETURN_CODE) only when the cluster cannot start, saying why.
# Environment: SINKLAB_BIN (the sinklab executable), SINKLAB_SRC (the source tree).
set -u
BIN="${SINKLAB_BIN:?set SINKLAB_BIN to the sinklab executable}"
SRC="${SINKLAB_SRC:-$(cd "$(dirname "$0")/.." && pwd)}"

# the daemons live in /usr/sbin, which a non-login shell's PATH may lack
PATH="$PATH:/usr/sbin:/sbin"
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || skip "the test cluster's daemons must start as root (running as uid $(id -u))"
for d in munged slurmctld slurmd sbatch squeue sinfo; do
    command -v "$d" >/dev/null 2>&1 || skip "$d not installed (scripts/setup.sh --with-test-deps installs slurm-wlm and munge)"
done

T=$(mktemp -d /tmp/sinklab_slurm.XXXXXX)
chmod 755 "$T"
HOST=$(hostname -s)
# ports from the pid, so two test clusters on one machine do not collide; 127.0.0.1 as the
# address, so the test needs no name resolution of the host
PORT=$((20000 + ($$ % 5000) * 2))
export SLURM_CONF="$T/slurm.conf"

cleanup() {
    for p in slurmd slurmctld munged; do
        [ -s "$T/$p.pid" ] && kill "$(cat "$T/$p.pid")" 2>/dev/null
    done
    sleep 1
    for p in slurmd slurmctld munged; do
        [ -s "$T/$p.pid" ] && kill -9 "$(cat "$T/$p.pid")" 2>/dev/null
    done
    [ "${KEEP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT INT TERM

# ---- munge: its own key and socket, so the host's munge (if any) is untouched ----
mkdir -p "$T/munge" "$T/state" "$T/spool"
chmod 700 "$T/munge"
dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$T/munge/munge.key"
munged --force --key-file="$T/munge/munge.key" --socket="$T/munge/munge.socket" \
    --pid-file="$T/munged.pid" --log-file="$T/munge/munged.log" --seed-file="$T/munge/munged.seed" \
    >"$T/munged.out" 2>&1 || skip "munged did not start: $(cat "$T/munged.out" "$T/munge/munged.log" 2>/dev/null | tail -3)"

cat >"$SLURM_CONF" <<EOF
ClusterName=sinklabtest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/munge.socket
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
SchedulerType=sched/backfill
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

slurmctld -f "$SLURM_CONF" >"$T/slurmctld.out" 2>&1 || skip "slurmctld did not start: $(tail -3 "$T/slurmctld.out" "$T/slurmctld.log" 2>/dev/null)"
slurmd -f "$SLURM_CONF" >"$T/slurmd.out" 2>&1 || skip "slurmd did not start: $(tail -3 "$T/slurmd.out" "$T/slurmd.log" 2>/dev/null)"

# the node must come up idle before anything is submitted
up=0
for i in $(seq 1 60); do
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -1)
    case "$state" in idle*|mix*|alloc*) up=1; break ;; esac
    sleep 0.5
done
[ "$up" = 1 ] || skip "the SLURM node did not come up (state '${state:-none}'): $(tail -3 "$T/slurmctld.log" "$T/slurmd.log" 2>/dev/null)"
echo "slurm: node $HOST up in $((i / 2)) s"

# ---- the micro sweep: 2 learning rates x 2 seeds, 8 steps each ----
cat >"$T/micro.yaml" <<EOF
base: $SRC/tests/configs/tiny.yaml
set:
  train.steps: 8
  probe.every: 4
  checkpoint.every: 4
grid:
  train.lr: [0.001, 0.003]
seeds: [0, 1]
slurm:
  cpus_per_task: 1
  time: "00:05:00"
  array_parallel: 2
EOF
cd "$T" || fail "cd $T"
out=$("$BIN" sweep micro.yaml --out "$T/cluster" --submit 2>&1) || fail "sweep --submit: $out"
echo "$out"
job=$(echo "$out" | sed -n 's/^submitted job \([0-9][0-9]*\).*/\1/p')
[ -n "$job" ] || fail "no job id in: $out"
grep -q '^#SBATCH --array=0-3%2$' "$T/cluster/sweep.sbatch" || fail "sweep.sbatch lacks --array=0-3%2: $(cat "$T/cluster/sweep.sbatch")"
grep -q '^#SBATCH --cpus-per-task=1$' "$T/cluster/sweep.sbatch" || fail "sweep.sbatch lacks --cpus-per-task=1"

# the local runs, while the cluster works
"$BIN" sweep micro.yaml --out "$T/local" --jobs 2 >"$T/local.out" 2>&1 || fail "local sweep: $(cat "$T/local.out")"

left=1
for i in $(seq 1 240); do
    left=$(squeue -h -j "$job" 2>/dev/null | wc -l)
    [ "$left" = 0 ] && break
    sleep 1
done
[ "$left" = 0 ] || fail "job $job still queued or running after 240 s: $(squeue 2>&1; tail -5 "$T/slurmctld.log")"

status=$("$BIN" sweep micro.yaml --out "$T/cluster" --status 2>&1)
echo "$status"
echo "$status" | grep -q "4 runs: 4 done" || fail "not every run completed on the cluster: $status
$(tail -n 20 "$T"/cluster/logs/* 2>/dev/null)"

# one log per task, and each run's losses equal the local run's
n=0
for run in "$T"/local/*/; do
    [ -f "$run/config.yaml" ] || continue
    name=$(basename "$run")
    [ -f "$T/cluster/logs/$name.log" ] || fail "no log $T/cluster/logs/$name.log"
    losses() { grep -o '^{"step":[0-9]*,"tokens":[0-9]*,"epoch":[^,]*,"loss":[^,}]*' "$1/metrics.jsonl"; }
    a=$(losses "$T/local/$name"); b=$(losses "$T/cluster/$name")
    [ "$(echo "$a" | wc -l)" = 8 ] || fail "$name: local run has $(echo "$a" | wc -l) loss lines, want 8"
    [ "$a" = "$b" ] || fail "$name: cluster losses differ from the local run:
local:   $a
cluster: $b"
    n=$((n + 1))
done
[ "$n" = 4 ] || fail "$n local runs, want 4"
echo "slurm: 4 runs completed as job $job; every run's losses equal the local run's"
