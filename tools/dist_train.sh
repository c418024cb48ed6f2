#!/usr/bin/env bash
# Distributed training with torchrun on GPUS processes per node (one per GPU; on CPU-only hosts, one
# per process, with the gloo backend).
#
#   bash tools/dist_train.sh CONFIG GPUS [tools/train.py options]
#
# NNODES, NODE_RANK, MASTER_ADDR, PORT and PYTHON: see tools/dist_launch.sh.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG GPUS [tools/train.py options]" >&2
  exit 2
fi
tools=$(dirname "${BASH_SOURCE[0]}")
config=$1
gpus=$2
shift 2
exec bash "$tools/dist_launch.sh" "$gpus" "$tools/train.py" "$config" "$@"
