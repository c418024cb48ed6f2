#!/usr/bin/env bash
# Runs a Python script as a SLURM job step of GPUS tasks with srun; the script gets `--launcher slurm`
# (mmengine reads SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID and SLURM_NODELIST).
# tools/slurm_train.sh and tools/slurm_test.sh are the usual entry points; this is the part they share.
#
#   bash tools/slurm_launch.sh PARTITION JOB_NAME SCRIPT [script args...]
#
# Environment:
#   GPUS           tasks in total, one per GPU (default 8); more than GPUS_PER_NODE spans several nodes
#   GPUS_PER_NODE  tasks (and GPUs) per node (default: GPUS, at most 8)
#   CPUS_PER_TASK  CPU cores per task, e.g. for data-loading workers (default 5)
#   GRES           generic resources per node (default gpu:GPUS_PER_NODE, e.g. gpu:a100:8);
#                  GRES=none requests none, for CPU-only clusters
#   SRUN_ARGS      further srun options, split on spaces (e.g. "--quotatype=auto --time=2:00:00")
#   MASTER_PORT    rendezvous port (default 20000 + job id % 20000, so jobs sharing a node differ)
#   MASTER_ADDR    address of rank 0 (default: the first node of the job step)
#   PYTHON         interpreter (default: python)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/launch_common.sh"

if [ $# -lt 3 ]; then
  echo "usage: $0 PARTITION JOB_NAME SCRIPT [script args...]" >&2
  exit 2
fi
partition=$1
job_name=$2
script=$3
shift 3

gpus=${GPUS:-8}
require_count GPUS "$gpus" 1
gpus_per_node=${GPUS_PER_NODE:-$((gpus < 8 ? gpus : 8))}
require_count GPUS_PER_NODE "$gpus_per_node" 1
cpus_per_task=${CPUS_PER_TASK:-5}
require_count CPUS_PER_TASK "$cpus_per_task" 1
gres=${GRES:-gpu:$gpus_per_node}
nodes=$(((gpus + gpus_per_node - 1) / gpus_per_node))
tasks_per_node=$((gpus < gpus_per_node ? gpus : gpus_per_node))

gres_option=()
[ "$gres" = none ] || gres_option=(--gres="$gres")
read -r -a srun_args <<<"${SRUN_ARGS:-}"

# Set inside the step, where its job id and its nodes are known: MASTER_PORT from the job id, and MASTER_ADDR, the
# address of rank 0, the first node of the step. Inside a larger allocation (salloc, sbatch, SRUN_ARGS="-w ...")
# that need not be the allocation's first node, the one SLURM_NODELIST starts with.
# On one line: tests/tools/test_dist_scripts.py reads srun's arguments one per line.
task_setup='export MASTER_PORT=${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 20000))}; '
task_setup+='[ -n "${MASTER_ADDR:-}" ] || { hosts=$(scontrol show hostnames "$SLURM_STEP_NODELIST") || exit 1; '
task_setup+='export MASTER_ADDR=${hosts%%[[:space:]]*}; }; exec "$@"'
exec srun \
  --partition="$partition" \
  --job-name="$job_name" \
  --nodes="$nodes" \
  --ntasks="$gpus" \
  --ntasks-per-node="$tasks_per_node" \
  --cpus-per-task="$cpus_per_task" \
  "${gres_option[@]}" \
  --kill-on-bad-exit=1 \
  "${srun_args[@]}" \
  bash -c "$task_setup" slurm-task \
  "${PYTHON:-python}" -u "$script" "$@" --launcher slurm
