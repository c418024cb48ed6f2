#!/usr/bin/env bash
# Distributed evaluation with torchrun on GPUS processes per node.
#
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py options]
#
# NNODES, NODE_RANK, MASTER_ADDR, PORT and PYTHON: see tools/dist_launch.sh.
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: $0 CONFIG CHECKPOINT GPUS [tools/test.py options]" >&2
  exit 2
fi
tools=$(dirname "${BASH_SOURCE[0]}")
config=$1
checkpoint=$2
gpus=$3
shift 3
exec bash "$tools/dist_launch.sh" "$gpus" "$tools/test.py" "$config" "$checkpoint" "$@"
