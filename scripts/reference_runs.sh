#!/usr/bin/env bash
# The long Hopper reference runs (issue 13, docs/results.md): quick profile, 30,000 env steps,
# one after another, each at one thread, `nice`, checkpointing every 1,000 steps, so two
# lanes (one per core) fill this 2-core machine and a killed lane resumes where it stopped.
#
#   scripts/reference_runs.sh run ALGO [SEED...]   # seeds default to 0 1 2; rerun to resume
#   scripts/reference_runs.sh status               # where every run stands
#   scripts/reference_runs.sh stop                 # checkpoint every running run and stop it
#
# Runs live in $RUNS/quick/ALGO/hopper/seedS (default results/runs/reference30k, git-ignored),
# logs in $RUNS/logs/. A finished run's CSV/JSON files (no checkpoint) are copied at once to
# $REF/quick/ALGO/hopper/seedS (default results/reference): a session that ends before they
# are committed then still leaves them in the working tree. The code is this checkout's: run
# the script from a worktree of a fixed commit to keep main free to change while runs last.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-$HERE/results/runs/reference30k}
REF=${REF:-$HERE/results/reference}
STEPS=${STEPS:-30000}  # env steps per run (the budget of the reference set)
# torch's vectorised kernels: AVX2 and AVX512 round some operations differently, so a seed
# repeats its numbers only under the same one (docs/results.md). AVX2 runs on every AMD host
# we have had, with or without AVX-512; seed 2 of both arms (AMD) and MBPO's seed 0 (Intel Xeon)
# ran under AVX512 (CAPABILITY=avx512).
CAPABILITY=${CAPABILITY:-avx2}

collect() {  # ALGO SEED: copy a finished run's small files into the reference tree
  local src=$RUNS/quick/$1/hopper/seed$2 dst=$REF/quick/$1/hopper/seed$2
  mkdir -p "$dst.tmp" && cp "$src"/*.csv "$src"/*.json "$dst.tmp"/
  rm -rf "$dst" && mv "$dst.tmp" "$dst"
}

run() {
  local algo=$1; shift
  local seeds=("$@")
  [ ${#seeds[@]} -eq 0 ] && seeds=(0 1 2)
  mkdir -p "$RUNS/logs"
  for s in "${seeds[@]}"; do
    local rc out=$RUNS/quick/$algo/hopper/seed$s log=$RUNS/logs/${algo}_s$s.log
    echo "$(date -u +%FT%TZ) start $algo seed $s" >> "$RUNS/logs/lanes.log"
    if (cd "$HERE" && PYTHONPATH=$HERE ATEN_CPU_CAPABILITY=$CAPABILITY \
          nice -n 2 "$HERE/.venv/bin/python" -m harness.cli train \
          --algo "$algo" --env hopper --seed "$s" --profile quick --set total_steps=$STEPS \
          --threads 1 --checkpoint-every 1000 --out "$out" >> "$log" 2>&1); then rc=0; else rc=$?; fi
    if [ $rc -eq 0 ]; then
      collect "$algo" "$s"
      echo "$(date -u +%FT%TZ) done $algo seed $s -> $REF/quick/$algo/hopper/seed$s" >> "$RUNS/logs/lanes.log"
    else
      echo "$(date -u +%FT%TZ) stopped $algo seed $s (exit $rc; see $log)" >> "$RUNS/logs/lanes.log"
      return 1
    fi
  done
}

status() {
  for d in "$RUNS"/quick/*/hopper/seed*; do
    [ -d "$d" ] || continue
    local last
    last=$(tail -n 1 "$d/eval.csv" 2>/dev/null | cut -d, -f1)
    if [ -f "$d/done.json" ]; then echo "$d: finished"
    elif [ -f "$d/checkpoint.pt" ]; then echo "$d: last eval at step ${last:-none}, checkpoint present"
    else echo "$d: last eval at step ${last:-none}, no checkpoint"; fi
  done
}

stop() {  # SIGTERM: each run checkpoints at its next episode end and exits 75 (resumable).
  # Each process is signalled once (a second SIGTERM while it exits would kill it), and new
  # ones until none is left, so a run that a lane starts meanwhile is stopped too.
  local p pids pattern="harness.cli train .*--out $RUNS/" signalled=" "
  pgrep -f -- "$pattern" > /dev/null || { echo "no run under $RUNS is training"; return 0; }
  while pids=$(pgrep -f -- "$pattern"); do
    for p in $pids; do
      case $signalled in *" $p "*) ;; *) kill -TERM "$p" 2> /dev/null || true; signalled+="$p " ;; esac
    done
    sleep 2
  done
  status
}

case ${1:-} in
  run) shift; [ $# -ge 1 ] || { echo "usage: $0 run ALGO [SEED...]" >&2; exit 2; }; run "$@" ;;
  status) status ;;
  stop) stop ;;
  *) echo "usage: $0 run ALGO [SEED...] | status | stop" >&2; exit 2 ;;
esac
