#!/usr/bin/env bash
# Distributed evaluation as a SLURM job step.
#
#   bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py options]
#
# GPUS, GPUS_PER_NODE, CPUS_PER_TASK, GRES, SRUN_ARGS, MASTER_PORT and PYTHON: see tools/slurm_launch.sh.
set -euo pipefail

if [ $# -lt 4 ]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py options]" >&2
  exit 2
fi
tools=$(dirname "${BASH_SOURCE[0]}")
partition=$1
job_name=$2
shift 2
exec bash "$tools/slurm_launch.sh" "$partition" "$job_name" "$tools/test.py" "$@"
