#!/usr/bin/env bash
# Distributed training as a SLURM job step.
#
#   bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [tools/train.py options]
#
# GPUS, GPUS_PER_NODE, CPUS_PER_TASK, GRES, SRUN_ARGS, MASTER_PORT and PYTHON: see tools/slurm_launch.sh.
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG [WORK_DIR] [tools/train.py options]" >&2
  exit 2
fi
tools=$(dirname "${BASH_SOURCE[0]}")
partition=$1
job_name=$2
config=$3
shift 3
work_dir_option=()
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  work_dir_option=(--work-dir "$1")
  shift
fi
exec bash "$tools/slurm_launch.sh" "$partition" "$job_name" "$tools/train.py" "$config" "${work_dir_option[@]}" "$@"
