#!/usr/bin/env bash
# The SLURM path for real (make slurm-check): start a single-node cluster
# (scripts/slurm-local.sh), run the smoke pipeline through workflow/profiles/slurm - every
# job via sbatch - with the CartPole study's jobs (family dqn) given a 1-minute time limit,
# which the longer ones do not meet: SLURM signals them, they checkpoint and exit 75,
# Snakemake resubmits them and they resume (--retries 10 here, not the profile's 1: on a
# loaded machine one minute may be less than a checkpoint interval's progress per attempt). Then the run files must equal the
# local pipeline's (results/runs/smoke from `make reproduce`, byte for byte, wall-clock
# columns aside: `mbrl-bench check --exact`). Needs root (the cluster); the scratch
# workflow directory is results/slurm-check/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV_BIN:-$PWD/.venv/bin}  # the project virtualenv (make install)
export PATH="$BIN:$PATH"
WORK=results/slurm-check
start=$(date +%s)
scripts/slurm-local.sh start
rm -rf "$WORK" && mkdir -p "$WORK"
test -d results/runs/smoke || { echo "slurm-check: run make reproduce first" >&2; exit 2; }

# The too-short limit: a copy of the smoke profile whose family dqn (dqn, dyna_q,
# dyna_q_adaptive on CartPole) gets 1 minute (resources do not enter the run files).
"$BIN/python" - "$WORK/smoke-slurm.yaml" <<'PY'
import sys, yaml
cfg = yaml.safe_load(open("config/smoke.yaml"))
cfg["resources"] = {"default": {"threads": 1, "mem_mb": 1500, "runtime": 10},
                    "dqn": {"threads": 1, "mem_mb": 1500, "runtime": 1}}
yaml.safe_dump(cfg, open(sys.argv[1], "w"), sort_keys=False)
PY
snakemake runs --profile workflow/profiles/slurm --configfile "$PWD/$WORK/smoke-slurm.yaml" \
  -d "$WORK" --jobs 2 --retries 10 --slurm-no-account --slurm-status-command squeue \
  --slurm-init-seconds-before-status-checks 5 --seconds-between-status-checks 5 \
  --slurm-keep-successful-logs \
  --default-resources slurm_partition=cpu mem_mb=1500 runtime=10 \
  > "$WORK/snakemake.log" 2>&1 || { tail -40 "$WORK/snakemake.log"; exit 1; }

echo "--- SLURM jobs (squeue --states=all)"
squeue --states=all -h -o "%.6i %.28j %.10T %.10M %.9l" | sort -n | tee "$WORK/jobs.txt"
# Snakemake deletes a job's log before each attempt, so the SLURM logs (one per attempt)
# show the stops and the runs' logs (the last attempt) the resumes.
echo "--- attempts stopped at their time limit: checkpointed, exit 75 (SLURM logs)"
grep -l "returned non-zero exit status 75" "$WORK"/.snakemake/slurm_logs/rule_train/*/*.log \
  | tee "$WORK/stopped.txt" || true
echo "--- runs resumed from a checkpoint (their last attempt's log)"
grep -h "resumed from the checkpoint" "$WORK"/results/logs/smoke/*/*/*.log \
  | tee "$WORK/resumed.txt" || true
test -s "$WORK/stopped.txt" && test -s "$WORK/resumed.txt" \
  || { echo "slurm-check: no job was stopped by its time limit (exit 75) and resumed" >&2; exit 1; }

echo "--- run files against the local pipeline (results/runs/smoke)"
"$BIN/mbrl-bench" baseline save --runs "$WORK/results/runs/smoke" --out "$WORK/baseline"
"$BIN/mbrl-bench" check --exact --baseline "$WORK/baseline" --candidate results/runs/smoke \
  --markdown "$WORK/check.md" > /dev/null || { cat "$WORK/check.md"; exit 1; }
grep -c "byte-identical" "$WORK/check.md" | sed 's/$/ runs byte-identical/'
echo "slurm-check: passed in $(( $(date +%s) - start )) s"
